"""Thread-safe nonce allocation for locally signed transactions.

web3.py fills a missing nonce from ``eth_getTransactionCount(addr, "pending")`` on every
send, without a lock: two threads sending at once read the same count and one transaction
replaces (or is rejected in favour of) the other. :class:`NonceManager` reads the pending
count once per account and then hands out nonces under a lock; a send that fails without
using its nonce gives it back, and the next send reuses it, so no gap stalls the account.
"""

from __future__ import annotations

import heapq
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from eth_typing import ChecksumAddress

__all__ = ["NonceManager"]


class NonceManager:
    """Hands out nonces per account; one instance per chain client, shared by all threads.

    Arguments:
        fetch: returns the node's pending transaction count for an address; called on
            the first use of an account and after :meth:`resync`.
    """

    def __init__(self, fetch: Callable[[ChecksumAddress], int]):
        self._fetch = fetch
        self._lock = threading.Lock()
        self._next: dict[ChecksumAddress, int] = {}
        self._released: dict[ChecksumAddress, list[int]] = {}
        self._held: dict[ChecksumAddress, set[int]] = {}

    def take(self, address: ChecksumAddress) -> int:
        """Reserve the next nonce of ``address``.

        Nonces given back by :meth:`release` are reused first, lowest first.

        Arguments:
            address: the sending account.

        Returns:
            The nonce the caller must use (and :meth:`release` if the send fails).

        Raises:
            Whatever ``fetch`` raises on the account's first use.
        """
        with self._lock:
            if address not in self._next:
                self._start(address, self._fetch(address))
            released = self._released.get(address)
            if released:
                return heapq.heappop(released)
            nonce = self._next[address]
            self._next[address] = nonce + 1
            return nonce

    def release(self, address: ChecksumAddress, nonce: int) -> None:
        """Give back a nonce whose transaction never reached the node.

        Arguments:
            address: the sending account.
            nonce: a nonce returned by :meth:`take` and not consumed.
        """
        with self._lock:
            following = self._next.get(address)
            if following is None or nonce >= following:
                return  # resynced since: the node's count already accounts for it
            released = self._released.setdefault(address, [])
            if nonce in released:
                return
            heapq.heappush(released, nonce)
            # Shrink the counter instead of keeping a tail of released nonces.
            while released and max(released) == self._next[address] - 1:
                released.remove(self._next[address] - 1)
                heapq.heapify(released)
                self._next[address] -= 1

    def resync(self, address: ChecksumAddress, held: Collection[int] = ()) -> None:
        """Forget what is known about ``address``; the next :meth:`take` asks the node.

        Use it when the node disagrees (e.g. "nonce too low" for a transaction we did not
        send, because another process used the same key) or a send may not have arrived.
        The node's pending count stops at the first gap, so the nonces of transactions it
        holds behind a gap are passed as ``held``: they are not handed out again, and the
        gaps below them are handed out first.

        Arguments:
            address: the sending account.
            held: nonces of this account's transactions the node accepted and has not
                mined yet.
        """
        with self._lock:
            self._next.pop(address, None)
            self._released.pop(address, None)
            self._held[address] = set(held)

    def _start(self, address: ChecksumAddress, pending: int) -> None:
        held = {nonce for nonce in self._held.pop(address, ()) if nonce >= pending}
        following = max(held) + 1 if held else pending
        self._next[address] = following
        gaps = [nonce for nonce in range(pending, following) if nonce not in held]
        if gaps:
            self._released[address] = gaps  # ascending: already a heap

    def reset(self) -> None:
        """Forget every account (e.g. after reverting a dev chain to a snapshot)."""
        with self._lock:
            self._next.clear()
            self._released.clear()
            self._held.clear()

    def peek(self, address: ChecksumAddress) -> int | None:
        """Return the next fresh nonce of ``address`` (``None`` before its first use)."""
        with self._lock:
            return self._next.get(address)
