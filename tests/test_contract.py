"""The CoopChain contract through its typed bindings: signatures, votes, windows, records,
governance and events, each on the embedded chain and on anvil."""

from __future__ import annotations

import pytest
from coop_helpers import (
    GOVERNANCE,
    GRACE,
    SITE,
    VOTING_PERIOD,
    deploy,
    policy,
    propose,
    request_for,
)
from eth_account.signers.local import LocalAccount

from nornir_coopchain.chain import errors
from nornir_coopchain.chain.accounts import dev_accounts
from nornir_coopchain.chain.artifacts import load_artifact
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.devchain import DevChain
from nornir_coopchain.chain.eip712 import sign_ballot, sign_proposal
from nornir_coopchain.chain.models import (
    BallotMessage,
    BallotSkipped,
    EmergencyDeclared,
    GovernanceExecuted,
    MemberAdded,
    MemberKeyRotated,
    ProposalCanceled,
    SignedBallot,
    VerdictReached,
    VerificationRecorded,
    VoteCast,
)
from nornir_coopchain.model.rules import AggregationRule, ProposalState, VoteType

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
EVIDENCE = "0x" + "ab" * 32


@pytest.fixture
def people(chain: ChainClient) -> list[LocalAccount]:
    """Members OP-0..OP-4 are people[0..4]; people[5..6] are outsiders; people[7] relays."""
    return dev_accounts(chain, 8)


@pytest.fixture
def coop(chain: ChainClient, people: list[LocalAccount]) -> CoopChain:
    """Five members; the site decides by simple majority with a 50 % quorum."""
    site = policy(AggregationRule.SimpleMajority, quorum_bps=5000)
    return deploy(chain, people[:5], {SITE: site})


def _approve(coop: CoopChain, people: list[LocalAccount], proposal_id: int) -> None:
    for voter in people[1:4]:
        if coop.state(proposal_id) is ProposalState.Active:
            coop.cast_vote(voter, proposal_id, VoteType.Approve)
    assert coop.state(proposal_id) is ProposalState.Approved


# ---------------------------------------------------------------- proposals and signatures


def test_proposal_relayed_by_anyone_and_content_retrievable(
    coop: CoopChain, people: list[LocalAccount]
) -> None:
    content = b'{"devices":["r1","r2"]}'
    created = propose(coop, people[0], relayer=people[7], content=content)
    assert created.proposal_id == coop.proposal_count() == 1
    assert created.proposer == people[0].address
    assert created.operator_id == "OP-0"
    assert created.electorate_mask == 0b11110  # the proposer is not in its own electorate
    assert coop.fetch_content(created.proposal_id) == content
    assert coop.proposal_nonce(people[0].address) == 1


def test_the_signed_request_is_read_back_from_the_calldata(
    coop: CoopChain, people: list[LocalAccount]
) -> None:
    """What the proposer declared, including the affectedMask the contract does not keep."""
    request = request_for(coop, people[0], affected_mask=0b110, executor=people[3].address)
    coop.propose(people[7], request, coop.sign_request(people[0], request), b'{"change":"test"}')
    assert coop.fetch_request(1) == request


def test_proposal_signature_replays_are_refused(
    chain: ChainClient, coop: CoopChain, people: list[LocalAccount]
) -> None:
    content = b"{}"
    request = request_for(coop, people[0], content=content)
    signature = coop.sign_request(people[0], request)
    coop.propose(people[7], request, signature, content)
    with pytest.raises(errors.InvalidNonce):
        coop.propose(people[7], request, signature, content)

    other = deploy(chain, people[:5], {SITE: policy()})
    moved = request_for(other, people[0], content=content)
    with pytest.raises(errors.InvalidSignature):
        other.propose(
            people[7], moved, sign_proposal(people[0], chain.chain_id, coop.address, moved), content
        )
    with pytest.raises(errors.InvalidSignature):
        other.propose(
            people[7],
            moved,
            sign_proposal(people[0], chain.chain_id + 1, other.address, moved),
            content,
        )


def test_proposal_checks_content_members_and_window(
    coop: CoopChain, people: list[LocalAccount]
) -> None:
    request = request_for(coop, people[0], content=b"approved text")
    with pytest.raises(errors.ContentHashMismatch):
        coop.propose(people[0], request, coop.sign_request(people[0], request), b"other text")

    outsider = request_for(coop, people[5])
    with pytest.raises(errors.NotMember):
        coop.propose(
            people[5], outsider, coop.sign_request(people[5], outsider), b'{"change":"test"}'
        )

    now = coop.client.now()
    for window in ((now + 10, now + 10), (now - 100, now - 1), (now, now + 86400 + 1)):
        with pytest.raises(errors.InvalidWindow):
            propose(coop, people[0], window=window)
    with pytest.raises(errors.UnknownResourceSet):
        propose(coop, people[0], resource_set="NO-SUCH-SITE")


# ---------------------------------------------------------------- votes


