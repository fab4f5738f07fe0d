#!/usr/bin/env python3
"""The same change on the FRR lab's routers over SSH, ungated (plain nornir_napalm) vs gated.

Brings up a lab of ``--routers`` FRRouting routers in network namespaces
(:mod:`nornir_coopchain.lab`, needs root), reached over SSH by the ``napalm_frr`` driver,
and ALWAYS removes it again (also on an error, Ctrl-C or SIGTERM). The sample site is
deployed with the chain's DEV keys (``deploy_with_dev_keys``, ``sample_operators``); the
routers are built out with OPERATOR-A and OPERATOR-B; the change turns up OPERATOR-C on
every router, as in ``scale.py`` (whose ``Bench`` runs both sides here):

* ungated: ``coopchain_render`` then ``napalm_configure(replace=True)`` per host;
* gated: ``prepare_change`` -> ``build_content`` -> ``propose_change`` -> the other two
  operators' PolicyVoters vote at once (``poll_once``) -> ``wait_for_verdict`` ->
  ``apply_change`` (preflight, commit-confirm, read-back verify, ONE record on chain).

Before each side every router is reset to the built-out site with a plain replace and the
SSH sessions are closed, so both sides start from the same running config and open their
own sessions. ``--repeat K`` runs both sides K times (alternating) and reports medians.

Measured as in ``scale.py``: ``chain_s`` (wall time with a chain call of the gated run in
flight, the vote phase excluded), ``vote_wait_s`` (the vote phase), ``chain_txs``; device
operations are NAPALM driver calls (the outermost ones) and, apart, the SSH commands they
ran. Target: ``gated_s - chain_s - vote_wait_s <= 1.05 * ungated_s``. With ``--reviewed``
also scale.py's third side, plain nornir_napalm with the gated flow's device safeguards
(back-up, dry-run, base re-check, commit-confirm, read-back, confirm; ``Bench.
ungated_reviewed``), so that the gate's own price shows apart from the safeguards'.

Only loopback (the chain) and the management addresses of the live ``lab.json`` are ever
contacted; any other host in the lab's inventory stops the run before a connection.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlparse

from _common import (
    PHASES,
    REPO,
    log,
    phase_figures,
    phase_rows,
    report,
    setup_logging,
    table,
    target_line,
)
from scale import Bench, Probes, install_phase_timers, make_nornir

from napalm_coopchain_sim.options import TIMED_METHODS
from napalm_frr import FRRDriver
from napalm_frr.remote import Remote
from nornir_coopchain import session as sessions
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.devchain import AnvilProcess, start_anvil
from nornir_coopchain.demo import deploy_with_dev_keys, sample_operators
from nornir_coopchain.exceptions import ChainError, ConfigError
from nornir_coopchain.lab import LabInfo, check_prerequisites, lab_down, lab_up, load_info

SITE_INVENTORY = REPO / "inventory"
NEW_TENANT = "OPERATOR-C"
TEARDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


# ----------------------------------------------------------------------------- probes


class LabProbes(Probes):
    """``scale.Probes`` with the FRR driver's operations and SSH commands as device work."""

    def __init__(self) -> None:
        super().__init__()
        self.ssh_cmds: Counter[str] = Counter()
        # Per side ("setup", "ungated", "gated") and NAPALM method, over all the runs.
        self.op_calls: Counter[tuple[str, str]] = Counter()
        self.op_s: dict[tuple[str, str], float] = defaultdict(float)
        self._depth = threading.local()

    def reset(self) -> None:
        super().reset()
        self.ssh_cmds.clear()

    def _count(self, counter: Counter[str]) -> None:
        with self._lock:
            counter[self.phase] += 1

    def _operation(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def counted(driver: FRRDriver, *args: Any, **kwargs: Any) -> Any:
            depth = getattr(self._depth, "n", 0)
            if depth:  # commit_config calls has_pending_commit: one operation
                return fn(driver, *args, **kwargs)
            self._depth.n = 1
            started = time.perf_counter()
            try:
                return fn(driver, *args, **kwargs)
            finally:
                self._depth.n = 0
                with self._lock:
                    self.device_ops[self.phase] += 1
                    side = "gated" if self.phase in PHASES else self.phase
                    self.op_calls[side, fn.__name__] += 1
                    self.op_s[side, fn.__name__] += time.perf_counter() - started

        return counted

    def install_frr(self) -> None:
        """Count NAPALM calls on the FRR driver and the SSH commands (exec channels)."""
        for name in TIMED_METHODS:
            setattr(FRRDriver, name, self._operation(getattr(FRRDriver, name)))
        run = Remote.run

        def counted_run(remote: Remote, *args: Any, **kwargs: Any) -> Any:
            self._count(self.ssh_cmds)
            return run(remote, *args, **kwargs)

        Remote.run = counted_run  # type: ignore[method-assign]

    def snapshot(self) -> dict[str, dict[str, float]]:
        """Every phase's wall, cpu and chain seconds, RPCs, device ops and SSH commands."""
        return phase_figures(
            self.wall_s,
            self.cpu_s,
            chain_s=self.chain_s,
            rpcs=self.rpcs,
            device_ops=self.device_ops,
            ssh_cmds=self.ssh_cmds,
        )


# ----------------------------------------------------------------------------- the lab


@contextmanager
def frr_lab(routers: int) -> Iterator[LabInfo]:
    """A fresh lab of ``routers`` FRR routers under /tmp, removed whatever happens."""
    try:
        check_prerequisites()
    except ConfigError as e:
        raise SystemExit(f"lab.py: {e}") from e
    # FRR's daemons run as user frr: the lab must sit below directories others may enter.
    base = Path(tempfile.mkdtemp(prefix="cclab-bench-", dir="/tmp"))
    base.chmod(0o755)
    root = base / "lab"
    try:
        started = time.perf_counter()
        lab_up(routers, root)
        info = load_info(root)  # the live lab.json, not what lab_up returned
        if info is None:
            raise SystemExit(f"lab.py: no lab.json in {root} after lab up")
        log.info("lab %s up in %.1f s", info.lab_id, time.perf_counter() - started)
        yield info
    finally:
        # A second Ctrl-C or SIGTERM must not cut the tear-down short.
        held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in TEARDOWN_SIGNALS}
        try:
            lab_down(root)
            shutil.rmtree(base, ignore_errors=True)
            log.info("lab removed")
        finally:
            for sig, handler in held.items():
                signal.signal(sig, handler)


