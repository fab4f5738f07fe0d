"""How a platform echoes configuration: explicit rewrite rules, applied before comparing.

A config is parsed into *entries*: the tuple of stanza headers above a line plus the line
itself, e.g. ``("router bgp 65017", "address-family ipv4 unicast", "network 10.0.0.0/8")``.
A :class:`Dialect` rewrites entries into the form the device shows on read-back, in two
steps, both applied to the intended config and to the read-back alike:

1. *line rules* (:class:`LineRule`): one line, and every header it sits under, becomes zero
   or more lines (a keyword expanded, an address compressed, a default dropped);
2. *stanza rules* (:data:`StanzaRule`): the whole entry list is restructured (a line moved
   into the stanza the device shows it in, two lines merged, sequence numbers added).

Every rule names the device behaviour it mirrors (its ``why``). A rule rewrites only
lines it recognises exactly; nothing is ignored wholesale. The per-platform rule sets live
in :mod:`~nornir_coopchain.model.frr_dialect` and :mod:`~nornir_coopchain.model.eos_dialect`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Context",
    "Dialect",
    "Entry",
    "LineRule",
    "StanzaRule",
    "compress_ipv6",
]

Entry = tuple[str, ...]
"""The headers above a line, outermost first, then the line (stripped)."""


@dataclass(frozen=True)
class Context:
    """What the rules may know besides the line: facts the read-back states."""

    defaults: str = "traditional"
    """The FRR defaults profile the daemons run with (``frr defaults …`` of the read-back)."""


@dataclass(frozen=True)
class LineRule:
    """Rewrite one line, given the headers above it (already rewritten)."""

    name: str
    why: str
    """The device behaviour the rule mirrors."""
    apply: Callable[[tuple[str, ...], str, Context], list[str] | None]
    """Returns the replacement lines ([] drops the line), or None when it does not apply."""


StanzaRule = Callable[[list[Entry], Context], list[Entry]]
"""Restructure the whole entry list (its docstring names the device behaviour)."""


@dataclass(frozen=True)
class Dialect:
    """A platform's rules, in the order they run."""

    name: str
    version: str
    """Bumped whenever a rule changes: recorded in each compliance report."""
    line_rules: tuple[LineRule, ...] = ()
    stanza_rules: tuple[StanzaRule, ...] = ()
    context: Callable[[Sequence[Entry]], Context] = field(default=lambda _entries: Context())
    """Reads the :class:`Context` from a read-back's entries."""
    idempotent: bool = False
    """A line entered twice configures once (and is shown once): compare sets of lines."""

    def rewrite(self, entries: list[Entry], context: Context) -> list[Entry]:
        """Apply the line rules (to lines and to their headers), then the stanza rules."""
        header_cache: dict[Entry, tuple[str, ...] | None] = {}
        out: list[Entry] = []
        for entry in entries:
            path = self._path(entry[:-1], context, header_cache)
            if path is None:
                continue
            out += [(*path, line) for line in self._line(path, entry[-1], context)]
        for rule in self.stanza_rules:
            out = rule(out, context)
        return out

    def _line(self, path: tuple[str, ...], line: str, context: Context) -> list[str]:
        lines = [line]
        for rule in self.line_rules:
            if len(lines) == 1:
                result = rule.apply(path, lines[0], context)
                if result is not None:
                    lines = result
                continue
            rewritten: list[str] = []
            for text in lines:
                result = rule.apply(path, text, context)
                rewritten += [text] if result is None else result
            lines = rewritten
        return lines

    def _path(
        self, headers: Entry, context: Context, cache: dict[Entry, tuple[str, ...] | None]
    ) -> tuple[str, ...] | None:
        """The rewritten header path; None when a header is dropped (so are its lines)."""
        if headers in cache:
            return cache[headers]
        path: tuple[str, ...] | None = ()
        for header in headers:
            assert path is not None
            lines = self._line(path, header, context)
            if len(lines) != 1:
                path = None
                break
            path = (*path, lines[0])
        cache[headers] = path
        return path


def compress_ipv6(token: str) -> str | None:
    """The canonical (compressed, lower-case) form of an IPv6 address or ``address/len``
    token, or None when ``token`` is not one (``65001:1`` community values are not)."""
    if ":" not in token or token.count(":") < 2:
        return None
    try:
        if "/" in token:
            return str(ipaddress.IPv6Interface(token))
        return str(ipaddress.IPv6Address(token))
    except ValueError:
        return None