def test_direct_votes_and_two_person_rule(coop: CoopChain, people: list[LocalAccount]) -> None:
    created = propose(coop, people[0])
    with pytest.raises(errors.NotEligible):
        coop.cast_vote(people[0], created.proposal_id, VoteType.Approve)
    with pytest.raises(errors.NotMember):
        coop.cast_vote(people[5], created.proposal_id, VoteType.Approve)
    cast = coop.cast_vote(people[1], created.proposal_id, VoteType.Approve).first(VoteCast)
    assert (cast.proposal_id, cast.voter, cast.support, cast.units) == (
        created.proposal_id,
        people[1].address,
        VoteType.Approve,
        1,
    )
    with pytest.raises(errors.AlreadyVoted):
        coop.cast_vote(people[1], created.proposal_id, VoteType.Reject)
    coop.cast_vote(people[2], created.proposal_id, VoteType.Approve)
    outcome = coop.cast_vote(people[3], created.proposal_id, VoteType.Approve)
    verdict = outcome.first(VerdictReached)
    assert verdict is not None
    assert (verdict.outcome, verdict.approve_units, verdict.reject_units) == (
        ProposalState.Approved,
        3,
        0,
    )
    with pytest.raises(errors.UnexpectedProposalState):
        coop.cast_vote(people[4], created.proposal_id, VoteType.Reject)


@pytest.mark.parametrize("rule", list(AggregationRule))
def test_a_proposer_cannot_approve_alone_under_any_rule(
    chain: ChainClient, people: list[LocalAccount], rule: AggregationRule
) -> None:
    threshold = (
        1 if rule in (AggregationRule.Supermajority, AggregationRule.WeightedThreshold) else 0
    )
    alone = policy(rule, eligible_mask=0b001, threshold_bps=threshold)
    coop = deploy(chain, people[:3], {SITE: alone})
    created = propose(coop, people[0])
    assert created.electorate_mask == 0
    with pytest.raises(errors.NotEligible):
        coop.cast_vote(people[0], created.proposal_id, VoteType.Approve)
    DevChain(chain).increase_time(VOTING_PERIOD + 1)
    assert coop.state(created.proposal_id) is ProposalState.Rejected
    # Only a resource set that opts in lets the proposer vote on its own proposal.
    opted_in = deploy(chain, people[:3], {SITE: alone.model_copy(update={"proposer_votes": True})})
    mine = propose(opted_in, people[0])
    opted_in.cast_vote(people[0], mine.proposal_id, VoteType.Approve)
    assert opted_in.state(mine.proposal_id) is ProposalState.Approved


def test_vote_after_deadline_is_refused_and_finalize_broadcasts(
    chain: ChainClient, coop: CoopChain, people: list[LocalAccount]
) -> None:
    created = propose(coop, people[0])
    coop.cast_vote(people[1], created.proposal_id, VoteType.Approve)
    coop.cast_vote(people[2], created.proposal_id, VoteType.Reject)
    DevChain(chain).increase_time(VOTING_PERIOD + 1)
    with pytest.raises(errors.VotingClosed):
        coop.cast_vote(people[3], created.proposal_id, VoteType.Approve)
    assert coop.state(created.proposal_id) is ProposalState.Rejected  # 1:1 is no majority
    verdict = coop.finalize(people[7], created.proposal_id).first(VerdictReached)
    assert verdict.outcome is ProposalState.Rejected
    assert coop.finalize(people[7], created.proposal_id).first(VerdictReached) is None


def test_ballots_in_one_batch(coop: CoopChain, people: list[LocalAccount]) -> None:
    first = propose(coop, people[0])
    second = propose(coop, people[0])
    ballots = [
        coop.sign_ballot(people[1], first.proposal_id, VoteType.Approve),
        coop.sign_ballot(people[2], first.proposal_id, VoteType.Abstain),
        coop.sign_ballot(people[1], second.proposal_id, VoteType.Reject),
    ]
    outcome = coop.cast_votes(people[7], ballots)
    votes = [event for event in outcome.events if isinstance(event, VoteCast)]
    assert [(v.proposal_id, v.voter, v.support) for v in votes] == [
        (first.proposal_id, people[1].address, VoteType.Approve),
        (first.proposal_id, people[2].address, VoteType.Abstain),
        (second.proposal_id, people[1].address, VoteType.Reject),
    ]
    info = coop.proposal(first.proposal_id)
    assert (info.approve_units, info.abstain_units, info.voted_mask) == (1, 1, 0b110)
    # A vote on one proposal never voids a signed ballot on another one.
    coop.cast_vote(people[3], first.proposal_id, VoteType.Approve)
    late = coop.sign_ballot(people[3], second.proposal_id, VoteType.Approve)
    coop.cast_votes(people[7], [late])
    assert coop.proposal(second.proposal_id).approve_units == 1
    with pytest.raises(errors.AlreadyVoted):  # a direct vote twice is still an error
        coop.cast_vote(people[3], second.proposal_id, VoteType.Approve)


