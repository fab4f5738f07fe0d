"""What applying a change did, per device and for the change, from its evidence and its
journal."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from nornir_coopchain.journal import ChangeJournal
from nornir_coopchain.model.content import EvidenceReport
from nornir_coopchain.model.rules import ProposalState

__all__ = ["ChangeOutcome", "DeviceOutcome", "change_outcome"]


class DeviceOutcome(BaseModel):
    """What happened on one device of the change."""

    model_config = ConfigDict(frozen=True)

    host: str
    verified: bool
    applied: bool
    rolled_back: bool
    error: str | None = None
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    rollback_error: str | None = None
    """A rollback that failed or left residual lines: a state a human must look at."""


class ChangeOutcome(BaseModel):
    """The result of applying one approved change."""

    model_config = ConfigDict(frozen=True)

    proposal_id: int
    state: ProposalState
    evidence_root: str
    devices_ok: int
    devices_failed: int
    devices: tuple[DeviceOutcome, ...]
    record_tx: str | None
    resumed: bool
    emergency: bool = False
    """An emergency change (break-glass); ``state`` stays Active until it is ratified."""


def change_outcome(
    report: EvidenceReport,
    record: ChangeJournal,
    *,
    state: ProposalState,
    emergency: bool,
    resumed: bool,
) -> ChangeOutcome:
    """The outcome of a recorded change, from its evidence and its journal's host records."""
    devices = []
    for leaf in report.devices:
        host = record.hosts.get(leaf.host)
        verified = host.verified if host is not None else None
        if host is None:  # a journal without host records: the evidence alone
            device = DeviceOutcome(
                host=leaf.host, verified=leaf.compliant, applied=leaf.compliant, rolled_back=False
            )
        elif verified is None:
            error = host.error or "not verified"
            device = DeviceOutcome(
                host=leaf.host,
                verified=False,
                applied=host.applied is not None,
                rolled_back=False,
                error=error,
            )
        else:
            device = DeviceOutcome(
                host=leaf.host,
                verified=verified.evidence.compliant,
                applied=host.applied is not None,
                rolled_back=verified.rolled_back,
                missing=verified.missing,
                extra=verified.extra,
                rollback_error=verified.rollback_error,
            )
        devices.append(device)
    assert record.proposal_id is not None  # set when proposed, or by gate.apply._journal_for
    return ChangeOutcome(
        proposal_id=record.proposal_id,
        state=state,
        evidence_root=report.evidence_root(),
        devices_ok=report.devices_ok,
        devices_failed=report.devices_failed,
        devices=tuple(devices),
        record_tx=record.record_tx,
        resumed=resumed,
        emergency=emergency,
    )
