"""Task ``coopchain_verify``: read back, check compliance, roll back on mismatch."""

from __future__ import annotations

from napalm.base.exceptions import CommitConfirmException
from nornir.core.task import Result, Task

from nornir_coopchain.model.compliance import evidence_for
from nornir_coopchain.model.content import hash_text
from nornir_coopchain.plugins.approved import ApprovedChange
from nornir_coopchain.plugins.results import VerifiedDevice
from nornir_coopchain.plugins.tasks._device import napalm_device, running_config


def coopchain_verify(
    task: Task,
    change: ApprovedChange,
    config: str,
    rollback_on_failure: bool = True,
    confirm: bool | None = None,
) -> Result:
    """Read the running config back and check it against the intended ``config``.

    A compliant device whose commit-confirm is pending is confirmed; a non-compliant one that
    no longer runs its approved base is rolled back (unless ``rollback_on_failure`` is
    False) and the Result is failed. A device that reverted itself because its
    commit-confirm expired is non-compliant: an auto-revert is a failed verification, never
    a success, also when it happens between the read-back and the confirm (the confirm is
    refused, the device is read again).

    Arguments:
        change: the approved change.
        config: the intended configuration for this host.
        rollback_on_failure: restore the previous config when the read-back does not comply.
        confirm: whether a commit-confirm of this run awaits confirmation: True confirms
            it once the read-back complies, False means none does; None (default) asks the
            device (``has_pending_commit``), e.g. for a device a resumed run found applied.

    A rollback counts only when the driver proves it (napalm_frr: the read-back complies
    with the saved config). A rollback that raises, e.g. ``RollbackIncomplete`` naming the
    residual lines, is recorded as ``rollback_error`` (not rolled back) beside the report's
    missing and extra lines; it never replaces them.

    Returns:
        Result with ``failed`` (not compliant), ``changed`` (rolled back) and ``result`` a
        :class:`VerifiedDevice` carrying the evidence leaf.
    """
    host, entry = task.host.name, change.entry(task.host.name)
    device = napalm_device(task)
    if confirm is None:  # asked before the read-back: a revert cannot slip in between unseen
        confirm = bool(device.has_pending_commit())
    running = running_config(device)
    evidence, report = evidence_for(host, config, running, entry.platform)
    if report.compliant and confirm:
        try:
            device.confirm_commit()
        except CommitConfirmException:  # its timer fired since the read-back: read again
            running = running_config(device)
            evidence, report = evidence_for(host, config, running, entry.platform)
    rolled_back, rollback_error = False, None
    if (
        not report.compliant
        and rollback_on_failure
        and hash_text(running) != entry.base_config_hash
    ):
        try:
            device.rollback()  # also stops a pending commit-confirm
            rolled_back = True
        except Exception as e:  # any driver's failure is recorded, with the report kept
            rollback_error = f"{type(e).__name__}: {e}"
    verified = VerifiedDevice(
        host=host,
        proposal_id=change.proposal_id,
        evidence=evidence,
        missing=report.missing,
        extra=report.extra,
        rolled_back=rolled_back,
        rollback_error=rollback_error,
    )
    return Result(host=task.host, result=verified, failed=not report.compliant, changed=rolled_back)
