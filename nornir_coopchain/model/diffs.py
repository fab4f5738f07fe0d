"""What a config diff touches: changed lines, their stanzas, and the tenants who own them.

Three diff shapes are understood, detected per text:

- **unified** (``difflib.unified_diff``, ``git diff``, NAPALM ``compare_config`` on EOS/FRR):
  a line's stanza is rebuilt from the hunk's context, ``-`` and ``+`` lines by indentation,
  on the old side for ``-`` lines and on the new side for ``+`` lines; a hunk's section
  heading (``@@ -1,3 +1,4 @@ router bgp 65017``, as git writes it) seeds the stanza.
- **frr-reload** (``frr-reload.py --test``): ``Lines To Delete`` / ``Lines To Add`` blocks,
  each command written with its context headers and ``exit`` lines. A leaf under ``Lines
  To Delete`` is the ``no`` form of the removed line, so it is turned back into the
  removed line (``no X`` → ``X``, ``X`` → ``no X``, exactly as frr-reload built it).
- **plain** (IOS/EOS ``compare_config``, ``show archive config differences``): ``+``/``-``
  prefixed lines, unsigned lines being context; the sign may follow or precede the
  indentation, and a blank after every sign (``+ line``) is a separator, not indentation.

Comments (``!``, ``#``), ``end`` and ``exit…`` lines are syntax, never changed lines. A line
whose stanza cannot be known (an indented line with no header in sight, e.g. deep inside a
long stanza with too little diff context) gets ``stanza=None``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.model.compliance import SEPARATOR, HeaderStack, is_skipped

__all__ = [
    "ChangedLine",
    "changed_lines",
    "matching_pattern",
    "touched_stanzas",
    "touched_tenants",
]

_HUNK = re.compile(r"@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@ ?(.*)")
_FILE_HEADER = re.compile(r"(---|\+\+\+) |diff |index |\\ No newline")
Sign = Literal["+", "-"]
_FRR_SECTION: Final[dict[str, Sign]] = {"Lines To Delete": "-", "Lines To Add": "+"}


class ChangedLine(BaseModel):
    """One added or removed config line, with the stanza it belongs to."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    sign: Sign
    """``+`` added, ``-`` removed."""
    text: str
    """The line, stripped."""
    path: tuple[str, ...] = ()
    """The headers enclosing the line, outermost first, as far as the diff shows them
    (complete only when ``stanza`` is known; empty for a top-level line)."""
    stanza: str | None
    """The top-level stanza header (the line itself when top level); None when unknown."""

    @property
    def qualified(self) -> str:
        """The line as :func:`~nornir_coopchain.model.compliance.normalise` writes it
        (starting with ``… > `` when the top-level stanza is unknown)."""
        unknown = ("…",) if self.stanza is None else ()
        return SEPARATOR.join((*unknown, *self.path, self.text))

    def __str__(self) -> str:
        return f"{self.sign} {self.qualified}"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _changed(sign: Sign, text: str, placed: tuple[tuple[str, ...], bool]) -> ChangedLine:
    path, anchored = placed
    stanza = (path[0] if path else text) if anchored else None
    return ChangedLine(sign=sign, text=text, path=path, stanza=stanza)


def _is_unified(lines: Sequence[str]) -> bool:
    return any(_HUNK.match(line) for line in lines)


def _unified(lines: Sequence[str]) -> Iterator[ChangedLine]:
    old = new = HeaderStack()
    remaining_old = remaining_new = 0
    in_hunk = False
    for line in lines:
        hunk = _HUNK.match(line)
        if hunk:
            counts, heading = (hunk.group(1), hunk.group(2)), hunk.group(3).strip()
            seed = heading if heading and not is_skipped(heading) else None
            old, new = HeaderStack(seed), HeaderStack(seed)
            remaining_old = 1 if counts[0] is None else int(counts[0])
            remaining_new = 1 if counts[1] is None else int(counts[1])
            in_hunk = True
            continue
        if in_hunk and (remaining_old > 0 or remaining_new > 0):
            prefix, body = line[:1], line[1:]
            if prefix == "\\":
                continue
            text = body.strip()
            if prefix in ("-", " ", ""):
                remaining_old -= 1
            if prefix in ("+", " ", ""):
                remaining_new -= 1
            if not text or is_skipped(text):
                continue
            if prefix == "-":
                yield _changed("-", text, old.place(_indent(body), text))
            elif prefix == "+":
                yield _changed("+", text, new.place(_indent(body), text))
            else:
                old.place(_indent(body), text)
                new.place(_indent(body), text)
            continue
        in_hunk = False
        if _FILE_HEADER.match(line):
            continue
        # A signed line outside any hunk: still a change the voter must see.
        yield from _plain([line])


