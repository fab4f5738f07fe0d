"""What the coopchain tasks share about a host's device."""

from __future__ import annotations

from typing import Any

from nornir.core.inventory import Host
from nornir.core.task import Task
from nornir_napalm.plugins.connections import CONNECTION_NAME as NAPALM

__all__ = ["config_platform", "napalm_device", "rollback_config", "running_config"]


def config_platform(host: Host) -> str:
    """The configuration dialect of a host: its ``template_platform`` data, else its platform."""
    return str(host.get("template_platform") or host.platform)


def napalm_device(task: Task) -> Any:
    """The host's NAPALM driver, opened through nornir_napalm's connection plugin."""
    return task.host.get_connection(NAPALM, task.nornir.config)


def running_config(device: Any) -> str:
    """The device's running configuration text."""
    return str(device.get_config(retrieve="running")["running"])


def rollback_config(device: Any) -> str | None:
    """The running config the driver saved before its last commit (what ``rollback()``
    restores), if the driver tells it (``get_rollback_config()``, the simulator's); else None.

    NAPALM has no standard getter for it: eos, ios, junos and nxos keep a rollback point
    (a file, a checkpoint, ``rollback 1``) but do not hand it out, so for them this is None.
    """
    getter = getattr(device, "get_rollback_config", None)
    return None if getter is None else str(getter())
