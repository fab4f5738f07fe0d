"""The reference model of the contract's aggregation: snapshot, tally, early and final verdicts."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.model.rules import (
    DEFAULT_MAX_LEAD,
    AggregationRule,
    ProposalState,
    ResourceSetPolicy,
    Snapshot,
    Tally,
    VoteType,
    early_verdict,
    final_verdict,
    passes,
    shortfalls,
    vote_outcome,
    window_error,
)

A, R, S = VoteType.Approve, VoteType.Reject, VoteType.Abstain
APPROVED, REJECTED = ProposalState.Approved, ProposalState.Rejected
INTERFACE = Path(__file__).parents[1] / "nornir_coopchain/chain/contracts/ICoopChain.sol"


def policy(rule: AggregationRule, eligible: int, **fields: object) -> ResourceSetPolicy:
    base: dict[str, object] = {
        "rule": rule,
        "eligible_mask": eligible,
        "voting_period": 3600,
        "max_window": 86_400,
    }
    return ResourceSetPolicy.model_validate({**base, **fields})


def snap(
    rule: AggregationRule,
    weights: Sequence[int],
    *,
    proposer: int = 0,
    affected: int = 0,
    **fields: object,
) -> Snapshot:
    """A snapshot where everyone is eligible unless ``eligible_mask`` says otherwise."""
    fields.setdefault("eligible_mask", (1 << len(weights)) - 1)
    eligible = fields.pop("eligible_mask")
    return Snapshot.take(policy(rule, eligible, **fields), weights, proposer, affected)  # type: ignore[arg-type]


def cast_all(snapshot: Snapshot, votes: Sequence[tuple[int, VoteType]]) -> Tally:
    tally = snapshot.tally()
    for member, vote in votes:
        tally = tally.cast(member, vote)
    return tally


def verdicts(snapshot: Snapshot, votes: Sequence[tuple[int, VoteType]]) -> list[object]:
    """early_verdict after each vote, then the final verdict."""
    tally, seen = snapshot.tally(), []
    for member, vote in votes:
        tally = tally.cast(member, vote)
        seen.append(early_verdict(snapshot, tally))
    return [*seen, final_verdict(snapshot, tally)]


# ------------------------------------------------------------------ enums and the interface


def _solidity_enum(name: str) -> list[str]:
    body = re.search(rf"enum {name} \{{(.*?)\}}", INTERFACE.read_text(), re.S)
    assert body is not None
    return [line.split("//")[0].strip(" ,") for line in body.group(1).splitlines() if line.strip()]


@pytest.mark.parametrize("enum", [ProposalState, AggregationRule, VoteType])
def test_enums_match_the_solidity_interface(enum: type[ProposalState]) -> None:
    names = [member.name if member.name != "NONE" else "None" for member in enum]
    assert names == _solidity_enum(enum.__name__)
    assert [int(member) for member in enum] == list(range(len(names)))


# ------------------------------------------------------------------ policy and snapshot


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"eligible_mask": 0}, "eligibleMask is empty"),
        ({"eligible_mask": 0b011, "veto_mask": 0b100}, "vetoMask"),
        ({"rule": AggregationRule.Supermajority, "threshold_bps": 0}, "thresholdBps"),
        ({"rule": AggregationRule.WeightedThreshold, "threshold_bps": 10_001}, "thresholdBps"),
        ({"quorum_bps": 10_001}, "quorum_bps"),
        ({"voting_period": 0}, "voting_period"),
        ({"max_window": 0}, "max_window"),
        ({"max_lead": 0}, "max_lead"),
        ({"eligible_mask": 2**32}, "eligible_mask"),
    ],
)
def test_policy_validation_mirrors_contract(fields: dict[str, object], message: str) -> None:
    base = {
        "rule": AggregationRule.SimpleMajority,
        "eligible_mask": 0b111,
        "voting_period": 3600,
        "max_window": 86_400,
    }
    with pytest.raises(ValidationError, match=message):
        ResourceSetPolicy.model_validate({**base, **fields})


def test_policy_accepts_any_threshold_for_rules_without_one() -> None:
    assert policy(AggregationRule.Unanimous, 1, threshold_bps=0).threshold_bps == 0
    assert policy(AggregationRule.SimpleMajority, 1, threshold_bps=65_535).threshold_bps == 65_535


def test_snapshot_derivation() -> None:
    s = snap(
        AggregationRule.WeightedThreshold,
        [5, 0, 3, 7, 2],
        proposer=4,
        threshold_bps=5000,
        eligible_mask=0b11111,
        veto_mask=0b10011,
        affected=0b01110,
        affected_must_approve=True,
    )
    assert s.electorate_mask == 0b01101  # not weight 0 (1), not the proposer (4)
    assert s.voters() == (0, 2, 3)
    assert s.units == (5, 0, 3, 7, 0)
    assert s.total_units == 15
    assert s.veto_mask == 0b00001
    assert s.required_mask == 0b01100
    counted = snap(
        AggregationRule.Supermajority, [5, 9, 3], threshold_bps=5000, proposer_votes=True
    )
    assert counted.units == (1, 1, 1)
    assert counted.total_units == 3
    assert counted.required_mask == 0
    assert snap(AggregationRule.Unanimous, [1, 1], affected=0b10).required_mask == 0


def test_snapshot_rejects_what_the_contract_rejects() -> None:
    p = policy(AggregationRule.SimpleMajority, 0b101)
    with pytest.raises(ConfigError, match="eligibleMask"):
        Snapshot.take(p, [1, 1], 0)
    with pytest.raises(ConfigError, match="affectedMask"):
        Snapshot.take(p, [1, 1, 1], 0, affected_mask=0b010)
    with pytest.raises(ConfigError, match="proposer"):
        Snapshot.take(p, [1, 1, 1], 3)
    with pytest.raises(ConfigError, match="weights"):
        Snapshot.take(p, [1, 1, 65_536], 0)
    with pytest.raises(ConfigError, match="32 members"):
        Snapshot.take(p, [1] * 33, 0)


def test_tally_cast_rules() -> None:
    s = snap(AggregationRule.WeightedThreshold, [4, 3, 2], threshold_bps=5000)
    tally = s.tally().cast(1, A).cast(2, 2)  # type: ignore[arg-type]
    assert (tally.approve, tally.reject, tally.abstain, tally.voted_mask) == (3, 0, 2, 0b110)
    assert tally.choices == ((1, A), (2, S))
    assert tally.choice(2) is S
    assert tally.choice(0) is None
    assert tally.remaining_units == 0
    with pytest.raises(ConfigError, match="not in the electorate"):
        tally.cast(0, A)  # the proposer
    with pytest.raises(ConfigError, match="already voted"):
        tally.cast(1, R)
    with pytest.raises(ConfigError, match="not in the electorate"):
        tally.cast(7, A)
    other = snap(AggregationRule.SimpleMajority, [1, 1, 1])
    with pytest.raises(ValueError, match="another snapshot"):
        passes(other, tally)


# ------------------------------------------------------------------ each rule's edges


def test_unanimous() -> None:
    s = snap(AggregationRule.Unanimous, [1, 1, 1, 1])  # electorate 1, 2, 3
    assert verdicts(s, [(1, A), (2, A), (3, A)]) == [None, None, APPROVED, APPROVED]
    assert verdicts(s, [(1, A), (2, S), (3, S)]) == [None, None, APPROVED, APPROVED]
    assert verdicts(s, [(1, S), (2, S), (3, S)]) == [None, None, REJECTED, REJECTED]
    assert verdicts(s, [(1, A), (2, R)]) == [None, REJECTED, REJECTED]
    assert verdicts(s, [(1, A), (2, A)]) == [None, None, REJECTED]  # one never voted


def test_simple_majority_tie_fails() -> None:
    s = snap(AggregationRule.SimpleMajority, [1, 1, 1, 1, 1])  # electorate 1..4
    assert verdicts(s, [(1, A), (2, R), (3, A), (4, R)])[-1] == REJECTED
    assert verdicts(s, [(1, A), (2, R), (3, A), (4, S)]) == [None, None, None, APPROVED, APPROVED]
    assert verdicts(s, [(1, A), (2, A), (3, A)]) == [None, None, APPROVED, APPROVED]
    # Two of four reject: approvals can at best tie, so rejected at once.
    assert verdicts(s, [(1, R), (2, R)]) == [None, REJECTED, REJECTED]


def test_supermajority_threshold_exactly_met() -> None:
    s = snap(AggregationRule.Supermajority, [1] * 6, threshold_bps=6000)  # electorate 1..5
    # 3 of 5 = 6000 bps exactly: passes.
    assert verdicts(s, [(1, A), (2, A), (3, A), (4, R), (5, R)])[-2:] == [APPROVED, APPROVED]
    # Abstentions are neutral: 3 of 4 non-abstaining (7500) passes; 1 approve vs 1 reject fails.
    assert final_verdict(s, cast_all(s, [(1, A), (2, A), (3, A), (4, R), (5, S)])) == APPROVED
    assert final_verdict(s, cast_all(s, [(1, A), (2, R), (3, S)])) == REJECTED
    assert final_verdict(s, cast_all(s, [(1, S), (2, S)])) == REJECTED  # A > 0 needed
    # 3 approve, 3 cast: approved at once, since 3 / (3 + 2) still meets 6000 bps.
    assert early_verdict(s, cast_all(s, [(1, A), (2, A), (3, A)])) == APPROVED
    assert early_verdict(s, cast_all(s, [(1, A), (2, A), (3, R)])) is None


def test_weighted_threshold_exactly_met() -> None:
    # The proposer (member 0) is not in the electorate: T = 3 + 2 + 5 = 10.
    s = snap(AggregationRule.WeightedThreshold, [1, 3, 2, 5], threshold_bps=5000)
    assert s.total_units == 10
    assert verdicts(s, [(3, A)]) == [APPROVED, APPROVED]  # 5 of 10
    assert verdicts(s, [(1, A), (2, A)]) == [None, APPROVED, APPROVED]  # 3 + 2 of 10
    assert verdicts(s, [(1, A), (2, R)]) == [None, None, REJECTED]  # 3 of 10 at the deadline
    assert verdicts(s, [(1, A), (2, R), (3, S)]) == [None, None, REJECTED, REJECTED]


def test_quorum_exactly_met() -> None:
    s = snap(AggregationRule.SimpleMajority, [1] * 5, quorum_bps=5000)  # electorate 1..4
    assert verdicts(s, [(1, A), (2, S)]) == [None, None, APPROVED]  # 2 of 4 = 5000 bps
    assert verdicts(s, [(1, A)]) == [None, REJECTED]  # 1 of 4 misses the quorum
    # Approved at once only when the quorum is met and the rule survives all rejecting.
    assert verdicts(s, [(1, A), (2, A), (3, A)]) == [None, None, APPROVED, APPROVED]
    assert "quorum not met" in shortfalls(s, cast_all(s, [(1, A)]))[0]


def test_empty_electorate_never_passes() -> None:
    only_proposer = snap(
        AggregationRule.WeightedThreshold, [5, 3], threshold_bps=1, eligible_mask=1
    )
    removed = snap(AggregationRule.SimpleMajority, [4, 0, 0], proposer=0, eligible_mask=0b110)
    for s in (only_proposer, removed):
        assert s.total_units == 0
        assert early_verdict(s, s.tally()) == REJECTED
        assert final_verdict(s, s.tally()) == REJECTED
        assert shortfalls(s, s.tally()) == ("the electorate is empty",)


def test_veto() -> None:
    s = snap(AggregationRule.SimpleMajority, [1] * 5, veto_mask=0b00100)  # electorate 1..4
    assert verdicts(s, [(1, A), (3, A), (4, A), (2, R)]) == [None, None, None, REJECTED, REJECTED]
    assert verdicts(s, [(2, R)]) == [REJECTED, REJECTED]
    # Not approved before the veto holder has voted, however many approve.
    assert verdicts(s, [(1, A), (3, A), (4, A), (2, S)]) == [None, None, None, APPROVED, APPROVED]
    assert shortfalls(s, cast_all(s, [(1, A), (3, A), (2, R)])) == ("vetoed by members 2",)


def test_required_member_abstaining_rejects() -> None:
    s = snap(
        AggregationRule.SimpleMajority,
        [1] * 4,
        affected=0b1000,
        affected_must_approve=True,
    )
    assert verdicts(s, [(1, A), (2, A), (3, S)]) == [None, None, REJECTED, REJECTED]
    assert verdicts(s, [(3, R)]) == [REJECTED, REJECTED]
    assert verdicts(s, [(1, A), (2, A), (3, A)]) == [None, None, APPROVED, APPROVED]
    assert verdicts(s, [(1, A), (2, A)]) == [None, None, REJECTED]  # never approved
    assert shortfalls(s, cast_all(s, [(1, A), (2, A)])) == ("required members 3 did not approve",)


def test_proposer_votes_allows_a_single_member_to_decide() -> None:
    s = snap(AggregationRule.Unanimous, [1], proposer_votes=True)
    assert verdicts(s, [(0, A)]) == [APPROVED, APPROVED]


# ------------------------------------------------------------------ properties


ANY_BOOL = st.booleans()


@st.composite
def scenarios(
    draw: st.DrawFn, proposer_votes: st.SearchStrategy[bool] = ANY_BOOL
) -> tuple[Snapshot, list[tuple[int, VoteType]]]:
    """A random electorate and a complete random vote order (every voter, random choices)."""
    n = draw(st.integers(1, 8))
    weights = draw(st.lists(st.integers(0, 4) | st.integers(1, 65_535), min_size=n, max_size=n))
    full = (1 << n) - 1
    eligible = draw(st.integers(1, full))
    rules = policy(
        draw(st.sampled_from(AggregationRule)),
        eligible,
        threshold_bps=draw(
            st.sampled_from([1, 3333, 5000, 5001, 6667, 10_000]) | st.integers(1, 10_000)
        ),
        quorum_bps=draw(st.sampled_from([0, 5000, 10_000]) | st.integers(0, 10_000)),
        veto_mask=draw(st.integers(0, full)) & eligible & draw(st.integers(0, full)),
        proposer_votes=draw(proposer_votes),
        affected_must_approve=draw(st.booleans()),
    )
    affected = draw(st.integers(0, full)) & eligible & draw(st.integers(0, full))
    snapshot = Snapshot.take(rules, weights, draw(st.integers(0, n - 1)), affected)
    voters = draw(st.permutations(snapshot.voters()))
    vote = st.just(A) | st.sampled_from(VoteType)  # leaning to Approve, so approvals occur
    choices = draw(st.lists(vote, min_size=len(voters), max_size=len(voters)))
    return snapshot, list(zip(voters, choices, strict=True))


def completions(snapshot: Snapshot, tally: Tally, remaining: Sequence[int]) -> Iterator[object]:
    """The final verdict of every way the remaining voters may vote (or not vote)."""
    if not remaining:
        yield final_verdict(snapshot, tally)
        return
    first, rest = remaining[0], remaining[1:]
    yield from completions(snapshot, tally, rest)
    for vote in VoteType:
        yield from completions(snapshot, tally.cast(first, vote), rest)


@settings(max_examples=400, deadline=None)
@given(scenarios(), st.data())
def test_early_verdict_is_sound_and_exact(
    scenario: tuple[Snapshot, list[tuple[int, VoteType]]], data: st.DataObject
) -> None:
    """Early Approved/Rejected: every completion ends so. None: some completions differ."""
    snapshot, votes = scenario
    cast = data.draw(st.integers(max(0, len(votes) - 6), len(votes)), label="votes cast")
    tally = cast_all(snapshot, votes[:cast])
    early = early_verdict(snapshot, tally)
    outcomes = set(completions(snapshot, tally, [member for member, _ in votes[cast:]]))
    if early is None:
        assert outcomes == {APPROVED, REJECTED}
    else:
        assert outcomes == {early}


@settings(max_examples=250, deadline=None)
@given(scenarios())
def test_verdict_is_reached_once_everyone_voted(
    scenario: tuple[Snapshot, list[tuple[int, VoteType]]],
) -> None:
    """Complete: with every voter's vote in, the early verdict exists and is the final one."""
    snapshot, votes = scenario
    seen = verdicts(snapshot, votes)
    *early, final = seen
    last = early[-1] if early else early_verdict(snapshot, snapshot.tally())
    assert last is not None
    assert last == final
    reached = [v for v in early if v is not None]
    assert all(v == final for v in reached)  # once reached, it never changes
    assert passes(snapshot, cast_all(snapshot, votes)) == (final == APPROVED)
    assert (shortfalls(snapshot, cast_all(snapshot, votes)) == ()) == (final == APPROVED)


