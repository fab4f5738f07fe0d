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
 no bgp default ipv4-unicast
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
 no bgp default ipv4-unicast
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
    # FRR: a command entered twice configures once and is shown once.
    assert check_compliance(twice, READBACK, "frr").compliant
    # Elsewhere (no such device rule) a line written twice must be read back twice.
    once = INTENDED + "frr version 8.4.4\n"
    assert check_compliance(twice, once, "generic").missing == ("ip route 10.99.0.0/16 Null0",)
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
    hashes = {
        "intended_hash": hash_text("a"),
        "running_hash": hash_text("b"),
        "normalised_hash": hash_text("a"),
        "rules": "generic",
    }
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
        normalised_hash=hash_text("intended"),
        rules="generic",
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


# ---------------------------------------------------------------- FRR 8.4's echo, rule by rule
# Each case: what a public configuration wrote, and what FRR 8.4.4 printed for it on the lab
# (tests/corpus/frr). Every case must comply, and must stop complying when the rule is off.

FRR_ECHOES = {
    "ipv6": (
        "interface eth0\n ipv6 address FC00:0:0:0::1/64\nipv6 route 2001:DB8:0::/48 fc00:0::2\n",
        "interface eth0\n ipv6 address fc00::1/64\nipv6 route 2001:db8::/48 fc00::2\n",
    ),
    "keywords": (
        "int dummy1\n ip address 10.0.0.1/24\n shut\nip route 10.9.0.0/16 null0\n"
        "router bgp 65000\n address-family ipv4\n  redistribute connected\n",
        "interface dummy1\n ip address 10.0.0.1/24\n shutdown\nip route 10.9.0.0/16 Null0\n"
        "router bgp 65000\n address-family ipv4 unicast\n  redistribute connected\n",
    ),
    "interface-vrf": (
        "interface loop101 vrf r1-vrf-101\n ip address 192.168.102.21/32\n",
        "interface loop101\n ip address 192.168.102.21/32\n",
    ),
    "debug-updates": ("debug bgp updates\n", "debug bgp updates in\ndebug bgp updates out\n"),
    "log-level": ("log syslog debugging\nlog stdout debugging\n", "log syslog\nlog stdout\n"),
    "defaults": (
        "int dummy1\n no shut\nbfd\n peer 192.0.2.21 vrf default interface eth0\n  no shutdown\n"
        "router bgp 65002\n bgp suppress-duplicates\n timers bgp 60 180\n",
        "interface dummy1\nbfd\n peer 192.0.2.21 interface eth0\nrouter bgp 65002\n",
    ),
    "bfd-echo": (
        "bfd\n peer 192.0.2.21\n  echo-interval 3000\n",
        "bfd\n peer 192.0.2.21\n  echo receive-interval 3000\n  echo transmit-interval 3000\n",
    ),
    "ipv4-unicast": (
        "router bgp 100 view 1\n network 172.20.0.0/28 route-map local1\n"
        " neighbor 10.0.0.2 remote-as 2\n address-family ipv4 unicast\n"
        "  neighbor 10.0.0.2 activate\n",
        "router bgp 100 view 1\n neighbor 10.0.0.2 remote-as 2\n address-family ipv4 unicast\n"
        "  network 172.20.0.0/28 route-map local1\n",
    ),
    "static-vrf": (
        "ip route 203.0.113.1/32 192.0.2.130 vrf red nexthop-vrf blue\n",
        "vrf red\n ip route 203.0.113.1/32 192.0.2.130 nexthop-vrf blue\nexit-vrf\n",
    ),
    "remote-as": (
        "router bgp 65001 vrf vrf10\n neighbor eth0 interface\n neighbor eth0 remote-as external\n"
        " neighbor 2001:db8:4::1 remote-as 102\n neighbor 2001:db8:4::1 remote-as external\n",
        "router bgp 65001 vrf vrf10\n neighbor eth0 interface remote-as external\n"
        " neighbor 2001:db8:4::1 remote-as external\n",
    ),
    "seq": (
        "bgp as-path access-list SELF permit ^$\nip prefix-list P seq 10 permit 10.0.0.0/8\n"
        "ip prefix-list P permit 10.1.0.0/16\nbgp community-list standard C permit 65004:2\n",
        "bgp as-path access-list SELF seq 5 permit ^$\nip prefix-list P seq 10 permit 10.0.0.0/8\n"
        "ip prefix-list P seq 15 permit 10.1.0.0/16\n"
        "bgp community-list standard C seq 5 permit 65004:2\n",
    ),
    "declared-version": (
        "frr version 8.1\nrouter bgp 4242420513\n no bgp ebgp-requires-policy\n",
        "frr version 8.4.4\nrouter bgp 4242420513\n no bgp ebgp-requires-policy\n"
        " no bgp graceful-restart notification\n no bgp hard-administrative-reset\n",
    ),
    "log-file": ("log file zebra.log\n", "log file /root/zebra.log\n"),
    "idempotent": ("log stdout\nlog stdout\n", "log stdout\n"),
}


