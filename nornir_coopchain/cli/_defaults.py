"""Write coopchain settings into an inventory's ``defaults.yaml``, keeping its comments.

The ``connection_options.coopchain.extras`` block is edited line by line when it is a plain
block mapping (the sample's form); the result is re-read and checked. Any other form is
rewritten as plain YAML (comments lost).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from nornir_coopchain.exceptions import ConfigError

__all__ = ["set_extras"]

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w-]*):(?P<rest>.*)$")
_PATH = ["connection_options", "coopchain", "extras"]


def _content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith(("#", "---"))


def _extras_block(lines: list[str]) -> tuple[int, int] | None:
    """The line index of ``extras:`` and its indentation, if it is a block mapping."""
    stack: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        match = _KEY.match(line)
        if not _content(line) or match is None:
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        if [key for _, key in stack] == _PATH:
            rest = match["rest"].split("#", 1)[0].strip()
            return (index, indent) if not rest else None
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _edited(lines: list[str], updates: dict[str, Any]) -> list[str] | None:
    found = _extras_block(lines)
    if found is None:
        return None
    start, indent = found
    children: list[int] = []
    for index in range(start + 1, len(lines)):
        if _content(lines[index]):
            if _indent(lines[index]) <= indent:
                break
            children.append(index)
    child = " " * (_indent(lines[children[0]]) if children else indent + 2)
    end = children[-1] + 1 if children else start + 1
    edited = list(lines)
    for key, value in updates.items():
        text = f"{child}{key}: {json.dumps(value)}"
        for index in range(start + 1, end):
            match = _KEY.match(edited[index])
            if match is not None and match["indent"] == child and match["key"] == key:
                edited[index] = text
                break
        else:
            edited.insert(end, text)
            end += 1
    return edited


def _extras(data: Any) -> Any:
    for key in _PATH:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def set_extras(path: Path, updates: dict[str, Any]) -> None:
    """Set keys of ``connection_options.coopchain.extras`` in ``path``.

    Raises:
        ConfigError: the file cannot be read or written, or is not a YAML mapping.
    """
    try:
        text = path.read_text()
        data = yaml.safe_load(text) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=str(path)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=str(path)) from exc
    if not isinstance(data, dict):
        raise ConfigError("not a YAML mapping", source=str(path))
    current = _extras(data)
    wanted = {**(current if isinstance(current, dict) else {}), **updates}
    lines = _edited(text.splitlines(), updates)
    new = "\n".join(lines) + "\n" if lines is not None else None
    if new is None or _extras(yaml.safe_load(new)) != wanted:
        node = data
        for key in _PATH[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[_PATH[-1]] = wanted
        new = "---\n" + yaml.safe_dump(data, sort_keys=False)
    try:
        path.write_text(new)
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror}", source=str(path)) from exc
