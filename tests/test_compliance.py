"""Normalised compliance: FRR read-back quirks, stanza paths, order, multisets, hashes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from nornir_coopchain.model.compliance import (
    ComplianceReport,
    check_compliance,
    evidence_for,
    normalise,
)
from nornir_coopchain.model.content import hash_text

INTENDED = """\
interface eth0.101
 description OPA uplink
 ip address 10.17.1.1/30
!
interface eth0.102
 description OPB uplink
 ip address 10.17.2.1/30
!
router bgp 65017
 bgp router-id 10.17.0.1
 no bgp ebgp-requires-policy
 neighbor 10.17.1.2 remote-as 65101
 neighbor 10.17.2.2 remote-as 65102
 address-family ipv4 unicast
  neighbor 10.17.1.2 activate
  neighbor 10.17.2.2 activate
 exit-address-family
!
ip route 10.99.0.0/16 Null0
log syslog informational
"""

# What FRR 8.4 `show running-config` gives back for INTENDED: banners, version and
# defaults, the machine's hostname, `no ip forwarding`, `exit` lines, `line vty`, and
# stanzas (and lines inside them) in another order.
READBACK = """\
Building configuration...

Current configuration:
!
frr version 8.4.4
frr defaults traditional
hostname lab-host
log syslog informational
no ip forwarding
no ipv6 forwarding
service integrated-vtysh-config
!
ip route 10.99.0.0/16 Null0
!
interface eth0.102
 ip address 10.17.2.1/30
 description OPB uplink
exit
!
interface eth0.101
 description OPA uplink
 ip address 10.17.1.1/30
exit
!
router bgp 65017
 bgp router-id 10.17.0.1
 no bgp ebgp-requires-policy
 neighbor 10.17.2.2 remote-as 65102
 neighbor 10.17.1.2 remote-as 65101
 !
 address-family ipv4 unicast
  neighbor 10.17.2.2 activate
  neighbor 10.17.1.2 activate
 exit-address-family