def _frr_reload(lines: Sequence[str]) -> Iterator[ChangedLine]:
    sign: Sign | None = None
    body: list[tuple[int, str]] = []
    for line in lines:
        text = line.strip()
        if text in _FRR_SECTION:
            if sign is not None:
                yield from _frr_block(sign, body)
            sign, body = _FRR_SECTION[text], []
        elif sign is not None and text and set(text) != {"="} and not is_skipped(text):
            body.append((_indent(line), text))
    if sign is not None:
        yield from _frr_block(sign, body)


def _frr_block(sign: Sign, body: list[tuple[int, str]]) -> Iterator[ChangedLine]:
    stack = HeaderStack()
    for index, (indent, text) in enumerate(body):
        placed = stack.place(indent, text)
        if index + 1 < len(body) and body[index + 1][0] > indent:
            continue  # a context header, repeated before each command
        if sign == "-":
            text = text[3:] if text.startswith("no ") else f"no {text}"
        yield _changed(sign, text, placed)


def _plain(lines: Sequence[str]) -> Iterator[ChangedLine]:
    signed = [line.lstrip() for line in lines if line.lstrip()[:1] in ("+", "-")]
    gap = min((_indent(line[1:]) for line in signed if line[1:].strip()), default=0)
    stack = HeaderStack()
    for line in lines:
        stripped = line.lstrip()
        if stripped[:1] in ("+", "-"):
            body = stripped[1:]
            text = body.strip()
            if text and not is_skipped(text):
                indent = max(_indent(line) + _indent(body) - gap, 0)
                sign: Sign = "+" if stripped[0] == "+" else "-"
                yield _changed(sign, text, stack.place(indent, text))
        elif stripped and not is_skipped(stripped.rstrip()):
            stack.place(_indent(line), stripped.rstrip())


def changed_lines(diff: str) -> tuple[ChangedLine, ...]:
    """Parse a config diff into its changed lines.

    Arguments:
        diff: a unified diff, ``frr-reload.py --test`` output or a plain ``+``/``-`` list
            (any line endings).

    Returns:
        The added and removed lines in diff order, each with its stanza.
    """
    lines = diff.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if any(line.strip() in _FRR_SECTION for line in lines):
        return tuple(_frr_reload(lines))
    if _is_unified(lines):
        return tuple(_unified(lines))
    return tuple(_plain(lines))


def touched_stanzas(diff: str) -> set[str]:
    """The top-level stanza headers a diff changes (lines of unknown stanza left out)."""
    return {line.stanza for line in changed_lines(diff) if line.stanza is not None}


def matching_pattern(line: ChangedLine, patterns: Sequence[str]) -> str | None:
    """The first regex that searches successfully in the line or one of its headers.

    Arguments:
        line: a changed line.
        patterns: regexes (``re.search`` semantics).

    Returns:
        The first matching pattern, or None.

    Raises:
        re.error: when a pattern is not a valid regex.
    """
    for pattern in patterns:
        if any(re.search(pattern, part) for part in (*line.path, line.text)):
            return pattern
    return None


def touched_tenants(diff: str, tenant_patterns: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The tenants whose stanzas a diff changes.

    Arguments:
        diff: the diff (see :func:`changed_lines`).
        tenant_patterns: operator ID → regexes for that tenant's stanzas; a tenant is
            touched when one of its regexes matches a changed line or one of its headers.

    Returns:
        The touched operator IDs, sorted.

    Raises:
        ConfigError: when a pattern is not a valid regex (``field`` names it).
    """
    compiled: dict[str, list[re.Pattern[str]]] = {}
    for tenant, patterns in tenant_patterns.items():
        for index, pattern in enumerate(patterns):
            try:
                compiled.setdefault(tenant, []).append(re.compile(pattern))
            except re.error as error:
                raise ConfigError(
                    f"{pattern!r} is not a valid regex: {error}",
                    field=f"tenant_patterns.{tenant}.{index}",
                ) from error
    # A tenant is touched when a pattern matches any part of any line: search each
    # distinct part (headers repeat across lines) once.
    parts = {part for line in changed_lines(diff) for part in (*line.path, line.text)}
    return tuple(
        sorted(
            tenant
            for tenant, regexes in compiled.items()
            if any(regex.search(part) for regex in regexes for part in parts)
        )
    )
