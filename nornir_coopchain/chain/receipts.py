"""Waiting for receipts, and why a mined transaction reverted.

:func:`wait_for_receipt` polls until the receipt has enough confirmations (read
again at each poll: a transaction reorged out before it has them is waited for anew). While a
transaction this client sent stays without one, it looks for a lost transaction every
``rebroadcast_after`` seconds, and once at the timeout, through
:func:`~nornir_coopchain.chain.rebroadcast.check_stalled`, then polls again at once (a
transaction re-broadcast at the timeout still counts if the node mines it right away).

A receipt with status 0 is explained by :func:`replay_revert`: the transaction is replayed
with ``eth_call`` on the block it was mined in, and the revert data becomes the contract's
typed error (:func:`~nornir_coopchain.chain.errors.decode_revert`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound

from nornir_coopchain.chain.errors import decode_revert
from nornir_coopchain.chain.rebroadcast import check_stalled
from nornir_coopchain.chain.rpc_errors import node_errors
from nornir_coopchain.exceptions import TransactionError, TransactionReverted, TransactionTimeout

if TYPE_CHECKING:
    from web3.types import TxParams, TxReceipt

    from nornir_coopchain.chain.client import ChainClient

__all__ = ["replay_revert", "wait_for_receipt"]


def _confirmed(client: ChainClient, receipt: TxReceipt) -> bool:
    return (
        client.confirmations == 0
        or client.w3.eth.block_number - receipt["blockNumber"] >= client.confirmations
    )


def wait_for_receipt(
    client: ChainClient, tx_hash: HexBytes | bytes | str, *, timeout: float | None = None
) -> TxReceipt:
    """Poll for a receipt, wait for confirmations, and raise the revert if status is 0.

    See :meth:`ChainClient.wait_for_receipt
    <nornir_coopchain.chain.client.ChainClient.wait_for_receipt>`.
    """
    tx_hash = HexBytes(tx_hash)
    limit = client.receipt_timeout if timeout is None else timeout
    started = time.monotonic()
    deadline, next_check, checked = started + limit, started + client.rebroadcast_after, False
    receipt: TxReceipt | None = None
    while True:
        with node_errors(client.url, "read a receipt"):
            # Read again until confirmed: a reorg may take a mined transaction out again.
            if receipt is None or client.confirmations:
                try:
                    receipt = client.w3.eth.get_transaction_receipt(tx_hash)
                except TransactionNotFound:
                    receipt = None
            if receipt is not None and _confirmed(client, receipt):
                break
        now = time.monotonic()
        if receipt is None and (now >= next_check or (now >= deadline and not checked)):
            checked, next_check = True, now + client.rebroadcast_after
            receipt = check_stalled(client, tx_hash)
            continue  # poll again at once: what was re-broadcast may be mined already
        if now >= deadline:
            raise _timeout(client, tx_hash, limit, mined=receipt is not None)
        time.sleep(client.poll_interval)
    client.inflight.forget(tx_hash)
    if receipt["status"] == 0:
        raise replay_revert(client, tx_hash, receipt)
    return receipt


def _timeout(
    client: ChainClient, tx_hash: HexBytes, limit: float, *, mined: bool
) -> TransactionTimeout:
    hex_hash = tx_hash.to_0x_hex()
    state = f"fewer than {client.confirmations} confirmations" if mined else "not mined"
    kept = client.inflight.get(tx_hash)
    again = f", re-broadcast {kept.rebroadcasts} times" if kept and kept.rebroadcasts else ""
    return TransactionTimeout(
        f"transaction {hex_hash} {state} after {limit:g} s{again}", tx_hash=hex_hash
    )


def replay_revert(client: ChainClient, tx_hash: HexBytes, receipt: TxReceipt) -> TransactionError:
    """Why a mined transaction reverted: replay it with ``eth_call`` on its block.

    Arguments:
        client: the connected client.
        tx_hash: the reverted transaction.
        receipt: its receipt (status 0).

    Returns:
        The typed revert (a ContractError subclass when known), or a TransactionError when
        it ran out of gas.

    Raises:
        ChainConnectionError: the node could not be reached.
    """
    hex_hash = tx_hash.to_0x_hex()
    with node_errors(client.url, "read a reverted transaction"):
        tx = client.w3.eth.get_transaction(tx_hash)
        call = {
            "from": tx["from"],
            "to": tx.get("to"),
            "data": tx["input"],
            "value": tx["value"],
            "gas": tx["gas"],
        }
    try:
        with node_errors(client.url, "replay a reverted transaction", tx_hash=hex_hash):
            client.w3.eth.call(cast("TxParams", call), receipt["blockNumber"])
    except TransactionReverted as exc:
        return exc
    if receipt["gasUsed"] >= tx["gas"]:
        return TransactionError(f"ran out of gas ({tx['gas']})", tx_hash=hex_hash)
    return decode_revert(None, tx_hash=hex_hash)
