"""Fee fields for new transactions: the policy, and a cache every sending thread shares.

:func:`read_fees` asks the node: ``gasPrice`` on a legacy network, otherwise EIP-1559 caps
(``maxFeePerGas`` = 2 x base fee + tip, room for several blocks of base-fee growth; the tip
from ``eth_maxPriorityFeePerGas``, or 1 gwei when the node has none). A free-gas network
never asks (``{"gasPrice": 0}``, see :class:`~nornir_coopchain.chain.client.ChainClient`).

:class:`FeeCache` reuses an answer for ``FEE_TTL`` seconds and refreshes it once per expiry,
however many threads send: one thread asks the node while the others keep using the
previous answer (only the very first reading makes them wait).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from web3.exceptions import Web3Exception

from nornir_coopchain.chain.rpc_errors import node_errors

if TYPE_CHECKING:
    from collections.abc import Callable

    from web3 import Web3

__all__ = ["DEFAULT_TIP", "FEE_TTL", "FeeCache", "read_fees"]

FEE_TTL = 1.0  # seconds a fee reading is reused
DEFAULT_TIP = 10**9  # 1 gwei, when the node has no eth_maxPriorityFeePerGas


def read_fees(w3: Web3, url: str, *, legacy: bool) -> dict[str, int]:
    """Ask the node for the fee fields of a new transaction.

    Arguments:
        w3: the connected ``Web3``.
        url: the node's URL (redacted in messages).
        legacy: send ``gasPrice`` instead of EIP-1559 caps.

    Returns:
        ``{"gasPrice": …}`` or ``{"maxPriorityFeePerGas": …, "maxFeePerGas": …}``.

    Raises:
        ChainConnectionError: the node could not be asked.
    """
    with node_errors(url, "read fees"):
        if legacy:
            return {"gasPrice": int(w3.eth.gas_price)}
        base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
        try:
            tip = int(w3.eth.max_priority_fee)
        except Web3Exception:
            tip = DEFAULT_TIP
    return {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base + tip}


class FeeCache:
    """The latest fee reading, shared by all threads and refreshed once per expiry.

    Arguments:
        read: asks the node (e.g. :func:`read_fees` bound to a client).
        ttl: seconds a reading is reused.
    """

    def __init__(self, read: Callable[[], dict[str, int]], ttl: float = FEE_TTL):
        self._read = read
        self.ttl = ttl
        self._refresh = threading.Lock()  # held by the one thread asking the node
        self._cached: tuple[dict[str, int], float] | None = None  # (fields, monotonic time)

    def fields(self) -> dict[str, int]:
        """The fee fields: cached, or read now by exactly one thread.

        Returns:
            A copy of the fields (the caller may change it).

        Raises:
            Whatever ``read`` raises (the previous reading stays cached).
        """
        cached = self._cached
        if cached is not None and time.monotonic() - cached[1] < self.ttl:
            return dict(cached[0])
        # Expired: one thread refreshes; the others keep the previous reading meanwhile.
        if cached is None:
            self._refresh.acquire()  # nothing to fall back on: wait for the first reading
        elif not self._refresh.acquire(blocking=False):
            return dict(cached[0])
        try:
            cached = self._cached  # another thread may have refreshed while we waited
            if cached is not None and time.monotonic() - cached[1] < self.ttl:
                return dict(cached[0])
            fresh = self._read()
            self._cached = (fresh, time.monotonic())
            return dict(fresh)
        finally:
            self._refresh.release()

    def clear(self) -> None:
        """Forget the reading; the next :meth:`fields` asks the node."""
        self._cached = None
