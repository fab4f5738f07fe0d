"""The commands' Nornir: from an inventory folder or from a Nornir config file.

A folder holds SimpleInventory's ``hosts.yaml``, ``groups.yaml`` and ``defaults.yaml`` (the
sample layout; Nornir logging off and its failed-task tracebacks silenced: the CLI reports
failures itself). A file is a Nornir ``config.yaml`` given to ``InitNornir`` as is: any
inventory plugin, its runner, and Nornir's own logging settings. SimpleInventory files are
checked first, so that a malformed one is a :class:`~nornir_coopchain.exceptions.ConfigError`
naming the file and line, not a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from nornir_coopchain.exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from nornir.core import Nornir

__all__ = ["check_inventory_file", "check_inventory_folder", "load_nornir"]

_FILE_OPTIONS = {"hosts": "host_file", "groups": "group_file", "defaults": "defaults_file"}
_SIMPLE = ("SimpleInventory", "nornir.plugins.inventory.simple.SimpleInventory")
_MAPPINGS = ("data", "connection_options")
_QUIET = logging.NullHandler()


def load_nornir(inventory: Path) -> Nornir:
    """A Nornir over an inventory folder, or from a Nornir config file.

    Raises:
        ConfigError: a file is missing or malformed (naming the file and, where YAML tells
            it, the line).
    """
    from nornir import InitNornir

    _quiet_nornir(inventory.is_dir())
    if inventory.is_dir():
        files = check_inventory_folder(inventory)
        options = {_FILE_OPTIONS[kind]: str(path) for kind, path in files.items()}
        return InitNornir(
            runner={"plugin": "threaded", "options": {"num_workers": 10}},
            inventory={"plugin": "SimpleInventory", "options": options},
            logging={"enabled": False},
        )
    config = _read(inventory, yaml.safe_load)
    if not isinstance(config, dict):
        raise ConfigError("must be a mapping (a Nornir config file)", source=str(inventory))
    _check_simple_inventory(config.get("inventory"), inventory)
    try:
        return InitNornir(config_file=str(inventory))
    except yaml.YAMLError as exc:  # a file the inventory plugin reads
        raise ConfigError(f"not valid YAML: {exc}", source=str(inventory)) from exc


def _quiet_nornir(quiet: bool) -> None:
    """Silence the ``nornir`` logger (its failed-task tracebacks), or leave it to Nornir's
    logging settings (a handler of ours would stop Nornir from adding its own)."""
    logger = logging.getLogger("nornir")
    if quiet and _QUIET not in logger.handlers:
        logger.addHandler(_QUIET)
        logger.propagate = False
    elif not quiet and _QUIET in logger.handlers:
        logger.removeHandler(_QUIET)
        logger.propagate = True


def check_inventory_folder(inventory: Path) -> dict[str, Path]:
    """Check an inventory folder's three files (:func:`check_inventory_file`).

    Returns:
        The files by kind (``hosts``, ``groups``, ``defaults``).

    Raises:
        ConfigError: a file is missing or malformed.
    """
    files = {kind: inventory / f"{kind}.yaml" for kind in _FILE_OPTIONS}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise ConfigError(
            "inventory file not found (pass --inventory, or -c with a Nornir config file)",
            source=", ".join(missing),
        )
    for kind, path in files.items():
        check_inventory_file(path, kind)
    return files


def _check_simple_inventory(section: object, config: Path) -> None:
    """Check the files a config's SimpleInventory reads (Nornir's defaults when not named)."""
    section = section if isinstance(section, dict) else {}
    if section.get("plugin", "SimpleInventory") not in _SIMPLE:
        return
    options = section.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError("must be a mapping", source=str(config), field="inventory.options")
    for kind, key in _FILE_OPTIONS.items():
        path = Path(str(options.get(key, f"{kind}.yaml")))
        if path.is_file():
            check_inventory_file(path, kind)
        elif kind == "hosts":
            raise ConfigError("inventory file not found", source=str(path), field=key)


def check_inventory_file(path: Path, kind: str) -> None:
    """Check that a SimpleInventory file is YAML of the shape Nornir reads.

    Arguments:
        path: the file.
        kind: ``hosts``, ``groups`` or ``defaults``.

    Raises:
        ConfigError: naming the file and line: not YAML, not a mapping, an entry that is not
            a mapping, ``groups`` that is not a list of names, ``data`` or
            ``connection_options`` that is not a mapping.
    """
    node = _read(path, yaml.compose)
    if node is None:
        if kind == "groups":
            return
        raise ConfigError("is empty: a mapping is expected", source=str(path))
    _need_mapping(node, path, None, f"a mapping of {kind}" if kind != "defaults" else "a mapping")
    entries = [(None, node)] if kind == "defaults" else list(node.value)
    for key, entry in entries:
        name = None if key is None else str(key.value)
        if name is not None:
            _need_mapping(entry, path, name, "a mapping (hostname, platform, groups, data, ...)")
        _check_entry(entry, path, name)


def _check_entry(entry: yaml.Node, path: Path, name: str | None) -> None:
    for key, value in entry.value:
        field = f"{name}.{key.value}" if name else str(key.value)
        if key.value == "groups" and not _is_null(value):
            names = isinstance(value, yaml.SequenceNode) and all(
                isinstance(item, yaml.ScalarNode) for item in value.value
            )
            if not names:
                kind = "a string" if isinstance(value, yaml.ScalarNode) else "not a list"
                raise ConfigError(
                    f"must be a list of group names ({kind}); e.g. groups: [site17]",
                    source=_at(path, value.start_mark),
                    field=field,
                )
        if key.value in _MAPPINGS and not _is_null(value):
            _need_mapping(value, path, field, "a mapping")


def _need_mapping(node: yaml.Node, path: Path, field: str | None, what: str) -> None:
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"must be {what}", source=_at(path, node.start_mark), field=field)


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _at(path: Path, mark: Any) -> str:
    """``file:line`` (1-based) where YAML gives a line."""
    return f"{path}:{mark.line + 1}" if mark is not None else str(path)


def _read(path: Path, parse: Callable[[str], Any]) -> Any:
    """``parse`` (``yaml.safe_load`` or ``yaml.compose``) of the file's text.

    Raises:
        ConfigError: the file cannot be read or is not YAML, naming it and the line.
    """
    try:
        return parse(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=str(path)) from exc
    except yaml.MarkedYAMLError as exc:
        where = _at(path, exc.problem_mark or exc.context_mark)
        raise ConfigError(f"not valid YAML: {exc.problem or exc.context}", source=where) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=str(path)) from exc
