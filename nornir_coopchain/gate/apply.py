"""Apply an approved change, verify every device, and record ONE verification on chain."""

from __future__ import annotations

import secrets
from functools import partial
from pathlib import Path

from nornir.core import Nornir
from nornir.core.task import Result, Task
from pydantic import BaseModel, ConfigDict

from nornir_coopchain.exceptions import ChangeRefused, ConfigError
from nornir_coopchain.gate.approved import ApprovedChange, fetch_change
from nornir_coopchain.gate.propose import describe, failed_hosts
from nornir_coopchain.journal import ChangeJournal, HostRecord, Journal
from nornir_coopchain.model.content import DeviceEvidence, EvidenceReport, hash_text
from nornir_coopchain.model.hashing import ZERO32, to_hex32
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.plugins.results import AppliedDevice, RenderedConfig, VerifiedDevice
from nornir_coopchain.plugins.tasks.coopchain_apply import coopchain_apply
from nornir_coopchain.plugins.tasks.coopchain_render import coopchain_render
from nornir_coopchain.plugins.tasks.coopchain_verify import coopchain_verify
from nornir_coopchain.session import CoopchainSession

__all__ = ["ChangeOutcome", "DeviceOutcome", "apply_change"]


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


def _gated_host(
    task: Task,
    change: ApprovedChange,
    template: str | None,
    templates: Path,
    revert_in: int | None,
    chain_now: int,
    configs: dict[str, str] | None,
) -> Result:
    """Preflight (``configs`` None: render and check only) or apply and verify the host.

    The apply pass pushes the config its preflight rendered and checked (``configs``).
    """
    preflight = configs is None
    if configs is None:
        rendered: RenderedConfig = task.run(
            coopchain_render, template=template, path=templates
        ).result
        config = rendered.config
    else:
        config = configs[task.host.name]
    applied: AppliedDevice = task.run(
        coopchain_apply,
        change=change,
        config=config,
        revert_in=revert_in,
        dry_run=preflight,
        chain_now=chain_now,
    ).result
    if preflight:
        return Result(host=task.host, result=config)
    confirm = None if applied.already_applied else applied.commit_confirm
    verify = task.run(coopchain_verify, change=change, config=config, confirm=confirm)
    return Result(host=task.host, result=(applied, verify.result), failed=verify.failed)


def _failed_leaf(host: str, candidate_hash: str, error: str) -> DeviceEvidence:
    return DeviceEvidence(
        host=host,
        salt=to_hex32(secrets.token_bytes(32)),
        candidate_hash=candidate_hash,
        readback_hash=to_hex32(ZERO32),
        compliant=False,
        report_hash=hash_text(f"{host}: {error}\n"),
    )


def _journal_for(session: CoopchainSession, change: ApprovedChange) -> Journal:
    root = session.settings.journal_dir()
    client, coop = session.client, session.coop
    found = Journal.find(
        root, chain_id=client.chain_id, contract=coop.address, proposal_id=change.proposal_id
    )
    if found is not None:
        return found
    return Journal.create(
        root,
        change.content,
        {},
        ChangeJournal(
            content_hash=change.proposal.content_hash,
            chain_id=client.chain_id,
            contract=coop.address,
            proposer=session.account.address,
            proposal_id=change.proposal_id,
            phase="decided",
        ),
        posted=change.posted,
    )


def _already_recorded(
    session: CoopchainSession, proposal_id: int, journal: Journal
) -> ChangeOutcome | None:
    info = session.coop.proposal(proposal_id)
    recorded = info.state in (ProposalState.Verified, ProposalState.VerificationFailed)
    if not (recorded or info.recorded):  # an emergency change may be recorded while Active
        return None
    report = journal.evidence()
    if report is None or report.evidence_root() != info.evidence_root:
        raise ChangeRefused(
            f"proposal {proposal_id} is already recorded ({info.state.name}) with evidence "
            "this state directory does not hold"
        )
    record = journal.read()
    journal.save(record.model_copy(update={"phase": "recorded"}))
    return ChangeOutcome(
        proposal_id=proposal_id,
        state=info.state,
        evidence_root=info.evidence_root,
        devices_ok=report.devices_ok,
        devices_failed=report.devices_failed,
        devices=tuple(
            DeviceOutcome(
                host=leaf.host,
                verified=leaf.compliant,
                applied=leaf.compliant,
                rolled_back=False,
            )
            for leaf in report.devices
        ),
        record_tx=record.record_tx,
        resumed=True,
        emergency=info.emergency,
    )


def _check_emergency_applier(session: CoopchainSession, change: ApprovedChange) -> None:
    """Before its ratification an emergency change is applied once, only by who may record it."""
    info = change.proposal
    if info.recorded:
        raise ChangeRefused(
            f"proposal {info.proposal_id} is an emergency change already recorded before its "
            "ratification, with evidence this state directory does not hold"
        )
    proposer = session.coop.members()[info.proposer_index].account
    if session.account.address not in (proposer, info.executor):
        raise ChangeRefused(
            f"proposal {info.proposal_id} is an emergency change not yet ratified: only its "
            "proposer or executor may apply it before the vote"
        )


