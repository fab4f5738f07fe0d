"""The on-chain envelope of proposal content: compact, versioned, strict and bounded."""

from __future__ import annotations

import json
import os
import zlib

import pytest

from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.model.codec import (
    CONTENT_MAGIC,
    CONTENT_VERSION,
    decode_content,
    encode_content,
    is_envelope,
)
from nornir_coopchain.model.content import ChangeWindow, DeviceChange, ProposalContent
from nornir_coopchain.model.hashing import keccak, to_hex32

BLOCK_GAS_LIMIT = 30_000_000
SITE = "TOWER-017"

# One router's diff when a tenant is turned up (the sample site's FRR template, ~3.2 kB):
# the same stanzas on every router, with the router's own addresses.
_DIFF = """\
--- running
+++ candidate
@@ -1,9 +1,10 @@
 frr version 8.4
 frr defaults traditional
 hostname {host}
+! tenants: OPERATOR-A OPERATOR-B OPERATOR-C
 log syslog informational
 service integrated-vtysh-config
 !
 interface lo
  ip address 10.{a}.{b}.1/32
@@ -31,6 +32,16 @@
  ip address 198.19.12.1/30
 exit
 !
+interface eth0.103
+ description OPERATOR-C backhaul to PE AS64603 (Gamma Networks, MORAN tenant)
+ ip address 100.{a}.{b}.1/30
+exit
+!
+interface eth1.203
+ description OPERATOR-C RAN transport (Gamma Networks, MORAN tenant)
+ ip address 100.{a}.{b}.5/30
+exit
+!
 ip prefix-list PL-OPERATOR-A-IN seq 10 permit 203.0.113.0/26 le 28
 ip prefix-list PL-OPERATOR-A-IN seq 20 permit 198.51.100.0/26
 ip prefix-list PL-OPERATOR-A-OUT seq 10 permit 198.18.11.0/24
@@ -40,6 +51,10 @@
 ip prefix-list PL-OPERATOR-B-IN seq 10 permit 203.0.113.64/26 le 28
 ip prefix-list PL-OPERATOR-B-IN seq 20 permit 198.51.100.64/26
 ip prefix-list PL-OPERATOR-B-OUT seq 10 permit 198.18.21.0/24
+!
+ip prefix-list PL-OPERATOR-C-IN seq 10 permit 203.0.113.128/26 le 28
+ip prefix-list PL-OPERATOR-C-IN seq 20 permit 198.51.100.128/26
+ip prefix-list PL-OPERATOR-C-OUT seq 10 permit 198.18.31.0/24
 !
 route-map RM-OPERATOR-A-IN permit 10
  match ip address prefix-list PL-OPERATOR-A-IN
@@ -69,6 +84,20 @@
 route-map RM-OPERATOR-B-OUT deny 100
 exit
 !
+route-map RM-OPERATOR-C-IN permit 10
+ match ip address prefix-list PL-OPERATOR-C-IN
+exit
+!
+route-map RM-OPERATOR-C-IN deny 100
+exit
+!
+route-map RM-OPERATOR-C-OUT permit 10
+ match ip address prefix-list PL-OPERATOR-C-OUT
+exit
+!
+route-map RM-OPERATOR-C-OUT deny 100
+exit
+!
 router bgp 65017
  bgp router-id 10.{a}.{b}.1
  bgp log-neighbor-changes
@@ -81,11 +110,16 @@
  neighbor OPERATOR-B remote-as 64602
  neighbor OPERATOR-B description OPERATOR-B backhaul PE (Beta Telecom, MORAN tenant)
  neighbor 198.19.2.2 peer-group OPERATOR-B
+ neighbor OPERATOR-C peer-group
+ neighbor OPERATOR-C remote-as 64603
+ neighbor OPERATOR-C description OPERATOR-C backhaul PE (Gamma Networks, MORAN tenant)
+ neighbor 100.{a}.{b}.2 peer-group OPERATOR-C
  !
  address-family ipv4 unicast
   network 198.18.11.0/24
   network 198.18.19.0/27
   network 198.18.21.0/24
+  network 198.18.31.0/24
   network 10.{a}.{b}.1/32
   neighbor OPERATOR-A activate
   neighbor OPERATOR-A route-map RM-OPERATOR-A-IN in
@@ -95,6 +129,10 @@
   neighbor OPERATOR-B route-map RM-OPERATOR-B-IN in
   neighbor OPERATOR-B route-map RM-OPERATOR-B-OUT out
   neighbor OPERATOR-B maximum-prefix 50
+  neighbor OPERATOR-C activate
+  neighbor OPERATOR-C route-map RM-OPERATOR-C-IN in
+  neighbor OPERATOR-C route-map RM-OPERATOR-C-OUT out
+  neighbor OPERATOR-C maximum-prefix 50
  exit-address-family
 exit
 !
"""


