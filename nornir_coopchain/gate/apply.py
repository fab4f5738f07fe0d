"""Apply an approved change, verify every device, and record ONE verification on chain."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from nornir.core import Nornir
from nornir.core.exceptions import NornirSubTaskError
from nornir.core.inventory import Host
from nornir.core.task import AggregatedResult, MultiResult, Result, Task
from pydantic import BaseModel, ConfigDict

from nornir_coopchain.chain.errors import ApplyClaimed, UnexpectedProposalState
from nornir_coopchain.chain.models import ZERO_HASH, ProposalInfo, new_run_id
from nornir_coopchain.exceptions import (
    AlreadyRecorded,
    ChainConnectionError,
    ChainError,
    ChangeRefused,
    ClaimedByAnotherRun,
    ConfigError,
    ContractError,
)
from nornir_coopchain.gate.approved import ApprovedChange, fetch_change
from nornir_coopchain.gate.content import templates_hash
from nornir_coopchain.gate.prepare import describe, failed_hosts, inventory_hash
from nornir_coopchain.journal import ChangeJournal, HostRecord, Journal, apply_lock
from nornir_coopchain.model.content import DeviceEvidence, EvidenceReport, hash_text
from nornir_coopchain.model.hashing import ZERO32, to_hex32
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.plugins.results import AppliedDevice, RenderedConfig, VerifiedDevice
from nornir_coopchain.plugins.tasks._device import napalm_device, running_config
from nornir_coopchain.plugins.tasks.coopchain_apply import coopchain_apply
from nornir_coopchain.plugins.tasks.coopchain_render import coopchain_render
from nornir_coopchain.plugins.tasks.coopchain_verify import coopchain_verify
from nornir_coopchain.session import CoopchainSession

__all__ = [
    "ApplyInterrupted",
    "ChangeOutcome",
    "DeviceOutcome",
    "apply_change",
    "devices_summary",
    "resume_hint",
]


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


def _push_host(
    task: Task,
    change: ApprovedChange,
    revert_in: int | None,
    chain_now: int,
    configs: dict[str, tuple[str, str]],
    halt: threading.Event,
    journal: Journal,
) -> Result:
    """Push the config the preflight checked and verify it, unless ``halt`` is set (the run
    is being interrupted): the host is then left untouched. The commit is made against the
    running config the preflight read where the driver checks it atomically; else the
    device is read again right before its commit. The journal notes the push before the
    commit, and what happened once it is done."""
    host = task.host.name
    if halt.is_set():
        raise ChangeRefused("not pushed: the run was interrupted", host=host)
    config, base = configs[host]
    journal.pushing(host)
    try:
        applied: AppliedDevice = task.run(
            coopchain_apply,
            change=change,
            config=config,
            revert_in=revert_in,
            dry_run=False,
            chain_now=chain_now,
            base=base,
        ).result
        confirm = None if applied.already_applied else applied.commit_confirm
        verify = task.run(coopchain_verify, change=change, config=config, confirm=confirm)
    except Exception as exc:  # a non-compliant read-back too: Nornir raises for a failed subtask
        journal.pushed(host, _host_record(task.results, describe(_cause(exc))))
        raise
    journal.pushed(host, _host_record(task.results, None))
    return Result(host=task.host, result=(applied, verify.result))


def _host_record(results: Iterable[Result], error: str | None) -> HostRecord:
    """What happened on a host, from the results of its push: a read-back made (compliant
    or not), or the error that stopped it before."""
    verified = next((r.result for r in results if isinstance(r.result, VerifiedDevice)), None)
    applied = next((r.result for r in results if isinstance(r.result, AppliedDevice)), None)
    if verified is not None:
        _ = verified.evidence.leaf_hash  # here, not in the main thread's evidence tree
    failure = None if verified is not None else error or "not verified"
    return HostRecord(applied=applied, verified=verified, error=failure)


def _cause(exc: BaseException) -> BaseException:
    """The exception a subtask raised, not Nornir's ``NornirSubTaskError`` around it."""
    if isinstance(exc, NornirSubTaskError):
        causes = [r.exception for r in exc.result if r.exception is not None]
        return _cause(causes[0]) if causes else exc
    return exc