def check_addresses(bench: LabBench, lab: LabInfo) -> None:
    """Stop unless every host is a management address of the live lab.json and the chain
    is in this process or on loopback."""
    allowed = {router.mgmt_address for router in lab.routers}
    for host in bench.nr.inventory.hosts.values():
        address = host.get_connection_parameters("napalm").hostname  # what napalm dials
        if address not in allowed:
            raise SystemExit(
                f"lab.py: host {host.name} has address {address!r}, not one of the lab's "
                f"management addresses {sorted(allowed)}: refusing to connect"
            )
    url = urlparse(bench.client.url)
    if url.scheme != "embedded" and not ipaddress.ip_address(url.hostname or "").is_loopback:
        raise SystemExit(f"lab.py: chain {bench.client.url} is not on loopback")


class LabBench(Bench):
    """``scale.Bench`` on the lab: its inventory, the sample site deployed with DEV keys.

    Uses Bench's ``reset_devices``, ``ungated``, ``gated`` and ``nonces`` as they are; only
    the set-up differs (no simulated inventory, ``sample_operators`` for the operators).
    """

    def __init__(self, args: argparse.Namespace, lab: LabInfo, tmp: Path, client: ChainClient):
        self.args = args
        self.tmp = tmp
        self.client = client
        self.templates = REPO / "templates"
        self.coop = deploy_with_dev_keys(client, SITE_INVENTORY)
        self.owner, voters = sample_operators(client, self.coop.address, SITE_INVENTORY, tmp)
        self.voters = list(voters.values())
        self.nr = make_nornir(lab.inventory, args.workers, self.owner.settings)
        tenants = self.nr.inventory.groups["site17"].data["tenants"]
        self.before = {op: data for op, data in tenants.items() if op != NEW_TENANT}
        self.content_bytes = 0
        self.propose_gas = 0


