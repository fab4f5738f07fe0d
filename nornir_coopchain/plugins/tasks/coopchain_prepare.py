"""Task ``coopchain_prepare``: the dry-run diff of a candidate config. Never commits."""

from __future__ import annotations

from nornir.core.task import Result, Task

from nornir_coopchain.model.content import hash_text
from nornir_coopchain.plugins.results import PreparedDevice
from nornir_coopchain.plugins.tasks._device import config_platform, napalm_device, running_config


def coopchain_prepare(task: Task, config: str, replace: bool = True) -> Result:
    """Load ``config`` as a candidate, diff it against the running config, discard it.

    Arguments:
        config: the candidate configuration (e.g. from ``coopchain_render``).
        replace: replace the whole configuration (True) or merge into it (False).

    Returns:
        Result with ``diff`` (the driver's ``compare_config``), ``changed`` (the diff is not
        empty) and ``result`` a :class:`PreparedDevice` with the hash of the running config
        the diff was made against.
    """
    device = napalm_device(task)
    running = running_config(device)
    if replace:
        device.load_replace_candidate(config=config)
    else:
        device.load_merge_candidate(config=config)
    try:
        diff = str(device.compare_config())
    finally:
        device.discard_config()
    prepared = PreparedDevice(
        host=task.host.name,
        platform=config_platform(task.host),
        base_config_hash=hash_text(running),
        candidate_hash=hash_text(config),
        diff=diff,
        diff_hash=hash_text(diff),
        replace=replace,
    )
    return Result(host=task.host, result=prepared, diff=diff, changed=bool(diff))
