"""DEV AND TEST ONLY: control a local chain's clock, blocks and state; start anvil.

:class:`DevChain` works on the embedded eth-tester chain and on anvil; it refuses anything
else. :func:`start_anvil` runs a throwaway anvil bound to 127.0.0.1 on a free port.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from nornir_coopchain.exceptions import ChainConnectionError, ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    from web3.types import RPCEndpoint

    from nornir_coopchain.chain.client import ChainClient

__all__ = ["AnvilProcess", "DevChain", "find_anvil", "start_anvil"]

_TOOLS_ANVIL = Path("tools", "node_modules", ".bin", "anvil")
_REPO_ANVIL = Path(__file__).resolve().parents[2] / _TOOLS_ANVIL


class DevChain:
    """Clock, mining and snapshots of a dev chain (embedded eth-tester or anvil).

    Arguments:
        client: a connected client.

    Raises:
        ConfigError: the client is on neither the embedded chain nor anvil.
    """

    def __init__(self, client: ChainClient):
        self.client = client
        self._tester: Any = None
        if client.kind == "embedded":
            self._tester = client.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        else:
            version = str(self._rpc("web3_clientVersion", []))
            if "anvil" not in version.lower():
                raise ConfigError(f"dev-chain controls need anvil or embedded://, not {version!r}")

    def _rpc(self, method: str, params: list[Any]) -> Any:
        response = self.client.w3.provider.make_request(cast("RPCEndpoint", method), params)
        if "error" in response:
            raise ChainConnectionError(f"{method} failed: {response['error']}")
        return response.get("result")

    def snapshot(self) -> int:
        """Save the chain state; returns an ID for :meth:`revert`."""
        if self._tester is not None:
            return int(self._tester.take_snapshot())
        return int(self._rpc("evm_snapshot", []), 16)

    def revert(self, snapshot_id: int) -> None:
        """Return to a snapshot (anvil forgets it afterwards; take a new one to reuse).

        Nonces cached by the client's NonceManager are dropped, and so are its kept
        transactions (re-broadcasting one would replay it on the reverted chain).
        """
        if self._tester is not None:
            self._tester.revert_to_snapshot(snapshot_id)
        elif not self._rpc("evm_revert", [hex(snapshot_id)]):
            raise ChainConnectionError(f"anvil has no snapshot {snapshot_id}")
        self.client.nonces.reset()
        self.client.inflight.clear()

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` blocks (including pending transactions)."""
        if self._tester is not None:
            self._tester.mine_blocks(blocks)
        else:
            self._rpc("anvil_mine", [hex(blocks)])

    def increase_time(self, seconds: int, *, mine: bool = True) -> int:
        """Move the clock forward so the next block is ``seconds`` later than it would be.

        eth-tester only applies the new time to blocks mined after ``time_travel``, so by
        default a block is mined and ``latest`` shows the new time.

        Arguments:
            seconds: how far to move.
            mine: mine one block afterwards.

        Returns:
            The latest block's timestamp afterwards.
        """
        if self._tester is not None:
            pending = int(self._tester.get_block_by_number("pending")["timestamp"])
            self._tester.time_travel(pending + seconds)
        else:
            self._rpc("evm_increaseTime", [seconds])
        if mine:
            self.mine()
        return self.client.now()

    def set_automine(self, enabled: bool) -> None:
        """Mine each transaction on arrival (True) or only on :meth:`mine` (False)."""
        if self._tester is None:
            self._rpc("evm_setAutomine", [enabled])
        elif enabled:
            self._tester.enable_auto_mine_transactions()
        else:
            self._tester.disable_auto_mine_transactions()


def find_anvil() -> str | None:
    """``$COOPCHAIN_ANVIL``, then PATH, then ``tools/node_modules/.bin/anvil`` of the checkout
    holding the current directory (or one of its parents), then of the installed package's."""
    configured = os.environ.get("COOPCHAIN_ANVIL")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    found = shutil.which("anvil")
    if found is not None:
        return found
    here = Path.cwd().resolve()
    for directory in (here, *here.parents):
        candidate = directory / _TOOLS_ANVIL
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return str(_REPO_ANVIL) if os.access(_REPO_ANVIL, os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(
        url, body.encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return "result" in json.loads(response.read())
    except (OSError, ValueError):
        return False


class AnvilProcess:
    """A running anvil; stops it on :meth:`stop` or at the end of a ``with`` block.

    Attributes:
        url: ``http://127.0.0.1:PORT``; ``ws_url`` the websocket endpoint on the same port.
    """

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: IO[bytes]):
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self._log = log

    def output(self) -> str:
        """What anvil wrote so far (for diagnostics)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        """Terminate anvil (kill it after 5 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> AnvilProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_anvil(
    *, port: int | None = None, extra_args: Sequence[str] = (), startup_timeout: float = 15.0
) -> AnvilProcess:
    """DEV AND TEST ONLY: start anvil on 127.0.0.1 and wait until it answers JSON-RPC.

    Arguments:
        port: the port; a free one when ``None``.
        extra_args: more anvil flags, e.g. ``("--no-mining",)`` or
            ``("--gas-price", "0", "--block-base-fee-per-gas", "0")``.
        startup_timeout: seconds to wait for the first answer.

    Returns:
        The running process (a context manager).

    Raises:
        ConfigError: anvil is not installed.
        ChainConnectionError: anvil exited or did not answer in time.
    """
    binary = find_anvil()
    if binary is None:
        raise ConfigError(
            "anvil not found: run `npm ci --prefix tools` in the checkout, put anvil on PATH, "
            "or set COOPCHAIN_ANVIL to its path"
        )
    for attempt in range(3):  # a free port can be taken between probing and binding
        chosen = port or _free_port()
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by AnvilProcess.stop
        command = [binary, "--host", "127.0.0.1", "--port", str(chosen), *extra_args]
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        anvil = AnvilProcess(process, chosen, log)
        deadline = time.monotonic() + startup_timeout
        while process.poll() is None and time.monotonic() < deadline:
            if _answers(anvil.url):
                return anvil
            time.sleep(0.05)
        output = anvil.output()[-2000:]
        anvil.stop()
        if port is not None or attempt == 2 or "address" not in output.lower():
            raise ChainConnectionError(f"anvil on port {chosen} did not start: {output.strip()}")
    raise AssertionError("unreachable")
