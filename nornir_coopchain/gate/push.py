"""The push pass: each device committed and verified in a worker thread, so that Ctrl-C
stops the pushes not yet started while those in flight finish; the journal notes each push."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable

from nornir.core import Nornir
from nornir.core.inventory import Host
from nornir.core.task import AggregatedResult, MultiResult, Result, Task

from nornir_coopchain.exceptions import ChangeRefused
from nornir_coopchain.gate.approved import ApprovedChange
from nornir_coopchain.gate.prepare import describe, failure_of
from nornir_coopchain.journal import HostRecord, Journal
from nornir_coopchain.plugins.results import AppliedDevice, VerifiedDevice
from nornir_coopchain.plugins.tasks.coopchain_apply import coopchain_apply
from nornir_coopchain.plugins.tasks.coopchain_verify import coopchain_verify

__all__ = ["ApplyInterrupted", "devices_summary", "push_devices", "resume_hint"]

_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def push_devices(
    nr: Nornir,
    change: ApprovedChange,
    revert_in: int | None,
    chain_now: int,
    configs: dict[str, tuple[str, str]],
    journal: Journal,
) -> dict[str, HostRecord]:
    """Run the apply pass in a worker thread, so that a Ctrl-C in this (main) thread can stop
    the pushes not yet started while those in flight finish.

    Returns:
        What happened on each host whose push began (also kept in the journal).

    Raises:
        ApplyInterrupted: on KeyboardInterrupt, once the devices in flight are done.
    """
    proposal_id = change.proposal_id
    halt, pushed = threading.Event(), _Pushed()
    records: dict[str, HostRecord] = {}
    failure: list[BaseException] = []
    finished = threading.Event()

    def work() -> None:
        try:
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
                records=records,
            )
        except BaseException as exc:  # handed to the main thread
            failure.append(exc)
        finally:
            finished.set()

    # Once started, the pass is always waited for (else the caller would close the devices'
    # sessions under the commits in flight): Ctrl-C and kill are held while it starts, so
    # that they land in the wait below, and the wait is on an Event, not Thread.join (a
    # KeyboardInterrupt inside join() can mark a running thread ended, CPython 3.11).
    thread = threading.Thread(target=work, name=f"coopchain-apply-{proposal_id}", daemon=True)
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        thread.start()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        raise
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # one held meanwhile lands here
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
    return records


def _push_host(
    task: Task,
    change: ApprovedChange,
    revert_in: int | None,
    chain_now: int,
    configs: dict[str, tuple[str, str]],
    halt: threading.Event,
    journal: Journal,
    records: dict[str, HostRecord],
) -> Result:
    """Push the config the preflight checked and verify it, unless ``halt`` is set (the run
    is being interrupted): the host is then left untouched. The commit is made against the
    running config the preflight read where the driver checks it atomically; else the
    device is read again right before its commit. The journal notes the push before the
    commit, and what happened once it is done (also kept in ``records``)."""
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
        _keep(journal, records, host, task.results, describe(failure_of(task.results) or exc))
        raise
    _keep(journal, records, host, task.results, None)
    return Result(host=task.host, result=(applied, verify.result))


def _keep(
    journal: Journal,
    records: dict[str, HostRecord],
    host: str,
    results: Iterable[Result],
    error: str | None,
) -> None:
    """Note what happened on a host, from the results of its push (a read-back made,
    compliant or not, or the error that stopped it before), in the journal and ``records``."""
    verified = next((r.result for r in results if isinstance(r.result, VerifiedDevice)), None)
    applied = next((r.result for r in results if isinstance(r.result, AppliedDevice)), None)
    if verified is not None:
        _ = verified.evidence.leaf_hash  # here, not in the main thread's evidence tree
    failure = None if verified is not None else error or "not verified"
    records[host] = record = HostRecord(applied=applied, verified=verified, error=failure)
    journal.pushed(host, record)


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
