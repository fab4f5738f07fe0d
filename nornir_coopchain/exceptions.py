"""Every error nornir_coopchain raises derives from :class:`CoopchainError`.

Exception tree::

    CoopchainError
    ├── ChangeRefused                     a change may not be applied (not approved, …)
    │   ├── StaleBaseError                the device changed since the diff was approved
    │   ├── AlreadyRecorded               another run recorded the change: this one did not
    │   └── ProposalTooLarge              the proposal does not fit the chain: split it
    ├── ConfigError (ValueError)          bad input: a file, field or host is named
    │   ├── KeystoreError                 a key could not be loaded safely
    │   └── JournalStateError             a journal asked for a phase it cannot move to
    └── ChainError                        anything that went wrong talking to the chain
        ├── ChainConnectionError          the node cannot be reached or is not usable
        └── TransactionError              a transaction did not do what was asked
            ├── TransactionTimeout        no receipt within the time allowed
            └── TransactionReverted       mined with status 0
                └── ContractError         reverted with one of the contract's custom errors
                    └── (one class per Solidity error, see nornir_coopchain.chain.errors)
"""

from __future__ import annotations

__all__ = [
    "AlreadyRecorded",
    "ChainConnectionError",
    "ChainError",
    "ChangeRefused",
    "ClaimedByAnotherRun",
    "ConfigError",
    "ContractError",
    "CoopchainError",
    "JournalStateError",
    "KeystoreError",
    "ProposalTooLarge",
    "StaleBaseError",
    "TransactionError",
    "TransactionReverted",
    "TransactionTimeout",
]


class CoopchainError(Exception):
    """The root of every error this package raises on purpose."""


class ConfigError(CoopchainError, ValueError):
    """Raised when input (a file, a field, a host entry) is invalid.

    The message names where the problem is, e.g. ``inventory/hosts.yaml: r1.platform: ...``.
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        where = ": ".join(part for part in (source, field) if part)
        super().__init__(f"{where}: {message}" if where else message)


class KeystoreError(ConfigError):
    """Raised when a signing key cannot be loaded from an encrypted keystore."""


class JournalStateError(ConfigError):
    """Raised when a change's journal is asked to move to a phase its state machine does not
    allow from the phase it is in (nothing is written)."""


class ChainError(CoopchainError):
    """Raised when talking to the chain fails."""


class ChainConnectionError(ChainError):
    """Raised when the node cannot be reached, or answers in a way we cannot use."""


class TransactionError(ChainError):
    """Raised when a transaction was not mined as intended.

    Attributes:
        tx_hash: the transaction's hash (``0x…``), when one was sent.
    """

    def __init__(self, message: str, *, tx_hash: str | None = None):
        self.tx_hash = tx_hash
        super().__init__(f"{message} (tx {tx_hash})" if tx_hash else message)


class TransactionTimeout(TransactionError):
    """Raised when no receipt arrives within the timeout (e.g. a node that does not mine)."""


class TransactionReverted(TransactionError):
    """Raised when a transaction (or a call) reverted without a known custom error."""


class ContractError(TransactionReverted):
    """Raised when the contract reverted with one of its custom errors.

    Subclasses exist for each Solidity error; ``args_by_name`` holds the error's arguments.
    """

    error_name: str = ""

    def __init__(self, args_by_name: dict[str, object], *, tx_hash: str | None = None):
        self.args_by_name = args_by_name
        super().__init__(self.describe(), tx_hash=tx_hash)

    def describe(self) -> str:
        """The error as a sentence (the subclasses name states and times); this default
        lists the raw arguments."""
        rendered = ", ".join(
            f"{key}={'0x' + value.hex() if isinstance(value, bytes) else repr(value)}"
            for key, value in self.args_by_name.items()
        )
        return f"{self.error_name or type(self).__name__}({rendered})"


class ChangeRefused(CoopchainError):
    """Raised when a change may not be applied (not approved, outside its window, not in the
    approved manifest, rendered config or device state different from what was approved).

    Attributes:
        host: the host concerned, if the refusal is about one host.
    """

    def __init__(self, message: str, *, host: str | None = None):
        self.host = host
        super().__init__(f"{host}: {message}" if host else message)


class StaleBaseError(ChangeRefused):
    """Raised when a device's running config changed since the diff was approved."""


class AlreadyRecorded(ChangeRefused):
    """Raised when a change's verification was recorded on chain by another run (another
    process, state directory or machine), with evidence this state directory does not hold:
    this run records nothing.

    Attributes:
        proposal_id: the proposal number.
    """

    def __init__(self, message: str, *, proposal_id: int):
        self.proposal_id = proposal_id
        super().__init__(message)


class ClaimedByAnotherRun(ChangeRefused):
    """Raised when another run (another state directory or machine, also of the same key)
    holds the proposal's apply claim on chain: this run touched no device.

    Attributes:
        proposal_id: the proposal number.
        current_run: the run ID holding the claim (``0x…``, 32 bytes).
    """

    def __init__(self, message: str, *, proposal_id: int, current_run: str):
        self.proposal_id = proposal_id
        self.current_run = current_run
        super().__init__(message)


class ProposalTooLarge(ChangeRefused):
    """Raised before anything is sent when a proposal's content is too big for the chain: the
    gas its calldata needs exceeds what one transaction may use (the latest block's gas limit,
    at most 2^24 since Osaka's EIP-7825), or its size exceeds the byte cap (node request and
    transaction-pool limits).

    Attributes:
        size_bytes: the ``content`` calldata's size in bytes (compressed envelope).
        device_count: the proposal's number of devices.
        gas_needed: the gas the ``propose`` transaction needs at least (calldata and the
            content's hashing).
        gas_limit: the most gas one transaction may use (checked against).
        block_gas_limit: the latest block's gas limit.
        max_bytes: the byte cap the content was checked against.
    """

    def __init__(
        self,
        *,
        size_bytes: int,
        device_count: int,
        gas_needed: int,
        gas_limit: int,
        block_gas_limit: int,
        max_bytes: int,
    ):
        self.size_bytes = size_bytes
        self.device_count = device_count
        self.gas_needed = gas_needed
        self.gas_limit = gas_limit
        self.block_gas_limit = block_gas_limit
        self.max_bytes = max_bytes
        super().__init__(
            f"the proposal is too large for the chain: {size_bytes:,} bytes of content for "
            f"{device_count:,} device(s) need at least {gas_needed:,} gas; one transaction may "
            f"use at most {gas_limit:,} (the latest block's gas limit is {block_gas_limit:,}, "
            f"EIP-7825 caps a transaction at {2**24:,}) and the cap on proposal content is "
            f"{max_bytes:,} bytes. Nothing was sent. Split the change into smaller proposals: "
            "one per resource set, or per device group (run it on a filtered Nornir "
            "inventory, nr.filter(...), one group at a time)"
        )