@pytest.mark.parametrize("rule", sorted(FRR_ECHOES))
def test_frr_echo_complies_and_only_through_its_rule(rule: str) -> None:
    intended, running = FRR_ECHOES[rule]
    report = check_compliance(intended, running, "frr")
    assert report.compliant, (report.missing, report.extra)
    assert report.rules == "frr-8.4/1"
    # Without the FRR rules (generic platform) the same pair is a false failure.
    assert not check_compliance(intended, running, "generic").compliant


AF = "router bgp 65000 > address-family ipv4 unicast"


@pytest.mark.parametrize(
    ("intended", "running", "missing", "extra"),
    [
        # A changed line inside a re-qualified address family still fails, named.
        (
            "router bgp 65000\n address-family ipv4\n  neighbor 192.0.2.1 route-map A out\n",
            "router bgp 65000\n address-family ipv4 unicast\n"
            "  neighbor 192.0.2.1 route-map B out\n",
            (f"{AF} > neighbor 192.0.2.1 route-map A out",),
            (f"{AF} > neighbor 192.0.2.1 route-map B out",),
        ),
        # A static route moved into its VRF stanza, but in the wrong VRF.
        (
            "ip route 203.0.113.1/32 192.0.2.130 vrf red\n",
            "vrf blue\n ip route 203.0.113.1/32 192.0.2.130\nexit-vrf\n",
            ("vrf red", "vrf red > ip route 203.0.113.1/32 192.0.2.130"),
            ("vrf blue", "vrf blue > ip route 203.0.113.1/32 192.0.2.130"),
        ),
        # Another IPv6 address is not a compressed form of the intended one.
        (
            "interface eth0\n ipv6 address fc00:0:0:0::1/64\n",
            "interface eth0\n ipv6 address fc00::2/64\n",
            ("interface eth0 > ipv6 address fc00::1/64",),
            ("interface eth0 > ipv6 address fc00::2/64",),
        ),
        # An explicit non-default is not swallowed by the defaults rule.
        (
            "router bgp 65002\n timers bgp 60 180\n",
            "router bgp 65002\n timers bgp 3 9\n",
            (),  # the intended default is the device's default form: no line...
            ("router bgp 65002 > timers bgp 3 9",),  # ...so the change shows as extra
        ),
        # A route-map entry missing from a renumbered list is named with its seq.
        (
            "bgp community-list standard C permit 65004:2\n"
            "bgp community-list standard C permit 65004:3\n",
            "bgp community-list standard C seq 5 permit 65004:2\n",
            ("bgp community-list standard C seq 10 permit 65004:3",),
            (),
        ),
        # A shutdown interface is a real difference (only `no shutdown` is the default).
        (
            "interface eth1\n no shut\n",
            "interface eth1\n shutdown\n",
            (),
            ("interface eth1 > shutdown",),
        ),
        # An activate that is off by default (`no bgp default ipv4-unicast`) must be read back.
        (
            "router bgp 1\n no bgp default ipv4-unicast\n address-family ipv4 unicast\n"
            "  neighbor PG activate\n",
            "router bgp 1\n no bgp default ipv4-unicast\n",
            (
                "router bgp 1 > address-family ipv4 unicast",
                "router bgp 1 > address-family ipv4 unicast > neighbor PG activate",
            ),
            (),
        ),
        # Another log file is not the relative one resolved.
        (
            "log file zebra.log\n",
            "log file /root/bgpd.log\n",
            ("log file zebra.log",),
            ("log file /root/bgpd.log",),
        ),
    ],
)
def test_real_differences_still_fail_naming_the_line(
    intended: str, running: str, missing: tuple[str, ...], extra: tuple[str, ...]
) -> None:
    report = check_compliance(intended, running, "frr")
    assert not report.compliant
    assert (report.missing, report.extra) == (missing, extra)


def test_the_normalised_intended_form_is_hashed_into_the_report() -> None:
    written = "int dummy1\n no shut\nip route 10.9.0.0/16 null0\n"
    echoed = "interface dummy1\nip route 10.9.0.0/16 Null0\n"
    a, b = check_compliance(written, echoed, "frr"), check_compliance(echoed, echoed, "frr")
    assert a.intended_hash != b.intended_hash  # raw texts differ...
    assert a.normalised_hash == b.normalised_hash  # ...their device form does not
    assert a.normalised_hash == hash_text("interface dummy1\nip route 10.9.0.0/16 Null0\n")
    other = check_compliance("interface dummy2\n", echoed, "frr")
    assert other.normalised_hash != a.normalised_hash


def test_eos_rules_have_the_same_structure_untested_on_a_live_device() -> None:
    intended = (
        "int ethernet1\n ipv6 address 2001:DB8:0::1/64\n"
        "router bgp 1\n neighbor 1.1.1.1 peer-group G\n"
    )
    running = (
        "interface Ethernet1\n   ipv6 address 2001:db8::1/64\n"
        "router bgp 1\n   neighbor 1.1.1.1 peer group G\n"
    )
    report = check_compliance(intended, running, "eos")
    assert report.compliant, (report.missing, report.extra)
    assert report.rules == "eos/1-untested"
    assert not check_compliance(intended, running.replace("G\n", "H\n"), "eos").compliant
