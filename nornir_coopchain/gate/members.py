"""Membership through governance: a member proposes ``addMember``, the others approve, and
anyone executes the approved proposal."""

from __future__ import annotations

from nornir_coopchain.chain.models import ZERO_HASH, MemberAdded, ProposalCreated
from nornir_coopchain.exceptions import ChangeRefused
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.session import CoopchainSession

__all__ = ["execute_governance_change", "propose_member"]


def propose_member(
    session: CoopchainSession, account: str, operator: str, weight: int = 1
) -> ProposalCreated:
    """Propose on the governance set that ``account`` joins as ``operator``.

    The window opens now and lasts the governance set's longest window, so the proposal can
    be executed as soon as it is approved.

    Raises:
        ChangeRefused: ``account`` or ``operator`` is a member already (nothing sent).
        ContractError: the contract refused the proposal (e.g. the sender is not a member).
    """
    coop = session.coop
    for member in coop.members():
        if member.account.lower() == account.lower() or member.operator_id == operator:
            raise ChangeRefused(
                f"{member.operator_id} ({member.account}) is a member already: not proposed"
            )
    now = session.client.now()
    policy = coop.resource_set(coop.governance_set)
    content = coop.governance_content([coop.add_member_call(account, operator, weight)])
    request = coop.build_request(
        session.account.address,
        coop.governance_set,
        content,
        manifest_root=ZERO_HASH,
        device_count=0,
        window_start=now,
        window_end=now + policy.max_window,
        created_at=now,
    )
    signature = coop.sign_request(session.account, request)
    return coop.propose(session.account, request, signature, content)


def execute_governance_change(session: CoopchainSession, proposal_id: int) -> list[MemberAdded]:
    """Execute an approved governance proposal with its content from the chain.

    Returns:
        The members it added.

    Raises:
        ChangeRefused: the proposal is not an approved governance proposal (nothing sent).
        ContractError: the contract refused the execution (e.g. outside its window).
    """
    coop = session.coop
    info = coop.proposal(proposal_id)
    if info.resource_set != coop.governance_set:
        raise ChangeRefused(f"proposal {proposal_id} is on {info.resource_set}, not governance")
    if info.state is not ProposalState.Approved:
        raise ChangeRefused(
            f"proposal {proposal_id} is {info.state.name}: only an Approved governance "
            "proposal can be executed"
        )
    outcome = coop.execute_governance(session.account, proposal_id, coop.fetch_content(proposal_id))
    return [event for event in outcome.events if isinstance(event, MemberAdded)]
