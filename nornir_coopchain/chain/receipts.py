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

    from nornir_coopchain.chain.sending import Sender

__all__ = ["replay_revert", "wait_for_receipt"]


def _confirmed(sender: Sender, receipt: TxReceipt, confirmations: int) -> bool:
    return (
        confirmations == 0 or sender.w3.eth.block_number - receipt["blockNumber"] >= confirmations
    )


def wait_for_receipt(
    sender: Sender,
    tx_hash: HexBytes | bytes | str,
    *,
    timeout: float,
    confirmations: int,
    poll_interval: float,
    rebroadcast_after: float,
) -> TxReceipt:
    """Poll for a receipt, wait for confirmations, and raise the revert if status is 0.

    See :meth:`ChainClient.wait_for_receipt
    <nornir_coopchain.chain.sender.ChainClient.wait_for_receipt>`, whose settings the
    keyword arguments are.
    """
    tx_hash = HexBytes(tx_hash)
    limit = timeout
    started = time.monotonic()
    deadline, next_check, checked = started + limit, started + rebroadcast_after, False
    receipt: TxReceipt | None = None
    while True:
        with node_errors(sender.url, "read a receipt"):
            # Read again until confirmed: a reorg may take a mined transaction out again.
            if receipt is None or confirmations:
                try:
                    receipt = sender.w3.eth.get_transaction_receipt(tx_hash)
                except TransactionNotFound:
                    receipt = None
            if receipt is not None and _confirmed(sender, receipt, confirmations):
                break
        now = time.monotonic()
        if receipt is None and (now >= next_check or (now >= deadline and not checked)):
            checked, next_check = True, now + rebroadcast_after
            receipt = check_stalled(sender, tx_hash, rebroadcast_after)
            continue  # poll again at once: what was re-broadcast may be mined already
        if now >= deadline:
            raise _timeout(sender, tx_hash, limit, confirmations, mined=receipt is not None)
        time.sleep(poll_interval)
    sender.inflight.forget(tx_hash)
    if receipt["status"] == 0:
        raise replay_revert(sender, tx_hash, receipt)
    return receipt


def _timeout(
    sender: Sender, tx_hash: HexBytes, limit: float, confirmations: int, *, mined: bool
) -> TransactionTimeout:
    hex_hash = tx_hash.to_0x_hex()
    state = f"fewer than {confirmations} confirmations" if mined else "not mined"
    kept = sender.inflight.get(tx_hash)
    again = f", re-broadcast {kept.rebroadcasts} times" if kept and kept.rebroadcasts else ""
    return TransactionTimeout(
        f"transaction {hex_hash} {state} after {limit:g} s{again}", tx_hash=hex_hash
    )


def replay_revert(sender: Sender, tx_hash: HexBytes, receipt: TxReceipt) -> TransactionError:
    """Why a mined transaction reverted: replay it with ``eth_call`` on its block.

    Arguments:
        sender: the sender whose node to ask.
        tx_hash: the reverted transaction.
        receipt: its receipt (status 0).

    Returns:
        The typed revert (a ContractError subclass when known), or a TransactionError when
        it ran out of gas.

    Raises:
        ChainConnectionError: the node could not be reached.
    """
    hex_hash = tx_hash.to_0x_hex()
    with node_errors(sender.url, "read a reverted transaction"):
        tx = sender.w3.eth.get_transaction(tx_hash)
        call = {
            "from": tx["from"],
            "to": tx.get("to"),
            "data": tx["input"],
            "value": tx["value"],
            "gas": tx["gas"],
        }
    try:
        with node_errors(sender.url, "replay a reverted transaction", tx_hash=hex_hash):
            sender.w3.eth.call(cast("TxParams", call), receipt["blockNumber"])
    except TransactionReverted as exc:
        return exc
    if receipt["gasUsed"] >= tx["gas"]:
        return TransactionError(f"ran out of gas ({tx['gas']})", tx_hash=hex_hash)
    return decode_revert(None, tx_hash=hex_hash)
