"""Commands, bounded waits and pid files: the only way the lab touches the system.

Every wait is bounded in time *and* in number of polls, and a process is only ever stopped
by the pid in a pid file the lab wrote, after checking that its command line still names
the lab's directory (a recycled pid is left alone).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from nornir_coopchain.lab.errors import LabError

__all__ = [
    "in_ns",
    "namespace_pids",
    "pid_alive",
    "read_pid",
    "run",
    "stop_pid",
    "wait_for",
]

POLL = 0.05


def run(
    args: Sequence[str], *, timeout: float = 30.0, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command (no shell) and return it finished.

    Raises:
        LabError: it exited non-zero (with ``check``) or ran longer than ``timeout``.
    """
    command = shlex.join(args)
    try:
        done = subprocess.run(
            list(args), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise LabError(f"timed out after {timeout:g} s", command=command) from e
    except OSError as e:
        raise LabError(f"cannot run: {e}", command=command) from e
    if check and done.returncode != 0:
        raise LabError(
            f"exited with {done.returncode}", command=command, output=done.stdout + done.stderr
        )
    return done


def in_ns(namespace: str, *args: str) -> list[str]:
    """The command line that runs ``args`` inside network namespace ``namespace``."""
    return ["ip", "netns", "exec", namespace, *args]


def wait_for(
    predicate: Callable[[], bool], *, what: str, timeout: float = 10.0, interval: float = POLL
) -> None:
    """Poll ``predicate`` until it holds, at most ``timeout`` seconds and a bounded count.

    Raises:
        LabError: it still did not hold at the end.
    """
    deadline = time.monotonic() + timeout
    for _ in range(max(1, int(timeout / interval) + 1)):
        if predicate():
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    if not predicate():
        raise LabError(f"{what}: not ready after {timeout:g} s")


def read_pid(path: Path) -> int | None:
    """The pid in a pid file, or None when there is no (valid) file."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def pid_alive(pid: int | None, marker: str) -> bool:
    """Tell whether ``pid`` runs and its command line contains ``marker`` (not a zombie)."""
    if pid is None or marker not in _cmdline(pid):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop_pid(pid: int | None, marker: str, *, timeout: float = 5.0) -> bool:
    """SIGTERM ``pid`` if it is still the lab's process, SIGKILL it after ``timeout``.

    Returns:
        True if a process was signalled.
    """
    if not pid_alive(pid, marker):
        return False
    assert pid is not None
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        try:
            wait_for(lambda: not pid_alive(pid, marker), what=f"pid {pid} to exit", timeout=wait)
            return True
        except LabError:
            continue
    return True


def namespace_pids(namespace: str) -> list[int]:
    """Processes still running inside one of the lab's namespaces (``ip netns pids``)."""
    done = run(["ip", "netns", "pids", namespace], check=False, timeout=10)
    return [int(p) for p in done.stdout.split() if p.isdigit()]
