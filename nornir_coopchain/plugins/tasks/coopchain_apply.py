"""Task ``coopchain_apply``: push exactly the approved config, only inside its window."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from nornir.core.task import Result, Task

from nornir_coopchain.exceptions import ChangeRefused, StaleBaseError
from nornir_coopchain.model.compliance import check_compliance
from nornir_coopchain.model.content import DeviceChange, hash_text
from nornir_coopchain.plugins.approved import ApprovedChange
from nornir_coopchain.plugins.results import AppliedDevice
from nornir_coopchain.plugins.tasks._device import (
    napalm_device,
    rollback_config,
    running_config,
)
from nornir_coopchain.settings import CONNECTION_NAME


def coopchain_apply(
    task: Task,
    change: ApprovedChange,
    config: str,
    revert_in: int | None = 300,
    dry_run: bool | None = None,
    chain_now: int | None = None,
    base: str | None = None,
) -> Result:
    """Commit ``config`` to the device if, and only if, it is what the co-owners approved.

    Refuses unless: chain time and local time are inside the change window; the host's entry
    proves against the on-chain manifest root; ``config`` hashes to the approved candidate
    hash; and the running config still hashes to the approved base (else the diff is stale).
    A device that already runs the approved config (a resumed run) is left alone.

    Where the driver's ``commit_config`` takes ``expected_running`` (napalm_frr, the
    simulator), the running config is checked again inside the commit itself: a device
    changed since it was read is refused as stale with nothing changed, and one that another
    run has just pushed the approved config to is left alone as already applied.

    Where it does not (plain NAPALM drivers), the config the driver saved before the commit
    (its rollback point, where the driver tells it: ``get_rollback_config()``) is compared
    with the approved base after the commit: on a mismatch the device is rolled back to it,
    so the other change is kept, and the device is refused as stale (recorded failed, never
    Verified). A driver that tells neither is checked only by the read before the commit:
    a change landing between that read and the commit is overwritten (docs/reliability.md).

    Arguments:
        change: the approved change, from :func:`~nornir_coopchain.gate.approved.fetch_change`.
        config: the freshly rendered configuration for this host.
        revert_in: commit-confirm seconds where the driver supports it (``coopchain_verify``
            confirms after the read-back passes); None commits plainly.
        dry_run: run every check but commit nothing (Nornir's dry-run setting by default).
        chain_now: the chain's time, read once for a whole run (read here when None).
        base: the running config as the caller read it (a preflight): not read again for a
            dry run, nor for a commit the driver checks against it (``expected_running``);
            read again right before any other commit.

    Returns:
        Result with ``changed``, ``diff`` (the approved diff) and ``result`` an
        :class:`AppliedDevice`.

    Raises:
        ChangeRefused: any check failed; nothing was pushed.
        StaleBaseError: the running config changed since the diff was approved (also when
            the commit found it changed since it was read: nothing was committed; or the
            driver's saved pre-commit config did: the commit was rolled back).
    """
    host = task.host.name
    session = task.host.get_connection(CONNECTION_NAME, task.nornir.config)
    change.check_window(session.client.now() if chain_now is None else chain_now)
    entry = change.entry(host)
    if hash_text(config) != entry.candidate_hash:
        raise ChangeRefused("the rendered config differs from the approved candidate", host=host)
    device = napalm_device(task)
    trusted = base is not None and (task.is_dry_run(dry_run) or _checks_base(device))
    running = base if base is not None and trusted else running_config(device)
    applied = AppliedDevice(
        host=host,
        proposal_id=change.proposal_id,
        candidate_hash=entry.candidate_hash,
        already_applied=False,
        commit_confirm=False,
    )
    if hash_text(running) != entry.base_config_hash:
        if check_compliance(config, running, entry.platform).compliant:
            done = applied.model_copy(update={"already_applied": True})
            return Result(host=task.host, result=done, changed=False)
        raise StaleBaseError(
            "the running config changed since the diff was approved: prepare a new proposal",
            host=host,
        )
    if task.is_dry_run(dry_run):
        return Result(host=task.host, result=applied, diff=entry.diff, changed=False)
    if entry.replace:
        device.load_replace_candidate(config=config)
    else:
        device.load_merge_candidate(config=config)
    checks_base = _checks_base(device)
    checked = {"expected_running": running} if checks_base else {}
    try:
        confirm = _commit(device, revert_in, checked)
    except StaleBaseError as exc:
        if check_compliance(config, running_config(device), entry.platform).compliant:
            done = applied.model_copy(update={"already_applied": True})  # by another run
            return Result(host=task.host, result=done, changed=False)
        raise StaleBaseError(
            "the running config changed since it was read; the commit refused it, nothing "
            "was changed on the device: prepare a new proposal",
            host=host,
        ) from exc
    if not checks_base:
        _restore_if_stale(device, entry, config, host)
    done = applied.model_copy(update={"commit_confirm": confirm})
    return Result(host=task.host, result=done, diff=entry.diff, changed=True)


def _checks_base(device: Any) -> bool:
    """Whether the driver's commit can check the running config itself (``expected_running``)."""
    commit = device.commit_config
    return _takes_expected_running(getattr(commit, "__func__", commit))


@functools.lru_cache(maxsize=64)
def _takes_expected_running(commit: Any) -> bool:
    return "expected_running" in inspect.signature(commit).parameters


def _commit(device: Any, revert_in: int | None, checked: dict[str, str]) -> bool:
    """Commit, with commit-confirm where the driver has it; whether it is confirm-pending."""
    if revert_in is not None:
        try:
            device.commit_config(revert_in=revert_in, **checked)
            return True
        except NotImplementedError:
            pass
    device.commit_config(**checked)
    return False


def _restore_if_stale(device: Any, entry: DeviceChange, config: str, host: str) -> None:
    """After a commit that could not check the base: roll back if the device had changed.

    The config the driver saved before the commit must be the approved base, or already
    the approved result (pushed by another run) that this commit left as it was: for a
    merge, every approved line present; for a replace, exactly the approved config.
    Otherwise the device is rolled back to it.

    Raises:
        StaleBaseError: the device had changed between the read and the commit.
    """
    saved = rollback_config(device)
    if saved is None or hash_text(saved) == entry.base_config_hash:
        return
    if entry.replace:
        if hash_text(saved) == entry.candidate_hash:
            return  # another run had pushed exactly the approved config
    elif check_compliance(config, saved, entry.platform).compliant:
        return  # another run had merged the approved lines: this merge added nothing
    try:
        device.rollback()
    except Exception as exc:
        raise StaleBaseError(
            f"the running config changed between the read and the commit, and restoring it "
            f"failed ({exc}): the device runs the approved config without that change; "
            "restore it by hand, then prepare a new proposal",
            host=host,
        ) from exc
    raise StaleBaseError(
        "the running config changed between the read and the commit: the device was rolled "
        "back to the config it ran before the commit (that change kept): prepare a new "
        "proposal",
        host=host,
    )
