#!/usr/bin/env python3
"""Transaction throughput from 1, 4, 16 and 50 threads sharing ONE sending account.

Against an anvil started here (a block every ``--block-time`` seconds, default 1, like a
QBFT consortium chain; 0 = automine, on which anvil 1.7.1 now and then files a transaction
that arrives while its predecessor is being mined as "queued" and never mines it, so the
account stalls), every thread sends plain value transfers (unique values, so two
transactions with the same nonce never have the same hash) without waiting for receipts;
the run waits for all of them at the end:

* ``ours``: :class:`ChainClient.send_transaction` (local signing, the shared
  :class:`NonceManager`), with ``gas`` passed explicitly, so one RPC per transaction
  (``--estimate-gas`` lets the client estimate it: one more RPC, ``eth_estimateGas``).
  When the account's mined nonce stops moving for ``--stall`` seconds, the run asks the
  client to re-broadcast what the node lost (:meth:`ChainClient.rebroadcast_lost`: the
  client keeps every signed transaction until mined); the count is logged;
* ``naive``: web3's own way with a local key, ``w3.eth.send_transaction`` through
  ``SignAndSendRawMiddlewareBuilder``: web3 fills the nonce from
  ``eth_getTransactionCount(pending)``, the gas from ``eth_estimateGas`` and the fees from
  the node, on every transaction, with no lock between threads;
* ``unlocked`` (table only): ``w3.eth.send_transaction`` from an anvil-unlocked account:
  anvil signs and picks the nonce (web3 does not fill it); keys in the node are not how this
  project runs, it is shown for reference.

Each (mode, thread count) uses its own fresh sender account. ``tx_per_s`` = transactions
mined / (first send -> last of them mined; with a block time this includes the wait for
the last block). ``nonce_errors`` = sends refused with a message
about the nonce (nonce too low/high, replacement underpriced, already known) plus accepted
transactions that never got a receipt. Local signing costs ~6 ms per transaction with
eth-keys' pure-Python backend and ~0.5 ms with ``coincurve``; ``--ecc`` picks the backend.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from _common import emit_json, log, machine, setup_logging, table, verdict

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

    from nornir_coopchain.chain.client import ChainClient

THREADS = (1, 4, 16, 50)
TARGET_TPS = 300.0
RECIPIENT = "0x000000000000000000000000000000000000dEaD"
NONCE_WORDS = ("nonce", "replacement", "already known", "underpriced")
BACKENDS = {
    "native": "eth_keys.backends.NativeECCBackend",
    "coincurve": "eth_keys.backends.CoinCurveECCBackend",
}


@dataclass
class Run:
    """One (mode, thread count) run."""

    threads: int
    sent: int = 0
    accepted: list[Any] = field(default_factory=list)
    nonce_refusals: int = 0
    other_errors: int = 0
    missing: int = 0
    elapsed: float = 0.0
    examples: list[str] = field(default_factory=list)
    rebroadcast: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def mined(self) -> int:
        return len(self.accepted) - self.missing

    @property
    def tx_per_s(self) -> float:
        return self.mined / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def nonce_errors(self) -> int:
        return self.nonce_refusals + self.missing

    def failed(self, exc: BaseException) -> None:
        text = str(exc)
        with self.lock:
            if any(word in text.lower() for word in NONCE_WORDS):
                self.nonce_refusals += 1
            else:
                self.other_errors += 1
            if len(self.examples) < 3:
                self.examples.append(f"{type(exc).__name__}: {text[:160]}")


def _drive(
    run: Run,
    send: Callable[[int], Any],
    per_thread: int,
    seconds: float,
) -> None:
    """``run.threads`` threads each call ``send(value)`` up to ``per_thread`` times."""
    deadline = time.monotonic() + seconds
    barrier = threading.Barrier(run.threads)

    def worker(index: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            if time.monotonic() >= deadline:
                return
            with run.lock:
                run.sent += 1
            try:
                tx_hash = send(index * 1_000_000 + i + 1)
            except Exception as exc:
                run.failed(exc)
                continue
            with run.lock:
                run.accepted.append(tx_hash)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(run.threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def _measure(
    run: Run,
    w3: Web3,
    sender: str,
    send: Callable[[int], Any],
    per_thread: int,
    seconds: float,
    settle: float,
    on_stall: Callable[[], int] | None = None,
    stall: float = 3.0,
) -> Run:
    """Drive the threads, wait until every accepted transaction is mined, check receipts.

    ``on_stall`` (re-broadcast lost transactions, returning how many) is called when the
    mined nonce has not moved for ``stall`` seconds, then again every ``stall`` seconds.
    """
    start_nonce = w3.eth.get_transaction_count(sender, "latest")  # type: ignore[arg-type]
    started = time.monotonic()
    _drive(run, send, per_thread, seconds)
    target = start_nonce + len(run.accepted)
    last, last_change = start_nonce, time.monotonic()
    next_stall_check = last_change + stall
    while True:
        mined = w3.eth.get_transaction_count(sender, "latest")  # type: ignore[arg-type]
        now = time.monotonic()
        if mined != last:
            last, last_change, next_stall_check = mined, now, now + stall
        if mined >= target or now - last_change > settle:
            break
        if on_stall is not None and now >= next_stall_check:
            next_stall_check = now + stall
            resent = on_stall()
            run.rebroadcast += resent
            if resent:
                log.warning("re-broadcast %d lost transactions at nonce %d", resent, mined)
        time.sleep(0.005)
    run.elapsed = last_change - started if mined < target else now - started

    def has_receipt(tx_hash: Any) -> bool:
        try:
            return w3.eth.get_transaction_receipt(tx_hash) is not None
        except Exception:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(has_receipt, run.accepted))
    run.missing = found.count(False)
    return run


def run_ours(
    client: ChainClient, account: LocalAccount, threads: int, args: argparse.Namespace
) -> Run:
    base: dict[str, Any] = {"to": RECIPIENT}
    if not args.estimate_gas:
        base["gas"] = 21_000

    def send(value: int) -> Any:
        return client.send_transaction(account, {**base, "value": value})

    return _measure(
        Run(threads),
        client.w3,
        account.address,
        send,
        args.tx_per_thread,
        args.seconds,
        args.settle,
        on_stall=lambda: client.rebroadcast_lost(account.address),
        stall=args.stall,
    )


def run_naive(url: str, account: LocalAccount, threads: int, args: argparse.Namespace) -> Run:
    from web3 import HTTPProvider, Web3
    from web3.middleware import SignAndSendRawMiddlewareBuilder
    from web3.types import Wei

    w3 = Web3(HTTPProvider(url))
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), layer=0)

    def send(value: int) -> Any:
        return w3.eth.send_transaction(
            {"from": account.address, "to": RECIPIENT, "value": Wei(value)}
        )

    return _measure(
        Run(threads), w3, account.address, send, args.tx_per_thread, args.seconds, args.settle
    )


def run_unlocked(url: str, address: str, threads: int, args: argparse.Namespace) -> Run:
    from eth_utils.address import to_checksum_address
    from web3 import HTTPProvider, Web3
    from web3.types import Wei

    w3 = Web3(HTTPProvider(url))
    sender = to_checksum_address(address)

    def send(value: int) -> Any:
        return w3.eth.send_transaction({"from": sender, "to": RECIPIENT, "value": Wei(value)})

    return _measure(Run(threads), w3, address, send, args.tx_per_thread, args.seconds, args.settle)


def sign_ms() -> float:
    """Milliseconds one local signature of a transfer takes with the active backend."""
    from eth_account import Account

    account = Account.create()
    tx = {
        "to": RECIPIENT,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "chainId": 31337,
        "nonce": 0,
    }
    account.sign_transaction(tx)
    count, started = 200, time.perf_counter()
    for nonce in range(count):
        account.sign_transaction({**tx, "nonce": nonce})
    return (time.perf_counter() - started) / count * 1000


def backend_name() -> str:
    from eth_account import Account

    return type(Account.create()._key_obj.backend).__name__


def run(args: argparse.Namespace) -> dict[str, Any]:
    from nornir_coopchain.chain.accounts import dev_accounts
    from nornir_coopchain.chain.client import ChainClient
    from nornir_coopchain.chain.devchain import start_anvil

    modes = ["ours", "naive"] + ([] if args.json or args.no_unlocked else ["unlocked"])
    needed = len(modes) * len(args.threads) + 1
    extra = ["--accounts", str(max(10, needed))]
    if args.block_time:
        extra += ["--block-time", str(args.block_time)]
    results: dict[str, dict[int, Run]] = {mode: {} for mode in modes}
    with (
        start_anvil(extra_args=extra) as anvil,
        ChainClient.connect(
            anvil.ws_url if args.transport == "ws" else anvil.url, receipt_timeout=120
        ) as client,
    ):
        accounts = dev_accounts(client, needed)
        next_account = iter(accounts[1:])
        for threads in args.threads:
            for mode in modes:
                account = next(next_account)
                if mode == "ours":
                    result = run_ours(client, account, threads, args)
                elif mode == "naive":
                    result = run_naive(anvil.url, account, threads, args)
                else:
                    result = run_unlocked(anvil.url, account.address, threads, args)
                results[mode][threads] = result
                log.info(
                    "%-8s %2d threads: %4d sent, %4d mined in %.2f s = %6.1f tx/s, "
                    "nonce errors %d, other errors %d, re-broadcast %d %s",
                    mode,
                    threads,
                    result.sent,
                    result.mined,
                    result.elapsed,
                    result.tx_per_s,
                    result.nonce_errors,
                    result.other_errors,
                    result.rebroadcast,
                    "; ".join(result.examples),
                )
    return {mode: by_threads for mode, by_threads in results.items()}


def as_json(results: dict[str, dict[int, Run]]) -> dict[str, Any]:
    return {
        mode: {
            "threads": {
                str(threads): {
                    "tx_per_s": round(result.tx_per_s, 1),
                    "nonce_errors": result.nonce_errors,
                }
                for threads, result in by_threads.items()
            }
        }
        for mode, by_threads in results.items()
        if mode in ("ours", "naive")
    }


def render(results: dict[str, dict[int, Run]], args: argparse.Namespace, ms: float) -> str:
    rows = []
    for mode, by_threads in results.items():
        for threads, result in by_threads.items():
            rows.append(
                [
                    f"{mode}, {threads} threads",
                    str(result.sent),
                    str(result.mined),
                    f"{result.elapsed:.2f}",
                    f"{result.tx_per_s:.1f}",
                    str(result.nonce_errors),
                    str(result.other_errors),
                    str(result.rebroadcast),
                ]
            )
    out = [
        f"one sending account per run; signing backend {backend_name()} ({ms:.2f} ms/signature); "
        f"ours: gas {'estimated' if args.estimate_gas else 'explicit (21000)'}, "
        f"over {args.transport}, "
        + (f"anvil block time {args.block_time:g} s" if args.block_time else "anvil automine"),
        table(
            ["run", "sent", "mined", "seconds", "tx/s", "nonce err", "other err", "re-sent"], rows
        ),
        "",
    ]
    top = max(args.threads)
    ours, naive = results["ours"].get(top), results["naive"].get(top)
    if ours is not None and naive is not None:
        ratio = ours.tx_per_s / naive.tx_per_s if naive.tx_per_s else float("inf")
        out.append(f"ours / naive at {top} threads: {ratio:.2f}x")
    if ours is not None:
        holds = ours.tx_per_s >= TARGET_TPS and ours.nonce_errors == 0
        out.append(
            f"target >= {TARGET_TPS:.0f} tx/s at {top} threads with zero nonce errors: "
            f"{ours.tx_per_s:.1f} tx/s, {ours.nonce_errors} nonce errors -> {verdict(holds)}"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Pipelined transaction throughput: our ChainClient/NonceManager vs naive "
        "web3, 1/4/16/50 threads on one account (starts its own anvil).",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="sending stops after this (default 10)"
    )
    parser.add_argument(
        "--tx-per-thread", type=int, default=200, help="at most this many per thread (200)"
    )
    parser.add_argument(
        "--threads",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        default=THREADS,
        help="thread counts, comma-separated (default 1,4,16,50)",
    )
    parser.add_argument(
        "--ecc",
        choices=["auto", *BACKENDS],
        default="auto",
        help="eth-keys signing backend (auto: coincurve when installed)",
    )
    parser.add_argument(
        "--estimate-gas", action="store_true", help="ours: let the client estimate gas per tx"
    )
    parser.add_argument(
        "--transport",
        choices=["http", "ws"],
        default="http",
        help="ours: the ChainClient's transport to anvil (default http)",
    )
    parser.add_argument(
        "--block-time",
        type=float,
        default=1.0,
        help="anvil --block-time in seconds, like a consortium chain's (default 1); 0: automine",
    )
    parser.add_argument(
        "--no-unlocked", action="store_true", help="skip the unlocked-account row of the table"
    )
    parser.add_argument(
        "--settle", type=float, default=15.0, help="seconds without progress before giving up"
    )
    parser.add_argument(
        "--stall",
        type=float,
        default=3.0,
        help="ours: seconds without progress before re-broadcasting lost transactions (3)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    args = parser.parse_args(argv)
    if args.ecc != "auto":
        os.environ["ECC_BACKEND_CLASS"] = BACKENDS[args.ecc]
    setup_logging(args.verbose)
    ms = sign_ms()
    log.info("signing backend %s: %.2f ms per transaction", backend_name(), ms)
    results = run(args)
    if args.json:
        emit_json(as_json(results))
    else:
        info = machine()
        print(render(results, args, ms))
        print(
            f"\nmachine: {info['nproc']} x {info['cpu']}, python {info['python']}, {info['date']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
