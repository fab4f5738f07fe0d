"""Who may push an approved change, and the claim on chain that lets one run push it."""

from __future__ import annotations

from nornir_coopchain.chain.errors import ApplyClaimed
from nornir_coopchain.chain.models import ZERO_HASH
from nornir_coopchain.exceptions import (
    ChainConnectionError,
    ChainError,
    ChangeRefused,
    ClaimedByAnotherRun,
    ContractError,
)
from nornir_coopchain.gate.approved import ApprovedChange
from nornir_coopchain.gate.push import resume_hint
from nornir_coopchain.session import CoopchainSession

__all__ = ["check_applier", "claim_change"]


def check_applier(session: CoopchainSession, change: ApprovedChange) -> None:
    """Only the proposer or the executor named on chain (who alone may record) pushes.

    Raises:
        ChangeRefused: this key is neither, saying who may.
    """
    info = change.proposal
    proposer = session.coop.members()[info.proposer_index]
    named = int(info.executor, 16) != 0
    allowed = {proposer.account.lower()} | ({info.executor.lower()} if named else set())
    if session.account.address.lower() in allowed:
        return
    executor = f"its named executor is {info.executor}" if named else "it names no executor"
    kind = "an emergency change not yet ratified" if info.emergency else "a change"
    raise ChangeRefused(
        f"proposal {info.proposal_id} is {kind} that only its proposer or executor may apply: "
        f"its proposer is {proposer.operator_id} ({proposer.account}) and {executor}; this key "
        f"is {session.account.address}. No device was touched"
    )


def claim_change(
    session: CoopchainSession, change: ApprovedChange, run_id: str, take_over: str | None
) -> None:
    """Hold the proposal's apply claim on chain under ``run_id`` before any device is pushed:
    one run pushes a change, whatever the state directories or machines of its executors.

    Raises:
        ClaimedByAnotherRun: another run holds it (and ``take_over`` does not name that
            run); no device was touched.
        ChainConnectionError: the chain could not be used to claim it; no device was touched.
    """
    proposal_id = change.proposal_id
    try:
        current = session.coop.proposal(proposal_id).apply_run
        if current.lower() == run_id.lower():
            return  # this state directory's run, resumed
        previous = current if int(current, 16) else ZERO_HASH
        if int(previous, 16) and (take_over or "").lower() != previous.lower():
            raise _claimed_elsewhere(proposal_id, previous, take_over)
        session.coop.claim_apply(session.account, proposal_id, run_id, previous)
    except ApplyClaimed as exc:  # another run claimed it meanwhile
        raise _claimed_elsewhere(proposal_id, exc.current_run, take_over) from exc
    except ChainError as exc:
        if isinstance(exc, ContractError):
            raise
        raise ChainConnectionError(
            f"the chain could not be used to claim proposal {proposal_id} "
            f"({type(exc).__name__}: {exc}); no device was touched. {resume_hint(proposal_id)}"
        ) from exc


def _claimed_elsewhere(
    proposal_id: int, current: str, take_over: str | None
) -> ClaimedByAnotherRun:
    named = f", not the run --take-over named ({take_over})" if take_over else ""
    return ClaimedByAnotherRun(
        f"proposal {proposal_id} is being applied by another run (run {current}, claimed on "
        f"chain{named}): this run touched no device. Let that run finish, and audit the change "
        f"where it ran. Only if that run is gone for good (its machine and state directory "
        f"lost), `coopchain apply {proposal_id} --take-over {current}` pushes from here: a "
        "device it pushed that runs the approved config is verified, not pushed again, but "
        "one it rolled back to its base would be pushed a second time",
        proposal_id=proposal_id,
        current_run=current,
    )
