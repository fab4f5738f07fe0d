"""What kind of network a node runs: chain ID, Proof-of-Authority blocks, gas pricing.

:func:`detect_network` asks the node once, at connect time, and :class:`NetworkProfile`
keeps the answers for :class:`~nornir_coopchain.chain.client.ChainClient`:

* ``is_poa``: the genesis or latest block's ``extraData`` is longer than 32 bytes (Clique,
  IBFT, QBFT), so web3's PoA middleware renames it to ``proofOfAuthorityData``;
* ``free_gas``: a zero gas price or zero base fee, like a Besu QBFT consortium;
* ``legacy_transactions``: no base fee (pre-London) or free gas: ``gasPrice`` transactions.

:func:`trim_middleware` removes web3's ``validation`` middleware; what it checked is kept
where it matters (see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from hexbytes import HexBytes
from web3.middleware import ExtraDataToPOAMiddleware

from nornir_coopchain.chain.rpc_errors import node_errors, redact_url
from nornir_coopchain.exceptions import ChainConnectionError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from web3 import Web3
    from web3.types import BlockIdentifier, RPCEndpoint

__all__ = ["NetworkProfile", "detect_network", "is_poa_block", "to_int", "trim_middleware"]


def to_int(value: object) -> int:
    """An RPC quantity as an int: an int, a ``0x`` hex or decimal string, or big-endian bytes."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value, 16) if value.startswith("0x") else int(value)
    return int.from_bytes(bytes(cast("bytes", value)), "big")


def is_poa_block(block: Mapping[str, Any]) -> bool:
    """Whether a block's ``extraData`` is longer than 32 bytes (Clique / IBFT / QBFT)."""
    extra = block.get("extraData") or b""
    raw = bytes(HexBytes(extra)) if isinstance(extra, (bytes, str)) else b""
    return len(raw) > 32


@dataclass(frozen=True)
class NetworkProfile:
    """What :func:`detect_network` found out about a node.

    Attributes:
        chain_id: the node's chain ID.
        is_poa: extraData longer than 32 bytes (web3's PoA middleware is injected).
        free_gas: zero gas price or zero base fee (a Besu-style consortium network).
        legacy_transactions: no base fee, or free gas: ``gasPrice`` transactions are sent.
    """

    chain_id: int
    is_poa: bool
    free_gas: bool
    legacy_transactions: bool


def trim_middleware(w3: Web3) -> None:
    """Remove web3's ``validation`` middleware from ``w3``.

    It costs two ``eth_chainId`` round trips for every ``eth_call``, ``eth_estimateGas``,
    ``eth_createAccessList`` and ``eth_sendTransaction``, to check a ``chainId`` field this
    package never puts into those requests. What it protected is kept elsewhere: the chain ID
    of every transaction we sign is checked against the node's before signing
    (:meth:`~nornir_coopchain.chain.sending.Sender.send`), and PoA ``extraData`` is
    detected at connect (:func:`detect_network`) instead of failing a block read. It never
    looked at ``eth_sendRawTransaction``.
    """
    if "validation" in w3.middleware_onion:
        w3.middleware_onion.remove("validation")


def _raw_block(w3: Web3, url: str, tag: str, *, embedded: bool) -> dict[str, Any]:
    """A block as the node sends it, before web3's block formatters."""
    if embedded:  # eth-tester's raw blocks use snake_case keys
        return dict(w3.eth.get_block(cast("BlockIdentifier", tag)))
    response = w3.provider.make_request(cast("RPCEndpoint", "eth_getBlockByNumber"), [tag, False])
    block = response.get("result")
    if not isinstance(block, dict):
        raise ChainConnectionError(
            f"node at {redact_url(url)} returned no {tag} block: {response.get('error')}"
        )
    return block


def detect_network(w3: Web3, url: str, *, embedded: bool) -> NetworkProfile:
    """Ask the node what it is, and inject web3's PoA middleware into ``w3`` if needed.

    Arguments:
        w3: the connected ``Web3``.
        url: the node's URL (redacted in messages).
        embedded: ``w3`` runs the in-process eth-tester chain.

    Returns:
        The node's profile.

    Raises:
        ChainConnectionError: the node cannot be reached or sent no blocks.
    """
    with node_errors(url, "detect chain"):
        genesis = _raw_block(w3, url, "earliest", embedded=embedded)
        latest = _raw_block(w3, url, "latest", embedded=embedded)
        is_poa = is_poa_block(genesis) or is_poa_block(latest)
        if is_poa:
            w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
        chain_id = int(w3.eth.chain_id)
        base_fee = latest.get("baseFeePerGas")
        gas_price = w3.eth.gas_price
    base = None if base_fee is None else to_int(base_fee)
    free_gas = gas_price == 0 or base == 0
    return NetworkProfile(
        chain_id=chain_id,
        is_poa=is_poa,
        free_gas=free_gas,
        legacy_transactions=base is None or free_gas,
    )
