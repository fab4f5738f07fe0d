"""Commands on the device over the SSH session netmiko opened.

netmiko (device type ``linux``) connects and authenticates; each command then runs in its
own exec channel on that same SSH transport, so it gets its own exit status, separate
stdout and stderr, and a stdin (a candidate config travels as stdin, never as a shell line).
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from typing import Any

from napalm.base.exceptions import CommandTimeoutException, ConnectionClosedException

__all__ = ["Completed", "Remote", "quote"]

quote = shlex.quote


@dataclass(frozen=True)
class Completed:
    """A finished remote command."""

    command: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together, for error messages."""
        return (self.stdout + self.stderr).strip()


class Remote:
    """Run shell commands on a device through an open netmiko connection.

    Arguments:
        connection: the netmiko ``BaseConnection`` (its paramiko client carries the channels).
        name: the device's name, for error messages.
    """

    def __init__(self, connection: Any, name: str) -> None:
        self.connection = connection
        self.name = name

    def _transport(self) -> Any:
        client = getattr(self.connection, "remote_conn_pre", None)
        transport = client.get_transport() if client is not None else None
        if transport is None or not transport.is_active():
            raise ConnectionClosedException(f"{self.name}: the SSH session is closed")
        return transport

    def alive(self) -> bool:
        """Tell whether the SSH transport is still up."""
        try:
            self._transport()
        except ConnectionClosedException:
            return False
        return True

    def run(self, command: str, *, stdin: str | None = None, timeout: float = 60.0) -> Completed:
        """Run ``command`` with the login shell, feeding ``stdin`` if given; its whole output:
        read until the channel's end of file, not only until its exit status arrives.

        Raises:
            ConnectionClosedException: the SSH session is gone.
            CommandTimeoutException: it did not finish within ``timeout`` seconds.
        """
        channel = self._transport().open_session(timeout=min(timeout, 15.0))
        out, err = bytearray(), bytearray()
        try:
            channel.settimeout(timeout)
            channel.exec_command(command)
            if stdin is not None:
                channel.sendall(stdin.encode())
            channel.shutdown_write()
            deadline = time.monotonic() + timeout
            while True:  # until EOF: the exit status may come before the last data
                # Seen before reading: data precedes EOF, so once EOF is in, so is every byte.
                ended = channel.eof_received or channel.closed
                busy = False
                if channel.recv_ready():
                    out += channel.recv(65536)
                    busy = True
                if channel.recv_stderr_ready():
                    err += channel.recv_stderr(65536)
                    busy = True
                if not busy and ended and channel.exit_status_ready():
                    break
                if time.monotonic() > deadline:
                    raise CommandTimeoutException(
                        f"{self.name}: `{command[:120]}` still running after {timeout:g} s"
                    )
                if not busy:
                    time.sleep(0.005)
            status = channel.recv_exit_status()
        finally:
            channel.close()
        return Completed(
            command, status, out.decode(errors="replace"), err.decode(errors="replace")
        )
