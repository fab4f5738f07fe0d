"""claimApply: the on-chain compare-and-swap a run makes before it pushes any device, so that
two runs of the same change (two state directories, two machines) never both push. Each test
runs on the embedded chain and on anvil."""

from __future__ import annotations

import pytest
from coop_helpers import GRACE, SITE, VOTING_PERIOD, deploy, policy, propose, request_for
from eth_account.signers.local import LocalAccount

from nornir_coopchain.chain import errors
from nornir_coopchain.chain.accounts import dev_accounts
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.devchain import DevChain
from nornir_coopchain.chain.models import ApplyClaimed, VerificationRecorded, new_run_id
from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.model.rules import AggregationRule, ProposalState, VoteType

ZERO = "0x" + "00" * 32
RUN_A = "0x" + "a1" * 32
RUN_B = "0x" + "b2" * 32
RUN_C = "0x" + "c3" * 32
EVIDENCE = "0x" + "ab" * 32


@pytest.fixture
def people(chain: ChainClient) -> list[LocalAccount]:
    """Members OP-0..OP-4 are people[0..4]; people[5] an outsider; people[6] the executor."""
    return dev_accounts(chain, 7)


@pytest.fixture
def coop(chain: ChainClient, people: list[LocalAccount]) -> CoopChain:
    """Five members, simple majority; OP-0 holds the site's emergency role."""
    site = policy(AggregationRule.SimpleMajority, quorum_bps=5000, emergency_mask=0b00001)
    return deploy(chain, people[:5], {SITE: site})


def _approved(coop: CoopChain, people: list[LocalAccount], **fields: object) -> int:
    """An approved proposal of OP-0 naming people[6] as executor (window open now, 1 h)."""
    pid = propose(coop, people[0], executor=people[6].address, **fields).proposal_id
    for voter in people[1:4]:
        if coop.state(pid) is ProposalState.Active:
            coop.cast_vote(voter, pid, VoteType.Approve)
    assert coop.state(pid) is ProposalState.Approved
    return pid


def test_the_first_claim_is_stored_and_announced(
    coop: CoopChain, people: list[LocalAccount]
) -> None:
    pid = _approved(coop, people)
    assert coop.proposal(pid).apply_run == ZERO
    outcome = coop.claim_apply(people[6], pid, RUN_A)
    claimed = outcome.first(ApplyClaimed)
    assert (claimed.proposal_id, claimed.claimer, claimed.run_id, claimed.previous_run) == (
        pid,
        people[6].address,
        RUN_A,
        ZERO,
    )
    assert coop.proposal(pid).apply_run == RUN_A
    assert [
        event for event in coop.events(outcome.block_number) if event.kind == "ApplyClaimed"
    ] == [claimed]
    # A claim neither decides nor records anything: the record is made as before.
    assert coop.state(pid) is ProposalState.Approved
    recorded = coop.record_verification(people[0], pid, EVIDENCE, 2, 0).first(VerificationRecorded)
    assert recorded.outcome is ProposalState.Verified
    assert coop.proposal(pid).apply_run == RUN_A  # kept after the record, for the audit


def test_the_same_run_claiming_again_changes_nothing(
    coop: CoopChain, people: list[LocalAccount]
) -> None:
    pid = _approved(coop, people)
    coop.claim_apply(people[6], pid, RUN_A)
    for previous in (ZERO, RUN_A, RUN_B):  # a resumed run, whatever it thinks came before
        assert coop.claim_apply(people[6], pid, RUN_A, previous).events == []
    assert coop.claim_apply(people[0], pid, RUN_A).events == []  # the proposer's key too
    assert coop.proposal(pid).apply_run == RUN_A


def test_another_run_is_refused_and_told_the_current_one(
    coop: CoopChain, people: list[LocalAccount]
) -> None:
    pid = _approved(coop, people)
    coop.claim_apply(people[6], pid, RUN_A)
    for previous in (ZERO, RUN_C):  # a second machine's first claim, or a stale take-over
        with pytest.raises(errors.ApplyClaimed) as caught:
            coop.claim_apply(people[0], pid, RUN_B, previous)
        assert (caught.value.proposal_id, caught.value.current_run) == (pid, RUN_A)
        assert f"proposal {pid} is being applied by another run ({RUN_A})" in str(caught.value)
        assert "no device was touched" in str(caught.value)
    assert coop.proposal(pid).apply_run == RUN_A


