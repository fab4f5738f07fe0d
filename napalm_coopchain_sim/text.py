"""Config-text helpers of the SIMULATED driver: merge, diff, commit drops, facts parsing.

The config model is deliberately simple: text lines, where an indented line belongs to the
nearest unindented line above it (one level of hierarchy, Cisco/FRR style).
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "apply_drops",
    "diff_configs",
    "hostname_of",
    "interfaces_of",
    "merge_configs",
    "sanitize",
]

_HOSTNAME = re.compile(r"^hostname\s+(\S+)", re.MULTILINE)
_INTERFACE = re.compile(r"^interface\s+(\S+)", re.MULTILINE)
_SECRET = re.compile(r"^(.*\b(?:password|secret)\s+(?:\d\s+)?)\S+", re.MULTILINE)


def _join(lines: Sequence[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def _is_child(line: str) -> bool:
    return line[:1].isspace()


def _block_end(lines: Sequence[str], parent: int) -> int:
    end = parent + 1
    while end < len(lines) and _is_child(lines[end]):
        end += 1
    return end


def merge_configs(running: str, merge: str) -> str:
    """Merge config text into running config text, line by line.

    The simplification: a top-level line of ``merge`` already in ``running`` is kept where it
    is, a new one is appended at the end; an indented line is added to the end of its parent's
    block unless that block already holds it. Nothing is ever removed or reordered (``no ...``
    lines are added as text, not interpreted).

    Arguments:
        running: the running config.
        merge: the config to merge in.

    Returns:
        The merged config text (ending with a newline unless empty).
    """
    out = [line.rstrip() for line in running.splitlines()]
    parent: str | None = None
    for raw in merge.splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        if _is_child(line) and parent is not None:
            start = max(i for i, existing in enumerate(out) if existing == parent)
            end = _block_end(out, start)
            if line not in out[start + 1 : end]:
                out.insert(end, line)
            continue
        if not _is_child(line):
            parent = line
        if line not in out:
            out.append(line)
    return _join(out)


def diff_configs(running: str, candidate: str) -> str:
    """Unified diff from running to candidate (``--- running`` / ``+++ candidate``).

    Returns:
        The diff, newline-terminated, or ``""`` when the two have the same lines.
    """
    lines = difflib.unified_diff(
        running.splitlines(), candidate.splitlines(), "running", "candidate", lineterm=""
    )
    return _join(list(lines))


def apply_drops(config: str, drops: Sequence[re.Pattern[str]]) -> str:
    """Remove the lines matching any of ``drops`` (``re.search``): a change that did not take.

    Returns:
        ``config`` without the matching lines.
    """
    if not drops:
        return config
    kept = [line for line in config.splitlines() if not any(d.search(line) for d in drops)]
    return _join(kept)


def hostname_of(config: str) -> str | None:
    """Returns the name on the first ``hostname X`` line, if any."""
    match = _HOSTNAME.search(config)
    return match.group(1) if match else None


def interfaces_of(config: str) -> list[str]:
    """Returns the names on ``interface X`` lines, in config order, without repeats."""
    return list(dict.fromkeys(_INTERFACE.findall(config)))


def sanitize(config: str) -> str:
    """Returns ``config`` with the value after ``password``/``secret`` replaced."""
    return _SECRET.sub(r"\1<removed>", config)
