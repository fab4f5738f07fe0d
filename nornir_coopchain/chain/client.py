"""The one way this package talks to a chain: connect, sign locally, send, wait, decode reverts.

:class:`ChainClient` wraps a web3 ``Web3`` instance and turns every web3, provider and
transport exception into one from :mod:`nornir_coopchain.exceptions`; a revert becomes the
contract's typed error through :func:`~nornir_coopchain.chain.errors.decode_revert`.

Supported URLs: ``embedded://`` (an in-process py-evm chain, fresh per connect),
``http(s)://`` and ``ws(s)://``. web3 8 removed its synchronous websocket provider (only the
async ``WebSocketProvider`` remains), so ``ws://`` uses :class:`SyncWebSocketProvider`, a
small synchronous provider built on ``websockets.sync``.
"""

from __future__ import annotations

import ast
import json
import re
import threading
import time
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext, suppress
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

from eth_abi.abi import encode as abi_encode
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception, Web3RPCError
from web3.middleware import ExtraDataToPOAMiddleware
from web3.providers import JSONBaseProvider
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from nornir_coopchain.chain.errors import decode_revert
from nornir_coopchain.chain.nonce import NonceManager
from nornir_coopchain.exceptions import (
    ChainConnectionError,
    ConfigError,
    CoopchainError,
    TransactionError,
    TransactionReverted,
    TransactionTimeout,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from types import TracebackType

    from eth_account.signers.local import LocalAccount
    from eth_typing import ChecksumAddress, HexStr
    from web3.contract.contract import ContractFunction
    from web3.providers.base import BaseProvider
    from web3.types import (
        BlockIdentifier,
        LogReceipt,
        RPCEndpoint,
        RPCResponse,
        TxParams,
        TxReceipt,
    )

    from nornir_coopchain.chain.artifacts import ContractArtifact

__all__ = ["ChainClient", "SyncWebSocketProvider", "is_poa_block", "revert_data"]

GAS_MULTIPLIER = 1.2
GAS_MARGIN = 10_000
FEE_TTL = 1.0  # seconds a fee reading is reused
DEFAULT_TIP = 10**9  # 1 gwei, when the node has no eth_maxPriorityFeePerGas
_MAX_NONCE_RETRIES = 3
_KNOWN = ("already known", "known transaction", "already imported", "already exists")
_NONCE_LOW = ("nonce too low", "invalid transaction nonce", "nonce is too low", "old nonce")
_TRANSPORT = (OSError, WebSocketException)
_ERROR_STRING = bytes.fromhex("08c379a0")  # selector of Error(string)


def _normalised(message: str) -> str:
    return message.lower().replace("_", " ")


def _nonce_too_low(message: str) -> bool:
    expected = re.search(r"expected (\d+), but got (\d+)", message)  # eth-tester's wording
    if expected:
        return int(expected[2]) < int(expected[1])
    return any(phrase in message for phrase in _NONCE_LOW)


def rpc_message(exc: BaseException) -> str:
    """The node's error message inside a web3 exception (or ``str(exc)``)."""
    if isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, dict):
        error = exc.rpc_response.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(exc.args[0]) if exc.args else type(exc).__name__


def _hex_bytes(value: object) -> bytes | None:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        text = value.removeprefix("Reverted ").strip()
        if text.startswith("0x"):
            try:
                return bytes.fromhex(text[2:])
            except ValueError:
                return None
    if isinstance(value, dict):  # {"data": "0x…"} or {tx_hash: {"return": "0x…"}}
        for key in ("data", "return", "result"):
            if key in value:
                return _hex_bytes(value[key])
        for inner in value.values():
            found = _hex_bytes(inner)
            if found is not None:
                return found
    return None


def revert_data(exc: BaseException) -> tuple[bool, bytes | None]:
    """Whether a web3 exception is a revert, and its revert data when the node sent any.

    Arguments:
        exc: a ``ContractLogicError`` (incl. ``ContractCustomError``) or ``Web3RPCError``.

    Returns:
        ``(is_revert, data)``; ``data`` is ``None`` when the node gave no revert data.
    """
    if isinstance(exc, ContractLogicError):
        return True, _hex_bytes(exc.data)
    if isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, dict):
        error = exc.rpc_response.get("error")
        if isinstance(error, dict) and (
            error.get("code") == 3 or "revert" in str(error.get("message", "")).lower()
        ):
            return True, _hex_bytes(error.get("data"))
    return False, None


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


def _tester_revert_data(reason: object) -> bytes:
    """Revert data from what eth-tester raises: raw bytes, their ``repr``, or a decoded
    ``Error(string)`` reason (or a VM error message, re-encoded the same way)."""
    if isinstance(reason, bytes):
        return reason
    text = str(reason)
    if text[:2] in ("b'", 'b"'):
        with suppress(ValueError, SyntaxError):
            value = ast.literal_eval(text)
            if isinstance(value, bytes):
                return value
    return _ERROR_STRING + abi_encode(["string"], [text])


