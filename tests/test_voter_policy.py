"""A member's voting policy: loading, each rule kind, first match, default, errors."""

from __future__ import annotations

import calendar
import difflib
from pathlib import Path

import pytest

from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.model.content import ChangeWindow, DeviceChange, ProposalContent
from nornir_coopchain.model.rules import VoteType
from nornir_coopchain.voter.policy import DailyHours, Decision, VoterPolicy, WindowRule, decide

POLICY = r"""
operator: OPERATOR-B            # whose vote this is
my_stanzas:                     # regexes for this tenant's stanzas on shared devices
  - '^interface eth0\.102'
  - '^router bgp \d+ vrf OPB'
  - 'neighbor 10\.17\.2\.'
rules:                          # first match decides
  - name: night-window-only
    reject_unless_window_within: {start: "22:00", end: "06:00", timezone: "UTC"}
  - name: hands-off-my-stanzas
    reject_if_touches_my_stanzas: true
  - name: small-changes
    approve_if: {max_devices: 10, resource_sets: [TOWER-017]}
default: defer
"""

RUNNING = """\
interface eth0.101
 description OPA uplink
!
interface eth0.102
 description OPB uplink
!
router bgp 65017
 neighbor 10.17.1.2 remote-as 65101
 neighbor 10.17.2.2 remote-as 65102
!
router bgp 65017 vrf OPB
 neighbor 10.17.2.6 remote-as 65102
!
"""
OPA_CHANGE = RUNNING.replace(" description OPA uplink\n", " description OPA uplink v2\n")
OPB_CHANGE = RUNNING.replace(" description OPB uplink\n", " description OPB uplink v2\n")


def at(day: int, hhmm: str) -> int:
    """Unix time of 2024-05-<day> HH:MM UTC."""
    hours, minutes = (int(part) for part in hhmm.split(":"))
    return calendar.timegm((2024, 5, day, hours, minutes, 0))


NIGHT = (at(1, "23:00"), at(2, "01:30"))


def device(
    host: str, candidate: str, platform: str = "frr", context: int = 10, **extra: object
) -> DeviceChange:
    diff = "".join(
        difflib.unified_diff(
            RUNNING.splitlines(keepends=True),
            candidate.splitlines(keepends=True),
            "running",
            "candidate",
            n=context,
        )
    )
    return DeviceChange.from_texts(
        host=host,
        platform=platform,
        running=RUNNING,
        candidate=candidate,
        diff=diff,
        **extra,  # type: ignore[arg-type]
    )


def proposal(
    *devices: DeviceChange,
    window: tuple[int, int] = NIGHT,
    resource_set: str = "TOWER-017",
) -> ProposalContent:
    return ProposalContent(
        resource_set=resource_set,
        title="uplink descriptions",
        window=ChangeWindow(start=window[0], end=window[1]),
        devices=devices or (device("site17-r1", OPA_CHANGE),),
        created_at=at(1, "12:00"),
    )


def policy(text: str = POLICY) -> VoterPolicy:
    return VoterPolicy.from_yaml(text, source="policy.yaml")


def with_rules(rules: str, default: str = "defer") -> VoterPolicy:
    head = POLICY.split("rules:")[0]
    return policy(f"{head}rules:\n{rules}\ndefault: {default}\n")


def test_load_the_documented_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    loaded = VoterPolicy.load(path)
    assert loaded.operator == "OPERATOR-B"
    assert [rule.name for rule in loaded.rules] == [
        "night-window-only",
        "hands-off-my-stanzas",
        "small-changes",
    ]
    assert loaded.default == "defer"


def test_small_untouched_change_in_the_night_is_approved() -> None:
    decision = decide(policy(), proposal())
    assert decision == Decision(
        vote=VoteType.Approve,
        rule="small-changes",
        reason="Rule 'small-changes' approves: 1 device(s), at most the 10 allowed; "
        "resource set TOWER-017 is one of TOWER-017.",
    )
    assert decide(policy(), proposal()) == decision  # deterministic


def test_a_diff_touching_my_interface_is_rejected_naming_host_and_line() -> None:
    content = proposal(device("site17-r1", OPA_CHANGE), device("site17-r2", OPB_CHANGE))
    decision = decide(policy(), content)
    assert decision.vote is VoteType.Reject
    assert decision.rule == "hands-off-my-stanzas"
    assert "site17-r2" in decision.reason
    assert "interface eth0.102 > description OPB uplink" in decision.reason
    assert "'^interface eth0\\\\.102'" in decision.reason