def test_a_take_over_names_the_current_run(coop: CoopChain, people: list[LocalAccount]) -> None:
    pid = _approved(coop, people)
    with pytest.raises(errors.ApplyClaimed) as caught:  # nothing to take over yet
        coop.claim_apply(people[6], pid, RUN_B, RUN_A)
    assert caught.value.current_run == ZERO
    assert "not claimed by any run" in str(caught.value)
    coop.claim_apply(people[6], pid, RUN_A)

    taken = coop.claim_apply(people[0], pid, RUN_B, RUN_A).first(ApplyClaimed)
    assert (taken.claimer, taken.run_id, taken.previous_run) == (people[0].address, RUN_B, RUN_A)
    assert coop.proposal(pid).apply_run == RUN_B
    with pytest.raises(errors.ApplyClaimed) as caught:  # the abandoned run, back, is refused
        coop.claim_apply(people[6], pid, RUN_A)
    assert caught.value.current_run == RUN_B


def test_only_the_proposer_or_executor_claims(coop: CoopChain, people: list[LocalAccount]) -> None:
    pid = _approved(coop, people)
    for caller in (people[1], people[5]):  # a voting member, an outsider
        with pytest.raises(errors.NotProposerOrExecutor) as caught:
            coop.claim_apply(caller, pid, RUN_A)
        assert caught.value.args_by_name == {"proposalId": pid, "caller": caller.address}
    assert coop.claim_apply(people[0], pid, RUN_A).first(ApplyClaimed).claimer == people[0].address


def test_a_zero_or_malformed_run_id_is_refused(coop: CoopChain, people: list[LocalAccount]) -> None:
    pid = _approved(coop, people)
    with pytest.raises(errors.InvalidRunId):
        coop.claim_apply(people[6], pid, ZERO)
    block = coop.client.block_number()
    for run_id in ("a1" * 32, "0x" + "a1" * 31, "0x" + "zz" * 32):
        with pytest.raises(ConfigError, match="run_id"):
            coop.claim_apply(people[6], pid, run_id)
    assert coop.client.block_number() == block  # nothing was sent
    fresh = new_run_id()
    assert fresh != new_run_id()
    assert coop.claim_apply(people[6], pid, fresh).first(ApplyClaimed).run_id == fresh


