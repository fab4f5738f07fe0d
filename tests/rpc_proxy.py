"""A JSON-RPC proxy on 127.0.0.1 in front of one node: each operator's "own node", with faults.

Each operator of the consortium tests talks to its own :class:`RpcProxy`, which forwards to
the one anvil. Faults are switched on and off at run time (from the test's process, while
the operators run in theirs):

* ``latency``: seconds added before each request is forwarded;
* ``drop``: the probability that a request is answered by closing the connection with a
  reset (RST), before it reaches the node (``drop_after`` the same, after it did: the node
  acted, the client never hears; ``fail_methods``: every request of these methods, before);
* ``stall``: requests are held (not answered) while set, up to its seconds;
* ``lag``: the node serves a head ``lag`` blocks behind: ``eth_blockNumber`` and the tag
  ``"latest"`` in reads become that block, and a receipt in a newer block is not found.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import struct
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["RpcProxy"]

_TAGGED = {  # method -> index of its block tag parameter
    "eth_call": 1,
    "eth_getBalance": 1,
    "eth_getCode": 1,
    "eth_getTransactionCount": 1,
    "eth_getStorageAt": 2,
    "eth_getBlockByNumber": 0,
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (it timed out, or was killed) is no news."""


class RpcProxy:
    """A faulty JSON-RPC endpoint forwarding to ``upstream``; ``url`` is where to connect.

    Arguments:
        upstream: the node's HTTP URL.
        seed: seeds the drop decisions.
    """

    def __init__(self, upstream: str, *, seed: int = 0):
        self.upstream = upstream
        self.latency = 0.0
        self.drop = 0.0
        self.drop_after = 0.0
        self.stall_until = 0.0
        self.lag = 0
        self.fail_methods: set[str] = set()
        self.requests = 0
        self.faults = 0  # requests dropped, reset or stalled
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The proxy's URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def clear(self) -> None:
        """No faults from now on."""
        self.latency, self.drop, self.drop_after, self.stall_until, self.lag = 0.0, 0.0, 0.0, 0, 0
        self.fail_methods = set()

    def stall(self, seconds: float) -> None:
        """Hold every request for up to ``seconds`` from now."""
        self.stall_until = time.monotonic() + seconds

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------ internals

    def _roll(self, probability: float) -> bool:
        with self._lock:
            return probability > 0 and self._rng.random() < probability

    def _count(self, *, fault: bool) -> None:
        with self._lock:
            self.requests += 1
            self.faults += fault

    def _upstream(self, payload: Any) -> Any:
        request = urllib.request.Request(
            self.upstream,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def _head(self) -> int:
        answer = self._upstream({"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber"})
        return int(answer["result"], 16)

    def _lagging(self, call: dict[str, Any], head: int) -> dict[str, Any] | None:
        """The call rewritten for a head ``head``, or an answer to give directly."""
        method, params = call.get("method"), list(call.get("params") or [])
        if method == "eth_blockNumber":
            return {"jsonrpc": "2.0", "id": call.get("id"), "result": hex(head)}
        index = _TAGGED.get(str(method))
        if index is not None and len(params) > index and params[index] == "latest":
            params[index] = hex(head)
        if method == "eth_getLogs" and params and params[0].get("toBlock") in ("latest", None):
            params[0] = {**params[0], "toBlock": hex(head)}
        call["params"] = params
        return None

    def _forward(self, call: dict[str, Any]) -> dict[str, Any]:
        lag, head = self.lag, 0
        if lag:
            head = max(0, self._head() - lag)
            direct = self._lagging(call, head)
            if direct is not None:
                return direct
        answer: dict[str, Any] = self._upstream(call)
        receipt = answer.get("result")
        if lag and call.get("method") == "eth_getTransactionReceipt" and receipt:
            late = int(receipt["blockNumber"], 16) > head
            answer["result"] = None if late else receipt  # not on this node yet
        return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reset(self) -> None:
                with contextlib.suppress(OSError):
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.close()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stalled = False
                while time.monotonic() < proxy.stall_until:
                    stalled = True
                    time.sleep(0.05)
                if proxy.latency:
                    time.sleep(proxy.latency)
                payload = json.loads(body)
                methods = (
                    {c.get("method") for c in payload}
                    if isinstance(payload, list)
                    else {payload.get("method")}
                )
                if proxy._roll(proxy.drop) or methods & proxy.fail_methods:
                    proxy._count(fault=True)
                    self._reset()
                    return
                try:
                    if isinstance(payload, list):
                        answer: Any = [proxy._forward(call) for call in payload]
                    else:
                        answer = proxy._forward(payload)
                except OSError:
                    proxy._count(fault=True)
                    self._reset()  # the node is unreachable: so is this proxy
                    return
                if proxy._roll(proxy.drop_after):
                    proxy._count(fault=True)
                    self._reset()
                    return
                proxy._count(fault=stalled)
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
