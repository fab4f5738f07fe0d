"""The JSON-RPC providers behind a chain URL: embedded eth-tester, HTTP and websocket.

web3 8 removed its synchronous websocket provider (only the async ``WebSocketProvider``
remains), so ``ws://`` uses :class:`SyncWebSocketProvider`, a small synchronous provider built
on ``websockets.sync``. ``embedded://`` is an in-process py-evm chain (eth-tester), fresh for
every provider, answering failures the way a real node does.
"""

from __future__ import annotations

import json
import threading
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from web3 import EthereumTesterProvider, HTTPProvider
from web3.exceptions import Web3Exception
from web3.providers import JSONBaseProvider
from websockets.sync.client import ClientConnection, connect

from nornir_coopchain.chain.rpc_errors import redact_url, tester_revert_data
from nornir_coopchain.exceptions import ConfigError

if TYPE_CHECKING:
    from web3.providers.base import BaseProvider
    from web3.types import RPCEndpoint, RPCResponse

__all__ = ["EmbeddedProvider", "SyncWebSocketProvider", "make_provider"]


class EmbeddedProvider(EthereumTesterProvider):
    """eth-tester behind a lock, answering failures as JSON-RPC errors (like a real node).

    web3's tester glue re-raises eth-tester's ``TransactionFailed`` as a string, losing
    ``Error(string)`` revert data; here it becomes ``{"code": 3, "data": "0x…"}``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        from eth_tester.exceptions import TransactionFailed

        with self._lock:
            try:
                return super().make_request(method, params)
            except TransactionFailed as exc:
                original = (
                    exc.__context__ if isinstance(exc.__context__, TransactionFailed) else exc
                )
                first = original.args[0] if original.args else b""
                if isinstance(first, Exception) and first.args:
                    first = first.args[0]
                error: dict[str, Any] = {
                    "code": 3,
                    "message": "execution reverted",
                    "data": "0x" + tester_revert_data(first).hex(),
                }
            except (Web3Exception, KeyboardInterrupt):
                raise
            except Exception as exc:  # eth-tester / py-evm validation errors
                error = {"code": -32000, "message": f"{type(exc).__name__}: {exc}"}
            return cast("RPCResponse", {"jsonrpc": "2.0", "id": 0, "error": error})


class SyncWebSocketProvider(JSONBaseProvider):
    """A minimal synchronous JSON-RPC-over-websocket provider (one connection, one lock).

    Arguments:
        url: ``ws://`` or ``wss://`` endpoint.
        timeout: seconds to wait for the connection and for each answer.
    """

    def __init__(self, url: str, *, timeout: float = 30.0):
        super().__init__()
        self.url = url
        self.timeout = timeout
        self._lock = threading.Lock()
        self._connection: ClientConnection | None = None
        self._stack = ExitStack()

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        request = self.encode_rpc_request(method, params)
        request_id = json.loads(request)["id"]
        with self._lock:
            if self._connection is None:
                # websockets >= 17.1 wants connect() entered as a context manager.
                self._connection = self._stack.enter_context(
                    connect(self.url, open_timeout=self.timeout, max_size=None)
                )
            try:
                self._connection.send(request.decode())
                while True:
                    raw = self._connection.recv(timeout=self.timeout)
                    response = self.decode_rpc_response(
                        raw if isinstance(raw, bytes) else raw.encode()
                    )
                    if response.get("id") == request_id:
                        return response
            except BaseException:
                self._close_locked()
                raise

    def _close_locked(self) -> None:
        self._connection = None
        self._stack.close()

    def close(self) -> None:
        """Close the websocket (the next request reconnects)."""
        with self._lock:
            self._close_locked()


def make_provider(url: str, timeout: float) -> BaseProvider:
    """The provider for a chain URL.

    Arguments:
        url: ``embedded://``, ``http(s)://…`` or ``ws(s)://…``.
        timeout: seconds each JSON-RPC request may take (HTTP and websocket).

    Returns:
        A new, not yet connected provider.

    Raises:
        ConfigError: the URL scheme is not supported.
    """
    scheme = urlsplit(url).scheme.lower()
    if url in ("embedded", "embedded://"):
        return EmbeddedProvider()
    if scheme in ("http", "https"):
        return HTTPProvider(url, request_kwargs={"timeout": timeout})
    if scheme in ("ws", "wss"):
        return SyncWebSocketProvider(url, timeout=timeout)
    raise ConfigError(
        f"unsupported chain URL {redact_url(url)!r}: use embedded://, http(s):// or ws(s)://",
        field="url",
    )
