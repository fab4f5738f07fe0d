"""Task ``coopchain_verify``: read back, check compliance, roll back on mismatch."""

from __future__ import annotations

from nornir.core.task import Result, Task

from nornir_coopchain.gate.approved import ApprovedChange
from nornir_coopchain.model.compliance import evidence_for
from nornir_coopchain.model.content import hash_text
from nornir_coopchain.plugins.results import VerifiedDevice
from nornir_coopchain.plugins.tasks._device import napalm_device, running_config


def coopchain_verify(
    task: Task, change: ApprovedChange, config: str, rollback_on_failure: bool = True
) -> Result:
    """Read the running config back and check it against the intended ``config``.

    A compliant device with a pending commit-confirm is confirmed; a non-compliant one is
    rolled back (unless ``rollback_on_failure`` is False; a device back on its approved base
    has nothing to roll back) and the Result is failed. A device that reverted itself because
    its commit-confirm expired reads back non-compliant: an auto-revert is a failed
    verification, never a success.

    Arguments:
        change: the approved change.
        config: the intended configuration for this host.
        rollback_on_failure: restore the previous config when the read-back does not comply.

    Returns:
        Result with ``failed`` (not compliant), ``changed`` (rolled back) and ``result`` a
        :class:`VerifiedDevice` carrying the evidence leaf.
    """
    entry = change.entry(task.host.name)
    device = napalm_device(task)
    running = running_config(device)
    evidence, report = evidence_for(task.host.name, config, running, entry.platform)
    pending = bool(device.has_pending_commit())
    rolled_back = False
    if report.compliant and pending:
        device.confirm_commit()
    elif (
        not report.compliant
        and rollback_on_failure
        and (pending or hash_text(running) != entry.base_config_hash)
    ):
        device.rollback()
        rolled_back = True
    verified = VerifiedDevice(
        host=task.host.name,
        proposal_id=change.proposal_id,
        evidence=evidence,
        missing=report.missing,
        extra=report.extra,
        rolled_back=rolled_back,
    )
    return Result(host=task.host, result=verified, failed=not report.compliant, changed=rolled_back)
