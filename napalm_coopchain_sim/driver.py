"""``CoopchainSimDriver``: a SIMULATED NAPALM driver for demos and scale runs.

It talks to no device. Never use it in place of a real device in lab tests.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napalm.base import NetworkDriver
from napalm.base.exceptions import (
    CommitConfirmException,
    CommitError,
    ConnectionClosedException,
    ConnectionException,
    MergeConfigException,
    ReplaceConfigException,
)

from napalm_coopchain_sim.options import SimOptions
from napalm_coopchain_sim.store import FileStore, MemoryStore, PendingConfirm, StateStore
from napalm_coopchain_sim.text import (
    apply_drops,
    diff_configs,
    hostname_of,
    interfaces_of,
    merge_configs,
    sanitize,
)
from nornir_coopchain.exceptions import StaleBaseError

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from napalm_coopchain_sim.store import DeviceState

__all__ = ["SIM_OS_VERSION", "SIM_VENDOR", "CoopchainSimDriver"]

SIM_VENDOR = "coopchain-sim (SIMULATED)"
SIM_OS_VERSION = "coopchain-sim 0.1 (SIMULATED)"
_RETRIEVE = ("all", "running", "candidate", "startup")


class CoopchainSimDriver(NetworkDriver):  # type: ignore[misc]  # napalm ships no py.typed
    """A SIMULATED device behind the NAPALM API (platform ``coopchain_sim``).

    The device is named by ``hostname``; its state is the running config (also reported as
    startup), the previous running config (for ``rollback()``), a pending commit-confirm
    and a commit count. The candidate belongs to this session, as on a device with config
    sessions: it is never stored, so a dry run (load, compare, discard) cannot change the
    device, and ``close()`` drops it. A merge candidate is re-applied to the *current*
    running config whenever it is compared or committed.

    An expired commit-confirm is reverted lazily, at the start of the next operation on the
    device from any session.

    ``optional_args``:

    * ``state_dir`` (path): keep the state in ``<state_dir>/<hostname>.json`` (shared between
      processes). Without it the state lives in this process's memory.
    * ``initial_config`` (str, default ``""``): the running config of a device seen first.
    * ``latency`` (seconds, default 0): slept at the start of every operation that asks the
      device (not ``close()``, ``is_alive()`` nor the loads, which only keep the candidate
      in this session), outside any lock.
    * ``method_latency`` (mapping of method name to seconds): slept instead of ``latency``
      by the methods it names, loads included, e.g. a real platform's measured costs
      (``{"open": 0.6, "compare_config": 0.3, "load_replace_candidate": 0.08}``).
    * ``unreachable`` (bool): ``open()`` raises ``ConnectionException``.
    * ``commit_drops`` (list of regexes): candidate lines matching one (``re.search``) are
      silently not applied on commit, so a read-back differs from what was sent.
    * ``commit_error`` (bool): ``commit_config()`` raises ``CommitError``, changing nothing.
    * ``supports_commit_confirm`` (bool, default True): if False, ``commit_config()`` with
      ``revert_in`` and ``confirm_commit()`` raise ``NotImplementedError``.
    * ``commit_checks_base`` (bool, default True): if False, ``commit_config()`` takes no
      ``expected_running`` (it cannot check the running config inside the commit), as a
      plain NAPALM driver such as eos; the caller then learns what the device ran before the
      commit from ``get_rollback_config()``.

    Other keys (nornir_napalm adds ``port`` and ``ssh_config_file``) are ignored.

    Arguments:
        hostname: the simulated device's name (required; names its state).
        username: ignored.
        password: ignored.
        timeout: ignored.
        optional_args: see above.

    Raises:
        ValueError: when an ``optional_args`` value is invalid.
    """

    def __init__(
        self,
        hostname: str,
        username: str = "",
        password: str = "",
        timeout: int = 60,
        optional_args: dict[str, Any] | None = None,
    ) -> None:
        self.hostname = hostname
        self.username = username
        self.password = password
        self.timeout = timeout
        self.options = SimOptions.parse(optional_args)
        self._store: StateStore = (
            FileStore(self.options.state_dir) if self.options.state_dir else MemoryStore()
        )
        self._candidate: tuple[str, str] | None = None  # ("replace" | "merge", text)
        self._open = False
        if not self.options.commit_checks_base:
            self.commit_config = self._commit_unchecked  # type: ignore[method-assign,assignment]

    # -- session -----------------------------------------------------------------------------

    def open(self) -> None:
        """Connect to the simulated device, creating its state on first contact.

        Raises:
            ConnectionException: when ``unreachable`` is set or ``hostname`` is empty.
            ValueError: when ``hostname`` cannot name a state file (with ``state_dir``).
        """
        self._sleep("open")
        if not self.hostname:
            raise ConnectionException(
                "coopchain_sim: no hostname; set it in the inventory (it names the device)"
            )
        if self.options.unreachable:
            raise ConnectionException(f"Cannot connect to {self.hostname} (simulated unreachable)")
        with self._device("open", opening=True):
            pass
        self._open = True

    def close(self) -> None:
        """End the session; an uncommitted candidate is dropped."""
        self._candidate = None
        self._open = False

    def is_alive(self) -> dict[str, bool]:
        """Returns ``{"is_alive": True}`` between ``open()`` and ``close()``."""
        return {"is_alive": self._open}

    # -- candidate ---------------------------------------------------------------------------

    def load_replace_candidate(
        self, filename: str | None = None, config: str | None = None
    ) -> None:
        """Make the candidate the given full config (``filename`` wins over ``config``).

        Raises:
            ReplaceConfigException: when neither is given or the file cannot be read.
        """
        self._sleep("load_replace_candidate", default=0.0)
        self._candidate = ("replace", self._load_text(filename, config, ReplaceConfigException))

    def load_merge_candidate(self, filename: str | None = None, config: str | None = None) -> None:
        """Make the candidate the running config merged with the given lines.

        See :func:`napalm_coopchain_sim.text.merge_configs` for the (line-level) merge rules.

        Raises:
            MergeConfigException: when neither is given or the file cannot be read.
        """
        self._sleep("load_merge_candidate", default=0.0)
        self._candidate = ("merge", self._load_text(filename, config, MergeConfigException))

    def compare_config(self) -> str:
        """Returns the unified diff running → candidate, ``""`` if none or no candidate."""
        with self._device("compare_config") as state:
            candidate = self._candidate_for(state.running)
            return diff_configs(state.running, candidate) if candidate is not None else ""

    def discard_config(self) -> None:
        """Drop the candidate."""
        self._sleep("discard_config")
        self._check_open()
        self._candidate = None

    # -- commit ------------------------------------------------------------------------------

    def commit_config(
        self,
        message: str = "",
        revert_in: int | None = None,
        *,
        expected_running: str | None = None,
    ) -> None:
        """Apply the candidate (minus ``commit_drops`` lines) and clear it.

        Arguments:
            message: commit message (accepted, not kept).
            revert_in: seconds; the device reverts unless ``confirm_commit()`` comes first.
            expected_running: commit only if the running config is still exactly this text,
                checked atomically with the commit (under the device's lock).

        Raises:
            StaleBaseError: the running config is not ``expected_running``; nothing changed.
            CommitError: when ``commit_error`` is set, no candidate is loaded, or a
                commit-confirm is still pending.
            NotImplementedError: when ``revert_in`` is given and ``supports_commit_confirm``
                is False.
            ValueError: when ``revert_in`` is not positive.
        """
        if revert_in is not None:
            if not self.options.supports_commit_confirm:
                raise NotImplementedError("coopchain_sim: commit confirm disabled for this device")
            if revert_in <= 0:
                raise ValueError(f"revert_in must be positive, got {revert_in!r}")
        with self._device("commit_config") as state:
            if self.options.commit_error:
                raise CommitError(f"{self.hostname}: commit failed (simulated commit_error)")
            if expected_running is not None and state.running != expected_running:
                raise StaleBaseError(
                    "the running config changed since it was read: nothing committed",
                    host=self.hostname,
                )
            if state.pending is not None:
                raise CommitError(f"{self.hostname}: a commit-confirm is pending; confirm first")
            candidate = self._candidate_for(state.running)
            if candidate is None:
                raise CommitError(f"{self.hostname}: no candidate loaded")
            if revert_in is not None:
                state.pending = PendingConfirm(self._store.now() + revert_in, state.running)
            state.previous = state.running
            state.running = apply_drops(candidate, self.options.commit_drops)
            state.commits += 1
            state.committed.append(hashlib.sha256(candidate.encode("utf-8")).hexdigest())
        self._candidate = None

    def _commit_unchecked(self, message: str = "", revert_in: int | None = None) -> None:
        """``commit_config`` with ``commit_checks_base`` False: no ``expected_running``."""
        CoopchainSimDriver.commit_config(self, message, revert_in)

    def get_rollback_config(self) -> str:
        """Returns the running config the device saved before its last commit.

        It is what ``rollback()`` restores: the pending commit-confirm's revert point, else
        the config before the last commit (not a NAPALM getter: a coopchain extension).

        Raises:
            CommitError: when the device has never committed.
        """
        with self._device("get_rollback_config") as state:
            saved = state.pending.revert_to if state.pending is not None else state.previous
        if saved is None:
            raise CommitError(f"{self.hostname}: no commit to roll back")
        return saved

    def has_pending_commit(self) -> bool:
        """Returns True while a commit-confirm waits for ``confirm_commit()``."""
        with self._device("has_pending_commit") as state:
            return state.pending is not None

    def confirm_commit(self) -> None:
        """Keep the pending commit.

        Raises:
            CommitConfirmException: when no commit-confirm is pending (or it already reverted).
            NotImplementedError: when ``supports_commit_confirm`` is False.
        """
        if not self.options.supports_commit_confirm:
            raise NotImplementedError("coopchain_sim: commit confirm disabled for this device")
        with self._device("confirm_commit") as state:
            if state.pending is None:
                raise CommitConfirmException(f"{self.hostname}: no pending commit to confirm")
            state.pending = None

    def rollback(self) -> None:
        """Undo the last change: a pending commit-confirm, else the last commit.

        Rolling back twice re-applies the change (previous and running swap); with nothing
        to roll back this does nothing.
        """
        with self._device("rollback") as state:
            if state.pending is not None:
                state.previous, state.running = state.running, state.pending.revert_to
                state.pending = None
            elif state.previous is not None:
                state.previous, state.running = state.running, state.previous

    # -- getters -----------------------------------------------------------------------------

    def get_config(
        self,
        retrieve: str = "all",
        full: bool = False,
        sanitized: bool = False,
        format: str = "text",
    ) -> dict[str, str]:
        """Returns ``{"running", "candidate", "startup"}``; unrequested ones are ``""``.

        Arguments:
            retrieve: "all", "running", "candidate" or "startup".
            full: ignored (the simulator has no defaults to show).
            sanitized: replace the value after ``password``/``secret``.
            format: only "text".

        Raises:
            ValueError: when ``retrieve`` is unknown.
            NotImplementedError: when ``format`` is not "text".
        """
        if retrieve not in _RETRIEVE:
            raise ValueError(f"retrieve must be one of {_RETRIEVE}, got {retrieve!r}")
        if format != "text":
            raise NotImplementedError(f"coopchain_sim: format {format!r} not supported")
        with self._device("get_config") as state:
            running = state.running
            candidate = self._candidate_for(running) or ""
        config = {"running": running, "candidate": candidate, "startup": running}
        clean = sanitize if sanitized else str
        return {k: clean(v) if retrieve in ("all", k) else "" for k, v in config.items()}

    def get_facts(self) -> dict[str, Any]:
        """Returns NAPALM facts; ``vendor`` and ``os_version`` say SIMULATED."""
        with self._device("get_facts") as state:
            running, created_at = state.running, state.created_at
        name = hostname_of(running) or self.hostname
        serial = hashlib.sha256(self.hostname.encode()).hexdigest()[:10].upper()
        return {
            "uptime": max(0.0, time.time() - created_at),
            "vendor": SIM_VENDOR,
            "model": "simulated",
            "os_version": SIM_OS_VERSION,
            "serial_number": f"SIM-{serial}",
            "hostname": name,
            "fqdn": name,
            "interface_list": interfaces_of(running),
        }

    # -- helpers -----------------------------------------------------------------------------

    def _sleep(self, method: str, default: float | None = None) -> None:
        """Sleep ``method``'s latency: ``method_latency``, else ``default`` or ``latency``."""
        fallback = self.options.latency if default is None else default
        seconds = self.options.method_latency.get(method, fallback)
        if seconds:
            time.sleep(seconds)

    def _check_open(self) -> None:
        if not self._open:
            raise ConnectionClosedException(f"{self.hostname}: session is not open")

    def _device(self, method: str, *, opening: bool = False) -> AbstractContextManager[DeviceState]:
        """Sleep ``method``'s latency (unlocked) unless opening, then lock the device's state."""
        if not opening:
            self._sleep(method)
            self._check_open()
        return self._store.transaction(self.hostname, self.options.initial_config)

    def _candidate_for(self, running: str) -> str | None:
        if self._candidate is None:
            return None
        mode, text = self._candidate
        return merge_configs(running, text) if mode == "merge" else text

    @staticmethod
    def _load_text(filename: str | None, config: str | None, error: type[Exception]) -> str:
        if filename is not None:
            try:
                return Path(filename).read_text(encoding="utf-8")
            except OSError as e:
                raise error(f"cannot read {filename}: {e}") from e
        if config is None:
            raise error("coopchain_sim: give filename or config")
        return config
