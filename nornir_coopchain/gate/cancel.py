"""Withdraw one's own proposal before it is applied."""

from __future__ import annotations

from nornir_coopchain.exceptions import ChangeRefused
from nornir_coopchain.journal import Journal
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.session import CoopchainSession

__all__ = ["cancel_change"]

_CANCELABLE = (ProposalState.Active, ProposalState.Approved)
_PUSHED = ("applying", "verified")


def cancel_change(session: CoopchainSession, proposal_id: int) -> str:
    """Cancel a proposal of this session's member on chain and close its local journal.

    Arguments:
        session: the proposer's session.
        proposal_id: the proposal.

    Returns:
        The cancel transaction's hash.

    Raises:
        ChangeRefused: nothing was sent: the proposal is not this member's, is no longer
            Active or Approved, is an emergency change (it is ratified or not, never
            withdrawn), or this state directory has started pushing it (finish with apply).
        ContractError: the contract refused the cancel.
    """
    coop = session.coop
    info = coop.proposal(proposal_id)
    member = session.member
    if info.proposer_index != member.index:
        proposer = coop.members()[info.proposer_index].operator_id
        raise ChangeRefused(
            f"proposal {proposal_id} is {proposer}'s: only its proposer may cancel it, "
            f"not {member.operator_id}"
        )
    if info.state not in _CANCELABLE:
        raise ChangeRefused(
            f"proposal {proposal_id} is {info.state.name}: only an Active or Approved proposal "
            "can be canceled"
        )
    if info.emergency:
        raise ChangeRefused(
            f"proposal {proposal_id} is a declared emergency change: it cannot be canceled; "
            "the co-owners ratify it or not"
        )
    journal = Journal.find(
        session.settings.journal_dir(),
        chain_id=session.client.chain_id,
        contract=coop.address,
        proposal_id=proposal_id,
    )
    if journal is None:
        return coop.cancel(session.account, proposal_id).tx_hash
    record = journal.read()
    if record.phase in _PUSHED:
        raise ChangeRefused(
            f"proposal {proposal_id} is being pushed ({record.phase}, journal {journal.path}): "
            f"finish it with `coopchain apply {proposal_id}` instead"
        )
    tx_hash = coop.cancel(session.account, proposal_id).tx_hash
    journal.closed(ProposalState.Canceled.name)
    return tx_hash