# ----------------------------------------------------------------------------- runs


def _sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through frr_lab's finally: the lab goes down


def plain_sides(bench: LabBench, reviewed: bool) -> list[tuple[str, Callable[[], float]]]:
    """The runs without a chain: (side, run) pairs; each run returns its wall seconds."""
    sides = [("ungated", bench.ungated)]
    if reviewed:
        sides.append(("ungated_reviewed", bench.ungated_reviewed))
    return sides


def run_once(
    bench: LabBench, probes: LabProbes, reviewed: bool
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Every side once, each from the built-out site: the result and the per-phase figures
    (a plain side is one phase named after it)."""
    result: dict[str, float] = {}
    phases: dict[str, dict[str, float]] = {}
    for side, run in plain_sides(bench, reviewed):
        bench.reset_devices()
        probes.reset()
        with probes.in_phase(side):
            result[f"{side}_s"] = run()
        phases[side] = probes.snapshot()[side]
    bench.reset_devices()
    try:
        result["gated_s"], result["chain_txs"] = bench.gated(probes)
    except ChainError as exc:
        raise SystemExit(
            f"the gated run failed in phase {probes.failed_in}: {exc} ({type(exc).__name__})"
        ) from exc
    gated = probes.snapshot()
    result["chain_s"] = sum(p["chain_s"] for name, p in gated.items() if name != "vote")
    result["vote_wait_s"] = gated["vote"]["wall_s"]
    return result, {**phases, **gated}


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def operations(probes: LabProbes, repeat: int) -> dict[str, dict[str, float]]:
    """Per NAPALM method and side: calls per run and mean seconds per call."""
    out: dict[str, dict[str, float]] = {}
    for side in {side for side, _ in probes.op_calls} - {"setup"}:
        for method in TIMED_METHODS:
            calls = probes.op_calls[side, method]
            if calls:
                out.setdefault(method, {})[f"{side}_calls"] = calls / repeat
                out[method][f"{side}_mean_s"] = probes.op_s[side, method] / calls
    return {method: out[method] for method in TIMED_METHODS if method in out}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    probes = LabProbes()
    probes.install_frr()
    anvil: AnvilProcess | None = None
    try:
        with frr_lab(args.routers) as lab, tempfile.TemporaryDirectory(prefix="cc-bench-") as tmp:
            if args.chain == "anvil":
                anvil = start_anvil()
            url = anvil.url if anvil is not None else "embedded://"
            with ChainClient.connect(url, receipt_timeout=60) as client:
                bench = LabBench(args, lab, Path(tmp), client)
                runs = []
                try:
                    check_addresses(bench, lab)
                    probes.install(client)
                    install_phase_timers(probes, bench.owner)
                    for index in range(args.repeat):
                        runs.append(run_once(bench, probes, args.reviewed))
                        log.info(
                            "run %d/%d: %s",
                            index + 1,
                            args.repeat,
                            ", ".join(f"{k} {v:g}" for k, v in sorted(runs[-1][0].items())),
                        )
                finally:
                    bench.nr.close_connections()
                    sessions.forget_all()
                proposal = {"content_bytes": bench.content_bytes, "propose_gas": bench.propose_gas}
    finally:
        if anvil is not None:
            anvil.stop()
    keys = list(runs[0][0])
    result: dict[str, Any] = {k: round(_median([r[k] for r, _ in runs]), 3) for k in keys}
    result["chain_txs"] = int(result["chain_txs"])
    result.update(
        devices=args.routers,
        chain=args.chain,
        repeat=args.repeat,
        gated_verified=True,  # Bench.gated stops the run unless every router verified
        runs={k: [round(r[k], 3) for r, _ in runs] for k in keys},
    )
    phases = {
        phase: {key: _median([p[phase][key] for _, p in runs]) for key in figures}
        for phase, figures in runs[0][1].items()
    }
    return {
        "result": result,
        "lab_id": lab.lab_id,
        "phases": phases,
        "operations": operations(probes, args.repeat),
        "proposal": proposal,
    }


# ----------------------------------------------------------------------------- report

SIDE_LABELS = {
    "ungated": "ungated (napalm_configure)",
    "ungated_reviewed": "ungated, reviewed (same safeguards)",
}


def _side_row(label: str, seconds: float, figures: dict[str, float], n: int) -> list[str]:
    ops = figures["device_ops"]
    return [label, f"{seconds:.2f}", f"{figures['cpu_s']:.2f}", "-", "0", f"{ops:g}",
            f"{ops / n:.1f}", f"{figures['ssh_cmds']:g}"]  # fmt: skip


def render(measured: dict[str, Any], args: argparse.Namespace) -> str:
    result, phases = measured["result"], measured["phases"]
    n = result["devices"]
    sides = [side for side in SIDE_LABELS if f"{side}_s" in result]
    spread = ", ".join(
        f"{key} {min(values):.2f}-{max(values):.2f}"
        for key, values in result["runs"].items()
        if key != "chain_txs"
    )
    headers = ["side / phase", "wall s", "cpu s", "chain s", "RPCs", "device ops",
               "ops/device", "ssh cmds"]  # fmt: skip
    rows = [_side_row(SIDE_LABELS[s], result[f"{s}_s"], phases[s], n) for s in sides]
    rows.append(
        ["gated (whole run)", f"{result['gated_s']:.2f}", "", f"{result['chain_s']:.2f}"] + [""] * 4
    )
    operations = measured["operations"]
    op_sides = [*sides, "gated"]
    out = [
        f"{n} FRR routers (lab {measured['lab_id']}: network namespaces, SSH, napalm_frr), "
        f"{args.workers} Nornir workers, chain {args.chain}; median of {args.repeat} run(s)",
        "",
        table(headers, [*rows, *phase_rows(phases, n, extra=("ssh_cmds",))]),
        "",
        target_line(result),
    ]
    if "ungated_reviewed_s" in result:
        out.append(target_line(result, "ungated_reviewed_s", "ungated reviewed"))
    out += [
        f"chain transactions during the change: {result['chain_txs']} "
        "(propose + votes + claim + record)",
        f"proposal content {measured['proposal']['content_bytes']:,} bytes of calldata, "
        f"propose gas {measured['proposal']['propose_gas']:,}",
        f"range over the runs: {spread}",
        "",
        "NAPALM calls per run (all routers) and mean seconds per call:",
        table(
            [
                "method",
                *(
                    f"{side.removeprefix('ungated_')} {what}"
                    for side in op_sides
                    for what in ("calls", "s/call")
                ),
            ],
            [
                [
                    method,
                    *(
                        cell
                        for side in op_sides
                        for cell in (
                            (f"{row[side + '_calls']:g}", f"{row[side + '_mean_s']:.2f}")
                            if side + "_calls" in row
                            else ("0", "-")
                        )
                    ),
                ]
                for method, row in operations.items()
            ],
        ),
        "",
        "device ops = NAPALM calls on the FRR driver; ssh cmds = the commands they ran (one "
        "SSH exec channel each); chain s = wall time with a chain call in flight; vote is "
        "counted whole in vote_wait_s, not in chain_s",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="One change on the FRR lab's routers over SSH: plain napalm_configure vs "
        "the gated flow (needs root; brings the lab up and always down again).",
    )
    parser.add_argument("--routers", type=int, default=4, help="lab routers, 1..9 (4)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side (3); medians")
    parser.add_argument("--workers", type=int, default=10, help="Nornir num_workers (10)")
    parser.add_argument("--chain", choices=["embedded", "anvil"], default="embedded")
    parser.add_argument(
        "--reviewed",
        action="store_true",
        help="also run plain nornir_napalm with the gated flow's device safeguards "
        "(scale.py's 'ungated, reviewed'; ungated_reviewed_s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    args = parser.parse_args(argv)
    if not 1 <= args.routers <= 9 or args.repeat < 1 or args.workers < 1:
        parser.error("--routers must be 1..9, --repeat and --workers >= 1")
    args.devices = args.routers  # what scale.Bench calls them
    setup_logging(args.verbose)
    logging.getLogger("paramiko").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)
    measured = measure(args)
    report(args.json, measured["result"], lambda: render(measured, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
