"""Blocks on demand and reorgs on anvil, for the tests of chains without instant finality."""

from __future__ import annotations

import threading
from typing import cast

from web3.types import RPCEndpoint

from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.devchain import DevChain

__all__ = ["Miner", "rollback"]


class Miner:
    """Mines a block every ``every`` seconds while started (automine still mines each
    transaction on arrival)."""

    def __init__(self, dev: DevChain, every: float = 0.1):
        self.dev = dev
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.dev.mine()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def rollback(client: ChainClient, blocks: int) -> None:
    """Drop the newest ``blocks`` blocks and their transactions (a reorg that loses them)."""
    response = client.w3.provider.make_request(cast("RPCEndpoint", "anvil_rollback"), [blocks])
    assert "error" not in response, response
