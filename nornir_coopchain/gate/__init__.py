"""Playbook-level functions: one Nornir run becomes ONE proposal, ONE verification record.

``run_gated_change`` does the whole flow; the steps are also available one by one:
:func:`prepare_change` → :func:`build_content` → :func:`propose_change` →
:func:`wait_for_verdict` → :func:`apply_change` → :func:`audit_change`.
:func:`cancel_change` withdraws one's own proposal before it is pushed.

Break-glass: ``run_emergency_change`` declares an emergency change
(:func:`declare_emergency_change`, emergency role only) and applies and records it at once,
without waiting for the vote; the co-owners ratify it by the normal rule by its voting
deadline, or it shows as unratified (an alarm; nothing is reverted).

Both return a :class:`~nornir_coopchain.gate.results.ChangeResult`, a Nornir
``AggregatedResult`` that ``print_result`` shows (its ``report`` attribute holds the typed
report). :func:`dry_run_change` (or ``dry_run=True``) does the whole flow without sending.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nornir.core import Nornir
from pydantic import BaseModel, ConfigDict

from nornir_coopchain.gate.apply import apply_change
from nornir_coopchain.gate.approved import ApprovedChange, fetch_change
from nornir_coopchain.gate.audit import AuditReport, DeviceAudit, audit_change, audit_proof
from nornir_coopchain.gate.cancel import cancel_change
from nornir_coopchain.gate.dryrun import DryRunReport, dry_run_change, session_resource_set
from nornir_coopchain.gate.outcome import ChangeOutcome, DeviceOutcome
from nornir_coopchain.gate.propose import (
    MAX_CONTENT_BYTES,
    PreparedChange,
    ProposalHandle,
    build_content,
    declare_emergency_change,
    prepare_change,
    propose_change,
)
from nornir_coopchain.gate.results import ChangeResult, change_result
from nornir_coopchain.gate.verdict import VerdictTimeout, wait_for_verdict
from nornir_coopchain.model.content import ChangeWindow, ProposalContent
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.model.times import iso
from nornir_coopchain.plugins.connections.coopchain import coopchain_session
from nornir_coopchain.session import CoopchainSession

__all__ = [
    "ApprovedChange",
    "AuditReport",
    "ChangeOutcome",
    "ChangeResult",
    "DeviceAudit",
    "DeviceOutcome",
    "DryRunReport",
    "EmergencyChangeReport",
    "GatedChangeReport",
    "PreparedChange",
    "ProposalHandle",
    "VerdictTimeout",
    "apply_change",
    "audit_change",
    "audit_proof",
    "build_content",
    "cancel_change",
    "declare_emergency_change",
    "dry_run_change",
    "fetch_change",
    "prepare_change",
    "propose_change",
    "run_emergency_change",
    "run_gated_change",
    "wait_for_verdict",
]


_ENDED_UNRECORDED = (ProposalState.Rejected, ProposalState.Expired, ProposalState.Canceled)


class GatedChangeReport(BaseModel):
    """The whole gated change: proposal, verdict, and (if approved) the applied outcome."""

    model_config = ConfigDict(frozen=True)

    proposal_id: int
    verdict: ProposalState
    devices: int
    outcome: ChangeOutcome | None


def run_gated_change(
    nr: Nornir,
    session: CoopchainSession | None = None,
    *,
    title: str,
    window: ChangeWindow,
    description: str = "",
    resource_set: str | None = None,
    template: str | None = None,
    templates: Path = Path("templates"),
    replace: bool = True,
    revert_in: int | None = 300,
    verdict_timeout: float = 3600.0,
    poll_interval: float = 2.0,
    progress: Callable[[str], None] | None = None,
    max_content_bytes: int = MAX_CONTENT_BYTES,
    dry_run: bool | None = None,
) -> ChangeResult:
    """Render, dry-run, propose, wait for the verdict and, only if approved, apply and record.

    ``session`` defaults to the hosts' (:func:`coopchain_session`); ``window`` takes unix
    seconds, aware datetimes or ISO 8601 strings with a zone (:class:`ChangeWindow`);
    ``max_content_bytes`` caps the posted proposal content (see :func:`propose_change`).
    ``dry_run`` (Nornir's ``dry_run`` setting by default) sends nothing: see
    :func:`dry_run_change`.

    Returns:
        Per host: diff, approval, push, read-back and evidence
        (:mod:`~nornir_coopchain.gate.results`); ``failed`` when the verdict is not Approved
        or a device failed; ``report`` a :class:`GatedChangeReport`.

    Raises:
        ConfigError: bad input (no resource set, a host that cannot render or diff).
        ProposalTooLarge: the change does not fit one proposal; nothing was sent.
        ChangeRefused: the approved change may not be applied (e.g. its window closed).
        VerdictTimeout: the vote was still open (or the proposal not yet seen by this
            operator's node) after ``verdict_timeout`` seconds.
    """
    session = session or coopchain_session(nr)
    if nr.data.dry_run if dry_run is None else dry_run:
        return dry_run_change(
            nr,
            session,
            title=title,
            window=window,
            description=description,
            resource_set=resource_set,
            template=template,
            templates=templates,
            replace=replace,
            max_content_bytes=max_content_bytes,
        )
    say = progress or (lambda _line: None)
    prepared, content = _plan(
        nr, session, title, window, description, resource_set, template, templates, replace
    )
    handle = propose_change(
        session, content, prepared.candidates, max_content_bytes=max_content_bytes
    )
    say(f"proposal {handle.proposal_id}: {content.device_count} devices, one signed proposal")
    verdict = wait_for_verdict(
        session,
        handle.proposal_id,
        timeout=verdict_timeout,
        poll_interval=poll_interval,
        progress=say,
    )
    say(f"proposal {handle.proposal_id}: {verdict.name}")
    if verdict in _ENDED_UNRECORDED and handle.journal.read().phase != "closed":
        handle.journal.closed(verdict.name)
    outcome = None
    if verdict is ProposalState.Approved:
        outcome = apply_change(
            nr,
            session,
            handle.proposal_id,
            template=template,
            templates=templates,
            revert_in=revert_in,
        )
        say(
            f"proposal {handle.proposal_id}: {outcome.devices_ok} verified, "
            f"{outcome.devices_failed} failed, recorded {outcome.state.name}"
        )
    report = GatedChangeReport(
        proposal_id=handle.proposal_id,
        verdict=verdict,
        devices=content.device_count,
        outcome=outcome,
    )
    return _result(nr, session, report, handle, outcome)


class EmergencyChangeReport(BaseModel):
    """A break-glass change: declared, applied and recorded before the vote."""

    model_config = ConfigDict(frozen=True)

    proposal_id: int
    ratify_by: int
    """The voting deadline (unix time) by which the co-owners must ratify the change."""
    devices: int
    outcome: ChangeOutcome


def run_emergency_change(
    nr: Nornir,
    session: CoopchainSession | None = None,
    *,
    title: str,
    window: ChangeWindow,
    description: str = "",
    resource_set: str | None = None,
    template: str | None = None,
    templates: Path = Path("templates"),
    replace: bool = True,
    revert_in: int | None = 300,
    progress: Callable[[str], None] | None = None,
    max_content_bytes: int = MAX_CONTENT_BYTES,
) -> ChangeResult:
    """Render, dry-run, declare an emergency change, apply and record it at once.

    No waiting for the vote: the proposal is flagged emergency on chain when declared, and
    the co-owners ratify it afterwards by the resource set's normal rule by its voting
    deadline (``ratify_by``). Until then it stays Active; unratified, it stays on record as
    such (``coopchain status`` alarm) and nothing is reverted.

    Returns:
        As :func:`run_gated_change`; ``report`` an :class:`EmergencyChangeReport`.

    Raises:
        ConfigError: bad input (no resource set, a host that cannot render or diff).
        NotEmergencyRole: the operator does not hold the set's emergency role (nothing done).
        InvalidWindow: ``window`` is not open yet or is invalid (nothing done).
        ChangeRefused: the change may not be applied (e.g. a stale device); nothing touched.
        ProposalTooLarge: the change does not fit one proposal (``max_content_bytes``, as
            for :func:`propose_change`); nothing was sent.
    """
    session = session or coopchain_session(nr)
    say = progress or (lambda _line: None)
    prepared, content = _plan(
        nr, session, title, window, description, resource_set, template, templates, replace
    )
    handle = declare_emergency_change(
        session, content, prepared.candidates, max_content_bytes=max_content_bytes
    )
    ratify_by = session.coop.proposal(handle.proposal_id).vote_end
    say(
        f"proposal {handle.proposal_id}: EMERGENCY declared for {content.device_count} devices; "
        f"to be ratified by {iso(ratify_by)}"
    )
    outcome = apply_change(
        nr, session, handle.proposal_id, template=template, templates=templates, revert_in=revert_in
    )
    say(
        f"proposal {handle.proposal_id}: {outcome.devices_ok} verified, "
        f"{outcome.devices_failed} failed, recorded before the vote ({outcome.state.name})"
    )
    report = EmergencyChangeReport(
        proposal_id=handle.proposal_id,
        ratify_by=ratify_by,
        devices=content.device_count,
        outcome=outcome,
    )
    return _result(nr, session, report, handle, outcome)


def _result(
    nr: Nornir,
    session: CoopchainSession,
    report: BaseModel,
    handle: ProposalHandle,
    outcome: ChangeOutcome | None,
) -> ChangeResult:
    """The Nornir result of a proposed change, from its journal and the chain."""
    info = session.coop.proposal(handle.proposal_id)
    evidence = handle.journal.evidence() if outcome is not None else None
    return change_result(nr, report, handle.journal.content(), info, outcome, evidence)


def _plan(
    nr: Nornir,
    session: CoopchainSession,
    title: str,
    window: ChangeWindow,
    description: str,
    resource_set: str | None,
    template: str | None,
    templates: Path,
    replace: bool,
) -> tuple[PreparedChange, ProposalContent]:
    """Render and dry-run every host, and build the change's content."""
    prepared = prepare_change(nr, template=template, templates=templates, replace=replace)
    content = build_content(
        prepared,
        resource_set=resource_set or session_resource_set(session),
        title=title,
        description=description,
        window=window,
        created_at=session.client.now(),
        templates=templates,
    )
    return prepared, content