def test_a_front_run_ballot_is_skipped_and_the_rest_of_the_batch_counts(
    coop: CoopChain, people: list[LocalAccount]
) -> None:
    pid = propose(coop, people[0]).proposal_id
    public = coop.sign_ballot(people[1], pid, VoteType.Approve)
    fresh = coop.sign_ballot(people[2], pid, VoteType.Abstain)
    coop.cast_votes(people[5], [public])  # someone submits the already public ballot first
    outcome = coop.cast_votes(people[7], [public, fresh])
    skipped = [e for e in outcome.events if isinstance(e, BallotSkipped)]
    assert [(e.proposal_id, e.voter) for e in skipped] == [(pid, people[1].address)]
    assert [e.voter for e in outcome.events if isinstance(e, VoteCast)] == [people[2].address]
    info = coop.proposal(pid)
    assert (info.approve_units, info.abstain_units, info.voted_mask) == (1, 1, 0b110)
    # A counted ballot is skipped even once its proposal is decided; forged ones still fail.
    coop.cast_vote(people[3], pid, VoteType.Approve)  # 2 approve of 3 voted: decided
    assert coop.state(pid) is ProposalState.Approved
    again = coop.cast_votes(people[7], [public])
    assert again.first(BallotSkipped) is not None
    assert again.first(VoteCast) is None
    forged = fresh.model_copy(update={"voter": people[3].address})
    with pytest.raises(errors.InvalidSignature):
        coop.cast_votes(people[7], [public, forged])


def test_out_of_range_support_gets_a_named_error(
    coop: CoopChain, people: list[LocalAccount]
) -> None:
    pid = propose(coop, people[0]).proposal_id
    for support in (3, 2**8, 2**255 + 1):  # out of range, and dirty high bits
        with pytest.raises(errors.InvalidSupport) as caught:
            coop._send(people[1], coop.contract.functions.castVote(pid, support))
        assert caught.value.args_by_name == {"support": support}
    ballot = coop.sign_ballot(people[1], pid, VoteType.Approve).as_tuple()
    with pytest.raises(errors.InvalidSupport):
        coop._send(people[7], coop.contract.functions.castVotes([(*ballot[:2], 2**8, ballot[3])]))
    assert coop.proposal(pid).voted_mask == 0


def test_ballot_forgeries_are_refused(
    chain: ChainClient, coop: CoopChain, people: list[LocalAccount]
) -> None:
    created = propose(coop, people[0])
    pid = created.proposal_id
    good = coop.sign_ballot(people[1], pid, VoteType.Approve)
    raw = bytes.fromhex(good.signature[2:])
    r, s, v = raw[:32], int.from_bytes(raw[32:64], "big"), raw[64]
    high_s = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    with pytest.raises(errors.MalleableSignature):
        coop.cast_votes(people[7], [good.model_copy(update={"signature": "0x" + high_s.hex()})])

    message = BallotMessage(proposal_id=pid, voter=people[1].address, support=VoteType.Approve)
    forged = [
        sign_ballot(people[2], chain.chain_id, coop.address, message),  # someone else signed
        sign_ballot(people[1], chain.chain_id + 1, coop.address, message),  # other chain
        sign_ballot(people[1], chain.chain_id, people[6].address, message),  # other contract
    ]
    for signature in forged:
        ballot = SignedBallot(**message.model_dump(), signature="0x" + signature.hex())
        with pytest.raises(errors.InvalidSignature):
            coop.cast_votes(people[7], [ballot])
    with pytest.raises(errors.NotMember):
        coop.cast_votes(people[7], [coop.sign_ballot(people[5], pid, VoteType.Approve)])
    assert coop.proposal(pid).voted_mask == 0  # a failed batch counts nothing
    coop.cast_votes(people[7], [good])
    assert coop.proposal(pid).voted_mask == 0b10


def test_a_batch_mixes_wallets_and_keys_and_stops_at_the_verdict(
    chain: ChainClient, people: list[LocalAccount]
) -> None:
    owner = people[6]
    wallet_address = chain.deploy(owner, load_artifact("MockERC1271Wallet"), owner.address)
    majority = policy(AggregationRule.SimpleMajority, eligible_mask=0b1111)
    coop = deploy(chain, people[:4], {SITE: majority})
    consent = coop.sign_key_rotation(owner, people[2].address, wallet_address)
    coop.rotate_key(people[2], wallet_address, consent)  # OP-2 now speaks through a wallet
    created = propose(coop, people[0])  # electorate OP-1, OP-2, OP-3
    pid = created.proposal_id
    message = BallotMessage(proposal_id=pid, voter=wallet_address, support=VoteType.Approve)
    by_wallet = SignedBallot(
        **message.model_dump(),
        signature="0x" + sign_ballot(owner, chain.chain_id, coop.address, message).hex(),
    )
    by_key = coop.sign_ballot(people[1], pid, VoteType.Approve)
    too_late = coop.sign_ballot(people[3], pid, VoteType.Reject)

    # 2 of 3 approvals decide at once: a later ballot in the same batch fails the whole batch.
    with pytest.raises(errors.UnexpectedProposalState):
        coop.cast_votes(people[7], [by_key, by_wallet, too_late])
    assert coop.proposal(pid).voted_mask == 0

    outcome = coop.cast_votes(people[7], [by_key, by_wallet])
    votes = [(v.voter, v.support, v.units) for v in outcome.events if isinstance(v, VoteCast)]
    assert votes == [
        (people[1].address, VoteType.Approve, 1),
        (wallet_address, VoteType.Approve, 1),
    ]
    verdict = outcome.first(VerdictReached)
    assert (verdict.outcome, verdict.approve_units, verdict.reject_units) == (
        ProposalState.Approved,
        2,
        0,
    )


