"""Hashes both sides of a vote must reproduce bit for bit: keccak-256 and canonical JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final

from eth_hash.auto import keccak as _keccak

from nornir_coopchain.exceptions import ConfigError

__all__ = ["ZERO32", "canonical_json", "from_hex32", "is_hex32", "keccak", "to_hex32"]

ZERO32: Final = bytes(32)
"""``bytes32(0)``."""

_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")


def keccak(data: bytes) -> bytes:
    """Hash with keccak-256 (Ethereum's ``keccak256``, not NIST SHA3-256).

    Arguments:
        data: the bytes to hash.

    Returns:
        The 32-byte digest.
    """
    return _keccak(data)


def to_hex32(value: bytes) -> str:
    """Render a 32-byte value as ``0x`` followed by 64 lowercase hex digits.

    Arguments:
        value: exactly 32 bytes.

    Returns:
        The hex string.

    Raises:
        ConfigError: when ``value`` is not 32 bytes long.
    """
    if len(value) != 32:
        raise ConfigError(f"expected 32 bytes, got {len(value)}")
    return "0x" + value.hex()


def is_hex32(text: str) -> bool:
    """Tell whether ``text`` is ``0x`` followed by 64 hex digits (either case)."""
    return _HEX32.fullmatch(text) is not None


def from_hex32(text: str) -> bytes:
    """Parse ``0x`` followed by 64 hex digits (either case) into 32 bytes.

    Arguments:
        text: the hex string.

    Returns:
        The 32 bytes.

    Raises:
        ConfigError: when ``text`` is not of that form.
    """
    if not is_hex32(text):
        raise ConfigError(f"expected 0x and 64 hex digits, got {text!r}")
    return bytes.fromhex(text[2:])


def canonical_json(obj: object) -> bytes:
    """Serialise JSON data to its one canonical byte form.

    The form: objects with keys sorted by Unicode code point, no whitespace between tokens,
    strings as UTF-8 with only the escapes JSON requires (``"``, ``\\``, control
    characters), integers in decimal. Only ``None``, ``bool``, ``int``, ``str``, ``list``,
    ``tuple`` and mappings with ``str`` keys are accepted: floats are rejected so that no
    number has two spellings.

    Arguments:
        obj: the data.

    Returns:
        The UTF-8 bytes.

    Raises:
        ConfigError: for a float, a non-string key, another type, or a string that is not
            valid Unicode (a lone surrogate); ``field`` names the path, e.g. ``devices[0].x``.
    """
    _check_json(obj, "$")
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ConfigError("string is not valid Unicode", field="$") from error


def _check_json(obj: object, path: str) -> None:
    if obj is None or isinstance(obj, (bool, int, str)):
        return
    if isinstance(obj, float):
        raise ConfigError("floats are not allowed in canonical JSON", field=path)
    if isinstance(obj, (list, tuple)):
        for index, item in enumerate(obj):
            _check_json(item, f"{path}[{index}]")
        return
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise ConfigError(f"object key {key!r} is not a string", field=path)
            _check_json(value, f"{path}.{key}")
        return
    raise ConfigError(f"{type(obj).__name__} is not JSON data", field=path)
