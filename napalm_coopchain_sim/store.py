"""Where the SIMULATED devices keep their state: process memory or one JSON file per device.

Nothing here talks to a real device. Two stores share one interface:

* :class:`MemoryStore` — a module-level registry guarded by one lock per device, so Nornir
  threads working on different devices never wait for each other, and a second ``open()`` of
  the same device in the same process sees the same state. Clock: ``time.monotonic``.
* :class:`FileStore` — ``<state_dir>/<device>.json``, written atomically (temp file +
  ``os.replace``) under an ``fcntl.flock`` on ``<state_dir>/<device>.lock``, so separate
  processes (and threads: every transaction opens its own lock file description) see one
  device. Clock: ``time.time`` (deadlines must survive between processes).

Every :meth:`transaction` first reverts an expired commit-confirm, then hands out the state;
the state is stored back only if the body finished without an exception.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from nornir_coopchain._files import write_atomic

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "DeviceState",
    "FileStore",
    "MemoryStore",
    "PendingConfirm",
    "StateStore",
    "clear_memory_devices",
]

_STATE_VERSION = 1
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_:-][A-Za-z0-9._:-]*$")


@dataclass
class PendingConfirm:
    """A commit waiting for ``confirm_commit()``.

    Attributes:
        deadline: when the device reverts by itself, in the owning store's clock.
        revert_to: the running config restored at the deadline or on ``rollback()``.
    """

    deadline: float
    revert_to: str


@dataclass
class DeviceState:
    """One simulated device's state (the candidate lives in the driver's session).

    Attributes:
        running: the running (and startup) config text.
        previous: the running config before the last change, for ``rollback()``.
        pending: the commit-confirm in progress, if any.
        commits: how many commits the device has applied.
        committed: the sha256 (hex) of each committed candidate, oldest first: the device's
            commit log, to count how often a config was pushed.
        created_at: wall time the device first existed (``get_facts()["uptime"]``).
    """

    running: str
    previous: str | None = None
    pending: PendingConfirm | None = None
    commits: int = 0
    committed: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)

    def expire_pending(self, now: float) -> bool:
        """Revert a commit-confirm whose deadline has passed.

        Arguments:
            now: the current time in the owning store's clock.

        Returns:
            True if the device reverted.
        """
        if self.pending is None or now < self.pending.deadline:
            return False
        self.previous = self.running
        self.running = self.pending.revert_to
        self.pending = None
        return True

    def to_json(self) -> dict[str, Any]:
        """Returns the JSON document stored by :class:`FileStore`."""
        return {"version": _STATE_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceState:
        """Build a state from :meth:`to_json` output.

        Raises:
            ValueError: when the document is not a state of this version.
        """
        if data.get("version") != _STATE_VERSION:
            raise ValueError(f"unsupported state version {data.get('version')!r}")
        try:
            pending = data.get("pending")
            return cls(
                running=str(data["running"]),
                previous=data.get("previous"),
                pending=PendingConfirm(float(pending["deadline"]), str(pending["revert_to"]))
                if pending
                else None,
                commits=int(data.get("commits", 0)),
                committed=[str(digest) for digest in data.get("committed", [])],
                created_at=float(data.get("created_at", time.time())),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"malformed state document: {e!r}") from e


class StateStore(Protocol):
    """What the driver needs from a store."""

    def now(self) -> float:
        """Returns the current time in this store's clock."""
        ...

    def transaction(
        self, name: str, initial_config: str
    ) -> contextlib.AbstractContextManager[DeviceState]:
        """Lock device ``name`` and hand out its state (created from ``initial_config``)."""
        ...


_REGISTRY: dict[str, DeviceState] = {}
_LOCKS: dict[str, threading.Lock] = {}
_REGISTRY_LOCK = threading.Lock()


def clear_memory_devices() -> None:
    """Forget every in-memory simulated device (for tests and demos)."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()
        _LOCKS.clear()


class MemoryStore:
    """Devices in this process's memory, one lock per device."""

    def now(self) -> float:
        """Returns ``time.monotonic()``."""
        return time.monotonic()

    @contextlib.contextmanager
    def transaction(self, name: str, initial_config: str) -> Iterator[DeviceState]:
        """Lock device ``name`` and yield a copy of its state, stored back on success.

        Arguments:
            name: the device name (the driver's ``hostname``).
            initial_config: the running config of a device seen for the first time.
        """
        with _REGISTRY_LOCK:
            lock = _LOCKS.setdefault(name, threading.Lock())
        with lock:
            stored = _REGISTRY.get(name)
            state = copy.deepcopy(stored) if stored else DeviceState(running=initial_config)
            state.expire_pending(self.now())
            yield state
            _REGISTRY[name] = state


class FileStore:
    """Devices as ``<state_dir>/<name>.json``, shared between processes.

    Arguments:
        state_dir: the directory holding the state and lock files (created if missing).
    """

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)

    def now(self) -> float:
        """Returns ``time.time()`` (deadlines are compared across processes)."""
        return time.time()

    def path(self, name: str) -> Path:
        """Returns the state file of device ``name``.

        Raises:
            ValueError: when ``name`` cannot safely be a file name.
        """
        if not _SAFE_NAME.match(name):
            raise ValueError(f"device name {name!r} cannot name a state file")
        return self.state_dir / f"{name}.json"

    @contextlib.contextmanager
    def transaction(self, name: str, initial_config: str) -> Iterator[DeviceState]:
        """Lock device ``name`` across processes and yield its state, written back on success.

        Arguments:
            name: the device name (the driver's ``hostname``).
            initial_config: the running config of a device seen for the first time.

        Raises:
            ValueError: when the state file is not a valid state document.
        """
        path = self.path(name)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a") as lock_file:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            before = self._read(path)
            try:
                state = DeviceState.from_json(before) if before else DeviceState(initial_config)
            except ValueError as e:
                raise ValueError(f"{path}: {e}") from e
            state.expire_pending(self.now())
            yield state
            after = state.to_json()
            if after != before:
                self._write(path, after)

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not a simulated device state: {e}") from e
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a simulated device state")
        return data

    @staticmethod
    def _write(path: Path, data: dict[str, Any]) -> None:
        write_atomic(path, json.dumps(data, indent=2).encode("utf-8"))
