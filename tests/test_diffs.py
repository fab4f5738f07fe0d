"""What a diff touches: unified, frr-reload and plain diffs; stanzas; tenants."""

from __future__ import annotations

import difflib

import pytest

from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.model.diffs import (
    ChangedLine,
    changed_lines,
    touched_stanzas,
    touched_tenants,
)

RUNNING = """\
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
 neighbor 10.17.1.2 remote-as 65101
 neighbor 10.17.2.2 remote-as 65102
 address-family ipv4 unicast
  neighbor 10.17.1.2 activate
  neighbor 10.17.2.2 activate
 exit-address-family
!
ip route 10.99.0.0/16 Null0
"""

TENANTS = {
    "OPERATOR-A": [r"^interface eth0\.101", r"neighbor 10\.17\.1\."],
    "OPERATOR-B": [r"^interface eth0\.102", r"neighbor 10\.17\.2\."],
    "OPERATOR-C": [r"^router ospf"],
}


def unified(running: str, candidate: str, context: int = 3) -> str:
    return "".join(
        difflib.unified_diff(
            running.splitlines(keepends=True),
            candidate.splitlines(keepends=True),
            "running",
            "candidate",
            n=context,
        )
    )


def signed(lines: tuple[ChangedLine, ...]) -> list[str]:
    return [str(line) for line in lines]


def test_unified_diff_lines_get_their_stanza_from_context() -> None:
    candidate = RUNNING.replace(" description OPB uplink\n", " description OPB uplink v2\n")
    candidate = candidate.replace("  neighbor 10.17.2.2 activate\n", "")
    lines = changed_lines(unified(RUNNING, candidate, context=6))
    assert signed(lines) == [
        "- interface eth0.102 > description OPB uplink",
        "+ interface eth0.102 > description OPB uplink v2",
        "- router bgp 65017 > address-family ipv4 unicast > neighbor 10.17.2.2 activate",
    ]
    assert [line.stanza for line in lines] == ["interface eth0.102"] * 2 + ["router bgp 65017"]
    assert lines[2].path == ("router bgp 65017", "address-family ipv4 unicast")
    assert lines[2].text == "neighbor 10.17.2.2 activate"
    assert touched_tenants(unified(RUNNING, candidate), TENANTS) == ("OPERATOR-B",)


def test_three_lines_of_context_may_hide_the_top_level_stanza() -> None:
    # difflib's default context shows `address-family` but not `router bgp` above it.
    candidate = RUNNING.replace("  neighbor 10.17.2.2 activate\n", "")
    (line,) = changed_lines(unified(RUNNING, candidate))
    assert line.stanza is None
    assert line.path == ("address-family ipv4 unicast",)
    assert str(line) == "- … > address-family ipv4 unicast > neighbor 10.17.2.2 activate"


def test_a_top_level_line_is_its_own_stanza() -> None:
    lines = changed_lines(unified(RUNNING, RUNNING + "ip route 0.0.0.0/0 10.9.9.9\n"))
    assert lines == (
        ChangedLine(
            sign="+",
            text="ip route 0.0.0.0/0 10.9.9.9",
            path=(),
            stanza="ip route 0.0.0.0/0 10.9.9.9",
        ),
    )


def test_removed_and_added_headers_are_placed_on_their_own_side() -> None:
    candidate = RUNNING.replace("interface eth0.101\n", "interface eth0.201\n")
    lines = changed_lines(unified(RUNNING, candidate, context=1))
    assert signed(lines) == ["- interface eth0.101", "+ interface eth0.201"]
    assert touched_stanzas(unified(RUNNING, candidate)) == {
        "interface eth0.101",
        "interface eth0.201",
    }


def test_line_without_visible_header_has_unknown_stanza() -> None:
    candidate = RUNNING.replace(" neighbor 10.17.2.2 remote-as 65102\n", "")
    lines = changed_lines(unified(RUNNING, candidate, context=0))
    assert len(lines) == 1
    assert lines[0].stanza is None
    assert lines[0].path == ()
    assert lines[0].text == "neighbor 10.17.2.2 remote-as 65102"
    assert touched_stanzas(unified(RUNNING, candidate, context=0)) == set()
    # The line's own text still tells whose it is.
    assert touched_tenants(unified(RUNNING, candidate, context=0), TENANTS) == ("OPERATOR-B",)


