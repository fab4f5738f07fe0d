"""Every error nornir_coopchain raises derives from :class:`CoopchainError`.

Exception tree::

    CoopchainError
    ├── ChangeRefused                     a change may not be applied (not approved, …)
    │   └── StaleBaseError                the device changed since the diff was approved
    ├── ConfigError (ValueError)          bad input: a file, field or host is named
    │   └── KeystoreError                 a key could not be loaded safely
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
    "ChainConnectionError",
    "ChainError",
    "ChangeRefused",
    "ConfigError",
    "ContractError",
    "CoopchainError",
    "KeystoreError",
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
        rendered = ", ".join(
            f"{key}={'0x' + value.hex() if isinstance(value, bytes) else repr(value)}"
            for key, value in args_by_name.items()
        )
        super().__init__(f"{self.error_name or type(self).__name__}({rendered})", tx_hash=tx_hash)


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
