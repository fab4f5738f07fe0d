"""Filling, signing locally and sending one transaction, with a managed nonce.

:func:`send_transaction` fills what the caller left out (chain ID, value, fees, gas, nonce),
signs with the local key and sends the raw transaction. The nonce comes from the client's
:class:`~nornir_coopchain.chain.nonce.NonceManager`; a send that fails without using it
gives it back, and "nonce too low" for a transaction that is not ours (another process uses
the same key) resyncs the manager and retries with a fresh nonce. The node's answer
"already known" (or "nonce too low" for a transaction it turns out to have) for our very
transaction counts as sent. Every transaction the node accepted is kept in the client's
:class:`~nornir_coopchain.chain.inflight.InFlight` until mined, for
:mod:`~nornir_coopchain.chain.rebroadcast`.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, Any, NoReturn, cast

from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import Web3Exception

from nornir_coopchain.chain.network import to_int
from nornir_coopchain.chain.rpc_errors import (
    TRANSPORT_ERRORS,
    is_already_known,
    is_nonce_too_low,
    node_errors,
    redact_url,
    rpc_message,
    transport_detail,
)
from nornir_coopchain.exceptions import (
    ChainConnectionError,
    ConfigError,
    TransactionError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from eth_account.signers.local import LocalAccount
    from eth_typing import ChecksumAddress
    from web3.types import TxParams

    from nornir_coopchain.chain.client import ChainClient

__all__ = ["GAS_MARGIN", "GAS_MULTIPLIER", "estimate_gas", "send_transaction"]

GAS_MULTIPLIER = 1.2
GAS_MARGIN = 10_000
MAX_NONCE_RETRIES = 3


class _NonceTooLow(Exception):
    """Internal: the node says our managed nonce is used (by a transaction not ours)."""


def estimate_gas(client: ChainClient, tx: TxParams) -> int:
    """Estimated gas times ``GAS_MULTIPLIER``, plus ``GAS_MARGIN``.

    See :meth:`ChainClient.estimate_gas
    <nornir_coopchain.chain.client.ChainClient.estimate_gas>`.
    """
    probe = {key: tx[key] for key in ("from", "to", "data", "value") if key in tx}
    with node_errors(client.url, "estimate gas"):
        estimate = client.w3.eth.estimate_gas(cast("TxParams", probe))
    return int(estimate * GAS_MULTIPLIER) + GAS_MARGIN


def send_transaction(client: ChainClient, account: LocalAccount, tx: Mapping[str, Any]) -> HexBytes:
    """Fill, sign locally and send a transaction.

    See :meth:`ChainClient.send_transaction
    <nornir_coopchain.chain.client.ChainClient.send_transaction>`.
    """
    fields: dict[str, Any] = dict(tx)
    sender = fields.pop("from", account.address)
    if Web3.to_checksum_address(sender) != account.address:
        raise ConfigError(f"tx 'from' {sender} is not the signing account {account.address}")
    chain_id = fields.setdefault("chainId", client.chain_id)
    if to_int(chain_id) != client.chain_id:
        raise ConfigError(
            f"the transaction declares chain ID {to_int(chain_id)}, "
            f"but the node at {redact_url(client.url)} is on chain {client.chain_id}",
            field="chainId",
        )
    fields.setdefault("value", 0)
    if "gasPrice" not in fields and "maxFeePerGas" not in fields:
        fields.update(client.fee_fields())
    if "gas" not in fields:
        fields["gas"] = estimate_gas(client, cast("TxParams", {**fields, "from": account.address}))
    if "nonce" in fields:
        return _send_signed(client, account, fields, managed=False)
    for _ in range(MAX_NONCE_RETRIES):
        with client._send_order:  # the client's own lock (a no-op but on py-evm)
            fields["nonce"] = client.nonces.take(account.address)
            try:
                return _send_signed(client, account, fields, managed=True)
            except _NonceTooLow:
                client.nonces.resync(account.address, client.inflight.nonces(account.address))
    raise TransactionError(
        f"node kept answering 'nonce too low' for {account.address} after resyncing"
    )


def _send_signed(
    client: ChainClient, account: LocalAccount, fields: dict[str, Any], *, managed: bool
) -> HexBytes:
    address, nonce = account.address, int(fields["nonce"])
    try:
        signed = account.sign_transaction(fields)
    except (TypeError, ValueError) as exc:
        if managed:
            client.nonces.release(address, nonce)
        raise ConfigError(f"cannot sign transaction: {exc}") from exc
    tx_hash = HexBytes(signed.hash)
    try:
        client.w3.eth.send_raw_transaction(signed.raw_transaction)
    except (Web3Exception, *TRANSPORT_ERRORS) as exc:
        message = rpc_message(exc)
        if not (is_already_known(message) or _is_known(client, tx_hash)):
            _refused(client, exc, address, nonce, tx_hash, managed=managed)
    _keep(client, address, nonce, tx_hash, signed.raw_transaction)
    return tx_hash


def _refused(
    client: ChainClient,
    exc: BaseException,
    address: ChecksumAddress,
    nonce: int,
    tx_hash: HexBytes,
    *,
    managed: bool,
) -> NoReturn:
    """Raise for a send the node refused (or that may not have arrived)."""
    if isinstance(exc, TRANSPORT_ERRORS):
        if managed:  # unknown whether it arrived: let the node tell next time
            client.nonces.resync(address, client.inflight.nonces(address))
        raise ChainConnectionError(
            f"cannot reach node at {redact_url(client.url)}: send the transaction: "
            f"{transport_detail(exc, client.url)}"
        ) from exc
    if managed and is_nonce_too_low(rpc_message(exc)):
        raise _NonceTooLow from exc
    if managed:
        client.nonces.release(address, nonce)
    raise TransactionError(
        f"node at {redact_url(client.url)} rejected the transaction: {rpc_message(exc)}",
        tx_hash=tx_hash.to_0x_hex(),
    ) from exc


def _is_known(client: ChainClient, tx_hash: HexBytes) -> bool:
    try:
        client.w3.eth.get_transaction(tx_hash)
    except (Web3Exception, *TRANSPORT_ERRORS):
        return False
    return True


def _keep(
    client: ChainClient, sender: ChecksumAddress, nonce: int, tx_hash: HexBytes, raw: bytes
) -> None:
    """Keep a sent transaction for re-broadcasting (a node's pool can lose it; py-evm's not)."""
    if client.kind == "embedded":
        return
    client.inflight.keep(sender, nonce, tx_hash, raw)
    if client.inflight.needs_prune(sender):
        # The send succeeded: a failure to read the mined count must not report otherwise.
        with suppress(ChainConnectionError), node_errors(client.url, "read the nonce"):
            client.inflight.prune(sender, client.w3.eth.get_transaction_count(sender, "latest"))