class ApplyInterrupted(KeyboardInterrupt):
    """Raised when Ctrl-C (a KeyboardInterrupt) stops :func:`apply_change` while it pushes:
    the devices in flight finish their push and verification, no other device is pushed and
    nothing is recorded; a rerun resumes.

    Attributes:
        proposal_id: the proposal number.
        pushed: the hosts this run committed the change to.
        untouched: the hosts this run did not push.
    """

    def __init__(self, proposal_id: int, pushed: tuple[str, ...], untouched: tuple[str, ...]):
        self.proposal_id = proposal_id
        self.pushed = pushed
        self.untouched = untouched
        super().__init__(
            f"applying proposal {proposal_id} was interrupted, nothing recorded; "
            f"{devices_summary(pushed, untouched)}. {resume_hint(proposal_id)}"
        )


def devices_summary(pushed: tuple[str, ...], untouched: tuple[str, ...]) -> str:
    """``pushed by this run: r1, r2; not pushed: r3``."""
    done, left = ", ".join(pushed) or "none", ", ".join(untouched) or "none"
    return f"pushed by this run: {done}; not pushed: {left}"


def resume_hint(proposal_id: int) -> str:
    """How to resume an interrupted apply."""
    return (
        f"Run `coopchain apply {proposal_id}` again to resume: devices already running the "
        "approved config are verified, not pushed again, and ONE verification is recorded "
        "(a commit-confirm left unconfirmed reverts by itself)"
    )


class _Pushed:
    """A Nornir processor noting each host whose ``coopchain_apply`` committed the change."""

    def __init__(self) -> None:
        self.hosts: set[str] = set()

    def task_started(self, task: Task) -> None:
        """Nothing to note."""

    def task_completed(self, task: Task, result: AggregatedResult) -> None:
        """Nothing to note."""

    def task_instance_started(self, task: Task, host: Host) -> None:
        """Nothing to note."""

    def task_instance_completed(self, task: Task, host: Host, result: MultiResult) -> None:
        """Nothing to note."""

    def subtask_instance_started(self, task: Task, host: Host) -> None:
        """Nothing to note."""

    def subtask_instance_completed(self, task: Task, host: Host, result: MultiResult) -> None:
        """Note a committed push."""
        if task.name == "coopchain_apply" and not result.failed and result[0].changed:
            self.hosts.add(host.name)


def _push(
    nr: Nornir,
    change: ApprovedChange,
    revert_in: int | None,
    chain_now: int,
    configs: dict[str, tuple[str, str]],
    journal: Journal,
) -> AggregatedResult:
    """Run the apply pass in a worker thread, so that a Ctrl-C in this (main) thread can stop
    the pushes not yet started while those in flight finish.

    Raises:
        ApplyInterrupted: on KeyboardInterrupt, once the devices in flight are done.
    """
    proposal_id = change.proposal_id
    halt, pushed = threading.Event(), _Pushed()
    done: list[AggregatedResult] = []
    failure: list[BaseException] = []

    finished = threading.Event()

    def work() -> None:
        try:
            done.append(
                nr.with_processors([*nr.processors, pushed]).run(
                    task=_push_host,
                    name=f"coopchain apply #{proposal_id}",
                    change=change,
                    revert_in=revert_in,
                    halt=halt,
                    on_failed=True,
                    chain_now=chain_now,
                    configs=configs,
                    journal=journal,
                )
            )
        except BaseException as exc:  # handed to the main thread
            failure.append(exc)
        finally:
            finished.set()

    # Waited on through an Event, not Thread.join: a KeyboardInterrupt landing inside join()
    # can leave the thread marked as ended while it still runs (CPython 3.11), and the
    # devices in flight would then lose their session mid-commit.
    threading.Thread(target=work, name=f"coopchain-apply-{proposal_id}", daemon=True).start()
    try:
        while not finished.wait(0.1):
            pass
    except KeyboardInterrupt:
        halt.set()
        finished.wait()
        hosts = sorted(nr.inventory.hosts)
        untouched = tuple(host for host in hosts if host not in pushed.hosts)
        raise ApplyInterrupted(proposal_id, tuple(sorted(pushed.hosts)), untouched) from None
    if failure:
        raise failure[0]
    return done[0]


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


def _failed_leaf(host: str, candidate_hash: str, error: str) -> DeviceEvidence:
    return DeviceEvidence(
        host=host,
        salt=to_hex32(secrets.token_bytes(32)),
        candidate_hash=candidate_hash,
        readback_hash=to_hex32(ZERO32),
        compliant=False,
        report_hash=hash_text(f"{host}: {error}\n"),
    )


