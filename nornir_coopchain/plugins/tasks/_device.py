"""What the coopchain tasks share about a host's device."""

from __future__ import annotations

from typing import Any

from nornir.core.inventory import Host
from nornir.core.task import Task
from nornir_napalm.plugins.connections import CONNECTION_NAME as NAPALM

__all__ = ["config_platform", "napalm_device", "running_config"]


def config_platform(host: Host) -> str:
    """The configuration dialect of a host: its ``template_platform`` data, else its platform."""
    return str(host.get("template_platform") or host.platform)


def napalm_device(task: Task) -> Any:
    """The host's NAPALM driver, opened through nornir_napalm's connection plugin."""
    return task.host.get_connection(NAPALM, task.nornir.config)


def running_config(device: Any) -> str:
    """The device's running configuration text."""
    return str(device.get_config(retrieve="running")["running"])
