"""Wait for the co-owners' verdict on a proposal."""

from __future__ import annotations

import time
from collections.abc import Callable

from nornir_coopchain.chain.models import VerdictReached
from nornir_coopchain.exceptions import ChainError
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.session import CoopchainSession

__all__ = ["VerdictTimeout", "wait_for_verdict"]


class VerdictTimeout(ChainError):
    """Raised when the voting on a proposal is still open when the wait ends."""


def wait_for_verdict(
    session: CoopchainSession,
    proposal_id: int,
    *,
    timeout: float = 3600.0,
    poll_interval: float = 2.0,
    progress: Callable[[str], None] | None = None,
) -> ProposalState:
    """Poll until the proposal leaves Active; broadcast a verdict nobody broadcast yet.

    The state is read ``confirmations`` blocks below the head (see the settings): a vote
    that a reorg takes out before it is that deep is never acted on. A proposal that does
    not exist at that block yet (this operator's node lags the one the proposal went to, or
    it is not that deep yet) is waited for like an open vote.

    When the voting period ended without early finality, the verdict is derived on chain but
    not yet broadcast: this calls ``finalize`` so every member gets the VerdictReached event.

    Returns:
        The proposal's state (Approved, Rejected, Canceled, …).

    Raises:
        VerdictTimeout: still Active, or never seen by this node, after ``timeout`` seconds
            (the message says which, with the proposal count the node reports).
    """
    coop = session.coop
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        block = session.client.confirmed_block()
        info = coop.find_proposal(proposal_id, block=block)
        if info is not None and info.state is not ProposalState.Active:
            break
        line = (
            f"proposal {proposal_id}: not yet seen by this node"
            if info is None
            else f"proposal {proposal_id}: {info.approve_units} approve, "
            f"{info.reject_units} reject, {info.abstain_units} abstain of {info.total_units}"
        )
        if progress is not None and line != last:
            progress(line)
            last = line
        if time.monotonic() >= deadline:
            if info is None:
                raise VerdictTimeout(_unseen(session, proposal_id, timeout))
            raise VerdictTimeout(
                f"proposal {proposal_id} is still being voted on after {timeout:g} s"
            )
        time.sleep(poll_interval)
    # An emergency change recorded before its ratification is Verified (or failed) at once.
    ratified = info.emergency and info.state in (
        ProposalState.Verified,
        ProposalState.VerificationFailed,
    )
    if info.state in (ProposalState.Approved, ProposalState.Rejected) or ratified:
        topics = [coop.contract.events.VerdictReached.topic, "0x" + f"{proposal_id:064x}"]
        start = coop.proposal_created(proposal_id).block_number
        if not any(
            isinstance(event, VerdictReached) for event in coop.events(start, topics=topics)
        ):
            coop.finalize(session.account, proposal_id)
    return info.state


def _unseen(session: CoopchainSession, proposal_id: int, timeout: float) -> str:
    """Why a proposal was never found at the confirmed block: not on this node at all, or
    not yet ``confirmations`` blocks deep."""
    client, coop = session.client, session.coop
    count = coop.proposal_count()
    where = f"node {client.url}, contract {coop.address}"
    if proposal_id > count:
        return (
            f"proposal {proposal_id} was never seen by this node in {timeout:g} s: it reports "
            f"{count} proposal(s) ({where}); it lags the node the proposal went to, or there "
            "is no such proposal"
        )
    return (
        f"proposal {proposal_id} is at this node's head but not yet {client.confirmations} "
        f"block(s) deep after {timeout:g} s ({where})"
    )