def _journal_for(
    session: CoopchainSession, change: ApprovedChange, found: Journal | None
) -> Journal:
    """The change's journal, opened (or created, by an executor from another state directory)
    at the start of applying."""
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
    found.applying(new_run_id())  # a resumed run keeps the run ID it claimed under
    return found


def _claim(
    session: CoopchainSession, change: ApprovedChange, run_id: str, take_over: str | None
) -> None:
    """Hold the proposal's apply claim on chain under ``run_id`` before any device is pushed:
    one run pushes a change, whatever the state directories or machines of its executors.

    Raises:
        ClaimedByAnotherRun: another run holds it (and ``take_over`` does not name that
            run); no device was touched.
    """
    proposal_id = change.proposal_id
    current = session.coop.proposal(proposal_id).apply_run
    if current.lower() == run_id.lower():
        return  # this state directory's run, resumed
    previous = current if int(current, 16) else ZERO_HASH
    if int(previous, 16) and (take_over or "").lower() != previous.lower():
        raise _claimed_elsewhere(proposal_id, previous, take_over)
    try:
        session.coop.claim_apply(session.account, proposal_id, run_id, previous)
    except ApplyClaimed as exc:  # another run claimed it meanwhile
        raise _claimed_elsewhere(proposal_id, exc.current_run, take_over) from exc


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


def _is_recorded(info: ProposalInfo) -> bool:
    # an emergency change may be recorded while Active
    return info.recorded or info.state in (ProposalState.Verified, ProposalState.VerificationFailed)


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


def _already_recorded(
    info: ProposalInfo, journal: Journal | None, doing: str
) -> ChangeOutcome | None:
    """The outcome of a change this state directory recorded (a resumed run), else None.

    Raises:
        AlreadyRecorded: another run recorded it (``doing`` says what this run did).
    """
    if not _is_recorded(info):
        return None
    report = journal.evidence(info.evidence_root) if journal is not None else None
    if journal is None or report is None:
        raise _recorded_elsewhere(info, doing)
    journal.write_evidence(report)  # the recorded report, kept once (a resumed record)
    record = journal.recorded(info.evidence_root)
    return _outcome(report, record, state=info.state, emergency=info.emergency, resumed=True)


def _outcome(
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
    assert record.proposal_id is not None  # set when proposed, or by _journal_for
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


def _check_applier(session: CoopchainSession, change: ApprovedChange) -> None:
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
        done = _already_recorded(_settled(session, proposal_id), journal, "this run pushed nothing")
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
    _check_applier(session, change)
    change.check_window(session.client.now())
    hosts = [device.host for device in change.content.devices]
    missing = sorted(set(hosts) - set(nr.inventory.hosts))
    if missing:
        raise ConfigError(
            f"proposal {proposal_id} names hosts the inventory lacks: {', '.join(missing)}"
        )
    if found is not None and (kept := _verified_before(found)) is not None:
        return _record(session, change, found, kept, pushed=(), hosts=hosts, resumed=True)
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
    journal = _journal_for(session, change, found)
    run_id = journal.read().apply_run
    assert run_id is not None  # set by applying()
    _claim(session, change, run_id, take_over)
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
    _push(
        targets.filter(filter_func=lambda host: host.name in configs),
        change,
        revert_in,
        chain_now=chain_now,
        configs=configs,
        journal=journal,
    )
    done = journal.pushes()[1]
    leaves: list[DeviceEvidence] = []
    host_records: dict[str, HostRecord] = {}
    for host in hosts:
        record = HostRecord(error=errors[host]) if host in errors else done.get(host)
        record = record or HostRecord(error="not pushed")
        if record.verified is None:
            error = record.error or "not verified"
            leaves.append(_failed_leaf(host, change.entry(host).candidate_hash, error))
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
    return _record(session, change, journal, report, pushed=pushed, hosts=hosts, resumed=False)


INTERRUPTED_PUSH = (
    "an earlier run of this change began to push this device; the device runs its approved "
    "base config again (the commit was not made, or was undone), so it is not pushed a second "
    "time: prepare a new proposal for it"
)


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


def _verified_before(found: Journal) -> EvidenceReport | None:
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


def _record(
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
        done = _already_recorded(_settled(session, proposal_id), journal, doing)
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
            done = _already_recorded(_settled(session, proposal_id), journal, doing)
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
    return _outcome(
        report, record, state=state, emergency=change.proposal.emergency, resumed=resumed
    )
