"""Filling, signing locally and sending transactions: the :class:`Sender`.

A :class:`Sender` owns what sending shares between threads: the nonces
(:class:`~nornir_coopchain.chain.nonce.NonceManager`), the fee reading
(:class:`~nornir_coopchain.chain.fees.FeeCache`) and the transactions sent but not yet mined
(:class:`~nornir_coopchain.chain.inflight.InFlight`, for
:mod:`~nornir_coopchain.chain.rebroadcast`). :meth:`Sender.send` fills what the caller left
out (chain ID, value, fees, gas, nonce), signs with the local key and sends the raw
transaction. A send that fails without using its nonce gives it back, and "nonce too low"
for a transaction that is not ours (another process uses the same key) resyncs the nonces
and retries with a fresh one. The node's answer "already known" (or "nonce too low" for a
transaction it turns out to have) for our very transaction counts as sent.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext, suppress
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn, cast

from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import Web3Exception

from nornir_coopchain.chain.fees import FeeCache, read_fees
from nornir_coopchain.chain.inflight import InFlight
from nornir_coopchain.chain.network import to_int
from nornir_coopchain.chain.nonce import NonceManager
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

__all__ = ["GAS_MARGIN", "GAS_MULTIPLIER", "Sender"]

GAS_MULTIPLIER = 1.2
GAS_MARGIN = 10_000
MAX_NONCE_RETRIES = 3


class _NonceTooLow(Exception):
    """Internal: the node says our managed nonce is used (by a transaction not ours)."""


class Sender:
    """Sends locally signed transactions to one node; one per chain client, shared by threads.

    Arguments:
        w3: the connected ``Web3``.
        url: the node's URL (redacted in messages).
        chain_id: the node's chain ID.
        embedded: an in-process py-evm chain, which rejects a nonce ahead of the account's:
            there nonce allocation and sending happen in order under one lock, and nothing
            is kept for re-broadcasting (py-evm's pool loses nothing).
        free_gas: never ask for fees (``gasPrice`` 0).
        legacy: send ``gasPrice`` instead of EIP-1559 caps.

    Attributes:
        nonces: the :class:`NonceManager` of every account sent from.
        inflight: the sent transactions kept until mined (empty on an embedded chain).
    """

    def __init__(
        self,
        w3: Web3,
        url: str,
        chain_id: int,
        *,
        embedded: bool,
        free_gas: bool,
        legacy: bool,
    ):
        self.w3 = w3
        self.url = url
        self.chain_id = chain_id
        self.embedded = embedded
        self.free_gas = free_gas
        self.nonces = NonceManager(self._pending_count)
        self.inflight = InFlight()
        self._fees = FeeCache(partial(read_fees, w3, url, legacy=legacy))
        self._order: AbstractContextManager[Any] = threading.Lock() if embedded else nullcontext()

    def _pending_count(self, address: ChecksumAddress) -> int:
        with node_errors(self.url, "read the nonce"):
            return self.w3.eth.get_transaction_count(address, "pending")

    def fee_fields(self) -> dict[str, int]:
        """Fee fields for a new transaction (see ``ChainClient.fee_fields``)."""
        if self.free_gas:
            return {"gasPrice": 0}
        return self._fees.fields()

    def estimate_gas(self, tx: TxParams) -> int:
        """Estimated gas times ``GAS_MULTIPLIER``, plus ``GAS_MARGIN``.

        Raises:
            TransactionReverted: the call reverts (a ContractError subclass when known).
        """
        probe = {key: tx[key] for key in ("from", "to", "data", "value") if key in tx}
        with node_errors(self.url, "estimate gas"):
            estimate = self.w3.eth.estimate_gas(cast("TxParams", probe))
        return int(estimate * GAS_MULTIPLIER) + GAS_MARGIN

    def send(self, account: LocalAccount, tx: Mapping[str, Any]) -> HexBytes:
        """Fill, sign locally and send a transaction (see ``ChainClient.send_transaction``)."""
        fields: dict[str, Any] = dict(tx)
        sender = fields.pop("from", account.address)
        if Web3.to_checksum_address(sender) != account.address:
            raise ConfigError(f"tx 'from' {sender} is not the signing account {account.address}")
        chain_id = fields.setdefault("chainId", self.chain_id)
        if to_int(chain_id) != self.chain_id:
            raise ConfigError(
                f"the transaction declares chain ID {to_int(chain_id)}, "
                f"but the node at {redact_url(self.url)} is on chain {self.chain_id}",
                field="chainId",
            )
        fields.setdefault("value", 0)
        if "gasPrice" not in fields and "maxFeePerGas" not in fields:
            fields.update(self.fee_fields())
        if "gas" not in fields:
            probe = cast("TxParams", {**fields, "from": account.address})
            fields["gas"] = self.estimate_gas(probe)
        if "nonce" in fields:
            return self._send_signed(account, fields, managed=False)
        for _ in range(MAX_NONCE_RETRIES):
            with self._order:
                fields["nonce"] = self.nonces.take(account.address)
                try:
                    return self._send_signed(account, fields, managed=True)
                except _NonceTooLow:
                    self.nonces.resync(account.address, self.inflight.nonces(account.address))
        raise TransactionError(
            f"node kept answering 'nonce too low' for {account.address} after resyncing"
        )

    def _send_signed(
        self, account: LocalAccount, fields: dict[str, Any], *, managed: bool
    ) -> HexBytes:
        address, nonce = account.address, int(fields["nonce"])
        try:
            signed = account.sign_transaction(fields)
        except (TypeError, ValueError) as exc:
            if managed:
                self.nonces.release(address, nonce)
            raise ConfigError(f"cannot sign transaction: {exc}") from exc
        tx_hash = HexBytes(signed.hash)
        try:
            self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except (Web3Exception, *TRANSPORT_ERRORS) as exc:
            message = rpc_message(exc)
            if not (is_already_known(message) or self._is_known(tx_hash)):
                self._refused(exc, address, nonce, tx_hash, managed=managed)
        self._keep(address, nonce, tx_hash, signed.raw_transaction)
        return tx_hash

    def _refused(
        self,
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
                self.nonces.resync(address, self.inflight.nonces(address))
            raise ChainConnectionError(
                f"cannot reach node at {redact_url(self.url)}: send the transaction: "
                f"{transport_detail(exc, self.url)}"
            ) from exc
        if managed and is_nonce_too_low(rpc_message(exc)):
            raise _NonceTooLow from exc
        if managed:
            self.nonces.release(address, nonce)
        raise TransactionError(
            f"node at {redact_url(self.url)} rejected the transaction: {rpc_message(exc)}",
            tx_hash=tx_hash.to_0x_hex(),
        ) from exc

    def _is_known(self, tx_hash: HexBytes) -> bool:
        try:
            self.w3.eth.get_transaction(tx_hash)
        except (Web3Exception, *TRANSPORT_ERRORS):
            return False
        return True

    def _keep(self, sender: ChecksumAddress, nonce: int, tx_hash: HexBytes, raw: bytes) -> None:
        """Keep a sent transaction for re-broadcasting (a node's pool can lose it)."""
        if self.embedded:
            return
        self.inflight.keep(sender, nonce, tx_hash, raw)
        if self.inflight.needs_prune(sender):
            # The send succeeded: a failure to read the mined count must not report otherwise.
            with suppress(ChainConnectionError), node_errors(self.url, "read the nonce"):
                self.inflight.prune(sender, self.w3.eth.get_transaction_count(sender, "latest"))