def test_my_vrf_stanza_and_my_neighbor_lines_count_as_mine() -> None:
    vrf = RUNNING.replace(" neighbor 10.17.2.6 remote-as 65102\n", "")
    decision = decide(policy(), proposal(device("site17-r1", vrf)))
    assert decision.rule == "hands-off-my-stanzas"
    assert "router bgp 65017 vrf OPB > neighbor 10.17.2.6" in decision.reason
    # A neighbor line in the shared `router bgp` stanza, seen with no context at all.
    shared = RUNNING.replace(" neighbor 10.17.2.2 remote-as 65102\n", "")
    decision = decide(policy(), proposal(device("site17-r1", shared, context=0)))
    assert decision.rule == "hands-off-my-stanzas"


def test_a_declared_tenant_counts_as_touching() -> None:
    declared = device("site17-r1", OPA_CHANGE, tenants=("OPERATOR-B",))
    decision = decide(policy(), proposal(declared))
    assert decision.vote is VoteType.Reject
    assert "site17-r1 lists this operator among the change's tenants" in decision.reason


@pytest.mark.parametrize(
    ("window", "inside"),
    [
        ((at(1, "23:00"), at(2, "01:30")), True),  # across midnight
        ((at(1, "22:00"), at(2, "06:00")), True),  # exactly the allowed hours
        ((at(2, "02:00"), at(2, "05:00")), True),  # the morning part
        ((at(1, "21:30"), at(1, "23:00")), False),  # starts before 22:00
        ((at(2, "05:00"), at(2, "06:30")), False),  # ends after 06:00
        ((at(1, "23:00"), at(3, "01:00")), False),  # spans a whole day in between
        ((at(1, "12:00"), at(1, "13:00")), False),
    ],
)
def test_window_across_midnight(window: tuple[int, int], inside: bool) -> None:
    decision = decide(policy(), proposal(window=window))
    if inside:
        assert decision.rule == "small-changes"
    else:
        assert decision.vote is VoteType.Reject
        assert decision.rule == "night-window-only"
        assert "is not within the daily hours 22:00-06:00 UTC" in decision.reason


def test_daily_hours_edge_cases() -> None:
    all_day = DailyHours(start="00:00", end="24:00")
    assert all_day.contains(ChangeWindow(start=at(1, "10:00"), end=at(9, "10:00")))
    office = DailyHours(start="08:00", end="18:00")
    assert office.contains(ChangeWindow(start=at(1, "08:00"), end=at(1, "18:00")))
    assert not office.contains(ChangeWindow(start=at(1, "17:00"), end=at(2, "09:00")))


def test_window_in_another_time_zone() -> None:
    pytest.importorskip("zoneinfo").ZoneInfo("Europe/Paris")
    paris = DailyHours(start="22:00", end="06:00", timezone="Europe/Paris")
    # 21:30-23:00 UTC is 23:30-01:00 in Paris (CEST, UTC+2).
    assert paris.contains(ChangeWindow(start=at(1, "21:30"), end=at(1, "23:00")))
    # 04:30-05:00 UTC is 06:30-07:00 in Paris.
    assert not paris.contains(ChangeWindow(start=at(2, "04:30"), end=at(2, "05:00")))


def test_first_match_decides() -> None:
    both = proposal(device("site17-r2", OPB_CHANGE), window=(at(1, "12:00"), at(1, "13:00")))
    assert decide(policy(), both).rule == "night-window-only"
    swapped = with_rules(
        "  - name: hands-off\n    reject_if_touches_my_stanzas: true\n"
        "  - name: night\n    reject_unless_window_within: {start: '22:00', end: '06:00'}\n"
    )
    assert decide(swapped, both).rule == "hands-off"


def test_default_defer_says_so() -> None:
    decision = decide(policy(), proposal(resource_set="TOWER-099"))
    assert decision.vote is None
    assert decision.rule is None
    assert decision.reason == (
        "No rule matched; the default 'defer' defers to a human (no vote cast)."
    )
    abstain = with_rules("  []", default="abstain")
    assert decide(abstain, proposal()).vote is VoteType.Abstain


def test_defer_if_touches_my_stanzas() -> None:
    rules = with_rules("  - name: ask-me\n    defer_if_touches_my_stanzas: true\n")
    decision = decide(rules, proposal(device("site17-r2", OPB_CHANGE)))
    assert (decision.vote, decision.rule) == (None, "ask-me")
    assert decision.reason.startswith("Rule 'ask-me' defers to a human (no vote cast): site17-r2")
    assert decide(rules, proposal()).rule is None


