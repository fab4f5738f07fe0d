"""The ``optional_args`` of the FRR driver, parsed and checked once."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

__all__ = ["FRROptions"]

_OWN = (
    "vty_socket",
    "confdir",
    "rundir",
    "bindir",
    "frr_reload",
    "python",
    "device_dir",
    "command_timeout",
)


def _path(args: dict[str, Any], key: str, default: str | None) -> str | None:
    value = args.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or not posixpath.isabs(value):
        raise ValueError(f"optional_args[{key!r}] must be an absolute path, got {value!r}")
    return value.rstrip("/") or "/"


@dataclass(frozen=True)
class FRROptions:
    """Where FRR lives on the device; see :class:`napalm_frr.FRRDriver` for each field.

    Keys not listed here go to netmiko when its ``ConnectHandler`` takes them (``port``,
    ``key_file``, ``use_keys``, ``allow_agent``, ``ssh_strict``, ``alt_host_keys``,
    ``alt_key_file``, ``ssh_config_file``, ``conn_timeout``, ...); others are ignored.
    """

    vty_socket: str | None = None
    confdir: str = "/etc/frr"
    rundir: str = "/var/run/frr"
    bindir: str = "/usr/bin"
    frr_reload: str = "/usr/lib/frr/frr-reload.py"
    python: str = "python3"
    device_dir: str = "/var/run/frr/napalm_frr"
    command_timeout: float = 120.0

    @classmethod
    def parse(cls, optional_args: dict[str, Any] | None) -> FRROptions:
        """Build options from a driver's ``optional_args``.

        Raises:
            ValueError: when a path is not absolute or a timeout is not positive.
        """
        args = optional_args or {}
        rundir = _path(args, "rundir", cls.rundir) or cls.rundir
        python = args.get("python", cls.python)
        if not isinstance(python, str) or not python:
            raise ValueError(f"optional_args['python'] must be a command, got {python!r}")
        timeout = args.get("command_timeout", cls.command_timeout)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"optional_args['command_timeout'] must be > 0, got {timeout!r}")
        return cls(
            vty_socket=_path(args, "vty_socket", None),
            confdir=_path(args, "confdir", cls.confdir) or cls.confdir,
            rundir=rundir,
            bindir=_path(args, "bindir", cls.bindir) or cls.bindir,
            frr_reload=_path(args, "frr_reload", cls.frr_reload) or cls.frr_reload,
            python=python,
            device_dir=_path(args, "device_dir", f"{rundir}/napalm_frr") or rundir,
            command_timeout=float(timeout),
        )

    @staticmethod
    def own_keys() -> tuple[str, ...]:
        """The ``optional_args`` keys this driver reads itself (never passed to netmiko)."""
        return _OWN
