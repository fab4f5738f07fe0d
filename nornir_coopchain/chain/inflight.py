"""Signed transactions kept from their send until they are mined, for re-broadcasting.

A node may lose a transaction it accepted (a restart, a pool eviction, anvil's
``anvil_dropTransaction``); every later nonce of the account then waits behind the gap for
ever. :class:`InFlight` keeps the raw bytes of each transaction a
:class:`~nornir_coopchain.chain.sending.Sender` sent, per account and nonce, so
:mod:`~nornir_coopchain.chain.rebroadcast` can send the very same transaction again.

An entry goes when its receipt is read, when the account's mined nonce passes it
(:meth:`InFlight.prune`), or, past ``limit`` entries per account, lowest nonce first.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress
    from hexbytes import HexBytes

__all__ = ["InFlight", "KeptTransaction"]

PRUNE_ABOVE = 256  # entries per account before a send asks for the mined nonce
PRUNE_EVERY = 1.0  # seconds between two such prunes of one account
LIMIT = 10_000  # entries per account, at most


@dataclass
class KeptTransaction:
    """One signed transaction the node accepted and has not mined yet (as far as we know).

    Attributes:
        sender: the signing account.
        nonce: its nonce.
        tx_hash: its hash.
        raw: the signed transaction, exactly as sent.
        rebroadcasts: how many times the node accepted it again (it had lost it).
    """

    sender: ChecksumAddress
    nonce: int
    tx_hash: HexBytes
    raw: bytes
    rebroadcasts: int = 0


class InFlight:
    """The kept transactions of one client, by account and nonce; safe between threads.

    Arguments:
        limit: entries kept per account at most (the lowest nonces go first).
    """

    def __init__(self, limit: int = LIMIT):
        self.limit = limit
        self._lock = threading.Lock()
        self._by_nonce: dict[ChecksumAddress, dict[int, KeptTransaction]] = {}
        self._by_hash: dict[bytes, KeptTransaction] = {}
        self._pruned_at: dict[ChecksumAddress, float] = {}
        self._recovered_at: dict[ChecksumAddress, float] = {}

    def keep(self, sender: ChecksumAddress, nonce: int, tx_hash: HexBytes, raw: bytes) -> None:
        """Keep a transaction the node accepted; it replaces any kept one with that nonce."""
        kept = KeptTransaction(sender, nonce, tx_hash, bytes(raw))
        with self._lock:
            by_nonce = self._by_nonce.setdefault(sender, {})
            replaced = by_nonce.pop(nonce, None)
            if replaced is not None:
                self._by_hash.pop(bytes(replaced.tx_hash), None)
            by_nonce[nonce] = kept
            self._by_hash[bytes(tx_hash)] = kept
            while len(by_nonce) > self.limit:
                self._drop(by_nonce.pop(min(by_nonce)))

    def get(self, tx_hash: HexBytes | bytes) -> KeptTransaction | None:
        """The kept transaction with this hash, if any."""
        with self._lock:
            return self._by_hash.get(bytes(tx_hash))

    def at(self, sender: ChecksumAddress, nonce: int) -> KeptTransaction | None:
        """The kept transaction of ``sender`` with this nonce, if any."""
        with self._lock:
            return self._by_nonce.get(sender, {}).get(nonce)

    def forget(self, tx_hash: HexBytes | bytes) -> None:
        """Drop a transaction (its receipt was read)."""
        with self._lock:
            kept = self._by_hash.get(bytes(tx_hash))
            if kept is not None:
                self._by_nonce.get(kept.sender, {}).pop(kept.nonce, None)
                self._drop(kept)

    def prune(self, sender: ChecksumAddress, mined: int) -> None:
        """Drop the transactions of ``sender`` below ``mined`` (its mined transaction count)."""
        with self._lock:
            by_nonce = self._by_nonce.get(sender, {})
            for nonce in [nonce for nonce in by_nonce if nonce < mined]:
                self._drop(by_nonce.pop(nonce))
            self._pruned_at[sender] = time.monotonic()

    def needs_prune(self, sender: ChecksumAddress) -> bool:
        """Whether many transactions of ``sender`` are kept and none was pruned lately.

        True for one caller per ``PRUNE_EVERY`` seconds, which should then read the mined
        count and call :meth:`prune`.
        """
        now = time.monotonic()
        with self._lock:
            if len(self._by_nonce.get(sender, ())) <= PRUNE_ABOVE:
                return False
            if now - self._pruned_at.get(sender, 0.0) < PRUNE_EVERY:
                return False
            self._pruned_at[sender] = now
            return True

    def claim_recovery(self, sender: ChecksumAddress, interval: float) -> bool:
        """Whether the caller may look for lost transactions of ``sender`` now.

        True for one caller per ``interval`` seconds: threads waiting for receipts of the
        same account do not all re-broadcast the same transactions.
        """
        now = time.monotonic()
        with self._lock:
            last = self._recovered_at.get(sender)
            if last is not None and now - last < interval:
                return False
            self._recovered_at[sender] = now
            return True

    def highest(self, sender: ChecksumAddress) -> int | None:
        """The highest kept nonce of ``sender`` (``None`` when nothing is kept)."""
        with self._lock:
            by_nonce = self._by_nonce.get(sender)
            return max(by_nonce) if by_nonce else None

    def nonces(self, sender: ChecksumAddress) -> set[int]:
        """The nonces of ``sender``'s kept transactions."""
        with self._lock:
            return set(self._by_nonce.get(sender, ()))

    def count(self, sender: ChecksumAddress) -> int:
        """How many transactions of ``sender`` are kept."""
        with self._lock:
            return len(self._by_nonce.get(sender, ()))

    def clear(self) -> None:
        """Forget everything (e.g. after reverting a dev chain to a snapshot)."""
        with self._lock:
            self._by_nonce.clear()
            self._by_hash.clear()
            self._pruned_at.clear()
            self._recovered_at.clear()

    def _drop(self, kept: KeptTransaction) -> None:
        if self._by_hash.get(bytes(kept.tx_hash)) is kept:
            del self._by_hash[bytes(kept.tx_hash)]
