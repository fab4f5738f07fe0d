"""Apply an approved change, verify every device, and record ONE verification on chain.

The steps have their own modules: who may push and the claim on chain
(:mod:`~nornir_coopchain.gate.claim`), the push pass (:mod:`~nornir_coopchain.gate.push`),
the record (:mod:`~nornir_coopchain.gate.record`) and the outcome it returns
(:mod:`~nornir_coopchain.gate.outcome`).
"""

from __future__ import annotations

from pathlib import Path

from nornir.core import Nornir
from nornir.core.task import Result, Task

from nornir_coopchain.chain.models import new_run_id
from nornir_coopchain.exceptions import ChangeRefused, ConfigError
from nornir_coopchain.gate.approved import ApprovedChange, fetch_change
from nornir_coopchain.gate.claim import check_applier, claim_change
from nornir_coopchain.gate.content import templates_hash
from nornir_coopchain.gate.outcome import ChangeOutcome
from nornir_coopchain.gate.prepare import describe, failed_hosts, inventory_hash
from nornir_coopchain.gate.push import push_devices
from nornir_coopchain.gate.record import (
    already_recorded,
    failed_leaf,
    record_change,
    verified_before,
)
from nornir_coopchain.journal import ChangeJournal, HostRecord, Journal, apply_lock
from nornir_coopchain.model.content import DeviceEvidence, EvidenceReport, hash_text
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.plugins.results import RenderedConfig
from nornir_coopchain.plugins.tasks._device import napalm_device, running_config
from nornir_coopchain.plugins.tasks.coopchain_apply import coopchain_apply
from nornir_coopchain.plugins.tasks.coopchain_render import coopchain_render
from nornir_coopchain.session import CoopchainSession

__all__ = ["apply_change"]


def apply_change(
    nr: Nornir,
    session: CoopchainSession,
    proposal_id: int,
    *,
    template: str | None = None,
    templates: Path = Path("templates"),
    revert_in: int | None = 300,
    take_over: str | None = None,
) -> ChangeOutcome:
    """Push the approved change to its devices, verify each, record ONE verification.

    Only the proposal's proposer or the executor named on chain may push it, and one run
    only: before any device is pushed, the run claims the change on chain under a random run
    ID kept in its journal (a compare-and-swap in the contract), so that a second run, from
    another state directory or machine, also of the same key, is refused with no device
    touched; a rerun from the same state directory resumes under its run ID. Within a state
    directory one process at a time applies it (an OS file lock, held for the whole run).

    An emergency change (declared with :func:`declare_emergency_change`) is applied while
    its ratification vote is still open (Active), by its proposer or executor only; it is
    recorded at once and stays Active until the co-owners ratify it. An ordinary proposal
    must be Approved.

    Every device of the approved manifest gets the config the proposal was made from (kept
    in this state directory's journal, when its templates and inventory data are unchanged;
    else rendered again from the pinned template), is checked (window, Merkle proof,
    approved hashes, no stale base), committed, read back and verified; a device that fails
    is rolled back and recorded as failed, and never stops the others. Where the driver can,
    the base is checked again inside the commit itself: a device changed out of band since
    its preflight is refused as stale (nothing changed on it) and recorded failed, and one
    that another run just pushed the approved config to is verified, not pushed again. A
    rerun after a kill skips devices that already run the approved config and never records
    twice; its evidence is kept (``evidence.json``) only once recorded, and never replaced.
    The journal notes each device before its commit: a rerun does not push again a device
    a killed run began to push that runs its base config again (it is recorded failed).

    Arguments:
        take_over: the run ID of a run that holds the claim and is gone for good (its state
            directory lost): this run takes the claim over from it and pushes.

    Raises:
        ChangeRefused: the proposal is not Approved (nor an Active emergency change), this
            key is neither its proposer nor its executor, its window is not open, its
            content does not match the chain, or another process of this state directory
            is applying it; no device was touched.
        ClaimedByAnotherRun: another run holds the claim on chain; no device was touched.
        AlreadyRecorded: another run (another state directory) recorded the change; this
            run records nothing.
        ConfigError: a device of the manifest is not in the inventory; no device was touched.
        ApplyInterrupted: Ctrl-C while pushing (naming the devices pushed).
        ChainConnectionError: the chain could not be used to record (naming the devices
            pushed; a rerun records).
    """
    root = session.settings.journal_dir()
    chain_id, contract = session.client.chain_id, session.coop.address
    with apply_lock(root, chain_id=chain_id, contract=contract, proposal_id=proposal_id):
        journal = Journal.find(root, chain_id=chain_id, contract=contract, proposal_id=proposal_id)
        done = already_recorded(session, proposal_id, journal, "this run pushed nothing")
        if done is not None:
            return done
        return _apply(
            nr,
            session,
            proposal_id,
            journal,
            template=template,
            templates=templates,
            revert_in=revert_in,
            take_over=take_over,
        )


