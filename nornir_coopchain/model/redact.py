"""Secrets out of configs before they are compared or hashed into evidence.

Devices echo secrets back in another form than they were configured (EOS shows
``password 7 <encrypted>`` for ``password <plain>``; FRR keeps BGP passwords in clear), so a
compliance check on raw text fails on every secret, and a hash of the raw read-back would
put secrets into evidence that other operators see. Both sides are therefore redacted by the
same rule before comparing and hashing: the secret token, with the encryption type before
it (``7``, ``sha512``, …), becomes ``<redacted>``. A changed secret is thus not detected by
the read-back check; the approved candidate hash (over the unredacted rendered config)
still binds it.

Rules, tried in order on every line except ``description`` lines (``[t] …`` is what becomes
``<redacted>``: the secret and an optional encryption type such as ``7``, ``5``, ``sha512``):

- ``message-digest-key N md5 [t] …`` (FRR/IOS OSPF), ``authentication-key N md5 [t] …``
  (EOS/IOS NTP);
- ``snmp-server community …``; ``tacacs-server [host H] key [t] …``, ``radius-server …``;
- ``password [t] …``, ``secret [t] …``, ``key-string [t] …``, ``authentication-key [t] …``
  (FRR ``neighbor X password …``, EOS ``username X secret sha512 …``, ``enable password …``,
  ``neighbor X password 7 …``). A bare ``key N`` (a key-chain key ID) is not a secret.

The rules are the same for every platform so far; ``platform`` selects per-platform
additions when a dialect needs them.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["REDACTED", "redact"]

REDACTED: Final = "<redacted>"

_TYPE = r"(?:(?:0|5|7|8|9|sha512|md5)\s+)?"
_WORD = r"(?<![\w-])"
_COMMON: Final = tuple(
    re.compile(pattern)
    for pattern in (
        rf"({_WORD}message-digest-key\s+\d+\s+md5\s+){_TYPE}\S+(.*)$",
        rf"({_WORD}authentication-key\s+\d+\s+md5\s+){_TYPE}\S+(.*)$",
        rf"({_WORD}snmp-server community\s+)\S+(.*)$",
        rf"({_WORD}(?:tacacs-server|radius-server)\s+(?:host\s+\S+\s+)?key\s+){_TYPE}\S+(.*)$",
        rf"({_WORD}(?:password|secret|key-string|authentication-key)\s+){_TYPE}\S+(.*)$",
    )
)
_PLATFORM: Final[dict[str, tuple[re.Pattern[str], ...]]] = {}
_DESCRIPTION = re.compile(r"^\s*description\b")
_HINT = re.compile(r"password|secret|key|community")
"""A word every rule's match contains: lines without one are kept as they are, unread."""


def _redact_line(line: str, rules: tuple[re.Pattern[str], ...]) -> str:
    if _DESCRIPTION.match(line):
        return line
    for rule in rules:
        match = rule.search(line)
        if match is not None:
            return f"{line[: match.start()]}{match.group(1)}{REDACTED}{match.group(2)}"
    return line


def redact(config: str, platform: str) -> str:
    """``config`` with every secret token replaced by ``<redacted>`` (line structure kept);
    ``config`` itself when it has nothing to redact."""
    if _HINT.search(config) is None:
        return config
    rules = _PLATFORM.get(platform, ()) + _COMMON
    hint = _HINT.search
    redacted = "\n".join(
        _redact_line(line, rules) if hint(line) else line for line in config.split("\n")
    )
    return config if redacted == config else redacted
