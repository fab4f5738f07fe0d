"""Tenant-private evidence: salted leaves, per-host inclusion proofs, secrets redacted."""

from __future__ import annotations

import pytest

from nornir_coopchain.model.compliance import evidence_for
from nornir_coopchain.model.content import EvidenceProof, EvidenceReport, hash_text
from nornir_coopchain.model.redact import REDACTED, redact

INTENDED = """\
router bgp 65017
 neighbor 198.19.2.2 remote-as 64602
 neighbor 198.19.2.2 password Sh4redS3cret
!
username oam secret Tower17!
"""
# What a device shows back: the same secrets in its own encrypted form, stanzas re-ordered.
READ_BACK = """\
username oam secret sha512 $6$Xq1$k9Zc0
router bgp 65017
 neighbor 198.19.2.2 password 7 0822455D0A16
 neighbor 198.19.2.2 remote-as 64602
"""


def test_a_config_with_secrets_verifies_and_no_secret_reaches_the_evidence() -> None:
    evidence, report = evidence_for("site17-r4", INTENDED, READ_BACK, "eos", salt="0x" + "01" * 32)
    assert report.compliant, (report.missing, report.extra)
    assert evidence.candidate_hash == hash_text(INTENDED)
    assert evidence.readback_hash == hash_text(redact(READ_BACK, "eos"))
    assert "0822455D0A16" not in redact(READ_BACK, "eos")
    assert redact(INTENDED, "eos").count(REDACTED) == 2


@pytest.mark.parametrize(
    ("line", "redacted"),
    [
        (
            " ip ospf message-digest-key 1 md5 0 Sekr1t",
            " ip ospf message-digest-key 1 md5 <redacted>",
        ),
        ("ntp authentication-key 3 md5 7 0822455D0A16", "ntp authentication-key 3 md5 <redacted>"),
        ("snmp-server community tower17 RO 10", "snmp-server community <redacted> RO 10"),
        ("tacacs-server host 10.0.0.9 key 7 1234AB", "tacacs-server host 10.0.0.9 key <redacted>"),
        ("radius-server key Radius!", "radius-server key <redacted>"),
        (" neighbor X password 7 0822455D0A16", " neighbor X password <redacted>"),
        ("username oam secret sha512 $6$Xq1$k9Zc0", "username oam secret <redacted>"),
        ("  key-string 7 05080F1C2243", "  key-string <redacted>"),
        (" ip ospf authentication-key OSPFpw", " ip ospf authentication-key <redacted>"),
        ("enable password cisco123 level 15", "enable password <redacted> level 15"),
    ],
)
def test_each_secret_form_is_redacted(line: str, redacted: str) -> None:
    config = f"hostname r1\n{line}\nline vty\n"
    assert redact(config, "frr") == f"hostname r1\n{redacted}\nline vty\n"


@pytest.mark.parametrize(
    "line",
    [
        " description password reset link for the NOC",
        "key chain OSPF-KEYS",
        " key 1",
        "router ospf",
        " neighbor X update-source lo",
        "ip community-list standard TENANT-B permit 64602:100",
    ],
)
def test_lines_that_hold_no_secret_are_kept_and_the_config_is_returned_as_is(line: str) -> None:
    config = f"hostname r1\n{line}\n"
    assert redact(config, "frr") is config


def test_a_changed_non_secret_line_still_fails() -> None:
    running = READ_BACK.replace("remote-as 64602", "remote-as 64666")
    _, report = evidence_for("site17-r4", INTENDED, running, "eos")
    assert not report.compliant
    assert any("64666" in line for line in report.extra)


def test_leaves_are_salted() -> None:
    first, _ = evidence_for("r1", INTENDED, READ_BACK, "eos")
    second, _ = evidence_for("r1", INTENDED, READ_BACK, "eos")
    assert first.salt != second.salt
    one = EvidenceReport(devices=(first,))
    two = EvidenceReport(devices=(second,))
    assert one.evidence_root() != two.evidence_root()


def _report() -> EvidenceReport:
    devices = [
        evidence_for(host, INTENDED, READ_BACK, "eos")[0] for host in ("r1", "r2", "r3", "r4")
    ]
    return EvidenceReport(devices=tuple(devices))


def test_one_host_proves_its_entry_alone() -> None:
    report = _report()
    root = report.evidence_root()
    proof = report.proof_for("r3")
    assert proof.verify(root)
    # The proof file carries only this host's entry.
    assert EvidenceProof.from_bytes(proof.canonical_bytes()) == proof
    assert b"r1" not in proof.canonical_bytes()


@pytest.mark.parametrize(
    "field",
    [
        "salt",
        "candidate_hash",
        "readback_hash",
        "report_hash",
        "compliant",
        "missing_lines",
        "host",
    ],
)
def test_a_proof_fails_when_any_field_of_its_evidence_changes(field: str) -> None:
    report = _report()
    proof = report.proof_for("r2")
    value = getattr(proof.evidence, field)
    if isinstance(value, bool):
        changed: object = not value
    elif isinstance(value, int):
        changed = value + 1
    elif field == "host":
        changed = "r9"
    else:
        changed = value[:-1] + ("0" if value[-1] != "0" else "1")
    forged = proof.model_copy(
        update={"evidence": proof.evidence.model_copy(update={field: changed})}
    )
    assert not forged.verify(report.evidence_root())


def test_no_proof_for_an_unknown_host() -> None:
    from nornir_coopchain.exceptions import ConfigError

    with pytest.raises(ConfigError, match="no evidence for host r9"):
        _report().proof_for("r9")
