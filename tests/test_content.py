"""Proposal content and evidence: canonical bytes, hashes, validation, bytes32 names."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.model.content import (
    EVIDENCE_LEAF_TYPES,
    MANIFEST_LEAF_TYPES,
    ChangeWindow,
    DeviceChange,
    DeviceEvidence,
    EvidenceReport,
    ProposalContent,
    hash_text,
    operator_id,
    operator_name,
    resource_set_id,
    resource_set_name,
)
from nornir_coopchain.model.hashing import canonical_json, from_hex32, keccak, to_hex32
from nornir_coopchain.model.merkle import verify

# Computed with @openzeppelin/merkle-tree 1.0.8 and ethereum-cryptography's keccak256 (node)
# from the same texts (hashed with "\n" line endings): StandardMerkleTree.of over the three
# manifest leaves.
JS_MANIFEST_ROOT = "0x0dbeb9de3035d20913efb8bc3dcce0485218999245d68d6b4ea0949d2a77018e"
# Pinned so that any change of the canonical form is noticed (it changes every content hash).
# The keccak of the canonical JSON itself; the contentHash is that of its compressed envelope
# (not pinned: another zlib build may compress differently, see test_content_codec.py).
CANONICAL_HASH = "0xf55d0606b1f250af3a157792b187a658d8d8543ea336ae4adb3960272d229147"


def device(host: str, platform: str = "ios", **extra: object) -> DeviceChange:
    return DeviceChange.from_texts(
        host=host,
        platform=platform,
        running=f"hostname {host}\r\n",
        candidate=f"hostname {host}\nntp server 10.0.0.1\n",
        diff="+ntp server 10.0.0.1\n",
        **extra,  # type: ignore[arg-type]
    )


def content(**overrides: object) -> ProposalContent:
    fields: dict[str, object] = {
        "resource_set": "TOWER-017",
        "title": "NTP",
        "window": ChangeWindow(start=1_700_000_000, end=1_700_003_600),
        "devices": [device("site17-r2", "junos"), device("site17-r1"), device("site17-r3", "eos")],
        "created_at": 1_699_999_000,
    }
    fields.update(overrides)
    return ProposalContent.model_validate(fields)


# --------------------------------------------------------------------------- hashing


def test_canonical_json_form() -> None:
    data = {"b": [1, True, None, "é\n"], "a": {"y": -2, "x": ""}}
    assert canonical_json(data) == '{"a":{"x":"","y":-2},"b":[1,true,null,"é\\n"]}'.encode()


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"a": 1.0}, "$.a"),
        ({"a": [float("nan")]}, "$.a[0]"),
        ({1: "x"}, "$"),
        ({"a": b"x"}, "$.a"),
    ],
)
def test_canonical_json_rejects_ambiguous_data(bad: object, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        canonical_json(bad)
    assert info.value.field == field


def test_hex32_helpers() -> None:
    value = keccak(b"")
    text = to_hex32(value)
    assert text == "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert from_hex32(text.upper().replace("0X", "0x")) == value
    with pytest.raises(ConfigError):
        to_hex32(b"\x00" * 31)
    with pytest.raises(ConfigError):
        from_hex32("0x1234")


def test_hash_text_normalises_line_endings_only() -> None:
    unix = hash_text("a\nb\n")
    assert unix == to_hex32(keccak(b"a\nb\n"))
    assert hash_text("a\r\nb\r\n") == unix
    assert hash_text("a\rb\r") == unix
    assert hash_text("a\r\r\nb\n") == hash_text("a\n\nb\n")
    assert hash_text("a\nb") != unix  # no trailing-newline fix-up
    assert hash_text(" a\nb\n") != unix  # no stripping
    assert hash_text("é") == to_hex32(keccak("é".encode()))


# --------------------------------------------------------------------------- content


def test_canonical_bytes_stable_and_round_trip() -> None:
    proposal = content()
    raw = proposal.canonical_bytes()
    assert to_hex32(keccak(raw)) == CANONICAL_HASH
    assert proposal.content_hash() == to_hex32(keccak(proposal.chain_bytes()))
    assert ProposalContent.from_chain_bytes(proposal.chain_bytes()) == proposal
    assert content(devices=list(reversed(proposal.devices))).canonical_bytes() == raw
    parsed = ProposalContent.from_bytes(raw)
    assert parsed == proposal
    assert parsed.canonical_bytes() == raw
    decoded = json.loads(raw)
    assert decoded["schema"] == "coopchain.proposal/1"
    assert [d["host"] for d in decoded["devices"]] == ["site17-r1", "site17-r2", "site17-r3"]


def test_manifest_matches_js_library() -> None:
    proposal = content()
    assert proposal.manifest_root() == JS_MANIFEST_ROOT
    assert proposal.device_count == 3
    tree = proposal.manifest_tree
    for index, change in enumerate(proposal.devices):
        assert verify(
            JS_MANIFEST_ROOT, MANIFEST_LEAF_TYPES, change.manifest_leaf(), tree.proof(index)
        )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda raw: json.dumps(json.loads(raw)).encode(),  # whitespace
        lambda raw: (
            json.dumps(json.loads(raw), sort_keys=False, separators=(",", ":"))
            .replace('"created_at":1699999000,', "")
            .replace("}", ',"created_at":1699999000}', 1)
            .encode()
        ),  # key order
        lambda raw: raw.replace(b'"description":"",', b""),  # default field left out
        lambda raw: raw.replace(b"0x7a4db9bc", b"0x7A4DB9BC"),  # upper-case hex
        lambda raw: raw.replace(b"site17-r1", b"site17-r9"),  # devices no longer sorted
        lambda raw: raw.replace(b'\\n"', b'\\u000a"'),  # other escape
        lambda raw: raw + b"\n",
    ],
)
def test_from_bytes_rejects_non_canonical(mutate: object) -> None:
    raw = content().canonical_bytes()
    changed = mutate(raw)  # type: ignore[operator]
    assert changed != raw
    with pytest.raises(ConfigError):
        ProposalContent.from_bytes(changed)


def replaced(**members: object) -> bytes:
    """The canonical content with some members replaced, still in canonical layout."""
    data = json.loads(content().canonical_bytes())
    data.update(members)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"\xff", None),
        (b"{}", "resource_set"),
        (replaced(created_at=1_699_999_000.0), "created_at"),
        (replaced(window={"end": 1, "start": 2}), "window"),
        (replaced(schema="coopchain.proposal/2"), "schema"),
    ],
)
def test_from_bytes_invalid_names_field(raw: bytes, field: str | None) -> None:
    with pytest.raises(ConfigError) as info:
        ProposalContent.from_bytes(raw)
    assert info.value.source == "ProposalContent"
    assert info.value.field == field


def test_duplicate_hosts_rejected() -> None:
    with pytest.raises(ValidationError, match="duplicate hosts in devices: r1"):
        content(devices=[device("r1"), device("r2"), device("r1", "eos")])


def test_devices_must_be_non_empty_and_window_ordered() -> None:
    with pytest.raises(ValidationError, match="devices"):
        content(devices=[])
    with pytest.raises(ValidationError, match="start"):
        ChangeWindow(start=10, end=10)
    with pytest.raises(ValidationError):
        ChangeWindow(start=-1, end=10)
    with pytest.raises(ValidationError):
        ChangeWindow(start=0, end=2**48)


def test_device_change_checks_diff_hash_and_normalises() -> None:
    change = device("r1", tenants=("OP-B", "OP-A"))
    assert change.tenants == ("OP-A", "OP-B")
    assert change.replace is False
    assert change.base_config_hash == hash_text("hostname r1\n")
    fields = change.model_dump()
    with pytest.raises(ValidationError, match="diff_hash"):
        DeviceChange.model_validate({**fields, "diff_hash": hash_text("other")})
    upper = DeviceChange.model_validate({**fields, "candidate_hash": change.candidate_hash.upper()})
    assert upper.candidate_hash == change.candidate_hash
    raw = DeviceChange.model_validate(
        {**fields, "candidate_hash": from_hex32(change.candidate_hash)}
    )
    assert raw == change
    with pytest.raises(ValidationError, match="duplicate tenants"):
        device("r1", tenants=("OP-A", "OP-A"))
    with pytest.raises(ValidationError, match="extra"):
        DeviceChange.model_validate({**fields, "comment": "x"})
    with pytest.raises(ValidationError, match="replace"):
        DeviceChange.model_validate({**fields, "replace": "yes"})


def test_content_fields_validated() -> None:
    with pytest.raises(ValidationError, match="resource_set"):
        content(resource_set="X" * 33)
    with pytest.raises(ValidationError, match="resource_set"):
        content(resource_set="tour-é")
    with pytest.raises(ValidationError, match="templates_hash"):
        content(templates_hash="0x1234")
    with pytest.raises(ValidationError, match="created_at"):
        content(created_at="1699999000")
    with pytest.raises(ValidationError, match="schema"):
        ProposalContent.model_validate({**content().model_dump(by_alias=True), "schema": "v2"})
    proposal = content(devices=[device("r1", tenants=("OP-B",)), device("r2", tenants=("OP-A",))])
    assert proposal.tenants == ("OP-A", "OP-B")
    with pytest.raises(ValidationError, match="frozen"):
        proposal.title = "changed"


# --------------------------------------------------------------------------- evidence


def evidence(host: str, compliant: bool = True) -> DeviceEvidence:
    return DeviceEvidence(
        host=host,
        salt="0x" + "5a" * 32,
        candidate_hash=hash_text(f"hostname {host}\n"),
        readback_hash=hash_text(f"hostname {host}\n"),
        compliant=compliant,
        missing_lines=0 if compliant else 2,
        report_hash=hash_text(f"{host}: {compliant}\n"),
    )


def test_evidence_report() -> None:
    report = EvidenceReport(devices=(evidence("site17-r3"), evidence("site17-r1", False)))
    assert [d.host for d in report.devices] == ["site17-r1", "site17-r3"]
    assert (report.devices_ok, report.devices_failed) == (1, 1)
    tree = report.evidence_tree
    assert report.evidence_root() == to_hex32(tree.root)
    leaf = report.devices[0].evidence_leaf()
    assert verify(tree.root, EVIDENCE_LEAF_TYPES, leaf, tree.proof(0))
    assert not verify(tree.root, EVIDENCE_LEAF_TYPES, (*leaf[:5], True, *leaf[6:]), tree.proof(0))
    assert EvidenceReport.from_bytes(report.canonical_bytes()) == report
    with pytest.raises(ConfigError, match="missing hosts: site17-r2; extra hosts: none"):
        report.check_covers(content())
    with pytest.raises(ValidationError, match="duplicate hosts"):
        EvidenceReport(devices=(evidence("a"), evidence("a")))


# --------------------------------------------------------------------------- bytes32 names


def test_resource_set_id_matches_solidity_bytes32_literal() -> None:
    assert resource_set_id("coopchain.governance") == b"coopchain.governance" + b"\0" * 12
    assert resource_set_name(resource_set_id("X" * 32)) == "X" * 32
    assert operator_name(operator_id("OPERATOR-A")) == "OPERATOR-A"


@pytest.mark.parametrize("name", ["", "X" * 33, "tour-é", "a\tb"])
def test_resource_set_id_rejects_bad_names(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        resource_set_id(name)
    assert info.value.field == "resource_set"
    with pytest.raises(ConfigError):
        operator_id(name)


@pytest.mark.parametrize("raw", [b"\0" * 32, b"a" * 31, b"a\0b" + b"\0" * 29, b"\xff" + b"\0" * 31])
def test_resource_set_name_rejects_bad_bytes(raw: bytes) -> None:
    with pytest.raises(ConfigError):
        resource_set_name(raw)


@settings(max_examples=80, deadline=None)
@given(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=32)
)
def test_resource_set_id_round_trip(name: str) -> None:
    encoded = resource_set_id(name)
    assert len(encoded) == 32
    assert resource_set_name(encoded) == name


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=5, unique=True),
    st.text(max_size=40),
    st.text(max_size=40),
)
def test_random_content_round_trips(hosts: list[str], title_tail: str, diff: str) -> None:
    devices = [
        DeviceChange.from_texts(host=h, platform="ios", running="", candidate=h, diff=diff)
        for h in hosts
    ]
    window = ChangeWindow(start=0, end=1)
    proposal = ProposalContent(
        resource_set="S", title="t" + title_tail, window=window, devices=devices, created_at=0
    )
    raw = proposal.canonical_bytes()
    assert ProposalContent.from_bytes(raw) == proposal
    assert [d.host for d in proposal.devices] == sorted(hosts)


def test_a_window_takes_datetimes_and_iso_8601_with_a_zone_and_shows_iso() -> None:
    from datetime import datetime, timedelta, timezone

    paris = timezone(timedelta(hours=1))
    window = ChangeWindow(start=datetime(2030, 1, 31, 23, tzinfo=paris), end="2030-01-31T23:00Z")
    assert (window.start, window.end) == (1_896_127_200, 1_896_130_800)
    assert window == ChangeWindow(start=1_896_127_200, end="2030-02-01T00:00:00+01:00")
    assert str(window) == "2030-01-31T22:00:00+00:00 to 2030-01-31T23:00:00+00:00"
    for naive in ("2030-01-31T22:00", datetime(2030, 1, 31, 22)):
        with pytest.raises(ValidationError, match="has no time zone"):
            ChangeWindow(start=naive, end=1_896_130_800)
    with pytest.raises(ValidationError, match="not an ISO 8601 time"):
        ChangeWindow(start="tomorrow", end=1_896_130_800)
    with pytest.raises(ValidationError, match=r"2030-01-31T23:00:00\+00:00 is not before"):
        ChangeWindow(start="2030-01-31T23:00Z", end="2030-01-31T22:00Z")
    # the canonical content keeps unix seconds: a window written as text is not canonical
    raw = json.loads(content().canonical_bytes())
    raw["window"]["start"] = "2023-11-14T22:13:20Z"
    with pytest.raises(ConfigError):
        ProposalContent.from_bytes(json.dumps(raw).encode())