@settings(max_examples=150, deadline=None)
@given(scenarios(proposer_votes=st.just(False)), st.lists(st.sampled_from(VoteType), max_size=3))
def test_two_person_rule(
    scenario: tuple[Snapshot, list[tuple[int, VoteType]]], attempts: list[VoteType]
) -> None:
    """Without proposer_votes, the proposer's own votes are refused and approve nothing."""
    snapshot, _ = scenario
    proposer = snapshot.proposer_index
    assert not snapshot.electorate_mask >> proposer & 1
    tally = snapshot.tally()
    for vote in attempts:
        with pytest.raises(ConfigError, match="not in the electorate"):
            tally = tally.cast(proposer, vote)
    assert early_verdict(snapshot, tally) != APPROVED
    assert final_verdict(snapshot, tally) == REJECTED


def test_a_batched_ballot_of_a_member_who_voted_is_skipped_in_any_state() -> None:
    snapshot = snap(AggregationRule.SimpleMajority, [1, 1, 1, 1])
    tally = snapshot.tally().cast(1, A)
    for state in (ProposalState.Active, APPROVED, REJECTED):
        assert vote_outcome(tally, state, 1, batched=True) == "skipped"
    assert vote_outcome(tally, ProposalState.Active, 1) == "AlreadyVoted"
    assert vote_outcome(tally, APPROVED, 1) == "UnexpectedProposalState"
    assert vote_outcome(tally, ProposalState.Active, 0, batched=True) == "NotEligible"
    assert vote_outcome(tally, ProposalState.Active, 2, batched=True) == "counted"
    assert vote_outcome(tally, APPROVED, 2, batched=True) == "UnexpectedProposalState"


@given(
    start=st.integers(-(10**6), 10**8), length=st.integers(-10, 10**6), lead=st.integers(1, 10**7)
)
def test_window_error_bounds_length_end_and_lead(start: int, length: int, lead: int) -> None:
    rules = policy(AggregationRule.Unanimous, 1, max_lead=lead)
    now = 10**9
    error = window_error(rules, now, now + start, now + start + length)
    if length <= 0 or start + length <= 0 or length > 86_400:
        assert error == "InvalidWindow"
    elif start > lead:
        assert error == "WindowTooFarAhead"
    else:
        assert error is None


def test_the_default_lead_is_thirty_days() -> None:
    rules = policy(AggregationRule.Unanimous, 1)
    assert rules.max_lead == DEFAULT_MAX_LEAD == 30 * 86_400
    assert window_error(rules, 0, 30 * 86_400, 30 * 86_400 + 60) is None
    assert window_error(rules, 0, 30 * 86_400 + 1, 30 * 86_400 + 60) == "WindowTooFarAhead"