class _EmbeddedProvider(EthereumTesterProvider):
    """eth-tester behind a lock, answering failures as JSON-RPC errors (like a real node).

    web3's tester glue re-raises eth-tester's ``TransactionFailed`` as a string, losing
    ``Error(string)`` revert data; here it becomes ``{"code": 3, "data": "0x…"}``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        from eth_tester.exceptions import TransactionFailed

        with self._lock:
            try:
                return super().make_request(method, params)
            except TransactionFailed as exc:
                original = (
                    exc.__context__ if isinstance(exc.__context__, TransactionFailed) else exc
                )
                first = original.args[0] if original.args else b""
                if isinstance(first, Exception) and first.args:
                    first = first.args[0]
                error: dict[str, Any] = {
                    "code": 3,
                    "message": "execution reverted",
                    "data": "0x" + _tester_revert_data(first).hex(),
                }
            except (Web3Exception, KeyboardInterrupt):
                raise
            except Exception as exc:  # eth-tester / py-evm validation errors
                error = {"code": -32000, "message": f"{type(exc).__name__}: {exc}"}
            return cast("RPCResponse", {"jsonrpc": "2.0", "id": 0, "error": error})


class SyncWebSocketProvider(JSONBaseProvider):
    """A minimal synchronous JSON-RPC-over-websocket provider (one connection, one lock).

    Arguments:
        url: ``ws://`` or ``wss://`` endpoint.
        timeout: seconds to wait for the connection and for each answer.
    """

    def __init__(self, url: str, *, timeout: float = 30.0):
        super().__init__()
        self.url = url
        self.timeout = timeout
        self._lock = threading.Lock()
        self._connection: ClientConnection | None = None
        self._stack = ExitStack()

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        request = self.encode_rpc_request(method, params)
        request_id = json.loads(request)["id"]
        with self._lock:
            if self._connection is None:
                # websockets >= 17.1 wants connect() entered as a context manager.
                self._connection = self._stack.enter_context(
                    connect(self.url, open_timeout=self.timeout, max_size=None)
                )
            try:
                self._connection.send(request.decode())
                while True:
                    raw = self._connection.recv(timeout=self.timeout)
                    response = self.decode_rpc_response(
                        raw if isinstance(raw, bytes) else raw.encode()
                    )
                    if response.get("id") == request_id:
                        return response
            except BaseException:
                self._close_locked()
                raise

    def _close_locked(self) -> None:
        self._connection = None
        self._stack.close()

    def close(self) -> None:
        """Close the websocket (the next request reconnects)."""
        with self._lock:
            self._close_locked()


def _redact(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _make_provider(url: str, timeout: float) -> BaseProvider:
    scheme = urlsplit(url).scheme.lower()
    if url in ("embedded", "embedded://"):
        return _EmbeddedProvider()
    if scheme in ("http", "https"):
        return HTTPProvider(url, request_kwargs={"timeout": timeout})
    if scheme in ("ws", "wss"):
        return SyncWebSocketProvider(url, timeout=timeout)
    raise ConfigError(
        f"unsupported chain URL {_redact(url)!r}: use embedded://, http(s):// or ws(s)://",
        field="url",
    )


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
        self.kind = "embedded" if isinstance(w3.provider, _EmbeddedProvider) else "rpc"
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
        provider = _make_provider(url, request_timeout)
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

    @contextmanager
    def _node(self, what: str, *, tx_hash: str | None = None) -> Iterator[None]:
        """Translate transport and web3 exceptions raised inside the block; decode reverts."""
        try:
            yield
        except CoopchainError:
            raise
        except (ContractLogicError, Web3RPCError) as exc:
            is_revert, data = revert_data(exc)
            if is_revert:
                raise decode_revert(data, tx_hash=tx_hash) from exc
            raise ChainConnectionError(
                f"node at {_redact(self.url)} failed to {what}: {rpc_message(exc)}"
            ) from exc
        except _TRANSPORT as exc:
            raise ChainConnectionError(
                f"cannot reach node at {_redact(self.url)}: {what}: {self._transport(exc)}"
            ) from exc
        except Web3Exception as exc:
            raise ChainConnectionError(
                f"node at {_redact(self.url)} failed to {what}: {rpc_message(exc)}"
            ) from exc

    def _transport(self, exc: BaseException) -> str:
        """The innermost transport error, without the URL's credentials, path or query."""
        inner = exc
        for _ in range(5):
            reason = getattr(inner, "reason", None)
            if not isinstance(reason, BaseException):
                first = inner.args[0] if inner.args else None
                reason = first if isinstance(first, BaseException) else None
            if reason is None:
                break
            inner = reason
        text = str(inner)
        parts = urlsplit(self.url)
        for secret in (self.url, parts.query, parts.password, parts.path.strip("/")):
            if secret:
                text = text.replace(secret, "…")
        return text

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
                f"node at {_redact(self.url)} returned no {tag} block: {response.get('error')}"
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
        except (Web3Exception, *_TRANSPORT) as exc:
            message = _normalised(rpc_message(exc))
            if any(phrase in message for phrase in _KNOWN) or self._is_known(tx_hash):
                return tx_hash
            if isinstance(exc, _TRANSPORT):
                if managed:  # unknown whether it arrived: let the node tell next time
                    self.nonces.resync(address)
                raise ChainConnectionError(
                    f"cannot reach node at {_redact(self.url)}: send the transaction: "
                    f"{self._transport(exc)}"
                ) from exc
            if managed and _nonce_too_low(message):
                raise _NonceTooLow from exc
            if managed:
                self.nonces.release(address, nonce)
            raise TransactionError(
                f"node at {_redact(self.url)} rejected the transaction: {rpc_message(exc)}",
                tx_hash=tx_hash.to_0x_hex(),
            ) from exc
        return tx_hash

    def _is_known(self, tx_hash: HexBytes) -> bool:
        try:
            self.w3.eth.get_transaction(tx_hash)
        except (Web3Exception, *_TRANSPORT):
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
