"""The one way this package talks to a chain: connect, sign locally, send, wait, decode reverts.

:class:`ChainClient` wraps a web3 ``Web3`` instance and turns every web3, provider and
transport exception into one from :mod:`nornir_coopchain.exceptions`
(:func:`~nornir_coopchain.chain.rpc_errors.node_errors`); a revert becomes the contract's
typed error through :func:`~nornir_coopchain.chain.errors.decode_revert`.

Supported URLs: ``embedded://`` (an in-process py-evm chain, fresh per connect),
``http(s)://`` and ``ws(s)://``. The client is a facade over small modules:

* :mod:`~nornir_coopchain.chain.providers`: the providers behind a URL;
* :mod:`~nornir_coopchain.chain.network`: what the node is (chain ID, PoA, free gas);
* :mod:`~nornir_coopchain.chain.fees`: fee fields and their shared cache;
* :mod:`~nornir_coopchain.chain.sending`: the :class:`~nornir_coopchain.chain.sending.Sender`
  that owns nonces (:mod:`~nornir_coopchain.chain.nonce`), fees and in-flight transactions,
  and fills, signs and sends;
* :mod:`~nornir_coopchain.chain.inflight` and :mod:`~nornir_coopchain.chain.rebroadcast`:
  sent transactions kept until mined, and sent again when the node lost them;
* :mod:`~nornir_coopchain.chain.receipts`: waiting for receipts, replaying reverts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from web3 import Web3
from web3.exceptions import Web3Exception

from nornir_coopchain.chain import rebroadcast, receipts
from nornir_coopchain.chain.fees import DEFAULT_TIP, FEE_TTL
from nornir_coopchain.chain.network import detect_network, is_poa_block, trim_middleware
from nornir_coopchain.chain.providers import EmbeddedProvider, SyncWebSocketProvider, make_provider
from nornir_coopchain.chain.rebroadcast import REBROADCAST_AFTER
from nornir_coopchain.chain.rpc_errors import node_errors, revert_data, rpc_message
from nornir_coopchain.chain.sending import GAS_MARGIN, GAS_MULTIPLIER, Sender
from nornir_coopchain.exceptions import ConfigError, TransactionError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import TracebackType

    from eth_account.signers.local import LocalAccount
    from eth_typing import ChecksumAddress, HexStr
    from hexbytes import HexBytes
    from web3.contract.contract import ContractFunction
    from web3.types import BlockIdentifier, LogReceipt, TxParams, TxReceipt

    from nornir_coopchain.chain.artifacts import ContractArtifact
    from nornir_coopchain.chain.inflight import InFlight
    from nornir_coopchain.chain.nonce import NonceManager

# Names defined here before the client was split into modules stay importable from here.
__all__ = [
    "DEFAULT_TIP",
    "FEE_TTL",
    "GAS_MARGIN",
    "GAS_MULTIPLIER",
    "ChainClient",
    "SyncWebSocketProvider",
    "is_poa_block",
    "revert_data",
    "rpc_message",
]


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
        sender: the :class:`~nornir_coopchain.chain.sending.Sender` that sends for every
            thread (its nonces, fees and in-flight transactions).
        nonces: the sender's :class:`NonceManager`.
        inflight: the sender's transactions kept until mined (not on the embedded chain).
        rebroadcast_after: seconds without a receipt before :meth:`wait_for_receipt` looks
            for a lost transaction to send again.
    """

    def __init__(
        self,
        w3: Web3,
        url: str,
        *,
        confirmations: int = 0,
        receipt_timeout: float = 60.0,
        poll_interval: float = 0.05,
        rebroadcast_after: float = REBROADCAST_AFTER,
    ):
        self.w3 = w3
        self.url = url
        self.kind = "embedded" if isinstance(w3.provider, EmbeddedProvider) else "rpc"
        self.confirmations = confirmations
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self.rebroadcast_after = rebroadcast_after
        trim_middleware(w3)
        network = detect_network(w3, url, embedded=self.kind == "embedded")
        self.chain_id: int = network.chain_id
        self.is_poa: bool = network.is_poa
        self.free_gas: bool = network.free_gas
        self.legacy_transactions: bool = network.legacy_transactions
        self.sender = Sender(
            w3,
            url,
            self.chain_id,
            embedded=self.kind == "embedded",
            free_gas=self.free_gas,
            legacy=self.legacy_transactions,
        )

    @property
    def nonces(self) -> NonceManager:
        """The sender's nonce manager."""
        return self.sender.nonces

    @property
    def inflight(self) -> InFlight:
        """The sender's transactions kept until mined."""
        return self.sender.inflight

    @classmethod
    def connect(
        cls,
        url: str = "embedded://",
        *,
        confirmations: int = 0,
        receipt_timeout: float = 60.0,
        poll_interval: float = 0.05,
        request_timeout: float = 30.0,
        rebroadcast_after: float = REBROADCAST_AFTER,
    ) -> ChainClient:
        """Connect to a node and detect how to talk to it.

        Arguments:
            url: ``embedded://`` (default, a fresh in-process chain), ``http(s)://…`` or
                ``ws(s)://…``.
            confirmations: blocks a receipt must have on top of it before it counts.
            receipt_timeout: default seconds :meth:`wait_for_receipt` waits.
            poll_interval: seconds between receipt polls.
            request_timeout: seconds each JSON-RPC request may take.
            rebroadcast_after: seconds without a receipt before looking for a lost
                transaction (then again every as many seconds, while waiting).

        Returns:
            The connected client.

        Raises:
            ConfigError: the URL scheme is not supported, or a timing is not positive.
            ChainConnectionError: the node cannot be reached (the message names the URL).
        """
        if confirmations < 0 or min(receipt_timeout, poll_interval, rebroadcast_after) <= 0:
            raise ConfigError("confirmations must be >= 0, timeouts and intervals > 0")
        provider = make_provider(url, request_timeout)
        try:
            return cls(
                Web3(provider),
                url,
                confirmations=confirmations,
                receipt_timeout=receipt_timeout,
                poll_interval=poll_interval,
                rebroadcast_after=rebroadcast_after,
            )
        except BaseException:
            if isinstance(provider, SyncWebSocketProvider):
                provider.close()
            raise

    # ------------------------------------------------------------------ reading the chain

    def now(self) -> int:
        """The latest block's timestamp (chain time, seconds)."""
        with node_errors(self.url, "read the latest block"):
            return int(self.w3.eth.get_block("latest")["timestamp"])

    def block_timestamp(self, number: int) -> int:
        """A block's timestamp (chain time, seconds)."""
        with node_errors(self.url, f"read block {number}"):
            return int(self.w3.eth.get_block(number)["timestamp"])

    def block_gas_limit(self) -> int:
        """The latest block's gas limit."""
        with node_errors(self.url, "read the latest block's gas limit"):
            return int(self.w3.eth.get_block("latest")["gasLimit"])

    def block_number(self) -> int:
        """The latest block number."""
        with node_errors(self.url, "read the block number"):
            return self.w3.eth.block_number

    def confirmed_block(self) -> BlockIdentifier:
        """The newest block with ``confirmations`` blocks on top (``"latest"`` when 0): reads
        that a decision rests on are made there, so a reorg shallower than that cannot
        undo what was acted on."""
        if self.confirmations == 0:
            return "latest"
        return max(0, self.block_number() - self.confirmations)

    def fee_fields(self) -> dict[str, int]:
        """Fee fields for a new transaction: ``gasPrice`` (legacy) or EIP-1559 caps.

        Answers are reused for ``FEE_TTL`` seconds and refreshed by one thread per expiry
        (``maxFeePerGas`` = 2 x base fee + tip leaves room for several blocks of base-fee
        growth); a free-gas network never asks: ``{"gasPrice": 0}``.

        Raises:
            ChainConnectionError: the node could not be asked.
        """
        return self.sender.fee_fields()

    def call(
        self, fn: ContractFunction, *, block: BlockIdentifier = "latest", sender: str | None = None
    ) -> Any:
        """Run a contract function with ``eth_call`` (one request).

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
        with node_errors(self.url, f"call {fn.fn_name}"):
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
        with node_errors(self.url, f"read logs {from_block}-{to_block}"):
            logs = self.w3.eth.get_logs(cast("Any", params))
        return sorted(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))

    # ------------------------------------------------------------------ sending

    def estimate_gas(self, tx: TxParams) -> int:
        """Estimated gas times 1.2, plus a margin (one ``eth_estimateGas``).

        Raises:
            TransactionReverted: the call reverts (a ContractError subclass when known).
        """
        return self.sender.estimate_gas(tx)

    def send_transaction(self, account: LocalAccount, tx: Mapping[str, Any]) -> HexBytes:
        """Fill, sign locally and send a transaction.

        Fills ``chainId``, ``nonce`` (from :attr:`nonces`), ``gas`` and fee fields when
        absent. A node answer "already known" for the exact transaction we sent counts as
        sent. The signed transaction is kept until mined (:attr:`inflight`), so
        :meth:`wait_for_receipt` can send it again if the node loses it.

        Arguments:
            account: the local signing account.
            tx: transaction fields (``to``, ``data``, ``value``, …).

        Returns:
            The transaction hash.

        Raises:
            ConfigError: ``tx["from"]`` is another account, ``tx["chainId"]`` another chain,
                or the fields cannot be signed.
            TransactionReverted: gas estimation reverted (typed by decode_revert).
            TransactionError: the node rejected the transaction.
            ChainConnectionError: the node could not be reached.
        """
        return self.sender.send(account, tx)

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

    # ------------------------------------------------------------------ receipts and recovery

    def wait_for_receipt(
        self, tx_hash: HexBytes | bytes | str, *, timeout: float | None = None
    ) -> TxReceipt:
        """Poll for a receipt, wait for confirmations, and raise the revert if status is 0.

        While a transaction this client sent has no receipt, every
        :attr:`rebroadcast_after` seconds (and once at the timeout) the client checks
        whether the node lost it or an earlier nonce of the same account, and sends the
        kept transactions again (see :mod:`~nornir_coopchain.chain.rebroadcast`).

        Arguments:
            tx_hash: the transaction hash.
            timeout: seconds (default: the client's ``receipt_timeout``).

        Returns:
            The receipt of the successful transaction.

        Raises:
            TransactionTimeout: no receipt (or not enough confirmations) in time.
            TransactionReverted: mined with status 0 (a ContractError subclass when known).
            TransactionError: its nonce was mined with another transaction.
            ChainConnectionError: the node could not be reached.
        """
        return receipts.wait_for_receipt(
            self.sender,
            tx_hash,
            timeout=self.receipt_timeout if timeout is None else timeout,
            confirmations=self.confirmations,
            poll_interval=self.poll_interval,
            rebroadcast_after=self.rebroadcast_after,
        )

    def rebroadcast_lost(self, address: ChecksumAddress) -> int:
        """Send again the kept transactions of ``address`` that the node lost.

        :meth:`wait_for_receipt` does this by itself; a sender that does not wait for
        receipts (a pipeline) calls it when the account's mined nonce stops moving.

        Returns:
            How many transactions were sent again.

        Raises:
            ChainConnectionError: the node could not be reached.
        """
        return rebroadcast.rebroadcast_lost(self.sender, address)[1]

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