def test_contract_wallet_votes_with_eip1271(chain: ChainClient, people: list[LocalAccount]) -> None:
    owner = people[6]
    wallet_address = chain.deploy(owner, load_artifact("MockERC1271Wallet"), owner.address)
    wallet = chain.w3.eth.contract(
        address=wallet_address, abi=load_artifact("MockERC1271Wallet").abi
    )
    members = [*people[:2], owner]
    coop = CoopChain.deploy_with(
        chain,
        people[0],
        [
            (people[0].address, "OP-0", 1),
            (people[1].address, "OP-1", 1),
            (wallet_address, "SAFE", 1),
        ],
        {
            "coopchain.governance": policy(eligible_mask=0b111),
            SITE: policy(AggregationRule.SimpleMajority, eligible_mask=0b111),
        },
    )
    created = propose(coop, members[0])
    message = BallotMessage(
        proposal_id=created.proposal_id, voter=wallet_address, support=VoteType.Approve
    )
    signature = "0x" + sign_ballot(owner, chain.chain_id, coop.address, message).hex()
    ballot = SignedBallot(**message.model_dump(), signature=signature)

    chain.transact(owner, wallet.functions.setRefuse(True))
    with pytest.raises(errors.InvalidSignature):
        coop.cast_votes(people[7], [ballot])
    chain.transact(owner, wallet.functions.setRefuse(False))
    coop.cast_votes(people[7], [ballot])
    assert coop.proposal(created.proposal_id).voted_mask == 0b100


# ---------------------------------------------------------------- records, windows, cancel


def test_record_rules(chain: ChainClient, coop: CoopChain, people: list[LocalAccount]) -> None:
    created = propose(coop, people[0], device_count=3, executor=people[6].address)
    pid = created.proposal_id
    with pytest.raises(errors.UnexpectedProposalState):
        coop.record_verification(people[0], pid, EVIDENCE, 3, 0)
    _approve(coop, people, pid)
    with pytest.raises(errors.NotProposerOrExecutor):
        coop.record_verification(people[1], pid, EVIDENCE, 3, 0)
    with pytest.raises(errors.DeviceCountMismatch):
        coop.record_verification(people[0], pid, EVIDENCE, 2, 0)
    recorded = coop.record_verification(people[6], pid, EVIDENCE, 2, 1).first(VerificationRecorded)
    assert (recorded.outcome, recorded.evidence_root, recorded.devices_failed) == (
        ProposalState.VerificationFailed,
        EVIDENCE,
        1,
    )
    info = coop.proposal(pid)
    assert (info.state, info.evidence_root) == (ProposalState.VerificationFailed, EVIDENCE)
    with pytest.raises(errors.UnexpectedProposalState):
        coop.record_verification(people[0], pid, EVIDENCE, 3, 0)


