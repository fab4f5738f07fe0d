"""NonceManager and InFlight alone, and many threads sending through one ChainClient."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from hexbytes import HexBytes
from hypothesis import given
from hypothesis import strategies as st
from needs import needs_anvil
from web3 import Web3

from nornir_coopchain.chain import inflight
from nornir_coopchain.chain.accounts import dev_accounts
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.devchain import start_anvil
from nornir_coopchain.chain.inflight import InFlight
from nornir_coopchain.chain.nonce import NonceManager

if TYPE_CHECKING:
    from collections.abc import Iterator

    from eth_typing import ChecksumAddress

    from nornir_coopchain.chain.devchain import AnvilProcess

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


def test_resync_skips_nonces_the_node_holds_behind_a_gap_and_fills_the_gap_first() -> None:
    # 0..5 sent; 2 may never have arrived (a transport error): the node's pending count
    # stops at 2, but it holds 3, 4 and 5 queued behind the gap (and has mined 0 and 1).
    fetch = _Fetch(0)
    nonces = NonceManager(fetch)
    assert [nonces.take(A) for _ in range(6)] == [0, 1, 2, 3, 4, 5]
    fetch.start = 2
    nonces.resync(A, held={0, 1, 3, 4, 5})
    assert [nonces.take(A) for _ in range(3)] == [2, 6, 7]
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


def _hash(n: int) -> HexBytes:
    return HexBytes(n.to_bytes(32, "big"))


def test_inflight_keeps_one_transaction_per_nonce() -> None:
    kept = InFlight()
    kept.keep(A, 0, _hash(1), b"raw-1")
    kept.keep(A, 1, _hash(2), b"raw-2")
    kept.keep(B, 0, _hash(3), b"raw-3")
    assert kept.at(A, 1) is kept.get(_hash(2))
    kept.keep(A, 1, _hash(4), b"raw-4")  # a replacement for nonce 1
    assert kept.get(_hash(2)) is None
    replacement = kept.at(A, 1)
    assert replacement is not None
    assert replacement.raw == b"raw-4"
    kept.forget(_hash(4))
    assert kept.at(A, 1) is None
    assert (kept.count(A), kept.count(B)) == (1, 1)
    kept.prune(A, 1)  # nonce 0 is mined
    assert kept.get(_hash(1)) is None
    assert kept.count(B) == 1
    kept.clear()
    assert kept.get(_hash(3)) is None


def test_inflight_is_bounded_lowest_nonces_first() -> None:
    kept = InFlight(limit=3)
    for nonce in range(5):
        kept.keep(A, nonce, _hash(nonce), b"raw")
    assert [kept.at(A, nonce) is not None for nonce in range(5)] == [False, False, True, True, True]
    assert kept.get(_hash(0)) is None


def test_inflight_asks_for_pruning_and_recovery_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(inflight, "PRUNE_ABOVE", 2)
    kept = InFlight()
    for nonce in range(2):
        kept.keep(A, nonce, _hash(nonce), b"raw")
    assert not kept.needs_prune(A)  # few kept
    kept.keep(A, 2, _hash(2), b"raw")
    assert kept.needs_prune(A)
    assert not kept.needs_prune(A)  # asked already, within PRUNE_EVERY
    assert kept.claim_recovery(A, 60.0)
    assert not kept.claim_recovery(A, 60.0)
    assert kept.claim_recovery(B, 60.0)  # per account
    assert kept.claim_recovery(A, 0.0)


def _many_threads(client: ChainClient, threads: int, per_thread: int) -> None:
    sender, receiver = dev_accounts(client, 5)[3:5]
    start = client.w3.eth.get_transaction_count(sender.address, "pending")
    barrier = threading.Barrier(threads)

    def worker(_: int) -> list[HexBytes]:
        barrier.wait()
        sent = [
            client.send_transaction(sender, {"to": receiver.address, "value": 1})
            for _ in range(per_thread)
        ]
        return sent

    began = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        hashes = [h for batch in pool.map(worker, range(threads)) for h in batch]
    sent = time.monotonic() - began
    receipts = [client.wait_for_receipt(h, timeout=30) for h in hashes]
    elapsed = time.monotonic() - began
    total = threads * per_thread
    assert len(set(hashes)) == total
    assert all(r["status"] == 1 for r in receipts)
    used = sorted(client.w3.eth.get_transaction(h)["nonce"] for h in hashes)
    assert used == list(range(start, start + total))  # no collision, no gap
    assert client.w3.eth.get_transaction_count(sender.address) == start + total
    assert client.inflight.count(sender.address) == 0  # each receipt read drops its kept tx
    assert elapsed < 30
    print(
        f"{client.kind}: {total} tx from {threads} threads: sent in {sent:.2f} s "
        f"({total / sent:.0f} tx/s), all mined and confirmed in {elapsed:.2f} s"
    )


def test_many_threads_one_embedded_client() -> None:
    with ChainClient.connect("embedded://", receipt_timeout=30) as client:
        _many_threads(client, 8, 3)  # py-evm is serialised and ~40 tx/s


@pytest.fixture(
    scope="module",
    params=[
        pytest.param((), id="eip1559"),
        pytest.param(("--gas-price", "0", "--block-base-fee-per-gas", "0"), id="free_gas"),
    ],
)
def mining_anvil(request: pytest.FixtureRequest) -> Iterator[AnvilProcess]:
    """anvil mining a block every second, like a QBFT consortium (EIP-1559 or free gas).

    Not automine: anvil 1.7.1's automine sometimes files a transaction that arrives while
    its predecessor is being mined as "queued" and never mines it (nothing is lost: the
    node holds every transaction; see benchmarks/README.md, Throughput).
    """
    needs_anvil()
    with start_anvil(extra_args=("--block-time", "1", *request.param)) as process:
        yield process


@pytest.mark.anvil
@pytest.mark.parametrize("transport", ["http", "ws"])
def test_many_threads_one_client(mining_anvil: AnvilProcess, transport: str) -> None:
    url = mining_anvil.url if transport == "http" else mining_anvil.ws_url
    with ChainClient.connect(url, receipt_timeout=30) as client:
        assert client.free_gas == client.legacy_transactions  # both, or EIP-1559 fees
        _many_threads(client, 50, 4)
