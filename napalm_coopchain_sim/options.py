"""The ``optional_args`` of the SIMULATED driver, parsed and checked once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = ["TIMED_METHODS", "SimOptions"]

TIMED_METHODS: Final = (
    "open",
    "load_replace_candidate",
    "load_merge_candidate",
    "compare_config",
    "discard_config",
    "commit_config",
    "has_pending_commit",
    "confirm_commit",
    "rollback",
    "get_config",
    "get_facts",
)
"""The NAPALM calls a change makes on a device, in flow order: those ``method_latency`` may
time (``benchmarks/lab.py`` counts the same calls on the FRR driver)."""


def _flag(args: dict[str, Any], key: str, default: bool) -> bool:
    value = args.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"optional_args[{key!r}] must be a bool, got {value!r}")
    return value


def _seconds(value: Any, key: str) -> float:
    """``value`` as seconds >= 0; ``key`` names it, e.g. ``['latency']``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"optional_args{key} must be seconds >= 0, got {value!r}")
    return float(value)


def _method_latency(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"optional_args['method_latency'] must be a mapping, got {value!r}")
    checked = {}
    for method, seconds in value.items():
        if method not in TIMED_METHODS:
            known = ", ".join(TIMED_METHODS)
            raise ValueError(f"optional_args['method_latency']: {method!r} is not one of {known}")
        checked[method] = _seconds(seconds, f"['method_latency'][{method!r}]")
    return checked


@dataclass(frozen=True)
class SimOptions:
    """What one simulated device does; see ``CoopchainSimDriver`` for each field's meaning.

    Keys the simulator does not know (e.g. ``port`` and ``ssh_config_file``, which
    nornir_napalm adds) are ignored, as real drivers ignore options meant for others.
    """

    state_dir: Path | None = None
    initial_config: str = ""
    latency: float = 0.0
    method_latency: dict[str, float] = field(default_factory=dict)
    unreachable: bool = False
    commit_drops: tuple[re.Pattern[str], ...] = ()
    commit_error: bool = False
    supports_commit_confirm: bool = True
    commit_checks_base: bool = True

    @classmethod
    def parse(cls, optional_args: dict[str, Any] | None) -> SimOptions:
        """Build options from a driver's ``optional_args``.

        Raises:
            ValueError: when a known key has a value of the wrong type or range, or a
                ``commit_drops`` entry is not a valid regular expression.
        """
        args = optional_args or {}
        state_dir = args.get("state_dir")
        if state_dir is not None and not isinstance(state_dir, str | Path):
            raise ValueError(f"optional_args['state_dir'] must be a path, got {state_dir!r}")
        initial = args.get("initial_config", "")
        if not isinstance(initial, str):
            raise ValueError(f"optional_args['initial_config'] must be text, got {initial!r}")
        latency = _seconds(args.get("latency", 0.0), "['latency']")
        method_latency = _method_latency(args.get("method_latency", {}))
        drops = args.get("commit_drops", ())
        if isinstance(drops, str) or not all(isinstance(d, str) for d in drops):
            raise ValueError(f"optional_args['commit_drops'] must be a list of regexes: {drops!r}")
        try:
            patterns = tuple(re.compile(d) for d in drops)
        except re.error as e:
            raise ValueError(f"optional_args['commit_drops']: bad regex: {e}") from e
        return cls(
            state_dir=Path(state_dir) if state_dir is not None else None,
            initial_config=initial,
            latency=latency,
            method_latency=method_latency,
            unreachable=_flag(args, "unreachable", False),
            commit_drops=patterns,
            commit_error=_flag(args, "commit_error", False),
            supports_commit_confirm=_flag(args, "supports_commit_confirm", True),
            commit_checks_base=_flag(args, "commit_checks_base", True),
        )
