"""Helpers shared by the benchmark scripts (not a test module, not part of the package).

Every script prints a table for people, or with ``--json`` exactly one JSON object on stdout;
logs and progress go to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent

# Measure the package of this checkout, not whichever one an editable install points at.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

log = logging.getLogger("benchmarks")


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr only (stdout is for the table or the JSON object)."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # solc warns about OpenZeppelin's use of `at` as an identifier; not ours to fix.
    logging.getLogger("nornir_coopchain.chain.compiler").setLevel(logging.ERROR)
    logging.getLogger("nornir").setLevel(logging.WARNING)


def emit_json(payload: dict[str, Any]) -> None:
    """Print exactly one JSON object on stdout."""
    sys.stdout.write(json.dumps(payload, sort_keys=True) + "\n")
    sys.stdout.flush()


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain text table, columns right-aligned except the first."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for index, row in enumerate([headers, *rows]):
        cells = [
            str(cell).ljust(widths[i]) if i == 0 else str(cell).rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    """``yes`` / ``NO`` for a target."""
    return "yes" if ok else "NO"


# The gated flow's phases, in order; ``apply: ...`` are sub-phases of ``apply``.
PHASES = (
    "prepare",
    "build_content",
    "propose",
    "vote",
    "apply",
    "apply: preflight",
    "apply: commit+verify",
    "apply: record",
)


def phase_figures(
    wall_s: Mapping[str, float], cpu_s: Mapping[str, float], **counters: Mapping[str, float]
) -> dict[str, dict[str, float]]:
    """Per phase of ``wall_s``: its ``wall_s``, ``cpu_s`` and each named counter (0 where a
    counter has no entry for the phase), the input of :func:`phase_rows`."""
    return {
        phase: {
            "wall_s": wall_s[phase],
            "cpu_s": cpu_s[phase],
            **{name: counter.get(phase, 0) for name, counter in counters.items()},
        }
        for phase in wall_s
    }


def phase_rows(
    phases: dict[str, dict[str, float]], devices: int, extra: tuple[str, ...] = ()
) -> list[list[str]]:
    """Rows of a gated run's per-phase table, in :data:`PHASES` order.

    Each phase maps ``wall_s``, ``cpu_s``, ``chain_s``, ``rpcs`` and ``device_ops`` (and
    the ``extra`` counters) to numbers. A row is: phase, wall s, cpu s, chain s, RPCs,
    device ops, ops per device, then the ``extra`` counters; ``apply`` counts include its
    sub-phases (its wall and cpu time already do).
    """
    sub = [v for k, v in phases.items() if k.startswith("apply:")]
    counters = ("chain_s", "rpcs", "device_ops", *extra)
    rows = []
    for phase in PHASES:
        if phase not in phases:
            continue
        item = phases[phase]
        totals = {key: item.get(key, 0) for key in counters}
        if phase == "apply":
            for key in counters:
                totals[key] += sum(v.get(key, 0) for v in sub)
        label = f"  {phase}" if phase.startswith("apply:") else phase
        rows.append(
            [
                label,
                f"{item['wall_s']:.2f}",
                f"{item['cpu_s']:.2f}",
                f"{totals['chain_s']:.2f}",
                f"{totals['rpcs']:g}",
                f"{totals['device_ops']:g}",
                f"{totals['device_ops'] / devices:.1f}",
                *(f"{totals[key]:g}" for key in extra),
            ]
        )
    return rows


def target_line(result: dict[str, Any], baseline: str = "ungated_s", label: str = "ungated") -> str:
    """The time target of a gated run: ``gated_s - chain_s - vote_wait_s <= 1.05 x
    result[baseline]`` (the plain run called ``label``), as one line with its verdict."""
    net = result["gated_s"] - result["chain_s"] - result["vote_wait_s"]
    limit = 1.05 * result[baseline]
    return (
        f"gated - chain - vote wait = {net:.2f} s vs 1.05 x {label} = {limit:.2f} s "
        f"(ratio {net / result[baseline]:.2f}): {verdict(net <= limit)}"
    )


def report(as_json: bool, payload: dict[str, Any], text: Callable[[], str]) -> None:
    """The end of a script: with ``--json`` the payload as one JSON object on stdout, else
    ``text()`` (the tables) and what the numbers were measured on."""
    if as_json:
        emit_json(payload)
        return
    info = machine()
    print(text())
    print(f"\nmachine: {info['nproc']} x {info['cpu']}, python {info['python']}, {info['date']}")
