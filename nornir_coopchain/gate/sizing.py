"""Sizing a proposal against what the chain takes in one transaction."""

from __future__ import annotations

from typing import Final

from nornir_coopchain.exceptions import ProposalTooLarge
from nornir_coopchain.session import CoopchainSession

__all__ = ["MAX_CONTENT_BYTES", "TX_GAS_CAP", "check_proposal_size", "propose_gas"]


MAX_CONTENT_BYTES: Final = 512 * 1024
"""Default cap on a proposal's ``content`` calldata (the compressed envelope), whatever the
block gas limit: JSON-RPC carries a raw transaction hex-encoded (twice its size; anvil refuses
request bodies over ~2 MB) and nodes cap transaction sizes (geth's pool: 128 KiB). About
3,000 devices of the sample site's tenant turn-up (~160 bytes each compressed)."""

TX_GAS_CAP: Final = 2**24
"""The most gas one transaction may use since Osaka (EIP-7825), whatever the block's limit."""

_PROPOSE_ABI_OVERHEAD: Final = 4 + 11 * 32 + 2 * 32 + 32 + 3 * 32 + 32
"""Calldata of ``propose`` besides the content: selector, the request's 11 words, two
offsets, the signature's length and 65 bytes padded to 96, the content's length."""


def propose_gas(content: bytes) -> int:
    """The gas a ``propose`` (or ``declareEmergency``) transaction carrying ``content`` needs
    at least: the calldata (21,000 + 16 gas per non-zero and 4 per zero byte) plus copying and
    hashing the content in memory (memory expansion grows with its square), or the EIP-7623
    calldata floor (Prague: 21,000 + 40 gas per non-zero and 10 per zero byte) when higher.
    The rest of the call's execution (signature check, storage) is not counted.

    Arguments:
        content: the ``content`` calldata (:meth:`ProposalContent.chain_bytes`).

    Returns:
        A lower bound of the transaction's gas.
    """
    words = (len(content) + 31) // 32
    nonzero = len(content) - content.count(0)
    zeros = words * 32 - nonzero + _PROPOSE_ABI_OVERHEAD  # padding, and the overhead: at least
    calldata = 21_000 + 16 * nonzero + 4 * zeros
    in_memory = 3 * words + words * words // 512 + 3 * words + 6 * words  # expand, copy, hash
    floor = 21_000 + 10 * (zeros + 4 * nonzero)
    return max(calldata + in_memory, floor)


def check_proposal_size(
    session: CoopchainSession,
    content: bytes,
    device_count: int,
    *,
    max_bytes: int = MAX_CONTENT_BYTES,
) -> None:
    """Refuse content the chain cannot take in one ``propose``, before anything is sent.

    Arguments:
        session: the proposer's session (the latest block's gas limit is read).
        content: the ``content`` calldata (:meth:`ProposalContent.chain_bytes`).
        device_count: the proposal's number of devices (for the message).
        max_bytes: the cap on the content's size in bytes.

    Raises:
        ProposalTooLarge: :func:`propose_gas` exceeds the latest block's gas limit or
            :data:`TX_GAS_CAP` (EIP-7825, enforced from Osaka on), or the content exceeds
            ``max_bytes``; it names the figures and says to split the change.
        ChainConnectionError: the latest block cannot be read.
    """
    block_gas_limit = session.client.block_gas_limit()
    gas_limit = min(block_gas_limit, TX_GAS_CAP)
    gas = propose_gas(content)
    if gas > gas_limit or len(content) > max_bytes:
        raise ProposalTooLarge(
            size_bytes=len(content),
            device_count=device_count,
            gas_needed=gas,
            gas_limit=gas_limit,
            block_gas_limit=block_gas_limit,
            max_bytes=max_bytes,
        )
