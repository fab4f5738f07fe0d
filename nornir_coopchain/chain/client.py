"""The one way this package talks to a chain: connect, sign locally, send, wait, decode reverts.

:class:`ChainClient` wraps a web3 ``Web3`` instance and turns every web3, provider and
transport exception into one from :mod:`nornir_coopchain.exceptions`
(:func:`~nornir_coopchain.chain.rpc_errors.node_errors`); a revert becomes the contract's
typed error through :func:`~nornir_coopchain.chain.errors.decode_revert`.

Supported URLs: ``embedded://`` (an in-process py-evm chain, fresh per connect),
``http(s)://`` and ``ws(s)://``; :mod:`nornir_coopchain.chain.providers` holds the providers.
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, cast

from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3Exception
from web3.middleware import ExtraDataToPOAMiddleware

from nornir_coopchain.chain.errors import decode_revert
from nornir_coopchain.chain.nonce import NonceManager
from nornir_coopchain.chain.providers import EmbeddedProvider, SyncWebSocketProvider, make_provider
from nornir_coopchain.chain.rpc_errors import (
    TRANSPORT_ERRORS,
    is_already_known,
    is_nonce_too_low,
    node_errors,
    redact_url,
    revert_data,
    rpc_message,
    transport_detail,
)
from nornir_coopchain.exceptions import (
    ChainConnectionError,
    ConfigError,
    TransactionError,
    TransactionReverted,
    TransactionTimeout,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import TracebackType

    from eth_account.signers.local import LocalAccount
    from eth_typing import ChecksumAddress, HexStr
    from web3.contract.contract import ContractFunction
    from web3.types import (
        BlockIdentifier,
        LogReceipt,
        RPCEndpoint,
        TxParams,
        TxReceipt,
    )

    from nornir_coopchain.chain.artifacts import ContractArtifact

# SyncWebSocketProvider, revert_data and rpc_message live in providers / rpc_errors; they are
# re-exported here, where they were first defined.
__all__ = ["ChainClient", "SyncWebSocketProvider", "is_poa_block", "revert_data", "rpc_message"]

GAS_MULTIPLIER = 1.2
GAS_MARGIN = 10_000
FEE_TTL = 1.0  # seconds a fee reading is reused
DEFAULT_TIP = 10**9  # 1 gwei, when the node has no eth_maxPriorityFeePerGas
_MAX_NONCE_RETRIES = 3


def _to_int(value: object) -> int:
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


class ChainClient:
    """A connected chain: local signing, managed nonces, receipts and typed reverts.

    Build one with :meth:`connect`; share it between threads.

    Attributes:
        w3: the underlying ``Web3`` (for contract objects; call through the client).
        kind: ``"embedded"`` or ``"rpc"``.
        chain_id: the node's chain ID.
        is_poa: extraData longer than 32 bytes (web3's PoA middleware is injected).
        free_gas: zero gas price or zero base fee (a Besu-style consortium network).
        legacy_transactions: no base fee, or free gas: ``gasPrice`` transactions are sent.
        nonces: the :class:`NonceManager` shared by every sender.
    """

    def __init__(
        self,
        w3: Web3,
        url: str,
        *,
        confirmations: int = 0,
        receipt_timeout: float = 60.0,
        poll_interval: float = 0.05,
    ):
        self.w3 = w3
        self.url = url
        self.kind = "embedded" if isinstance(w3.provider, EmbeddedProvider) else "rpc"
        self.confirmations = confirmations
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self.nonces = NonceManager(self._pending_count)
        self._fees: tuple[dict[str, int], float] = ({}, -FEE_TTL)
        # eth-tester rejects a nonce ahead of the account's (no queue for future nonces):
        # there, nonce allocation and sending happen in order under one lock.
        self._send_order: AbstractContextManager[Any] = (
            threading.Lock() if self.kind == "embedded" else nullcontext()
        )
        with self._node("detect chain"):
            genesis, latest = self._raw_block("earliest"), self._raw_block("latest")
            self.is_poa = is_poa_block(genesis) or is_poa_block(latest)
            if self.is_poa:
                w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
            self.chain_id: int = w3.eth.chain_id
            base_fee = latest.get("baseFeePerGas")
            gas_price = w3.eth.gas_price
        base = None if base_fee is None else _to_int(base_fee)
        self.free_gas: bool = gas_price == 0 or base == 0
        self.legacy_transactions: bool = base is None or self.free_gas

    @classmethod
    def connect(
        cls,
        url: str = "embedded://",
        *,
        confirmations: int = 0,
        receipt_timeout: float = 60.0,
        poll_interval: float = 0.05,
        request_timeout: float = 30.0,
    ) -> ChainClient:
        """Connect to a node and detect how to talk to it.

        Arguments:
            url: ``embedded://`` (default, a fresh in-process chain), ``http(s)://…`` or
                ``ws(s)://…``.
            confirmations: blocks a receipt must have on top of it before it counts.
            receipt_timeout: default seconds :meth:`wait_for_receipt` waits.
            poll_interval: seconds between receipt polls.
            request_timeout: seconds each JSON-RPC request may take.

        Returns:
            The connected client.

        Raises:
            ConfigError: the URL scheme is not supported.
            ChainConnectionError: the node cannot be reached (the message names the URL).
        """
        if confirmations < 0 or receipt_timeout <= 0 or poll_interval <= 0:
            raise ConfigError("confirmations must be >= 0, timeouts and intervals > 0")
        provider = make_provider(url, request_timeout)
        try:
            return cls(
                Web3(provider),
                url,
                confirmations=confirmations,
                receipt_timeout=receipt_timeout,
                poll_interval=poll_interval,
            )
        except BaseException:
            if isinstance(provider, SyncWebSocketProvider):
                provider.close()
            raise

    # ------------------------------------------------------------------ plumbing

    def _node(self, what: str, *, tx_hash: str | None = None) -> AbstractContextManager[None]:
        """Translate transport and web3 exceptions raised inside the block; decode reverts."""
        return node_errors(self.url, what, tx_hash=tx_hash)

    def _raw_block(self, tag: str) -> dict[str, Any]:
        """A block as the node sends it (a PoA block fails web3's validation before detection)."""
        if self.kind == "embedded":  # eth-tester's raw blocks use snake_case keys
            return dict(self.w3.eth.get_block(cast("BlockIdentifier", tag)))
        response = self.w3.provider.make_request(
            cast("RPCEndpoint", "eth_getBlockByNumber"), [tag, False]
        )
        block = response.get("result")
        if not isinstance(block, dict):
            raise ChainConnectionError(
                f"node at {redact_url(self.url)} returned no {tag} block: {response.get('error')}"
            )
        return block

    def _pending_count(self, address: ChecksumAddress) -> int:
        with self._node("read the nonce"):
            return self.w3.eth.get_transaction_count(address, "pending")

    def now(self) -> int:
        """The latest block's timestamp (chain time, seconds)."""
        with self._node("read the latest block"):
            return int(self.w3.eth.get_block("latest")["timestamp"])

    def block_number(self) -> int:
        """The latest block number."""
        with self._node("read the block number"):
            return self.w3.eth.block_number

    def fee_fields(self) -> dict[str, int]:
        """Fee fields for a new transaction: ``gasPrice`` (legacy) or EIP-1559 caps.

        Answers are reused for ``FEE_TTL`` seconds (``maxFeePerGas`` = 2 x base fee + tip
        leaves room for several blocks of base-fee growth).

        Raises:
            ChainConnectionError: the node could not be asked.
        """
        if self.free_gas:
            return {"gasPrice": 0}
        cached, when = self._fees
        if time.monotonic() - when < FEE_TTL:
            return dict(cached)
        fees = self._read_fees()
        self._fees = (fees, time.monotonic())
        return dict(fees)

    def _read_fees(self) -> dict[str, int]:
        with self._node("read fees"):
            if self.legacy_transactions:
                return {"gasPrice": self.w3.eth.gas_price}
            base = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
            try:
                tip = int(self.w3.eth.max_priority_fee)
            except Web3Exception:
                tip = DEFAULT_TIP
        return {"maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base + tip}

    # ------------------------------------------------------------------ sending

    def estimate_gas(self, tx: TxParams) -> int:
        """Estimated gas times 1.2, plus a margin.

        Raises:
            TransactionReverted: the call reverts (a ContractError subclass when known).
        """
        probe = {key: tx[key] for key in ("from", "to", "data", "value") if key in tx}
        with self._node("estimate gas"):
            estimate = self.w3.eth.estimate_gas(cast("TxParams", probe))
        return int(estimate * GAS_MULTIPLIER) + GAS_MARGIN

    def send_transaction(self, account: LocalAccount, tx: Mapping[str, Any]) -> HexBytes:
        """Fill, sign locally and send a transaction.

        Fills ``chainId``, ``nonce`` (from :attr:`nonces`), ``gas`` and fee fields when
        absent. A node answer "already known" for the exact transaction we sent counts as
        sent.

        Arguments:
            account: the local signing account.
            tx: transaction fields (``to``, ``data``, ``value``, …).

        Returns:
            The transaction hash.

        Raises:
            ConfigError: ``tx["from"]`` is another account, or the fields cannot be signed.
            TransactionReverted: gas estimation reverted (typed by decode_revert).
            TransactionError: the node rejected the transaction.
            ChainConnectionError: the node could not be reached.
        """
        fields: dict[str, Any] = dict(tx)
        sender = fields.pop("from", account.address)
        if Web3.to_checksum_address(sender) != account.address:
            raise ConfigError(f"tx 'from' {sender} is not the signing account {account.address}")
        fields.setdefault("chainId", self.chain_id)
        fields.setdefault("value", 0)
        if "gasPrice" not in fields and "maxFeePerGas" not in fields:
            fields.update(self.fee_fields())
        if "gas" not in fields:
            fields["gas"] = self.estimate_gas(cast("TxParams", {**fields, "from": account.address}))
        if "nonce" in fields:
            return self._send_signed(account, fields, managed=False)
        for _ in range(_MAX_NONCE_RETRIES):
            with self._send_order:
                fields["nonce"] = self.nonces.take(account.address)
                try:
                    return self._send_signed(account, fields, managed=True)
                except _NonceTooLow:
                    self.nonces.resync(account.address)
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
            if is_already_known(message) or self._is_known(tx_hash):
                return tx_hash
            if isinstance(exc, TRANSPORT_ERRORS):
                if managed:  # unknown whether it arrived: let the node tell next time
                    self.nonces.resync(address)
                raise ChainConnectionError(
                    f"cannot reach node at {redact_url(self.url)}: send the transaction: "
                    f"{transport_detail(exc, self.url)}"
                ) from exc
            if managed and is_nonce_too_low(message):
                raise _NonceTooLow from exc
            if managed:
                self.nonces.release(address, nonce)
            raise TransactionError(
                f"node at {redact_url(self.url)} rejected the transaction: {rpc_message(exc)}",
                tx_hash=tx_hash.to_0x_hex(),
            ) from exc
        return tx_hash

    def _is_known(self, tx_hash: HexBytes) -> bool:
        try:
            self.w3.eth.get_transaction(tx_hash)
        except (Web3Exception, *TRANSPORT_ERRORS):
            return False
        return True

    def transact(
        self,
        account: LocalAccount,
        fn: ContractFunction,
        *,
        value: int = 0,
        gas: int | None = None,
        timeout: float | None = None,
    ) -> TxReceipt:
        """Send a contract function call as a transaction and wait for its receipt.

        Arguments:
            account: the local signing account.
            fn: a bound contract function, e.g. ``contract.functions.vote(1, 2)``.
            value: wei to send along.
            gas: gas limit; estimated when ``None``.
            timeout: seconds to wait (default: the client's ``receipt_timeout``).

        Returns:
            The successful receipt.

        Raises:
            TransactionReverted: at estimation or in the mined transaction (typed).
            TransactionTimeout: no receipt in time.
            TransactionError / ChainConnectionError: see :meth:`send_transaction`.
        """
        tx: dict[str, Any] = {
            "to": fn.address,
            "data": fn._encode_transaction_data(),
            "value": value,
        }
        if gas is not None:
            tx["gas"] = gas
        tx_hash = self.send_transaction(account, tx)
        return self.wait_for_receipt(tx_hash, timeout=timeout)

    def deploy(
        self, account: LocalAccount, artifact: ContractArtifact, *constructor_args: Any
    ) -> ChecksumAddress:
        """Deploy a compiled contract and return its address.

        Raises:
            TransactionReverted: the constructor reverted.
            TransactionTimeout / TransactionError / ChainConnectionError: as for sending.
        """
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=cast("HexStr", artifact.bytecode))
        try:
            data = factory.constructor(*constructor_args).data_in_transaction
        except Web3Exception as exc:
            raise ConfigError(
                f"bad constructor arguments for {artifact.contract_name}: {exc}"
            ) from exc
        tx_hash = self.send_transaction(account, {"data": data})
        receipt = self.wait_for_receipt(tx_hash)
        address = receipt.get("contractAddress")
        if not address:
            raise TransactionError(
                "deployment receipt has no contract address", tx_hash=tx_hash.to_0x_hex()
            )
        return Web3.to_checksum_address(address)

    # ------------------------------------------------------------------ receipts and calls

    def wait_for_receipt(
        self, tx_hash: HexBytes | bytes | str, *, timeout: float | None = None
    ) -> TxReceipt:
        """Poll for a receipt, wait for confirmations, and raise the revert if status is 0.

        Arguments:
            tx_hash: the transaction hash.
            timeout: seconds (default: the client's ``receipt_timeout``).

        Returns:
            The receipt of the successful transaction.

        Raises:
            TransactionTimeout: no receipt (or not enough confirmations) in time.
            TransactionReverted: mined with status 0 (a ContractError subclass when known).
            ChainConnectionError: the node could not be reached.
        """
        tx_hash = HexBytes(tx_hash)
        hex_hash = tx_hash.to_0x_hex()
        limit = self.receipt_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        receipt: TxReceipt | None = None
        while True:
            with self._node("read a receipt"):
                if receipt is None:
                    try:
                        receipt = self.w3.eth.get_transaction_receipt(tx_hash)
                    except TransactionNotFound:
                        receipt = None
                if receipt is not None and (
                    self.confirmations == 0
                    or self.w3.eth.block_number - receipt["blockNumber"] >= self.confirmations
                ):
                    break
            if time.monotonic() >= deadline:
                state = (
                    "not mined"
                    if receipt is None
                    else f"fewer than {self.confirmations} confirmations"
                )
                raise TransactionTimeout(
                    f"transaction {hex_hash} {state} after {limit:g} s", tx_hash=hex_hash
                )
            time.sleep(self.poll_interval)
        if receipt["status"] == 0:
            raise self._replay_revert(tx_hash, receipt)
        return receipt

    def _replay_revert(self, tx_hash: HexBytes, receipt: TxReceipt) -> TransactionError:
        hex_hash = tx_hash.to_0x_hex()
        with self._node("read a reverted transaction"):
            tx = self.w3.eth.get_transaction(tx_hash)
            call = {
                "from": tx["from"],
                "to": tx.get("to"),
                "data": tx["input"],
                "value": tx["value"],
                "gas": tx["gas"],
            }
        try:
            with self._node("replay a reverted transaction", tx_hash=hex_hash):
                self.w3.eth.call(cast("TxParams", call), receipt["blockNumber"])
        except TransactionReverted as exc:
            return exc
        if receipt["gasUsed"] >= tx["gas"]:
            return TransactionError(f"ran out of gas ({tx['gas']})", tx_hash=hex_hash)
        return decode_revert(None, tx_hash=hex_hash)

    def call(
        self, fn: ContractFunction, *, block: BlockIdentifier = "latest", sender: str | None = None
    ) -> Any:
        """Run a contract function with ``eth_call``.

        Arguments:
            fn: a bound contract function.
            block: block number or tag.
            sender: the ``from`` address, if the function cares.

        Returns:
            The decoded return value(s), as web3 returns them.

        Raises:
            TransactionReverted: the call reverted (a ContractError subclass when known).
            ChainConnectionError: the node could not be reached.
        """
        tx = {"from": Web3.to_checksum_address(sender)} if sender else {}
        with self._node(f"call {fn.fn_name}"):
            return fn.call(cast("TxParams", tx), block_identifier=block)

    def get_logs(
        self,
        address: str | Sequence[str],
        from_block: int,
        to_block: int,
        topics: Sequence[Any] | None = None,
    ) -> list[LogReceipt]:
        """``eth_getLogs`` over an inclusive block range, sorted by (block, logIndex).

        Raises:
            ChainConnectionError: the node failed (e.g. the range is too large for it).
        """
        addresses = [address] if isinstance(address, str) else list(address)
        params: dict[str, Any] = {
            "address": [Web3.to_checksum_address(item) for item in addresses],
            "fromBlock": from_block,
            "toBlock": to_block,
        }
        if topics:
            params["topics"] = list(topics)
        with self._node(f"read logs {from_block}-{to_block}"):
            logs = self.w3.eth.get_logs(cast("Any", params))
        return sorted(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Release the connection (websocket or HTTP sessions)."""
        provider = getattr(getattr(self, "w3", None), "provider", None)
        if isinstance(provider, SyncWebSocketProvider):
            provider.close()

    def __enter__(self) -> ChainClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _NonceTooLow(Exception):
    """Internal: the node says our managed nonce is used (by a transaction not ours)."""
