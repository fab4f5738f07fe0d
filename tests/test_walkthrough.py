"""The README's operator walkthrough, run as written: one process per command, one anvil.

The commands are read from the README's code block, so the two cannot drift apart. Commands
marked "(leave it running)" run in the background as they would in their own terminal; the
others run one after the other, with a terminal on stdin that answers "y". Only the chain's
port changes (``$COOPCHAIN_CHAIN_PORT`` and the URL), so that parallel tests do not collide.
"""

from __future__ import annotations

import os
import pty
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from needs import needs_anvil

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from nornir_coopchain.cli import app; app()"]
BACKGROUND = "(leave it running)"


def walkthrough() -> list[str]:
    """The lines of the first code block after the README's "The operator CLI" heading."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## The operator CLI") :]
    block = re.search(r"```\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip()]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_walkthrough_is_a_block_of_coopchain_commands() -> None:
    lines = walkthrough()
    assert all(shlex.split(line, comments=True)[0] == "coopchain" for line in lines)
    assert sum(BACKGROUND in line for line in lines) == 2  # the chain and the watcher


@pytest.mark.anvil
@pytest.mark.slow
def test_readme_walkthrough_reaches_a_recorded_audited_change(tmp_path: Path) -> None:
    needs_anvil()
    for name in ("inventory", "templates"):  # a fresh clone's sample site
        shutil.copytree(ROOT / name, tmp_path / name)
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "200",
        "COOPCHAIN_CHAIN_PORT": str(port),
    }
    background: list[subprocess.Popen[bytes]] = []
    outputs: dict[str, str] = {}
    try:
        for line in walkthrough():
            args = [arg.replace(":8545", f":{port}") for arg in shlex.split(line, comments=True)]
            command = [*CLI, *args[1:]]
            if BACKGROUND in line:
                process = subprocess.Popen(
                    command,
                    cwd=tmp_path,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                )
                background.append(process)
                _wait_started(process, args, port)
                continue
            outputs[args[1]] = _run_on_a_terminal(command, tmp_path, env)
    finally:
        for process in background:
            process.send_signal(signal.SIGINT)
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
    assert "proposed #1" in outputs["propose"]
    assert "4 verified, 0 failed; recorded Verified" in outputs["apply"]
    assert "audit of #1 (Verified): pass" in outputs["audit"]


def _wait_started(process: subprocess.Popen[bytes], args: list[str], port: int) -> None:
    """Until the chain answers, or the watcher says it is watching (60 s at most)."""
    deadline = time.monotonic() + 60
    if args[1] == "chain":
        while not _answers(port):
            assert process.poll() is None, process.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the chain did not start"
            time.sleep(0.1)
        return
    assert process.stderr is not None
    first = process.stderr.readline()
    assert b"watching" in first, first + process.communicate(timeout=30)[1][-2000:]


def _run_on_a_terminal(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run with a terminal on stdin that answers "y"; its stdout and stderr (exit 0 asserted)."""
    controller, terminal = pty.openpty()
    try:
        os.write(controller, b"y\n")
        done = subprocess.run(
            command, cwd=cwd, env=env, stdin=terminal, capture_output=True, timeout=600
        )
    finally:
        os.close(terminal)
        os.close(controller)
    text = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, f"{shlex.join(command[3:])} exited {done.returncode}:\n{text}"
    return text
