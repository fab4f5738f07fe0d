"""Lost-transaction recovery: send a kept transaction again when the node lost it.

The node's pending transaction count of an account is one past the last nonce of the
gap-free run it will mine (anvil, geth and Besu count this way; transactions behind a gap
are "queued" and not counted). So when the kept transactions of
:class:`~nornir_coopchain.chain.inflight.InFlight` reach past that count, the node lacks the
one at the count: :func:`rebroadcast_lost` sends the kept ones again from there, in nonce
order, for as long as the node accepts them. Answers for the very same transaction:

* accepted: the node had lost it (logged as a warning);
* "already known": the node has it but does not count it as pending, so it may never mine
  it (logged as a warning: anvil 1.7.1's automine was seen to do this, see
  benchmarks/README.md); the run stops, as sending it again cannot help;
* "nonce too low": that nonce is mined (ours, or another transaction from the same key);
  :func:`check_stalled` tells which from the receipt.

Bounded: each transaction is accepted again at most ``MAX_REBROADCASTS`` times, a round
sends at most ``MAX_PER_ROUND`` and stops at the first answer other than accepted, and an
account gets one round per half ``rebroadcast_after`` however many threads wait; the waits
themselves end at their timeout.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING

from web3.exceptions import TransactionNotFound, Web3Exception

from nornir_coopchain.chain.rpc_errors import (
    TRANSPORT_ERRORS,
    is_already_known,
    is_nonce_too_low,
    node_errors,
    redact_url,
    rpc_message,
    transport_detail,
)
from nornir_coopchain.exceptions import ChainConnectionError, TransactionError

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress
    from hexbytes import HexBytes
    from web3.types import TxReceipt

    from nornir_coopchain.chain.inflight import KeptTransaction
    from nornir_coopchain.chain.sending import Sender

__all__ = [
    "MAX_PER_ROUND",
    "MAX_REBROADCASTS",
    "REBROADCAST_AFTER",
    "check_stalled",
    "rebroadcast_lost",
]

logger = logging.getLogger(__name__)

REBROADCAST_AFTER = 5.0  # seconds without a receipt before looking for a lost transaction
MAX_REBROADCASTS = 3  # times the node may accept the same transaction again
MAX_PER_ROUND = 128  # transactions sent again in one round
_PASSES = 4  # gaps closed in one round (the pending count is read again after each)


class _Answer(enum.Enum):
    ACCEPTED = "accepted"
    KNOWN = "already known"
    USED = "nonce used"
    REFUSED = "refused"


def _send_again(sender: Sender, kept: KeptTransaction) -> _Answer:
    hex_hash = kept.tx_hash.to_0x_hex()
    try:
        sender.w3.eth.send_raw_transaction(kept.raw)
    except TRANSPORT_ERRORS as exc:
        raise ChainConnectionError(
            f"cannot reach node at {redact_url(sender.url)}: re-broadcast {hex_hash}: "
            f"{transport_detail(exc, sender.url)}"
        ) from exc
    except Web3Exception as exc:
        message = rpc_message(exc)
        if is_already_known(message):
            logger.warning(
                "node holds %s (nonce %d of %s) but does not count it as pending: it may "
                "never mine it",
                hex_hash,
                kept.nonce,
                kept.sender,
            )
            return _Answer.KNOWN
        if is_nonce_too_low(message):
            return _Answer.USED
        logger.warning(
            "node refused re-broadcast of %s (nonce %d of %s): %s",
            hex_hash,
            kept.nonce,
            kept.sender,
            message,
        )
        return _Answer.REFUSED
    kept.rebroadcasts += 1
    logger.warning(
        "re-broadcast %s (nonce %d of %s): the node had lost it", hex_hash, kept.nonce, kept.sender
    )
    return _Answer.ACCEPTED


def _count(sender: Sender, account: ChecksumAddress, block: str) -> int:
    with node_errors(sender.url, f"read the {block} nonce"):
        return int(sender.w3.eth.get_transaction_count(account, block))  # type: ignore[arg-type]


def _unfillable(sender: Sender, account: ChecksumAddress, nonce: int) -> None:
    highest = sender.inflight.highest(account)
    if highest is not None and highest > nonce:
        logger.warning(
            "nonce gap at %d of %s: transactions up to nonce %d wait behind it, and this "
            "client kept none with nonce %d (still being sent, refused, or sent elsewhere)",
            nonce,
            account,
            highest,
            nonce,
        )


def rebroadcast_lost(sender: Sender, account: ChecksumAddress) -> tuple[int, int]:
    """Send again the kept transactions of ``account`` that the node lost.

    Arguments:
        sender: the sender that sent them.
        account: the account.

    Returns:
        ``(mined, sent)``: the account's mined transaction count, and how many transactions
        were sent again.

    Raises:
        ChainConnectionError: the node could not be reached.
    """
    mined = _count(sender, account, "latest")
    sender.inflight.prune(account, mined)
    sent = 0
    for _ in range(_PASSES):
        if sender.inflight.count(account) == 0 or sent >= MAX_PER_ROUND:
            break
        nonce = max(mined, _count(sender, account, "pending"))
        before = sent
        while sent < MAX_PER_ROUND:
            kept = sender.inflight.at(account, nonce)
            if kept is None:
                _unfillable(sender, account, nonce)
                break
            if kept.rebroadcasts >= MAX_REBROADCASTS:
                break
            if _send_again(sender, kept) is not _Answer.ACCEPTED:
                break
            sent += 1
            nonce += 1
        if sent == before:
            break
    return mined, sent


def check_stalled(sender: Sender, tx_hash: HexBytes, interval: float) -> TxReceipt | None:
    """Look after a transaction still without a receipt: re-broadcast what the node lost.

    Arguments:
        sender: the sender that sent it (only its kept transactions are looked after).
        tx_hash: the transaction waited for.
        interval: the waits' ``rebroadcast_after``: one round per account per half of it.

    Returns:
        Its receipt, if it turned out to be mined; otherwise ``None`` (keep waiting).

    Raises:
        TransactionError: its nonce was mined with another transaction (it never will be).
        ChainConnectionError: the node could not be reached.
    """
    kept = sender.inflight.get(tx_hash)
    if kept is None:
        return None
    if sender.inflight.claim_recovery(kept.sender, interval / 2):
        mined, _ = rebroadcast_lost(sender, kept.sender)
    else:
        mined = _count(sender, kept.sender, "latest")
    if kept.nonce >= mined:
        return None
    with node_errors(sender.url, "read a receipt"):
        try:
            return sender.w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            pass
    sender.inflight.forget(tx_hash)
    raise TransactionError(
        f"transaction will never be mined: nonce {kept.nonce} of {kept.sender} was used "
        "by another transaction",
        tx_hash=tx_hash.to_0x_hex(),
    )