def realistic_device(index: int) -> DeviceChange:
    """One router's change: the shared tenant turn-up diff with the router's own name and
    addresses (so no two diffs, nor any hash, are equal)."""
    host = f"site{index // 4:04d}-r{index % 4 + 1}"
    a, b = index // 256, index % 256
    return DeviceChange.from_texts(
        host=host,
        platform="frr",
        running=f"hostname {host}\ninterface lo\n ip address 10.{a}.{b}.1/32\n",
        candidate=f"hostname {host}\n! candidate {index}\n",
        diff=_DIFF.format(host=host, a=a, b=b),
        tenants=("OPERATOR-C",),
    )


def realistic_content(devices: int, *, created_at: int = 1_700_000_000) -> ProposalContent:
    """A tenant turn-up on ``devices`` routers (~3.2 kB of diff each)."""
    return ProposalContent(
        resource_set=SITE,
        title=f"Turn up OPERATOR-C on {devices} routers",
        description="Backhaul and RAN transport for the new tenant; rollback: remove stanzas.",
        window=ChangeWindow(start=created_at - 60, end=created_at + 3600),
        devices=tuple(realistic_device(index) for index in range(devices)),
        templates_hash="0x" + "ab" * 32,
        inventory_hash="0x" + "cd" * 32,
        created_at=created_at,
    )


def small_content() -> ProposalContent:
    return realistic_content(3)


def calldata_gas(data: bytes) -> int:
    """Calldata gas of ``data`` at 16 gas per non-zero byte and 4 per zero byte."""
    zeros = data.count(0)
    return 16 * (len(data) - zeros) + 4 * zeros


def envelope(canonical: bytes, *, version: int = CONTENT_VERSION, size: int | None = None) -> bytes:
    declared = len(canonical) if size is None else size
    body = zlib.compress(canonical, 9)
    return CONTENT_MAGIC + bytes([version]) + declared.to_bytes(4, "big") + body


# --------------------------------------------------------------------------- round trips


def test_envelope_layout_and_round_trip() -> None:
    proposal = small_content()
    canonical = proposal.canonical_bytes()
    raw = proposal.chain_bytes()
    assert raw == encode_content(canonical) == envelope(canonical)
    assert raw[:4] == CONTENT_MAGIC
    assert raw[4] == 1
    assert int.from_bytes(raw[5:9], "big") == len(canonical)
    assert is_envelope(raw)
    assert not is_envelope(canonical)
    assert decode_content(raw) == canonical
    assert ProposalContent.from_chain_bytes(raw) == proposal
    assert proposal.content_hash() == to_hex32(keccak(raw))  # the contentHash posted


def test_plain_canonical_json_is_still_read() -> None:
    """Proposals posted before the envelope carried the canonical JSON itself."""
    proposal = small_content()
    canonical = proposal.canonical_bytes()
    assert decode_content(canonical) == canonical
    assert ProposalContent.from_chain_bytes(canonical) == proposal


def test_bytes_for_hash_picks_the_posted_form() -> None:
    proposal = small_content()
    chain, plain = proposal.chain_bytes(), proposal.canonical_bytes()
    assert proposal.bytes_for_hash(to_hex32(keccak(chain))) == chain
    assert proposal.bytes_for_hash(to_hex32(keccak(plain)).upper().replace("0X", "0x")) == plain
    assert proposal.bytes_for_hash("0x" + "00" * 32) is None


def test_encoding_is_stable_for_one_zlib() -> None:
    proposal = small_content()
    assert proposal.chain_bytes() == realistic_content(3).chain_bytes()
    assert proposal.content_hash() == realistic_content(3).content_hash()


def test_reader_never_needs_to_recompress() -> None:
    """Another zlib build (another level here) posts other bytes: they still decode to the
    same content, and the hash that binds them is theirs."""
    proposal = small_content()
    canonical = proposal.canonical_bytes()
    other = envelope(canonical)[:9] + zlib.compress(canonical, 1)
    assert other != proposal.chain_bytes()
    assert ProposalContent.from_chain_bytes(other) == proposal
    assert proposal.bytes_for_hash(to_hex32(keccak(other))) is None


# --------------------------------------------------------------------------- strictness


