"""What a node's failures mean: RPC error messages, revert data, and transport errors.

Nodes word the same failure differently (geth, anvil, Besu, eth-tester). The helpers here
read a web3 exception once, so :class:`~nornir_coopchain.chain.client.ChainClient` only
decides what to do: :func:`revert_data` finds revert data for
:func:`~nornir_coopchain.chain.errors.decode_revert`, :func:`is_already_known` and
:func:`is_nonce_too_low` classify a rejected transaction, and :func:`node_errors` turns any
web3, provider or transport exception into one from :mod:`nornir_coopchain.exceptions`,
with the node's URL stripped of credentials, path and query.
"""

from __future__ import annotations

import ast
import re
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from eth_abi.abi import encode as abi_encode
from web3.exceptions import ContractLogicError, Web3Exception, Web3RPCError
from websockets.exceptions import WebSocketException

from nornir_coopchain.chain.errors import decode_revert
from nornir_coopchain.exceptions import ChainConnectionError, CoopchainError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "TRANSPORT_ERRORS",
    "is_already_known",
    "is_nonce_too_low",
    "node_errors",
    "redact_url",
    "revert_data",
    "rpc_message",
    "tester_revert_data",
    "transport_detail",
]

TRANSPORT_ERRORS = (OSError, WebSocketException)
_KNOWN = ("already known", "known transaction", "already imported", "already exists")
_NONCE_LOW = ("nonce too low", "invalid transaction nonce", "nonce is too low", "old nonce")
_ERROR_STRING = bytes.fromhex("08c379a0")  # selector of Error(string)


def _normalised(message: str) -> str:
    return message.lower().replace("_", " ")


def is_already_known(message: str) -> bool:
    """Whether a node's rejection says it already has this very transaction."""
    normalised = _normalised(message)
    return any(phrase in normalised for phrase in _KNOWN)


def is_nonce_too_low(message: str) -> bool:
    """Whether a node's rejection says the transaction's nonce is already used."""
    normalised = _normalised(message)
    expected = re.search(r"expected (\d+), but got (\d+)", normalised)  # eth-tester's wording
    if expected:
        return int(expected[2]) < int(expected[1])
    return any(phrase in normalised for phrase in _NONCE_LOW)


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


def tester_revert_data(reason: object) -> bytes:
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


def redact_url(url: str) -> str:
    """``url`` without credentials, query or fragment (safe for messages and logs)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def transport_detail(exc: BaseException, url: str) -> str:
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
    parts = urlsplit(url)
    for secret in (url, parts.query, parts.password, parts.path.strip("/")):
        if secret:
            text = text.replace(secret, "…")
    return text


@contextmanager
def node_errors(url: str, what: str, *, tx_hash: str | None = None) -> Iterator[None]:
    """Translate transport and web3 exceptions raised inside the block; decode reverts.

    Arguments:
        url: the node's URL (redacted in messages).
        what: what the block does, for the message ("read a receipt").
        tx_hash: the transaction a revert belongs to, if any.

    Raises:
        TransactionReverted: a revert (a ContractError subclass when known).
        ChainConnectionError: any other node, provider or transport failure.
    """
    try:
        yield
    except CoopchainError:
        raise
    except (ContractLogicError, Web3RPCError) as exc:
        is_revert, data = revert_data(exc)
        if is_revert:
            raise decode_revert(data, tx_hash=tx_hash) from exc
        raise ChainConnectionError(
            f"node at {redact_url(url)} failed to {what}: {rpc_message(exc)}"
        ) from exc
    except TRANSPORT_ERRORS as exc:
        raise ChainConnectionError(
            f"cannot reach node at {redact_url(url)}: {what}: {transport_detail(exc, url)}"
        ) from exc
    except Web3Exception as exc:
        raise ChainConnectionError(
            f"node at {redact_url(url)} failed to {what}: {rpc_message(exc)}"
        ) from exc
