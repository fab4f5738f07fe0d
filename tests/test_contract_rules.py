"""The contract's aggregation against the pure-Python reference model (docs/contract.md).

Random electorates, rules, windows and vote sequences; a window the model refuses must be
refused with the model's error; after every vote the contract's state and tally must equal
the model's, invalid votes must revert with the model's error (a batched ballot whose member
already voted is skipped), and a proposal still open at the deadline must settle on the
model's final verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from coop_helpers import MAX_WINDOW, SITE, VOTING_PERIOD, deploy, policy, propose
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nornir_coopchain.chain import errors
from nornir_coopchain.chain.accounts import dev_accounts
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import TxOutcome
from nornir_coopchain.chain.devchain import DevChain
from nornir_coopchain.chain.models import BallotSkipped, SignedBallot, VerdictReached
from nornir_coopchain.model.rules import (
    AggregationRule,
    ProposalState,
    ResourceSetPolicy,
    Snapshot,
    VoteType,
    early_verdict,
    final_verdict,
    vote_outcome,
    window_error,
)

MAX_LEAD = 7 * 86_400


@dataclass(frozen=True)
class Scenario:
    weights: list[int]
    policy: ResourceSetPolicy
    proposer: int
    affected_mask: int
    votes: list[tuple[int, VoteType, bool]]  # member, vote, submitted as a signed ballot
    window: tuple[int, int]  # start and end, relative to the chain's time at the proposal


def _subset(draw: st.DrawFn, mask: int) -> int:
    return draw(st.integers(0, mask)) & mask


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    members = draw(st.integers(1, 6))
    everyone = (1 << members) - 1
    rule = draw(st.sampled_from(list(AggregationRule)))
    needs_threshold = rule in (AggregationRule.Supermajority, AggregationRule.WeightedThreshold)
    eligible = draw(st.integers(1, everyone))
    rules = policy(
        rule,
        eligible_mask=eligible,
        threshold_bps=draw(st.integers(1, 10000)) if needs_threshold else 0,
        quorum_bps=draw(st.sampled_from([0, 2500, 5000, 6667, 10000])),
        veto_mask=_subset(draw, eligible),
        proposer_votes=draw(st.booleans()),
        affected_must_approve=draw(st.booleans()),
        max_lead=MAX_LEAD,
    )
    # Mostly a window the contract accepts; now and then one too long, over, or too far ahead
    # (two minutes off each bound: the proposal's block time is a few seconds after "now").
    start = draw(st.sampled_from([0, 0, 0, 0, MAX_LEAD - 120, MAX_LEAD + 120, -3600]))
    length = draw(st.sampled_from([3600, 3600, 3600, MAX_WINDOW + 120]))
    votes = draw(
        st.lists(
            st.tuples(st.integers(0, members - 1), st.sampled_from(list(VoteType)), st.booleans()),
            max_size=members + 2,
        )
    )
    return Scenario(
        weights=draw(st.lists(st.integers(1, 1000), min_size=members, max_size=members)),
        policy=rules,
        proposer=draw(st.integers(0, members - 1)),
        affected_mask=_subset(draw, eligible),
        votes=votes,
        window=(start, start + length),
    )


def _vote(
    chain: ChainClient,
    coop: object,
    voter: LocalAccount,
    relayer: LocalAccount,
    proposal_id: int,
    vote: VoteType,
    by_ballot: bool,
) -> TxOutcome:
    if by_ballot:
        ballot: SignedBallot = coop.sign_ballot(voter, proposal_id, vote)  # type: ignore[attr-defined]
        return coop.cast_votes(relayer, [ballot])  # type: ignore[attr-defined]
    return coop.cast_vote(voter, proposal_id, vote)  # type: ignore[attr-defined]


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_contract_matches_reference_model(chain: ChainClient, scenario: Scenario) -> None:
    people = dev_accounts(chain, len(scenario.weights) + 1)
    members, relayer = people[:-1], people[-1]
    coop = deploy(chain, members, {SITE: scenario.policy}, scenario.weights)
    now = chain.now()
    window = (now + scenario.window[0], now + scenario.window[1])
    refused = window_error(scenario.policy, now, *window)
    if refused is not None:
        with pytest.raises(getattr(errors, refused)):
            propose(coop, members[scenario.proposer], window=window)
        return
    created = propose(
        coop, members[scenario.proposer], affected_mask=scenario.affected_mask, window=window
    )
    snapshot = Snapshot.take(
        scenario.policy, scenario.weights, scenario.proposer, scenario.affected_mask
    )
    info = coop.proposal(created.proposal_id)
    assert (info.electorate_mask, info.total_units) == (
        snapshot.electorate_mask,
        snapshot.total_units,
    )
    assert (info.veto_mask, info.required_mask) == (snapshot.veto_mask, snapshot.required_mask)
    assert (info.rule, info.threshold_bps, info.quorum_bps) == (
        snapshot.rule,
        snapshot.threshold_bps,
        snapshot.quorum_bps,
    )

    tally = snapshot.tally()
    state = ProposalState.Active
    for member, vote, by_ballot in scenario.votes:
        outcome = vote_outcome(tally, state, member, batched=by_ballot)
        if outcome not in ("counted", "skipped"):
            with pytest.raises(getattr(errors, outcome)):
                _vote(chain, coop, members[member], relayer, created.proposal_id, vote, by_ballot)
            continue
        sent = _vote(chain, coop, members[member], relayer, created.proposal_id, vote, by_ballot)
        skipped = sent.first(BallotSkipped)
        assert (skipped is not None) == (outcome == "skipped")
        if skipped is not None:
            assert coop.proposal(created.proposal_id).voted_mask == tally.voted_mask
            continue
        tally = tally.cast(member, vote)
        state = early_verdict(snapshot, tally) or ProposalState.Active
        info = coop.proposal(created.proposal_id)
        assert info.state is state
        assert (info.approve_units, info.reject_units, info.abstain_units) == (
            tally.approve,
            tally.reject,
            tally.abstain,
        )
        assert info.voted_mask == tally.voted_mask

    if state is ProposalState.Active:
        DevChain(chain).increase_time(VOTING_PERIOD + 1)
        expected = final_verdict(snapshot, tally)
        assert coop.state(created.proposal_id) is expected
        verdict = coop.finalize(relayer, created.proposal_id).first(VerdictReached)
        assert verdict is not None
        assert verdict.outcome is expected
        assert (verdict.approve_units, verdict.reject_units) == (tally.approve, tally.reject)