def test_unknown_version_is_refused() -> None:
    raw = envelope(small_content().canonical_bytes(), version=2)
    with pytest.raises(ConfigError, match="unknown envelope version 2"):
        decode_content(raw)


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00\x01", b"[1]", b"\x78\x9c" + zlib.compress(b"{}")[2:], b"PK\x03\x04"],
    ids=["empty", "binary", "json-array", "bare-zlib", "zip"],
)
def test_unknown_format_is_refused(raw: bytes) -> None:
    with pytest.raises(ConfigError, match="unknown format"):
        decode_content(raw)


def test_truncated_header_is_refused() -> None:
    with pytest.raises(ConfigError, match="header truncated"):
        decode_content(CONTENT_MAGIC + b"\x01\x00")


def test_corrupt_truncated_and_padded_streams_are_refused() -> None:
    raw = small_content().chain_bytes()
    with pytest.raises(ConfigError, match="truncated"):
        decode_content(raw[:-10])
    with pytest.raises(ConfigError, match="after the end of the zlib stream"):
        decode_content(raw + b"\x00")
    corrupt = bytearray(raw)
    corrupt[-1] ^= 0xFF  # the Adler-32 checksum
    with pytest.raises(ConfigError, match="corrupt zlib stream"):
        decode_content(bytes(corrupt))


def test_declared_size_must_be_exact() -> None:
    canonical = small_content().canonical_bytes()
    with pytest.raises(ConfigError, match="more than the"):
        decode_content(envelope(canonical, size=len(canonical) - 1))
    with pytest.raises(ConfigError, match="header declares"):
        decode_content(envelope(canonical, size=len(canonical) + 1))


def test_decompressed_json_must_be_canonical() -> None:
    proposal = small_content()
    pretty = json.dumps(json.loads(proposal.canonical_bytes()), indent=1).encode()
    with pytest.raises(ConfigError, match="not canonical"):
        ProposalContent.from_chain_bytes(encode_content(pretty))
    with pytest.raises(ConfigError, match="not canonical"):
        ProposalContent.from_chain_bytes(pretty)  # neither as plain JSON


def test_zip_bomb_is_refused_without_inflating_it() -> None:
    """64 MiB of zeros compress to ~64 kB: refused by its declared size, and a lying header
    gets no further than the cap."""
    bomb = b"{" + b" " * (64 * 2**20)
    honest = envelope(bomb)
    assert len(honest) < 100_000
    with pytest.raises(ConfigError, match="exceed the 33,554,432-byte limit"):
        decode_content(honest)
    lying = envelope(bomb, size=1000)
    with pytest.raises(ConfigError, match="more than the 1,000 bytes"):
        decode_content(lying)
    with pytest.raises(ConfigError, match="exceed the 100-byte limit"):
        decode_content(small_content().chain_bytes(), max_size=100)
    with pytest.raises(ConfigError, match="exceed the 100-byte limit"):
        ProposalContent.from_chain_bytes(small_content().canonical_bytes(), max_size=100)


def test_random_bytes_after_the_magic_never_decode() -> None:
    for seed in range(50):
        raw = CONTENT_MAGIC + bytes([CONTENT_VERSION]) + os.urandom(seed * 7 + 4)
        with pytest.raises(ConfigError):
            ProposalContent.from_chain_bytes(raw)


# --------------------------------------------------------------------------- size at scale


def test_thousand_devices_fit_far_below_a_block() -> None:
    proposal = realistic_content(1000)
    canonical, raw = proposal.canonical_bytes(), proposal.chain_bytes()
    assert len(canonical) > 3_000_000  # ~3.2 kB of diff per device
    assert len(raw) < len(canonical) / 8
    assert len(raw) < 512 * 1024  # the default cap on proposal content
    # Even at the EIP-7623 floor (40 gas per non-zero byte) well below a 30 M block.
    assert 21_000 + 40 * len(raw) < BLOCK_GAS_LIMIT / 3
    assert calldata_gas(canonical) > BLOCK_GAS_LIMIT  # what it was before the envelope
    assert ProposalContent.from_chain_bytes(raw) == proposal


def test_content_posted_or_read_in_this_process_is_decoded_once() -> None:
    """Propose, apply and each voter read the same posted bytes: the content (and its
    manifest tree) is decoded once, and the size cap still holds."""
    content = realistic_content(3)
    posted = content.chain_bytes()
    assert ProposalContent.from_chain_bytes(posted) is content
    other = realistic_content(3, created_at=1_700_000_900)
    read = ProposalContent.from_chain_bytes(encode_content(other.canonical_bytes()))
    assert read == other
    assert ProposalContent.from_chain_bytes(encode_content(other.canonical_bytes())) is read
    with pytest.raises(ConfigError):
        ProposalContent.from_chain_bytes(posted, max_size=100)