def test_approve_if_untouched_needs_proof() -> None:
    rules = with_rules("  - name: not-mine\n    approve_if_untouched: true\n")
    decision = decide(rules, proposal())
    assert (decision.vote, decision.rule) == (VoteType.Approve, "not-mine")
    assert "no changed line on the 1 device(s) touches my stanzas" in decision.reason
    assert decide(rules, proposal(device("site17-r2", OPB_CHANGE))).rule is None
    # Without context the description line's stanza is unknown: it could be mine.
    blind = proposal(device("site17-r1", OPA_CHANGE, context=0))
    assert decide(rules, blind).vote is None


def test_condition_rules() -> None:
    rules = with_rules(
        "  - name: frr-only\n    reject_unless: {platforms: [frr]}\n"
        "  - name: not-too-big\n    defer_unless: {max_devices: 1}\n"
        "  - name: not-my-set\n    abstain_if: {resource_sets: [TOWER-099]}\n"
        "  - name: night-and-clean\n"
        "    approve_if: {window_within: {start: '22:00', end: '06:00'}, "
        "touches_my_stanzas: false}\n"
    )
    eos = proposal(device("site17-r1", OPA_CHANGE), device("site17-r9", OPA_CHANGE, "eos"))
    decision = decide(rules, eos)
    assert (decision.vote, decision.rule) == (VoteType.Reject, "frr-only")
    assert "site17-r9 runs eos, not one of frr" in decision.reason

    two = proposal(device("site17-r1", OPA_CHANGE), device("site17-r2", OPA_CHANGE))
    decision = decide(rules, two)
    assert (decision.vote, decision.rule) == (None, "not-too-big")
    assert "2 device(s), more than the 1 allowed" in decision.reason

    other_set = proposal(resource_set="TOWER-099")
    assert decide(rules, other_set).vote is VoteType.Abstain
    assert decide(rules, proposal()).rule == "night-and-clean"
    assert decide(rules, proposal(device("site17-r2", OPB_CHANGE))).rule is None
    day = proposal(window=(at(1, "12:00"), at(1, "13:00")))
    assert decide(rules, day).rule is None


def test_unquoted_times_are_read_back_from_yaml_base_60() -> None:
    rules = with_rules("  - name: n\n    reject_unless_window_within: {start: 22:00, end: 6:00}\n")
    (rule,) = rules.rules
    assert isinstance(rule, WindowRule)
    assert rule.reject_unless_window_within == DailyHours(start="22:00", end="06:00")


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("operator: [\n", None, "invalid YAML"),
        ("- just a list\n", None, "mapping"),
        ("my_stanzas: []\n", "operator", "required"),
        ("operator: B\nmy_stanzas: ['(unclosed']\n", "my_stanzas.0", "not a valid regex"),
        (
            "operator: B\nrules:\n  - name: r\n    reject_if_raining: true\n",
            "rules.0.reject_if_raining",
            "unknown rule kind 'reject_if_raining'",
        ),
        (
            "operator: B\nrules:\n  - name: r\n    approve_if: {max_devices: 1}\n"
            "    reject_if: {max_devices: 1}\n",
            "rules.0",
            "one kind",
        ),
        (
            "operator: B\nrules:\n  - name: r\n    approve_if: {max_devices: 1, colour: red}\n",
            "rules.0.approve_if.colour",
            "Extra inputs",
        ),
        ("operator: B\nrules:\n  - name: r\n    approve_if: {}\n", "rules.0.approve_if", "one"),
        (
            "operator: B\nrules:\n  - name: r\n"
            "    reject_unless_window_within: {start: '25:00', end: '06:00'}\n",
            "rules.0.reject_unless_window_within.start",
            "HH:MM",
        ),
        (
            "operator: B\nrules:\n  - name: r\n"
            "    reject_unless_window_within: {start: '22:00', end: '06:00', timezone: Mars}\n",
            "rules.0.reject_unless_window_within.timezone",
            "unknown time zone",
        ),
        (
            "operator: B\nrules:\n  - name: r\n"
            "    reject_unless_window_within: {start: '06:00', end: '06:00'}\n",
            "rules.0.reject_unless_window_within",
            "00:00-24:00",
        ),
        ("operator: B\ndefault: maybe\n", "default", "approve"),
        (
            "operator: B\nrules:\n  - {name: a, approve_if_untouched: true}\n"
            "  - {name: a, approve_if_untouched: true}\n",
            "rules",
            "duplicate rule names: a",
        ),
    ],
)
def test_bad_policies_name_file_and_field(text: str, field: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        policy(text)
    assert caught.value.source == "policy.yaml"
    assert caught.value.field == field


def test_unreadable_policy_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="cannot read") as caught:
        VoterPolicy.load(missing)
    assert caught.value.source == str(missing)