exit
!
line vty
!
end
"""


def test_frr_readback_with_quirks_is_compliant() -> None:
    report = check_compliance(INTENDED, READBACK, "frr")
    assert report.compliant
    assert report.missing == report.extra == ()
    assert report.intended_hash == hash_text(INTENDED)
    assert report.running_hash == hash_text(READBACK)


def test_normalise_qualifies_nested_stanzas_and_drops_syntax() -> None:
    lines = normalise(READBACK, "frr")
    assert "router bgp 65017 > address-family ipv4 unicast > neighbor 10.17.2.2 activate" in lines
    assert "interface eth0.102 > description OPB uplink" in lines
    assert not any(line.startswith(("frr ", "Building", "Current", "!", "end")) for line in lines)
    assert not any("exit" in line for line in lines)
    assert list(lines) == sorted(lines)
    # Rules that depend on the other side are left to check_compliance.
    assert "hostname lab-host" in lines
    assert "no ip forwarding" in lines


def test_same_quirks_are_not_ignored_on_other_platforms() -> None:
    report = check_compliance(INTENDED, READBACK, "eos")
    assert not report.compliant
    assert "frr version 8.4.4" in report.extra
    assert "no ip forwarding" in report.extra


def test_missing_neighbor_line_is_reported_with_its_stanza_path() -> None:
    running = READBACK.replace("  neighbor 10.17.2.2 activate\n", "")
    report = check_compliance(INTENDED, running, "frr")
    assert not report.compliant
    assert report.missing == (
        "router bgp 65017 > address-family ipv4 unicast > neighbor 10.17.2.2 activate",
    )
    assert report.extra == ()


def test_extra_static_route_and_extra_interface_line_are_reported() -> None:
    running = READBACK.replace(
        "ip route 10.99.0.0/16 Null0\n",
        "ip route 10.99.0.0/16 Null0\nip route 0.0.0.0/0 10.9.9.9\n",
    ).replace(" description OPB uplink\n", " description OPB uplink\n shutdown\n")
    report = check_compliance(INTENDED, running, "frr")
    assert report.extra == ("interface eth0.102 > shutdown", "ip route 0.0.0.0/0 10.9.9.9")
    assert report.missing == ()


def test_whitespace_and_crlf_do_not_matter() -> None:
    noisy = "\r\n".join(f"{line}   " for line in READBACK.splitlines()) + "\r\n\r\n"
    assert check_compliance(INTENDED.replace("\n", "\r\n"), noisy, "frr").compliant


def test_hostname_is_ignored_only_when_intended_has_none() -> None:
    assert check_compliance(INTENDED, READBACK, "frr").compliant
    report = check_compliance("hostname site17-r1\n" + INTENDED, READBACK, "frr")
    assert report.missing == ("hostname site17-r1",)
    assert report.extra == ("hostname lab-host",)


def test_forwarding_intent_still_counts() -> None:
    # `ip forwarding` is the default and FRR never prints it...
    forwarding = READBACK.replace("no ip forwarding\n", "")
    assert check_compliance("ip forwarding\n" + INTENDED, forwarding, "frr").compliant
    # ...but when the device shows `no ip forwarding`, an intended `ip forwarding` is unmet.
    report = check_compliance("ip forwarding\n" + INTENDED, READBACK, "frr")
    assert report.missing == ("ip forwarding",)
    assert report.extra == ("no ip forwarding",)


def test_log_lines_are_not_ignored() -> None:
    running = READBACK.replace("log syslog informational\n", "")
    assert check_compliance(INTENDED, running, "frr").missing == ("log syslog informational",)


def test_duplicates_count_but_a_reopened_stanza_header_does_not() -> None:
    twice = INTENDED + "ip route 10.99.0.0/16 Null0\n"
    assert check_compliance(twice, READBACK, "frr").missing == ("ip route 10.99.0.0/16 Null0",)
    reopened = INTENDED + "interface eth0.102\n mtu 1500\n"
    report = check_compliance(reopened, READBACK, "frr")
    assert report.missing == ("interface eth0.102 > mtu 1500",)


def test_evidence_for_summarises_the_report() -> None:
    running = READBACK.replace("  neighbor 10.17.2.2 activate\n", "")
    evidence, report = evidence_for("site17-r1", INTENDED, running, "frr")
    assert evidence.host == "site17-r1"
    assert evidence.readback_hash == hash_text(running)
    assert evidence.compliant is False
    assert (evidence.missing_lines, evidence.extra_lines) == (1, 0)
    assert evidence.report_hash == report.report_hash()


def test_report_rejects_an_inconsistent_verdict_and_sorts_lines() -> None:
    hashes = {"intended_hash": hash_text("a"), "running_hash": hash_text("b")}
    with pytest.raises(ValidationError, match="compliant"):
        ComplianceReport(compliant=True, missing=("x",), **hashes)
    report = ComplianceReport(compliant=False, extra=("b", "a"), **hashes)
    assert report.extra == ("a", "b")


def _stanzas(config: str) -> list[list[str]]:
    """Split a config into top-level stanzas (header plus its indented lines)."""
    stanzas: list[list[str]] = []
    for line in config.splitlines():
        if line and not line[0].isspace():
            stanzas.append([line])
        elif stanzas:
            stanzas[-1].append(line)
    return stanzas


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False))
def test_shuffling_stanzas_and_lines_inside_them_keeps_compliance(rnd: random.Random) -> None:
    shuffled = []
    for stanza in _stanzas(INTENDED):
        body = stanza[1:]
        # Shuffle the top level of a stanza; a nested block moves as one piece.
        blocks: list[list[str]] = []
        for line in body:
            if blocks and line.startswith("  "):
                blocks[-1].append(line)
            else:
                blocks.append([line])
        rnd.shuffle(blocks)
        shuffled.append([stanza[0], *(line for block in blocks for line in block)])
    rnd.shuffle(shuffled)
    running = "\n".join(line for stanza in shuffled for line in stanza)
    assert check_compliance(INTENDED, running, "frr").compliant


_LINE = st.text(alphabet="abcxyz019 ./>", min_size=1, max_size=12)


def _report(missing: list[str], extra: list[str]) -> ComplianceReport:
    return ComplianceReport(
        compliant=not missing and not extra,
        missing=tuple(missing),
        extra=tuple(extra),
        intended_hash=hash_text("intended"),
        running_hash=hash_text("running"),
    )


@settings(max_examples=80, deadline=None)
@given(missing=st.lists(_LINE, max_size=4), extra=st.lists(_LINE, max_size=4), data=st.data())
def test_report_hash_changes_when_any_missing_or_extra_line_changes(
    missing: list[str], extra: list[str], data: st.DataObject
) -> None:
    base = _report(missing, extra)
    sides = [side for side, lines in (("missing", missing), ("extra", extra)) if lines]
    if not sides:
        assert base.compliant
        assert _report([], ["x"]).report_hash() != base.report_hash()
        return
    side = data.draw(st.sampled_from(sides))
    lines = list(missing if side == "missing" else extra)
    index = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
    lines[index] = data.draw(_LINE.filter(lambda line: line != lines[index]))
    changed = _report(lines, extra) if side == "missing" else _report(missing, lines)
    assert changed.report_hash() != base.report_hash()
    # The same line counted as extra instead of missing is another report.
    if side == "missing":
        moved = _report(missing[:index] + missing[index + 1 :], [*extra, missing[index]])
        assert moved.report_hash() != base.report_hash()


def test_frr_vtysh_adds_the_os_hostname_beside_the_configured_one() -> None:
    intended = "hostname site17-r1\nrouter bgp 65017\n bgp router-id 192.0.2.171\n"
    running = "hostname site17-r1\nhostname vm\nrouter bgp 65017\n bgp router-id 192.0.2.171\n"
    assert check_compliance(intended, running, "frr").compliant
    other = running.replace("hostname site17-r1\n", "")
    report = check_compliance(intended, other, "frr")
    assert not report.compliant
    assert report.missing == ("hostname site17-r1",)