def test_claims_only_inside_the_change_window(
    chain: ChainClient, coop: CoopChain, people: list[LocalAccount]
) -> None:
    dev = DevChain(chain)
    now = chain.now()
    window = (now + 1000, now + 2000)
    pid = _approved(coop, people, window=window)
    late = _approved(coop, people, window=window)
    with pytest.raises(errors.OutsideChangeWindow) as caught:
        coop.claim_apply(people[6], pid, RUN_A)
    assert caught.value.args_by_name["windowStart"] == window[0]
    assert caught.value.args_by_name["windowEnd"] == window[1]
    assert "no device may be pushed now" in str(caught.value)

    dev.increase_time(window[0] - chain.now())
    coop.claim_apply(people[6], pid, RUN_A)
    dev.increase_time(window[1] + GRACE // 2 - chain.now())  # after the window, inside grace
    assert coop.state(late) is ProposalState.Approved
    for proposal_id in (late, pid):  # a first claim, and the holder resuming: both too late
        with pytest.raises(errors.OutsideChangeWindow):
            coop.claim_apply(people[6], proposal_id, RUN_A)
    coop.record_verification(people[0], pid, EVIDENCE, 2, 0)  # the record's grace still holds


def test_only_a_proposal_that_may_be_applied_is_claimed(
    chain: ChainClient, coop: CoopChain, people: list[LocalAccount]
) -> None:
    active = propose(coop, people[0]).proposal_id
    rejected = propose(coop, people[0]).proposal_id
    coop.cast_vote(people[1], rejected, VoteType.Reject)
    coop.cast_vote(people[2], rejected, VoteType.Reject)  # 2 of 4: no majority can follow
    canceled = propose(coop, people[0]).proposal_id
    coop.cancel(people[0], canceled)
    recorded = _approved(coop, people)
    coop.record_verification(people[0], recorded, EVIDENCE, 2, 0)
    for pid, state in (
        (active, ProposalState.Active),
        (rejected, ProposalState.Rejected),
        (canceled, ProposalState.Canceled),
        (recorded, ProposalState.Verified),
        (99, ProposalState.NONE),
    ):
        with pytest.raises(errors.UnexpectedProposalState) as caught:
            coop.claim_apply(people[0], pid, RUN_A)
        assert caught.value.args_by_name["current"] == state

    content = coop.governance_content([coop.set_member_weight_call(4, 2)])
    governance = propose(
        coop, people[0], resource_set=coop.governance_set, content=content
    ).proposal_id
    for voter in people[1:5]:
        coop.cast_vote(voter, governance, VoteType.Approve)
    with pytest.raises(errors.GovernanceNotRecordable):
        coop.claim_apply(people[0], governance, RUN_A)

    expired = _approved(coop, people)
    DevChain(chain).increase_time(3600 + GRACE + 1)
    with pytest.raises(errors.UnexpectedProposalState) as caught:
        coop.claim_apply(people[6], expired, RUN_A)
    assert caught.value.args_by_name["current"] == ProposalState.Expired


def test_an_emergency_change_is_claimed_while_still_active(
    chain: ChainClient, coop: CoopChain, people: list[LocalAccount]
) -> None:
    content = b'{"change":"outage fix"}'
    request = request_for(coop, people[0], content=content, executor=people[6].address)
    signature = coop.sign_request(people[0], request, emergency=True)
    pid = coop.declare_emergency(people[0], request, signature, content).proposal_id
    assert coop.state(pid) is ProposalState.Active
    assert coop.claim_apply(people[6], pid, RUN_A).first(ApplyClaimed).run_id == RUN_A
    assert coop.proposal(pid).apply_run == RUN_A
    coop.record_verification(people[6], pid, EVIDENCE, 2, 0)
    with pytest.raises(errors.AlreadyRecorded):  # applied and recorded: nothing left to claim
        coop.claim_apply(people[6], pid, RUN_B, RUN_A)

    unratified = coop.build_request(
        people[0].address,
        SITE,
        content,
        manifest_root=request.manifest_root,
        device_count=2,
        window_start=chain.now(),
        window_end=chain.now() + 3600,
    )
    signature = coop.sign_request(people[0], unratified, emergency=True)
    late = coop.declare_emergency(people[0], unratified, signature, content).proposal_id
    DevChain(chain).increase_time(VOTING_PERIOD + 1)  # nobody voted: unratified (Rejected)
    with pytest.raises(errors.UnexpectedProposalState):
        coop.claim_apply(people[0], late, RUN_A)


@pytest.mark.anvil
def test_claims_on_a_zero_gas_price_chain(free_gas_chain: ChainClient) -> None:
    people = dev_accounts(free_gas_chain, 5)
    coop = deploy(free_gas_chain, people, {SITE: policy(AggregationRule.SimpleMajority)})
    pid = propose(coop, people[0]).proposal_id
    for voter in people[1:4]:
        if coop.state(pid) is ProposalState.Active:
            coop.cast_vote(voter, pid, VoteType.Approve)
    outcome = coop.claim_apply(people[0], pid, RUN_A)
    assert outcome.first(ApplyClaimed).run_id == RUN_A
    receipt = free_gas_chain.w3.eth.get_transaction_receipt(outcome.tx_hash)  # type: ignore[arg-type]
    assert receipt["effectiveGasPrice"] == 0
    with pytest.raises(errors.ApplyClaimed):
        coop.claim_apply(people[0], pid, RUN_B)
