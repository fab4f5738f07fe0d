"""Record ONE verification of an applied change on chain, and only once: a record this
state directory made is resumed, another run's is refused, one a reorg may still take out is
waited for."""

from __future__ import annotations

import secrets
import time

from nornir_coopchain.chain.errors import UnexpectedProposalState
from nornir_coopchain.chain.models import ProposalInfo
from nornir_coopchain.exceptions import (
    AlreadyRecorded,
    ChainConnectionError,
    ChainError,
    ContractError,
)
from nornir_coopchain.gate.approved import ApprovedChange
from nornir_coopchain.gate.outcome import ChangeOutcome, change_outcome
from nornir_coopchain.gate.push import devices_summary, resume_hint
from nornir_coopchain.journal import Journal
from nornir_coopchain.model.content import DeviceEvidence, EvidenceReport, hash_text
from nornir_coopchain.model.hashing import ZERO32, to_hex32
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.session import CoopchainSession

__all__ = ["already_recorded", "failed_leaf", "record_change", "verified_before"]


def record_change(
    session: CoopchainSession,
    change: ApprovedChange,
    journal: Journal,
    report: EvidenceReport,
    *,
    pushed: tuple[str, ...],
    hosts: list[str],
    resumed: bool,
) -> ChangeOutcome:
    """Record the verification of ``report`` once (``pushed``: the devices this run pushed),
    and keep its evidence."""
    proposal_id = change.proposal_id
    summary = devices_summary(pushed, tuple(h for h in hosts if h not in pushed))
    doing = f"this run verified the devices ({summary}) and recorded nothing"
    try:
        done = already_recorded(session, proposal_id, journal, doing)
        if done is not None:
            return done
        try:
            recorded = session.coop.record_verification(
                session.account,
                proposal_id,
                report.evidence_root(),
                report.devices_ok,
                report.devices_failed,
            )
        except UnexpectedProposalState:  # recorded meanwhile, by another run or an earlier one
            done = already_recorded(session, proposal_id, journal, doing)
            if done is None:
                raise
            return done
        state = session.coop.state(proposal_id)
    except ChainError as exc:
        if isinstance(exc, ContractError):
            raise
        raise ChainConnectionError(
            f"the chain could not be used to record proposal {proposal_id} "
            f"({type(exc).__name__}: {exc}); {report.devices_ok} device(s) verified, "
            f"{report.devices_failed} failed, {summary}; the evidence is kept in the journal. "
            f"{resume_hint(proposal_id)}"
        ) from exc
    journal.write_evidence(report)
    record = journal.recorded(report.evidence_root(), recorded.tx_hash)
    return change_outcome(
        report, record, state=state, emergency=change.proposal.emergency, resumed=resumed
    )


def already_recorded(
    session: CoopchainSession, proposal_id: int, journal: Journal | None, doing: str
) -> ChangeOutcome | None:
    """The outcome of a change this state directory recorded (a resumed run), else None;
    a record that a reorg can still take out is waited for first (``_settled``).

    Raises:
        AlreadyRecorded: another run recorded it (``doing`` says what this run did).
    """
    info = _settled(session, proposal_id)
    if not _is_recorded(info):
        return None
    report = journal.evidence(info.evidence_root) if journal is not None else None
    if journal is None or report is None:
        raise _recorded_elsewhere(info, doing)
    journal.write_evidence(report)  # the recorded report, kept once (a resumed record)
    record = journal.recorded(info.evidence_root)
    return change_outcome(report, record, state=info.state, emergency=info.emergency, resumed=True)


def _settled(session: CoopchainSession, proposal_id: int) -> ProposalInfo:
    """The proposal, once a record seen at the head is ``confirmations`` deep or gone again.

    A record that a reorg can still take out is not done: wait (``receipt_timeout`` at
    most, then take it as it stands) until it is deep enough, or until it has vanished, in
    which case the change is not recorded and this run records it.
    """
    coop, client = session.coop, session.client
    info = coop.proposal(proposal_id)
    deadline = time.monotonic() + client.receipt_timeout
    while client.confirmations and _is_recorded(info) and time.monotonic() < deadline:
        if _is_recorded(coop.proposal(proposal_id, block=client.confirmed_block())):
            break
        time.sleep(client.poll_interval)
        info = coop.proposal(proposal_id)
    return info


def _is_recorded(info: ProposalInfo) -> bool:
    # an emergency change may be recorded while Active
    return info.recorded or info.state in (ProposalState.Verified, ProposalState.VerificationFailed)


def _recorded_elsewhere(info: ProposalInfo, doing: str) -> AlreadyRecorded:
    early = info.emergency and info.state is ProposalState.Active
    before = " before its ratification" if early else ""
    return AlreadyRecorded(
        f"proposal {info.proposal_id} is already recorded{before} on chain by another run "
        f"({info.state.name}, evidence root {info.evidence_root}), with evidence this state "
        f"directory does not hold: {doing}. Audit it where it was recorded "
        f"(`coopchain audit {info.proposal_id}` with that state directory) or from the "
        "devices' proof files",
        proposal_id=info.proposal_id,
    )


def verified_before(found: Journal) -> EvidenceReport | None:
    """The evidence report of a run killed after it had pushed every device and read it
    back (the journal is ``verified``, its report kept), so that a resume pushes no device
    again: a device that failed was rolled back to its base and would look not yet pushed.
    None when a device was not pushed at all (e.g. unreachable): the resume tries it."""
    record = found.read()
    if record.phase != "verified" or record.evidence_root is None:
        return None
    if any(host.applied is None for host in record.hosts.values()):
        return None
    return found.evidence(root=record.evidence_root)


def failed_leaf(host: str, candidate_hash: str, error: str) -> DeviceEvidence:
    """The evidence leaf of a device that was not verified: not compliant, a zero read-back
    hash, and its error as its report."""
    return DeviceEvidence(
        host=host,
        salt=to_hex32(secrets.token_bytes(32)),
        candidate_hash=candidate_hash,
        readback_hash=to_hex32(ZERO32),
        compliant=False,
        report_hash=hash_text(f"{host}: {error}\n"),
    )
