"""NonceManager alone, and many threads sending through one ChainClient."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st
from web3 import Web3

from nornir_coopchain.chain.accounts import dev_accounts
from nornir_coopchain.chain.nonce import NonceManager

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress
    from hexbytes import HexBytes

    from nornir_coopchain.chain.client import ChainClient

A = Web3.to_checksum_address("0x" + "aa" * 20)
B = Web3.to_checksum_address("0x" + "bb" * 20)


class _Fetch:
    def __init__(self, start: int = 5):
        self.start, self.calls = start, 0

    def __call__(self, address: ChecksumAddress) -> int:
        self.calls += 1
        return self.start


def test_first_use_reads_pending_count_once() -> None:
    fetch = _Fetch(5)
    nonces = NonceManager(fetch)
    assert [nonces.take(A) for _ in range(3)] == [5, 6, 7]
    assert nonces.take(B) == 5
    assert fetch.calls == 2


def test_released_nonces_are_reused_lowest_first() -> None:
    nonces = NonceManager(_Fetch(0))
    taken = [nonces.take(A) for _ in range(5)]
    assert taken == [0, 1, 2, 3, 4]
    nonces.release(A, 3)
    nonces.release(A, 1)
    assert [nonces.take(A) for _ in range(3)] == [1, 3, 5]
    nonces.release(A, 5)  # the newest: the counter shrinks
    assert nonces.peek(A) == 5


def test_resync_asks_the_node_again() -> None:
    fetch = _Fetch(0)
    nonces = NonceManager(fetch)
    nonces.take(A)
    fetch.start = 10
    nonces.resync(A)
    nonces.release(A, 0)  # stale release after a resync: ignored
    assert nonces.take(A) == 10
    assert fetch.calls == 2


def test_concurrent_takes_are_unique_and_contiguous() -> None:
    nonces = NonceManager(_Fetch(0))
    barrier = threading.Barrier(50)

    def worker() -> list[int]:
        barrier.wait()
        return [nonces.take(A) for _ in range(40)]

    with ThreadPoolExecutor(50) as pool:
        results = [n for batch in pool.map(lambda _: worker(), range(50)) for n in batch]
    assert sorted(results) == list(range(2000))


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 20)), max_size=60))
def test_take_release_never_hands_out_a_nonce_twice(ops: list[tuple[bool, int]]) -> None:
    nonces = NonceManager(_Fetch(0))
    outstanding: set[int] = set()
    for is_take, pick in ops:
        if is_take or not outstanding:
            nonce = nonces.take(A)
            assert nonce not in outstanding
            outstanding.add(nonce)
        else:
            nonce = sorted(outstanding)[pick % len(outstanding)]
            outstanding.remove(nonce)
            nonces.release(A, nonce)
    # Released nonces are always filled first, so the outstanding set stays gap-free.
    while (following := nonces.peek(A)) is not None and len(outstanding) < following:
        outstanding.add(nonces.take(A))
    assert outstanding == set(range(len(outstanding)))


@pytest.mark.parametrize(
    ("threads", "per_thread"),
    [pytest.param(50, 4, id="50x4")],
)
def test_many_threads_one_client(chain: ChainClient, threads: int, per_thread: int) -> None:
    if chain.kind == "embedded":
        threads, per_thread = 8, 3  # py-evm is serialised and ~40 tx/s
    sender, receiver = dev_accounts(chain, 5)[3:5]
    start = chain.w3.eth.get_transaction_count(sender.address, "pending")
    barrier = threading.Barrier(threads)

    def worker(_: int) -> list[HexBytes]:
        barrier.wait()
        sent = [
            chain.send_transaction(sender, {"to": receiver.address, "value": 1})
            for _ in range(per_thread)
        ]
        return sent

    began = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        hashes = [h for batch in pool.map(worker, range(threads)) for h in batch]
    sent = time.monotonic() - began
    receipts = [chain.wait_for_receipt(h, timeout=30) for h in hashes]
    elapsed = time.monotonic() - began
    total = threads * per_thread
    assert len(set(hashes)) == total
    assert all(r["status"] == 1 for r in receipts)
    used = sorted(chain.w3.eth.get_transaction(h)["nonce"] for h in hashes)
    assert used == list(range(start, start + total))  # no collision, no gap
    assert chain.w3.eth.get_transaction_count(sender.address) == start + total
    assert elapsed < 30
    print(
        f"{chain.kind}: {total} tx from {threads} threads: sent in {sent:.2f} s "
        f"({total / sent:.0f} tx/s), all mined and confirmed in {elapsed:.2f} s"
    )