def test_window_edges_and_expiry(
    chain: ChainClient, coop: CoopChain, people: list[LocalAccount]
) -> None:
    dev = DevChain(chain)
    now = chain.now()
    early = propose(coop, people[0], window=(now + 1000, now + 2000))
    late = propose(coop, people[0], window=(now + 1000, now + 2000))
    _approve(coop, people, early.proposal_id)
    _approve(coop, people, late.proposal_id)
    with pytest.raises(errors.OutsideWindow):
        coop.record_verification(people[0], early.proposal_id, EVIDENCE, 2, 0)
    dev.increase_time(now + 2000 + GRACE // 2 - chain.now())  # after the window, inside grace
    outcome = coop.record_verification(people[0], early.proposal_id, EVIDENCE, 2, 0)
    assert outcome.first(VerificationRecorded).outcome is ProposalState.Verified
    dev.increase_time(GRACE)  # past window end + grace
    assert coop.state(late.proposal_id) is ProposalState.Expired
    with pytest.raises(errors.UnexpectedProposalState):
        coop.record_verification(people[0], late.proposal_id, EVIDENCE, 2, 0)
    assert coop.state(early.proposal_id) is ProposalState.Verified


def test_cancel(coop: CoopChain, people: list[LocalAccount]) -> None:
    created = propose(coop, people[0])
    pid = created.proposal_id
    with pytest.raises(errors.NotProposer):
        coop.cancel(people[1], pid)
    assert coop.cancel(people[0], pid).first(ProposalCanceled).proposal_id == pid
    assert coop.state(pid) is ProposalState.Canceled
    with pytest.raises(errors.UnexpectedProposalState):
        coop.cast_vote(people[1], pid, VoteType.Approve)
    with pytest.raises(errors.UnexpectedProposalState):
        coop.cancel(people[0], pid)


# ---------------------------------------------------------------- members and governance


def test_a_window_may_open_at_most_max_lead_ahead(
    chain: ChainClient, people: list[LocalAccount]
) -> None:
    coop = deploy(chain, people[:5], {SITE: policy(max_lead=7 * 86_400)})
    now = chain.now()
    decade = now + 10 * 365 * 86_400  # the repro: a governance window 10 years out
    with pytest.raises(errors.WindowTooFarAhead) as caught:
        propose(coop, people[0], resource_set=coop.governance_set, window=(decade, decade + 60))
    assert caught.value.args_by_name["windowStart"] == decade
    assert 0 <= caught.value.args_by_name["latestStart"] - now - 30 * 86_400 < 60  # the default
    week = now + 7 * 86_400
    with pytest.raises(errors.WindowTooFarAhead):
        propose(coop, people[0], window=(week + 120, week + 180))
    assert propose(coop, people[0], window=(week - 60, week)).window_start == week - 60


def test_an_approved_governance_proposal_is_executed_never_recorded(
    coop: CoopChain, people: list[LocalAccount]
) -> None:
    content = coop.governance_content([coop.set_member_weight_call(4, 2)])
    pid = propose(coop, people[0], resource_set=coop.governance_set, content=content).proposal_id
    for voter in people[1:5]:
        coop.cast_vote(voter, pid, VoteType.Approve)
    with pytest.raises(errors.GovernanceNotRecordable):
        coop.record_verification(people[0], pid, EVIDENCE, 2, 0)
    assert coop.state(pid) is ProposalState.Approved
    coop.execute_governance(people[7], pid, content)
    assert coop.state(pid) is ProposalState.Executed


def test_governance_changes_members_without_touching_proposals_in_flight(
    coop: CoopChain, people: list[LocalAccount]
) -> None:
    in_flight = propose(coop, people[0])
    newcomer = people[5]
    calls = [
        coop.add_member_call(newcomer.address, "OP-5", 3),
        coop.set_member_weight_call(4, 0),
        coop.configure_resource_set_call(
            SITE, policy(AggregationRule.SimpleMajority, eligible_mask=0b111111)
        ),
    ]
    content = coop.governance_content(calls)
    governance = propose(coop, people[0], resource_set=coop.governance_set, content=content)
    for voter in people[1:5]:
        coop.cast_vote(voter, governance.proposal_id, VoteType.Approve)
    with pytest.raises(errors.ContentHashMismatch):
        coop.execute_governance(
            people[7], governance.proposal_id, coop.governance_content(calls[:1])
        )
    executed = coop.execute_governance(people[7], governance.proposal_id, content)
    assert executed.first(GovernanceExecuted).calls == 3
    assert coop.state(governance.proposal_id) is ProposalState.Executed
    assert [(m.operator_id, m.weight) for m in coop.members()][4:] == [("OP-4", 0), ("OP-5", 3)]

    # The proposal created before the change keeps its electorate: OP-4 votes, OP-5 cannot.
    with pytest.raises(errors.NotEligible):
        coop.cast_vote(newcomer, in_flight.proposal_id, VoteType.Approve)
    coop.cast_vote(people[4], in_flight.proposal_id, VoteType.Approve)
    # A new proposal uses the new membership.
    fresh = propose(coop, people[0])
    assert fresh.electorate_mask == 0b101110
    with pytest.raises(errors.NotEligible):
        coop.cast_vote(people[4], fresh.proposal_id, VoteType.Approve)
    with pytest.raises(errors.OnlyGovernance):
        coop._send(people[0], coop.contract.functions.setMemberWeight(1, 5))


def test_a_proposal_keeps_and_shows_the_rule_it_was_created_under(
    chain: ChainClient, people: list[LocalAccount]
) -> None:
    """Governance turns the site from Supermajority 6667 bps (quorum 5000) into a simple
    majority: the proposal made before is still decided, and shown, under the old rule."""
    coop = deploy(
        chain,
        people[:5],
        {SITE: policy(AggregationRule.Supermajority, threshold_bps=6667, quorum_bps=5000)},
    )
    before = propose(coop, people[0]).proposal_id
    simple = policy(AggregationRule.SimpleMajority)
    content = coop.governance_content([coop.configure_resource_set_call(SITE, simple)])
    governance = propose(coop, people[0], resource_set=coop.governance_set, content=content)
    for voter in people[1:5]:
        coop.cast_vote(voter, governance.proposal_id, VoteType.Approve)
    coop.execute_governance(people[7], governance.proposal_id, content)
    assert coop.resource_set(SITE).rule is AggregationRule.SimpleMajority
    after = propose(coop, people[0]).proposal_id

    info = coop.proposal(before)
    assert (info.rule, info.threshold_bps, info.quorum_bps) == (
        AggregationRule.Supermajority,
        6667,
        5000,
    )
    assert info.rule_label == "Supermajority 6667 bps, quorum 5000 bps"
    fresh = coop.proposal(after)
    assert (fresh.rule, fresh.threshold_bps, fresh.quorum_bps) == (
        AggregationRule.SimpleMajority,
        0,
        0,
    )
    # The same votes on both: 2 of 3 cast approve (66.66 % < 66.67 %) rejects the first only.
    for pid in (before, after):
        votes = (VoteType.Approve, VoteType.Approve, VoteType.Reject, VoteType.Abstain)
        for voter, vote in zip(people[1:5], votes, strict=True):
            if coop.state(pid) is ProposalState.Active:
                coop.cast_vote(voter, pid, vote)
    assert coop.state(before) is ProposalState.Rejected
    assert coop.state(after) is ProposalState.Approved
    assert coop.proposal(before).rule is AggregationRule.Supermajority  # kept after the verdict


def test_key_rotation(coop: CoopChain, people: list[LocalAccount]) -> None:
    created = propose(coop, people[0])
    consent = coop.sign_key_rotation(people[6], people[2].address)
    rotated = coop.rotate_key(people[2], people[6].address, consent).first(MemberKeyRotated)
    assert (rotated.index, rotated.old_account, rotated.new_account) == (
        2,
        people[2].address,
        people[6].address,
    )
    assert coop.member_index(people[6].address) == 2
    with pytest.raises(errors.NotMember):
        coop.cast_vote(people[2], created.proposal_id, VoteType.Approve)
    cast = coop.cast_vote(people[6], created.proposal_id, VoteType.Approve).first(VoteCast)
    assert coop.proposal(created.proposal_id).voted_mask == 0b100
    # VoteCast names the key that voted; the member behind it follows from the member events.
    keys = {}
    for event in coop.events(0):
        if isinstance(event, MemberAdded):
            keys[event.account] = event.index
        elif isinstance(event, MemberKeyRotated):
            keys[event.new_account] = event.index
    assert (cast.voter, keys[cast.voter]) == (people[6].address, 2)
    with pytest.raises(errors.InvalidMember):
        coop.rotate_key(
            people[6], people[1].address, coop.sign_key_rotation(people[1], people[6].address)
        )


def test_a_rotation_needs_the_new_keys_signature(
    coop: CoopChain, people: list[LocalAccount]
) -> None:
    for signer in (people[2], people[5]):  # the old key, or anyone but the new key
        with pytest.raises(errors.InvalidSignature) as caught:
            coop.rotate_key(
                people[2],
                people[6].address,
                coop.sign_key_rotation(signer, people[2].address, people[6].address),
            )
        assert caught.value.args_by_name == {"expectedSigner": people[6].address}
    # A consent is bound to the member and its old key: OP-3 cannot use OP-2's.
    consent = coop.sign_key_rotation(people[6], people[2].address)
    with pytest.raises(errors.InvalidSignature):
        coop.rotate_key(people[3], people[6].address, consent)
    coop.rotate_key(people[2], people[6].address, consent)
    assert coop.member_index(people[6].address) == 2


def test_a_key_that_served_a_member_never_serves_another(
    coop: CoopChain, people: list[LocalAccount]
) -> None:
    """The issue's repro: OP-3 rotating to OP-2's former key made OP-2's counted ballot count
    again for OP-3."""
    pid = propose(coop, people[0]).proposal_id
    ballot = coop.sign_ballot(people[2], pid, VoteType.Approve)
    coop.cast_votes(people[7], [ballot])  # counted for OP-2
    coop.rotate_key(
        people[2], people[6].address, coop.sign_key_rotation(people[6], people[2].address)
    )
    # Even with the former key's consent (leaked or colluding), OP-3 cannot take it over.
    consent = coop.sign_key_rotation(people[2], people[3].address, people[2].address)
    with pytest.raises(errors.InvalidMember) as caught:
        coop.rotate_key(people[3], people[2].address, consent)
    assert caught.value.args_by_name["field"] == "account"
    # Nor can OP-2 rotate back to it, and the old ballot counts for nobody.
    back = coop.sign_key_rotation(people[2], people[6].address, people[2].address)
    with pytest.raises(errors.InvalidMember):
        coop.rotate_key(people[6], people[2].address, back)
    with pytest.raises(errors.NotMember):
        coop.cast_votes(people[7], [ballot])
    info = coop.proposal(pid)
    assert (info.approve_units, info.voted_mask) == (1, 0b100)


def test_a_retired_key_cannot_join_as_a_new_member(
    coop: CoopChain, people: list[LocalAccount]
) -> None:
    moved = coop.sign_key_rotation(people[6], people[2].address)
    coop.rotate_key(people[2], people[6].address, moved)
    content = coop.governance_content([coop.add_member_call(people[2].address, "OP-9", 1)])
    pid = propose(coop, people[0], resource_set=coop.governance_set, content=content).proposal_id
    for voter in (people[1], people[6], people[3], people[4]):
        coop.cast_vote(voter, pid, VoteType.Approve)
    with pytest.raises(errors.GovernanceCallFailed) as caught:
        coop.execute_governance(people[7], pid, content)
    assert "a key a member used before" in str(caught.value)


def test_events_are_decoded_in_order(coop: CoopChain, people: list[LocalAccount]) -> None:
    created = propose(coop, people[0])
    _approve(coop, people, created.proposal_id)
    kinds = [event.kind for event in coop.events(created.block_number)]
    assert kinds == ["ProposalCreated", "VoteCast", "VoteCast", "VoteCast", "VerdictReached"]


def test_deployment_from_spec(chain: ChainClient) -> None:
    from nornir_coopchain.chain.deployment import DeploymentSpec

    people = dev_accounts(chain, 3)
    spec = DeploymentSpec.model_validate(
        {
            "members": [
                {"operator": f"OPERATOR-{i}", "address": p.address, "weight": 10 * (i + 1)}
                for i, p in enumerate(people)
            ],
            "resource_sets": {
                "governance": {"rule": "unanimous", "voting_period": "1d", "max_window": "7d"},
                SITE: {
                    "rule": "weighted_threshold",
                    "threshold_bps": 5000,
                    "members": ["OPERATOR-1", "OPERATOR-2"],
                    "veto": ["OPERATOR-2"],
                    "voting_period": "1h",
                    "max_window": "4h",
                },
            },
        }
    )
    coop = CoopChain.deploy(chain, people[0], spec)
    assert [(m.operator_id, m.weight) for m in coop.members()] == [
        ("OPERATOR-0", 10),
        ("OPERATOR-1", 20),
        ("OPERATOR-2", 30),
    ]
    site = coop.resource_set(SITE)
    assert (site.rule, site.eligible_mask, site.veto_mask, site.voting_period) == (
        AggregationRule.WeightedThreshold,
        0b110,
        0b100,
        3600,
    )
    assert coop.resource_set("coopchain.governance").eligible_mask == 0b111


# ---------------------------------------------------------------- break-glass (emergency changes)


@pytest.fixture
def emergency_coop(chain: ChainClient, people: list[LocalAccount]) -> CoopChain:
    """As ``coop``, and OP-0 holds the site's emergency role."""
    site = policy(AggregationRule.SimpleMajority, quorum_bps=5000, emergency_mask=0b00001)
    return deploy(chain, people[:5], {SITE: site})


def _declare(
    coop: CoopChain,
    proposer: LocalAccount,
    *,
    relayer: LocalAccount | None = None,
    **fields: object,
) -> EmergencyDeclared:
    content = b'{"change":"outage fix"}'
    request = request_for(coop, proposer, content=content, **fields)  # type: ignore[arg-type]
    signature = coop.sign_request(proposer, request, emergency=True)
    created = coop.declare_emergency(relayer or proposer, request, signature, content)
    declared = next(
        event
        for event in coop.events(created.block_number, created.block_number)
        if isinstance(event, EmergencyDeclared)
    )
    assert declared.proposal_id == created.proposal_id
    return declared


def test_only_an_emergency_role_holder_declares_and_only_in_an_open_window(
    chain: ChainClient, emergency_coop: CoopChain, people: list[LocalAccount]
) -> None:
    coop = emergency_coop
    with pytest.raises(errors.NotEmergencyRole):
        _declare(coop, people[1])
    now = chain.now()
    with pytest.raises(errors.InvalidWindow):
        _declare(coop, people[0], window=(now + 600, now + 1200))
    # The signature binds the intent: an ordinary request cannot be relayed as an emergency
    # one, nor an emergency one as ordinary.
    content = b'{"change":"outage fix"}'
    request = request_for(coop, people[0], content=content)
    with pytest.raises(errors.InvalidSignature):
        coop.declare_emergency(people[7], request, coop.sign_request(people[0], request), content)
    with pytest.raises(errors.InvalidSignature):
        coop.propose(
            people[7], request, coop.sign_request(people[0], request, emergency=True), content
        )
    assert coop.proposal_count() == 0
    assert coop.resource_set(SITE).emergency_mask == 0b00001
    # No break-glass on the contract's own governance, and only for eligible members.
    with pytest.raises(errors.InvalidResourceSet):
        CoopChain.deploy_with(
            chain,
            people[0],
            [(p.address, f"OP-{i}", 1) for i, p in enumerate(people[:2])],
            {GOVERNANCE: policy(eligible_mask=0b11, emergency_mask=0b01)},
        )
    with pytest.raises(ValueError, match="emergencyMask"):
        policy(eligible_mask=0b011, emergency_mask=0b100)


def test_emergency_change_recorded_before_the_vote_then_ratified(
    emergency_coop: CoopChain, people: list[LocalAccount]
) -> None:
    coop = emergency_coop
    declared = _declare(coop, people[0], relayer=people[7], device_count=3)
    pid = declared.proposal_id
    info = coop.proposal(pid)
    assert declared.ratify_by == info.vote_end
    assert (info.state, info.emergency, info.recorded, info.unratified) == (
        ProposalState.Active,
        True,
        False,
        False,
    )
    assert info.electorate_mask == 0b11110  # ratified by the normal rule, without the proposer
    with pytest.raises(errors.NotProposerOrExecutor):
        coop.record_verification(people[1], pid, EVIDENCE, 3, 0)
    recorded = coop.record_verification(people[0], pid, EVIDENCE, 3, 0).first(VerificationRecorded)
    assert recorded.outcome is ProposalState.Verified
    info = coop.proposal(pid)
    assert (info.state, info.recorded, info.evidence_root) == (
        ProposalState.Active,  # recorded at once; the vote goes on
        True,
        EVIDENCE,
    )
    with pytest.raises(errors.AlreadyRecorded):
        coop.record_verification(people[0], pid, EVIDENCE, 3, 0)
    with pytest.raises(errors.EmergencyNotCancelable):
        coop.cancel(people[0], pid)

    coop.cast_vote(people[1], pid, VoteType.Approve)
    coop.cast_vote(people[2], pid, VoteType.Approve)
    verdict = coop.cast_vote(people[3], pid, VoteType.Approve).first(VerdictReached)
    assert verdict.outcome is ProposalState.Approved
    info = coop.proposal(pid)
    assert (info.state, info.ratified, info.unratified, info.evidence_root) == (
        ProposalState.Verified,
        True,
        False,
        EVIDENCE,
    )
    with pytest.raises(errors.UnexpectedProposalState):
        coop.record_verification(people[0], pid, EVIDENCE, 3, 0)


def test_emergency_ratified_at_the_deadline_keeps_its_failed_record(
    chain: ChainClient, emergency_coop: CoopChain, people: list[LocalAccount]
) -> None:
    coop = emergency_coop
    pid = _declare(coop, people[0], executor=people[6].address).proposal_id
    coop.record_verification(people[6], pid, EVIDENCE, 1, 1)  # the executor may record too
    coop.cast_vote(people[1], pid, VoteType.Approve)
    coop.cast_vote(people[2], pid, VoteType.Approve)
    assert coop.state(pid) is ProposalState.Active  # 2 of 4: not decided early
    DevChain(chain).increase_time(VOTING_PERIOD + 1)
    assert coop.state(pid) is ProposalState.VerificationFailed
    assert coop.finalize(people[7], pid).first(VerdictReached).outcome is ProposalState.Approved
    info = coop.proposal(pid)
    assert (info.state, info.ratified, info.evidence_root) == (
        ProposalState.VerificationFailed,
        True,
        EVIDENCE,
    )


def test_emergency_rejected_or_timed_out_is_unratified_and_keeps_its_record(
    chain: ChainClient, emergency_coop: CoopChain, people: list[LocalAccount]
) -> None:
    coop = emergency_coop
    rejected = _declare(coop, people[0]).proposal_id
    timed_out = _declare(coop, people[0]).proposal_id
    unrecorded = _declare(coop, people[0]).proposal_id
    for pid in (rejected, timed_out):
        coop.record_verification(people[0], pid, EVIDENCE, 2, 0)
    coop.cast_vote(people[1], rejected, VoteType.Reject)
    coop.cast_vote(people[2], rejected, VoteType.Reject)  # 2 of 4: no majority can follow
    info = coop.proposal(rejected)
    assert (info.state, info.unratified, info.ratified, info.evidence_root) == (
        ProposalState.Rejected,
        True,
        False,
        EVIDENCE,
    )
    with pytest.raises(errors.UnexpectedProposalState):
        coop.record_verification(people[0], rejected, EVIDENCE, 2, 0)

    DevChain(chain).increase_time(VOTING_PERIOD + 1)  # nobody voted on the other two
    for pid in (timed_out, unrecorded):
        assert coop.proposal(pid).unratified
    assert coop.proposal(timed_out).evidence_root == EVIDENCE
    assert not coop.proposal(unrecorded).recorded
    assert coop.finalize(people[7], timed_out).first(VerdictReached).outcome is (
        ProposalState.Rejected
    )
    assert coop.state(timed_out) is ProposalState.Rejected


def test_emergency_ratified_before_any_record_is_recorded_as_usual(
    chain: ChainClient, emergency_coop: CoopChain, people: list[LocalAccount]
) -> None:
    coop = emergency_coop
    pid = _declare(coop, people[0]).proposal_id
    late = _declare(coop, people[0]).proposal_id
    _approve(coop, people, pid)
    _approve(coop, people, late)
    assert coop.proposal(pid).ratified
    coop.record_verification(people[0], pid, EVIDENCE, 2, 0)
    assert coop.state(pid) is ProposalState.Verified
    DevChain(chain).increase_time(3600 + GRACE + 1)  # ratified, never recorded: Expired
    info = coop.proposal(late)
    assert (info.state, info.ratified, info.unratified) == (ProposalState.Expired, True, False)


def test_deployment_emergency_role(chain: ChainClient) -> None:
    from nornir_coopchain.chain.deployment import DeploymentSpec

    people = dev_accounts(chain, 2)
    members = [{"operator": f"OPERATOR-{i}", "address": p.address} for i, p in enumerate(people)]
    governance = {"rule": "unanimous", "voting_period": "1d", "max_window": "7d"}
    site = {**governance, "emergency": ["OPERATOR-1"]}
    spec = DeploymentSpec.model_validate(
        {"members": members, "resource_sets": {"governance": governance, SITE: site}}
    )
    assert spec.policies()[SITE].emergency_mask == 0b10
    assert spec.policies()[GOVERNANCE].emergency_mask == 0
    with pytest.raises(ValueError, match="no break-glass on governance"):
        DeploymentSpec.model_validate(
            {"members": members, "resource_sets": {"governance": site, SITE: site}}
        )
    with pytest.raises(ValueError, match="unknown operators"):
        DeploymentSpec.model_validate(
            {
                "members": members,
                "resource_sets": {"governance": governance, SITE: {**site, "emergency": ["X"]}},
            }
        )