def test_git_section_heading_seeds_the_stanza() -> None:
    diff = (
        "diff --git a/r1.conf b/r1.conf\n"
        "--- a/r1.conf\n"
        "+++ b/r1.conf\n"
        "@@ -12,1 +12,0 @@ router bgp 65017\n"
        "- neighbor 10.17.2.2 remote-as 65102\n"
    )
    (line,) = changed_lines(diff)
    assert line.stanza == "router bgp 65017"
    assert line.qualified == "router bgp 65017 > neighbor 10.17.2.2 remote-as 65102"


def test_terminators_comments_and_crlf_are_not_changes() -> None:
    diff = unified("router ospf\n", "router ospf\n ospf router-id 1.1.1.1\nexit\n!\n")
    lines = changed_lines(diff.replace("\n", "\r\n"))
    assert signed(lines) == ["+ router ospf > ospf router-id 1.1.1.1"]


FRR_RELOAD = """\
2024-05-01 10:00:00,000  INFO: Called via "Namespace(test=True)"
2024-05-01 10:00:00,100  INFO: Loading Config object from file candidate.conf

Lines To Delete
===============
router bgp 65017
 no neighbor 10.17.2.2 remote-as 65102
exit
router bgp 65017
 address-family ipv4 unicast
  no neighbor 10.17.2.2 activate
 exit
exit
no ip route 10.99.0.0/16 Null0
interface eth0.102
 ip address 10.17.2.1/30
exit

Lines To Add
============
interface eth0.102
 description OPB uplink v2
exit
router ospf
exit
router ospf
 ospf router-id 10.17.0.1
exit
no ipv6 forwarding
"""


def test_frr_reload_blocks_are_parsed_and_deletions_un_negated() -> None:
    assert signed(changed_lines(FRR_RELOAD)) == [
        "- router bgp 65017 > neighbor 10.17.2.2 remote-as 65102",
        "- router bgp 65017 > address-family ipv4 unicast > neighbor 10.17.2.2 activate",
        "- ip route 10.99.0.0/16 Null0",
        # A `no` form of the running config, deleted by the positive command.
        "- interface eth0.102 > no ip address 10.17.2.1/30",
        "+ interface eth0.102 > description OPB uplink v2",
        "+ router ospf",
        "+ router ospf > ospf router-id 10.17.0.1",
        "+ no ipv6 forwarding",
    ]
    assert touched_stanzas(FRR_RELOAD) == {
        "router bgp 65017",
        "ip route 10.99.0.0/16 Null0",
        "interface eth0.102",
        "router ospf",
        "no ipv6 forwarding",
    }
    assert touched_tenants(FRR_RELOAD, TENANTS) == ("OPERATOR-B", "OPERATOR-C")


def test_plain_list_with_sign_before_indentation() -> None:
    # NAPALM IOS merge diff: every candidate line prefixed with "+".
    diff = "+interface eth0.101\n+ description OPA uplink v2\n-hostname old\n"
    lines = changed_lines(diff)
    assert signed(lines) == [
        "+ interface eth0.101",
        "+ interface eth0.101 > description OPA uplink v2",
        "- hostname old",
    ]
    assert touched_tenants(diff, TENANTS) == ("OPERATOR-A",)


def test_plain_list_with_separator_blank_and_context_lines() -> None:
    separated = "+ interface eth0.102\n+  shutdown\n- ntp server 10.0.0.1\n"
    assert signed(changed_lines(separated)) == [
        "+ interface eth0.102",
        "+ interface eth0.102 > shutdown",
        "- ntp server 10.0.0.1",
    ]
    # IOS `show archive config differences`: unsigned context, sign after the indent.
    archive = (
        "!Contextual Config Diffs:\n"
        "interface eth0.102\n"
        " +description NEW\n"
        " -description OLD\n"
        "+ntp server 10.0.0.2\n"
    )
    assert signed(changed_lines(archive)) == [
        "+ interface eth0.102 > description NEW",
        "- interface eth0.102 > description OLD",
        "+ ntp server 10.0.0.2",
    ]


def test_tenants_match_stanza_headers_and_lines_and_are_sorted() -> None:
    candidate = RUNNING.replace(" ip address 10.17.1.1/30\n", " ip address 10.17.1.5/30\n")
    candidate = candidate.replace(" neighbor 10.17.2.2 remote-as 65102\n", "")
    diff = unified(RUNNING, candidate)
    assert touched_tenants(diff, TENANTS) == ("OPERATOR-A", "OPERATOR-B")
    assert touched_tenants(diff, {}) == ()
    assert touched_tenants("", TENANTS) == ()


def test_bad_tenant_regex_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError) as caught:
        touched_tenants("+x\n", {"OPERATOR-B": ["ok", "(unclosed"]})
    assert caught.value.field == "tenant_patterns.OPERATOR-B.1"
