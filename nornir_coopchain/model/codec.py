"""How a proposal's canonical JSON travels on chain: a small versioned, compressed envelope.

The ``content`` calldata of ``propose`` / ``declareEmergency`` is::

    offset  size  field
    0       4     magic  b"\\x89CCP"  (never the first bytes of JSON, which starts with "{")
    4       1     version: 1 = zlib (RFC 1950) of the canonical JSON, compression level 9
    5       4     size of the canonical JSON once decompressed, unsigned big-endian
    9       ...   the zlib stream, ending exactly at the end of the data

The contract stores ``keccak256`` of exactly these bytes (``contentHash``). Readers check the
posted bytes against that hash and decompress them; they never compress again, so a proposer
whose zlib compresses differently (another zlib build) still posts content anyone can check.

Reading is strict: an unknown version, a truncated or over-long stream, trailing bytes, a
declared size that differs from the real one, or a decompressed size over ``max_size`` (a
"zip bomb": at most ``max_size + 1`` bytes are ever inflated) is refused with
:class:`~nornir_coopchain.exceptions.ConfigError`. Plain canonical JSON (what proposals
carried before the envelope) is still read, never written.
"""

from __future__ import annotations

import zlib
from typing import Final

from nornir_coopchain.exceptions import ConfigError

__all__ = [
    "COMPRESSION_LEVEL",
    "CONTENT_MAGIC",
    "CONTENT_VERSION",
    "MAX_CONTENT_JSON_BYTES",
    "decode_content",
    "encode_content",
    "is_envelope",
]

CONTENT_MAGIC: Final = b"\x89CCP"
"""The envelope's first four bytes."""
CONTENT_VERSION: Final = 1
"""The envelope version written: zlib of the canonical JSON."""
COMPRESSION_LEVEL: Final = 9
"""zlib level of version 1 (fixed, so one zlib build always posts the same bytes)."""
MAX_CONTENT_JSON_BYTES: Final = 32 * 2**20
"""Default cap on the decompressed (canonical JSON) size read back: 32 MiB, ~10,000 devices
of ~3.2 kB of diffs each, far beyond what one block can carry compressed."""

_HEADER_SIZE: Final = len(CONTENT_MAGIC) + 1 + 4
_SOURCE: Final = "proposal content"


def is_envelope(data: bytes) -> bool:
    """Whether ``data`` starts with the envelope's magic (whatever its version)."""
    return bytes(data[: len(CONTENT_MAGIC)]) == CONTENT_MAGIC


def encode_content(canonical: bytes) -> bytes:
    """Wrap canonical JSON in the current envelope (version 1, zlib level 9).

    Arguments:
        canonical: the canonical JSON of a proposal
            (:meth:`~nornir_coopchain.model.content.ProposalContent.canonical_bytes`).

    Returns:
        The bytes to post as calldata and to hash for ``contentHash``.

    Raises:
        ConfigError: the JSON is 4 GiB or more (its size does not fit the header).
    """
    if len(canonical) >= 2**32:
        raise ConfigError(f"{len(canonical):,} bytes of JSON do not fit", source=_SOURCE)
    header = CONTENT_MAGIC + bytes([CONTENT_VERSION]) + len(canonical).to_bytes(4, "big")
    return header + zlib.compress(canonical, COMPRESSION_LEVEL)


def decode_content(data: bytes, *, max_size: int = MAX_CONTENT_JSON_BYTES) -> bytes:
    """The JSON carried by posted content bytes: an envelope's, or plain JSON as it is.

    The result still has to be parsed and checked canonical
    (:meth:`~nornir_coopchain.model.content.ProposalContent.from_bytes` does both).

    Arguments:
        data: the posted bytes (the envelope, or plain JSON starting with ``{``).
        max_size: the largest JSON accepted, in bytes; a bigger one is refused without
            inflating more than ``max_size + 1`` bytes.

    Returns:
        The JSON bytes.

    Raises:
        ConfigError: not an envelope nor JSON, an unknown version, a corrupt, truncated or
            over-long stream, or JSON over ``max_size``.
    """
    data = bytes(data)
    if data[:1] == b"{":
        _check_size(len(data), max_size)
        return data
    if not is_envelope(data):
        raise ConfigError(
            f"unknown format (starts with 0x{data[:4].hex()}): neither the "
            f"0x{CONTENT_MAGIC.hex()} envelope nor JSON",
            source=_SOURCE,
        )
    if len(data) < _HEADER_SIZE:
        raise ConfigError(f"envelope header truncated ({len(data)} bytes)", source=_SOURCE)
    version = data[len(CONTENT_MAGIC)]
    if version != CONTENT_VERSION:
        raise ConfigError(
            f"unknown envelope version {version} (this nornir_coopchain reads version "
            f"{CONTENT_VERSION}): upgrade it to read this proposal",
            source=_SOURCE,
        )
    declared = int.from_bytes(data[len(CONTENT_MAGIC) + 1 : _HEADER_SIZE], "big")
    _check_size(declared, max_size)
    inflater = zlib.decompressobj()
    try:
        # At most declared + 1 bytes: enough to tell "more than declared" from "as declared".
        json_bytes = inflater.decompress(data[_HEADER_SIZE:], declared + 1)
    except zlib.error as exc:
        raise ConfigError(f"corrupt zlib stream: {exc}", source=_SOURCE) from exc
    if len(json_bytes) > declared:
        raise ConfigError(
            f"inflates to more than the {declared:,} bytes its header declares", source=_SOURCE
        )
    if not inflater.eof:
        raise ConfigError("zlib stream truncated", source=_SOURCE)
    if inflater.unused_data:
        raise ConfigError(
            f"{len(inflater.unused_data)} byte(s) after the end of the zlib stream", source=_SOURCE
        )
    if len(json_bytes) != declared:
        raise ConfigError(
            f"inflates to {len(json_bytes):,} bytes, its header declares {declared:,}",
            source=_SOURCE,
        )
    return json_bytes


def _check_size(size: int, max_size: int) -> None:
    if size > max_size:
        raise ConfigError(
            f"{size:,} bytes of JSON exceed the {max_size:,}-byte limit for reading a proposal",
            source=_SOURCE,
        )