def _apply(
    nr: Nornir,
    session: CoopchainSession,
    proposal_id: int,
    found: Journal | None,
    *,
    template: str | None,
    templates: Path,
    revert_in: int | None,
    take_over: str | None,
) -> ChangeOutcome:
    change = fetch_change(
        session.coop, proposal_id, states=(ProposalState.Approved,), emergency_active=True
    )
    check_applier(session, change)
    change.check_window(session.client.now())
    hosts = [device.host for device in change.content.devices]
    missing = sorted(set(hosts) - set(nr.inventory.hosts))
    if missing:
        raise ConfigError(
            f"proposal {proposal_id} names hosts the inventory lacks: {', '.join(missing)}"
        )
    if found is not None and (kept := verified_before(found)) is not None:
        return record_change(session, change, found, kept, pushed=(), hosts=hosts, resumed=True)
    begun, done = found.pushes() if found is not None else (frozenset(), {})
    read_back = {host for host, record in done.items() if record.verified is not None}
    targets = nr.filter(filter_func=lambda host: host.name in hosts and host.name not in read_back)
    preflight = targets.run(
        task=_preflight_host,
        name="coopchain preflight",
        change=change,
        template=template,
        templates=templates,
        chain_now=session.client.now(),
        stored=_stored_candidates(nr, found, change, template, templates),
        on_failed=True,
    )
    preflight_failed = failed_hosts(preflight)
    if not begun:  # nothing pushed yet: refuse the whole change, or push it
        _refuse_if_any(proposal_id, preflight_failed)
    journal, run_id = _journal_for(session, change, found)
    claim_change(session, change, run_id, take_over)
    chain_now = session.client.now()  # the last chain read before the devices are pushed
    # A host whose preflight failed otherwise (unreachable) fails alone, as does one a killed
    # run began to push that runs its base again; the others push exactly the config their
    # preflight checked.
    errors = {host: describe(error) for host, error in preflight_failed.items()}
    configs: dict[str, tuple[str, str]] = {
        host: preflight[host].result for host in targets.inventory.hosts if host not in errors
    }
    for host in begun & configs.keys():
        if hash_text(configs[host][1]) == change.entry(host).base_config_hash:
            earlier = done[host].error if host in done else None
            errors[host] = f"{earlier}; {INTERRUPTED_PUSH}" if earlier else INTERRUPTED_PUSH
            del configs[host]
    done |= push_devices(
        targets.filter(filter_func=lambda host: host.name in configs),
        change,
        revert_in,
        chain_now=chain_now,
        configs=configs,
        journal=journal,
    )
    leaves: list[DeviceEvidence] = []
    host_records: dict[str, HostRecord] = {}
    for host in hosts:
        record = HostRecord(error=errors[host]) if host in errors else done.get(host)
        record = record or HostRecord(error="not pushed")
        if record.verified is None:
            error = record.error or "not verified"
            leaves.append(failed_leaf(host, change.entry(host).candidate_hash, error))
        else:
            leaves.append(record.verified.evidence)
        host_records[host] = record
    report = EvidenceReport(devices=tuple(leaves))
    journal.stage_evidence(report)  # before its root is sent: a resume finds it
    journal.verified(host_records, report.evidence_root())
    pushed = tuple(
        host
        for host in configs
        if (r := host_records[host].applied) is not None and not r.already_applied
    )
    return record_change(
        session, change, journal, report, pushed=pushed, hosts=hosts, resumed=False
    )


INTERRUPTED_PUSH = (
    "an earlier run of this change began to push this device; the device runs its approved "
    "base config again (the commit was not made, or was undone), so it is not pushed a second "
    "time: prepare a new proposal for it"
)


def _preflight_host(
    task: Task,
    change: ApprovedChange,
    template: str | None,
    templates: Path,
    chain_now: int,
    stored: dict[str, str],
) -> Result:
    """Check the host as the push will (window, proof, approved hashes, no stale base) and
    return the config to push with the running config it was checked against: the candidate
    the proposal was made from (``stored``, when nothing it was rendered from changed
    since), else rendered again from the template."""
    config = stored.get(task.host.name)
    if config is None:
        pinned = template or change.entry(task.host.name).template  # the proposal's template
        rendered: RenderedConfig = task.run(
            coopchain_render, template=pinned, path=templates
        ).result
        config = rendered.config
    base = running_config(napalm_device(task))
    task.run(
        coopchain_apply, change=change, config=config, dry_run=True, chain_now=chain_now, base=base
    )
    return Result(host=task.host, result=(config, base))


def _stored_candidates(
    nr: Nornir,
    journal: Journal | None,
    change: ApprovedChange,
    template: str | None,
    templates: Path,
) -> dict[str, str]:
    """The candidates the proposal was made from (kept in its journal), if rendering again
    would give the same: the pinned templates, the same templates directory (its hash) and
    the same inventory data (its hash); else none (every host is rendered again)."""
    content = change.content
    if journal is None or template is not None or content.templates_hash is None:
        return {}
    if content.templates_hash != templates_hash(templates):
        return {}
    if content.inventory_hash != inventory_hash(nr):
        return {}
    return journal.candidates()


def _journal_for(
    session: CoopchainSession, change: ApprovedChange, found: Journal | None
) -> tuple[Journal, str]:
    """The change's journal, opened (or created, by an executor from another state directory)
    at the start of applying, with the run ID to claim the change under (a resumed run
    keeps the one it claimed under)."""
    if found is None:
        found = Journal.create(
            session.settings.journal_dir(),
            change.content,
            {},
            ChangeJournal(
                content_hash=change.proposal.content_hash,
                chain_id=session.client.chain_id,
                contract=session.coop.address,
                proposer=session.account.address,
                proposal_id=change.proposal_id,
                phase="decided",
                verdict=change.proposal.state.name,
            ),
            posted=change.posted,
        )
    elif found.read().phase == "proposed" and not change.proposal.emergency:
        found.decided(change.proposal.state.name)
    fresh = new_run_id()
    return found, found.applying(fresh).apply_run or fresh


def _refuse_if_any(proposal_id: int, failed: dict[str, BaseException | None]) -> None:
    """Refuse the whole change if a host's preflight refused it (window, proof, approved
    hashes, stale base), before any device is touched.

    Raises:
        ChangeRefused: naming each refused host.
    """
    refused = {
        host: error
        for host, error in failed.items()
        if isinstance(error, (ChangeRefused, ConfigError))
    }
    if refused:
        detail = "; ".join(f"{host}: {describe(error)}" for host, error in sorted(refused.items()))
        raise ChangeRefused(f"proposal {proposal_id} refused, no device touched: {detail}")