def apply_change(
    nr: Nornir,
    session: CoopchainSession,
    proposal_id: int,
    *,
    template: str | None = None,
    templates: Path = Path("templates"),
    revert_in: int | None = 300,
) -> ChangeOutcome:
    """Push the approved change to its devices, verify each, record ONE verification.

    An emergency change (declared with :func:`declare_emergency_change`) is applied while
    its ratification vote is still open (Active), by its proposer or executor only; it is
    recorded at once and stays Active until the co-owners ratify it. An ordinary proposal
    must be Approved.

    Every device of the approved manifest is re-rendered, checked (window, Merkle proof,
    approved hashes, no stale base), committed, read back and verified; a device that fails
    is rolled back and recorded as failed, and never stops the others. A rerun after a kill
    skips devices that already run the approved config and never records twice.

    Raises:
        ChangeRefused: the proposal is not Approved (nor an Active emergency change applied
            by its proposer or executor), its window is not open, or its content does not
            match the chain; no device was touched.
        ConfigError: a device of the manifest is not in the inventory; no device was touched.
    """
    journal = Journal.find(
        session.settings.journal_dir(),
        chain_id=session.client.chain_id,
        contract=session.coop.address,
        proposal_id=proposal_id,
    )
    if journal is not None:
        done = _already_recorded(session, proposal_id, journal)
        if done is not None:
            return done
    change = fetch_change(
        session.coop, proposal_id, states=(ProposalState.Approved,), emergency_active=True
    )
    if change.proposal.state is ProposalState.Active:
        _check_emergency_applier(session, change)
    change.check_window(session.client.now())
    hosts = [device.host for device in change.content.devices]
    missing = sorted(set(hosts) - set(nr.inventory.hosts))
    if missing:
        raise ConfigError(
            f"proposal {proposal_id} names hosts the inventory lacks: {', '.join(missing)}"
        )
    targets = nr.filter(filter_func=lambda host: host.name in hosts)
    run = partial(
        _gated_host,
        change=change,
        template=template,
        templates=templates,
        revert_in=revert_in,
    )
    preflight = targets.run(
        task=run,
        name="coopchain preflight",
        chain_now=session.client.now(),
        configs=None,
        on_failed=True,
    )
    preflight_failed = failed_hosts(preflight)
    refused = {
        host: error
        for host, error in preflight_failed.items()
        if isinstance(error, (ChangeRefused, ConfigError))
    }
    if refused:
        detail = "; ".join(f"{host}: {describe(error)}" for host, error in sorted(refused.items()))
        raise ChangeRefused(f"proposal {proposal_id} refused, no device touched: {detail}")
    journal = _journal_for(session, change)
    record = journal.read().model_copy(update={"phase": "applying"})
    journal.save(record)
    # A host whose preflight failed otherwise (unreachable) fails alone; the others push
    # exactly the config their preflight rendered and checked.
    errors = {host: describe(error) for host, error in preflight_failed.items()}
    configs = {host: str(preflight[host].result) for host in hosts if host not in errors}
    results = targets.filter(filter_func=lambda host: host.name in configs).run(
        task=run,
        name=f"coopchain apply #{proposal_id}",
        chain_now=session.client.now(),
        configs=configs,
        on_failed=True,
    )
    errors.update({host: describe(error) for host, error in failed_hosts(results).items()})
    leaves: list[DeviceEvidence] = []
    outcomes: list[DeviceOutcome] = []
    host_records: dict[str, HostRecord] = {}
    for host in hosts:
        multi = results.get(host, ())
        verified = next((r.result for r in multi if isinstance(r.result, VerifiedDevice)), None)
        applied = next((r.result for r in multi if isinstance(r.result, AppliedDevice)), None)
        if verified is None:
            error = errors.get(host, "not verified")
            leaves.append(_failed_leaf(host, change.entry(host).candidate_hash, error))
            outcomes.append(
                DeviceOutcome(
                    host=host,
                    verified=False,
                    applied=applied is not None,
                    rolled_back=False,
                    error=error,
                )
            )
        else:
            leaves.append(verified.evidence)
            outcomes.append(
                DeviceOutcome(
                    host=host,
                    verified=verified.evidence.compliant,
                    applied=applied is not None,
                    rolled_back=verified.rolled_back,
                    missing=verified.missing,
                    extra=verified.extra,
                    rollback_error=verified.rollback_error,
                )
            )
        host_records[host] = HostRecord(
            applied=applied, verified=verified, error=None if verified else errors.get(host)
        )
    report = EvidenceReport(devices=tuple(leaves))
    journal.write_evidence(report)
    record = record.model_copy(update={"hosts": host_records, "phase": "verified"})
    journal.save(record)

    recorded = session.coop.record_verification(
        session.account,
        proposal_id,
        report.evidence_root(),
        report.devices_ok,
        report.devices_failed,
    )
    record = record.model_copy(
        update={
            "record_tx": recorded.tx_hash,
            "evidence_root": report.evidence_root(),
            "phase": "recorded",
        }
    )
    journal.save(record)
    return ChangeOutcome(
        proposal_id=proposal_id,
        state=session.coop.state(proposal_id),
        evidence_root=report.evidence_root(),
        devices_ok=report.devices_ok,
        devices_failed=report.devices_failed,
        devices=tuple(outcomes),
        record_tx=recorded.tx_hash,
        resumed=False,
        emergency=change.proposal.emergency,
    )
