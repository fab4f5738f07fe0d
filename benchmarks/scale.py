#!/usr/bin/env python3
"""The same change on N SIMULATED devices, ungated (plain nornir_napalm) vs our gated flow.

A temporary inventory holds N hosts of the ``coopchain_sim`` platform (the FRR template and
the sample site's group data, every device in this process's memory, ``--latency`` seconds
slept by the simulator at each device operation, or with ``--latency-profile frr-lab`` each
NAPALM method's cost as measured on the FRR lab). The devices are built out with
OPERATOR-A and OPERATOR-B; the change turns up OPERATOR-C on every device:

* ungated: ``coopchain_render`` then ``napalm_configure(replace=True)`` per host;
* ungated, reviewed: plain nornir_napalm doing the gated flow's device safeguards without a
  chain (render, back up and dry-run every host; re-check every base; then commit-confirm,
  read back and confirm), so that the gate's own price shows apart from the safeguards';
* gated: ``prepare_change`` -> ``build_content`` -> ``propose_change`` -> the other two
  operators' PolicyVoters vote at once (``poll_once``) -> ``wait_for_verdict`` ->
  ``apply_change`` (preflight, commit-confirm, read-back verify, ONE record on chain).

Both sides use the same Nornir (threaded runner, ``--workers``), start from the same
built-out devices with their connections closed, and on the embedded chain (default) or a
fresh anvil (``--chain anvil``).

Measured:

* ``chain_s``: wall time during which at least one chain call of the proposer's run was in
  flight (a timing proxy on the ChainClient's methods and on web3's request manager; the
  union of intervals, so concurrent calls from the Nornir threads are not counted twice),
  the vote phase excluded;
* ``vote_wait_s``: the whole vote phase (both voters' ``poll_once``, which read and check
  the content and vote, then ``wait_for_verdict``);
* ``chain_txs``: transactions the proposer and the two voters sent during the change
  (their account nonces after minus before).

Target: ``gated_s - chain_s - vote_wait_s <= 1.05 * ungated_s`` and ``chain_txs`` the same
for every N; the same net figure is also printed against ``ungated_reviewed_s`` (in the
JSON besides the issue's keys). The table also splits the gated run by phase, with its
device operations (simulator calls that sleep ``latency``) and its chain RPCs.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import yaml
from _common import (
    REPO,
    emit_json,
    log,
    machine,
    phase_figures,
    phase_rows,
    setup_logging,
    table,
    target_line,
)
from nornir import InitNornir
from nornir.core import Nornir
from nornir.core.inventory import ConnectionOptions
from nornir.core.task import Result, Task
from nornir_napalm.plugins.tasks import napalm_configure, napalm_confirm_commit, napalm_get

from napalm_coopchain_sim.driver import CoopchainSimDriver
from nornir_coopchain import session as sessions
from nornir_coopchain.chain.accounts import dev_accounts
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.deployment import DeploymentSpec
from nornir_coopchain.chain.devchain import AnvilProcess, start_anvil
from nornir_coopchain.demo import build_out
from nornir_coopchain.exceptions import ChainError
from nornir_coopchain.gate import (
    apply_change,
    build_content,
    prepare_change,
    propose_change,
    wait_for_verdict,
)
from nornir_coopchain.gate.propose import describe, failed_hosts
from nornir_coopchain.model.content import ChangeWindow
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.plugins.tasks import coopchain_render
from nornir_coopchain.session import CoopchainSession, open_session
from nornir_coopchain.settings import CONNECTION_NAME, CoopchainSettings
from nornir_coopchain.voter.policy import VoterPolicy
from nornir_coopchain.voter.watch import PolicyVoter

SITE = "TOWER-017"
BIG_BLOCK_GAS = 1_000_000_000
NEW_TENANT = "OPERATOR-C"
CLIENT_METHODS = (
    "call",
    "transact",
    "send_transaction",
    "wait_for_receipt",
    "now",
    "block_number",
    "get_logs",
    "estimate_gas",
    "fee_fields",
)


# ----------------------------------------------------------------------------- probes


class Probes:
    """Per-phase wall time of chain calls (union of intervals), RPCs and device operations."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._since = 0.0
        self.phase = "setup"
        self.chain_s: dict[str, float] = defaultdict(float)
        self.rpcs: Counter[str] = Counter()
        self.device_ops: Counter[str] = Counter()
        self.wall_s: dict[str, float] = defaultdict(float)
        self.cpu_s: dict[str, float] = defaultdict(float)
        self.failed_in: str | None = None

    def reset(self) -> None:
        with self._lock:
            self.chain_s.clear()
            self.rpcs.clear()
            self.device_ops.clear()
            self.wall_s.clear()
            self.cpu_s.clear()
            self.phase = "setup"

    def _enter(self) -> None:
        with self._lock:
            if self._active == 0:
                self._since = time.perf_counter()
            self._active += 1

    def _exit(self) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0:
                self.chain_s[self.phase] += time.perf_counter() - self._since

    def timed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self._enter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._exit()

        return wrapper

    def rpc(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        timed = self.timed(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.rpcs[self.phase] += 1
            return timed(*args, **kwargs)

        return wrapper

    def install(self, client: ChainClient) -> None:
        """Wrap the shared client's methods and web3's request manager (instance attributes)."""
        for name in CLIENT_METHODS:
            setattr(client, name, self.timed(getattr(client, name)))
        manager = client.w3.manager
        manager.request_blocking = self.rpc(manager.request_blocking)  # type: ignore[method-assign]

    def install_devices(self) -> None:
        """Count the simulator's device operations: the calls that sleep ``latency`` (not the
        loads, which keep the candidate in the session and sleep only in a profile)."""
        original = CoopchainSimDriver._sleep
        probes = self

        def counted(driver: CoopchainSimDriver, method: str, default: float | None = None) -> None:
            if default is None:
                with probes._lock:
                    probes.device_ops[probes.phase] += 1
            original(driver, method, default)

        CoopchainSimDriver._sleep = counted  # type: ignore[method-assign,assignment]

    @contextmanager
    def in_phase(self, name: str) -> Iterator[None]:
        previous, self.phase = self.phase, name
        started, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        except BaseException:
            self.failed_in = self.failed_in or name
            raise
        finally:
            self.wall_s[name] += time.perf_counter() - started
            self.cpu_s[name] += time.process_time() - cpu
            self.phase = previous


# ----------------------------------------------------------------------------- the site


FRR_LAB_LATENCY: Final = {
    "open": 0.58,
    "load_replace_candidate": 0.08,
    "load_merge_candidate": 0.08,
    "compare_config": 0.30,
    "discard_config": 0.03,
    "commit_config": 0.75,
    "has_pending_commit": 0.03,
    "confirm_commit": 0.05,
    "rollback": 0.75,
    "get_config": 0.06,
    "get_facts": 0.06,
}
"""Seconds per NAPALM call of napalm_frr on the FRR lab (``lab.py``, means over its three
sides, 2026-11-25; ``rollback`` taken as a commit), for ``--latency-profile frr-lab``."""


def write_inventory(
    directory: Path, devices: int, latency: float, method_latency: dict[str, float]
) -> None:
    """N FRR hosts of the simulated platform with the sample site's groups."""
    sample = yaml.safe_load((REPO / "inventory" / "hosts.yaml").read_text())["site17-r1"]
    hosts = {}
    for index in range(devices):
        name = f"bench-r{index:04d}"
        data = dict(sample["data"])
        data["router_id"] = f"100.64.{index // 250}.{index % 250 + 1}"
        hosts[name] = {
            "hostname": name,
            "platform": "coopchain_sim",
            "groups": ["site17", "frr"],
            "data": data,
        }
    (directory / "hosts.yaml").write_text(yaml.safe_dump(hosts, sort_keys=False))
    shutil.copy(REPO / "inventory" / "groups.yaml", directory / "groups.yaml")
    defaults = {
        "connection_options": {
            "napalm": {
                "extras": {"optional_args": {"latency": latency, "method_latency": method_latency}}
            },
        }
    }
    (directory / "defaults.yaml").write_text(yaml.safe_dump(defaults))
    policies = directory / "policies"
    policies.mkdir()
    for operator in ("operator-b", "operator-c"):
        text = (REPO / "inventory" / "policies" / f"{operator}.yaml").read_text()
        # The sample policies approve routine changes of up to 10 devices; allow N here.
        text = text.replace("max_devices: 10", f"max_devices: {max(devices, 10)}")
        (policies / f"{operator}.yaml").write_text(text)


def make_nornir(inventory: Path, workers: int, settings: CoopchainSettings) -> Nornir:
    nr = InitNornir(
        runner={"plugin": "threaded", "options": {"num_workers": workers}},
        inventory={
            "plugin": "SimpleInventory",
            "options": {
                "host_file": str(inventory / "hosts.yaml"),
                "group_file": str(inventory / "groups.yaml"),
                "defaults_file": str(inventory / "defaults.yaml"),
            },
        },
        logging={"enabled": False},
    )
    defaults = nr.inventory.defaults.connection_options
    defaults[CONNECTION_NAME] = ConnectionOptions(extras=settings.model_dump(mode="json"))
    return nr


def _ungated(task: Task, templates: Path) -> Result:
    rendered = task.run(coopchain_render, path=templates).result
    task.run(napalm_configure, configuration=rendered.config, replace=True, dry_run=False)
    return Result(host=task.host)


def _running(task: Task) -> str:
    only_running = {"config": {"retrieve": "running"}}
    got = task.run(napalm_get, getters=["config"], getters_options=only_running)
    return str(got.result["config"]["running"])


def _reviewed_plan(task: Task, templates: Path) -> Result:
    """Render, back up the running config, dry-run the candidate (the diff to review)."""
    rendered = task.run(coopchain_render, path=templates).result
    base = _running(task)
    task.run(napalm_configure, configuration=rendered.config, replace=True, dry_run=True)
    return Result(host=task.host, result=(rendered.config, base))


def _reviewed_check(task: Task, plans: dict[str, tuple[str, str]]) -> Result:
    """The running config is still the reviewed base (checked on every host before any push)."""
    if _running(task) != plans[task.host.name][1]:
        raise RuntimeError(f"{task.host.name}: running config changed since the review")
    return Result(host=task.host)


def _reviewed_push(task: Task, plans: dict[str, tuple[str, str]]) -> Result:
    """Commit with commit-confirm, read back, confirm."""
    config = plans[task.host.name][0]
    task.run(napalm_configure, configuration=config, replace=True, dry_run=False, revert_in=300)
    _running(task)
    task.run(napalm_confirm_commit, dry_run=False)
    return Result(host=task.host)


class Bench:
    """The chain, the three operators and the Nornir of one benchmark run."""

    def __init__(self, args: argparse.Namespace, tmp: Path, client: ChainClient):
        self.args = args
        self.tmp = tmp
        self.client = client
        inventory = tmp / "inventory"
        inventory.mkdir()
        write_inventory(inventory, args.devices, args.latency, method_latency(args))
        self.templates = REPO / "templates"

        spec = DeploymentSpec.load(REPO / "inventory" / "deployment.yaml")
        keys = dev_accounts(client, 3)
        members = [
            m.model_copy(update={"address": k.address})
            for m, k in zip(spec.members, keys, strict=True)
        ]
        self.coop = CoopChain.deploy(client, keys[0], spec.model_copy(update={"members": members}))
        self.owner = self.session(0, "OPERATOR-A")
        self.voters = [
            PolicyVoter(
                self.session(index, operator),
                VoterPolicy.load(inventory / "policies" / f"{operator.lower()}.yaml"),
                start_block=client.block_number(),
            )
            for index, operator in ((1, "OPERATOR-B"), (2, "OPERATOR-C"))
        ]
        self.nr = make_nornir(inventory, args.workers, self.owner.settings)
        tenants = self.nr.inventory.groups["site17"].data["tenants"]
        self.before = {op: data for op, data in tenants.items() if op != NEW_TENANT}
        self.content_bytes = 0
        self.propose_gas = 0

    def session(self, index: int, operator: str) -> CoopchainSession:
        settings = CoopchainSettings(
            chain_url=self.client.url,
            contract=self.coop.address,
            dev_account=index,
            operator=operator,
            resource_set=SITE,
            state_dir=self.tmp / operator.lower(),
        )
        return open_session(settings, self.client)

    def reset_devices(self) -> None:
        """Every device back to the built-out site (A and B), connections closed."""
        build_out(self.nr, self.templates, self.before)
        self.nr.close_connections()

    def ungated(self) -> float:
        started = time.perf_counter()
        results = self.nr.run(task=_ungated, templates=self.templates, on_failed=True)
        elapsed = time.perf_counter() - started
        failed = failed_hosts(results)
        if failed:
            raise SystemExit(f"ungated run failed on {len(failed)} hosts: {_first(failed)}")
        changed = sum(1 for multi in results.values() if multi[2].changed)
        if changed != self.args.devices:
            raise SystemExit(f"ungated run changed {changed} of {self.args.devices} devices")
        return elapsed

    def ungated_reviewed(self) -> float:
        """Plain nornir_napalm with the flow's device safeguards and no chain: back up and
        dry-run every host (the review), re-check every base, then commit-confirm, read back
        and confirm."""
        started = time.perf_counter()
        planned = self.nr.run(task=_reviewed_plan, templates=self.templates, on_failed=True)
        plans = {host: multi.result for host, multi in planned.items()}
        checked = self.nr.run(task=_reviewed_check, plans=plans, on_failed=True)
        pushed = self.nr.run(task=_reviewed_push, plans=plans, on_failed=True)
        elapsed = time.perf_counter() - started
        for side in (planned, checked, pushed):
            failed = failed_hosts(side)
            if failed:
                raise SystemExit(f"reviewed ungated run failed on {len(failed)}: {_first(failed)}")
        return elapsed

    def nonces(self) -> int:
        accounts = [self.owner.account, *(voter.session.account for voter in self.voters)]
        return sum(self.client.w3.eth.get_transaction_count(a.address) for a in accounts)

    def gated(self, probes: Probes) -> tuple[float, int]:
        client, owner = self.client, self.owner
        before = self.nonces()
        probes.reset()
        started = time.perf_counter()
        with probes.in_phase("prepare"):
            prepared = prepare_change(self.nr, templates=self.templates)
        with probes.in_phase("build_content"):
            now = client.now()
            content = build_content(
                prepared,
                resource_set=SITE,
                title=f"Turn up {NEW_TENANT} on {self.args.devices} routers",
                window=ChangeWindow(start=now - 60, end=now + 3600),
                created_at=now,
                templates=self.templates,
            )
        with probes.in_phase("propose"):
            handle = propose_change(owner, content, prepared.candidates)
        with probes.in_phase("vote"):
            for voter in self.voters:
                voter.poll_once()
            state = wait_for_verdict(owner, handle.proposal_id, timeout=120, poll_interval=0.05)
        if state is not ProposalState.Approved:
            raise SystemExit(f"proposal {handle.proposal_id} was {state.name}, not Approved")
        with probes.in_phase("apply"):
            outcome = apply_change(self.nr, owner, handle.proposal_id, templates=self.templates)
        elapsed = time.perf_counter() - started
        self.content_bytes = len(content.chain_bytes())
        if handle.tx_hash is not None:
            receipt = client.w3.eth.get_transaction_receipt(handle.tx_hash)  # type: ignore[arg-type]
            self.propose_gas = int(receipt["gasUsed"])
        if outcome.state is not ProposalState.Verified:
            bad = [d for d in outcome.devices if not d.verified][:3]
            raise SystemExit(f"gated run recorded {outcome.state.name}: {bad}")
        return elapsed, self.nonces() - before


def _first(failed: dict[str, BaseException | None]) -> str:
    host, error = sorted(failed.items())[0]
    return f"{host}: {describe(error)}"


def install_phase_timers(probes: Probes, owner: CoopchainSession) -> None:
    """Time apply_change's Nornir runs and its record, as sub-phases of ``apply``."""
    original_run = Nornir.run

    def run(self: Nornir, *args: Any, **kwargs: Any) -> Any:
        name = str(kwargs.get("name") or "")
        if probes.phase != "apply" or not name.startswith("coopchain"):
            return original_run(self, *args, **kwargs)
        label = "apply: preflight" if "preflight" in name else "apply: commit+verify"
        with probes.in_phase(label):
            return original_run(self, *args, **kwargs)

    Nornir.run = run  # type: ignore[method-assign]
    record = owner.coop.record_verification

    def timed_record(*args: Any, **kwargs: Any) -> Any:
        with probes.in_phase("apply: record"):
            return record(*args, **kwargs)

    owner.coop.record_verification = timed_record  # type: ignore[method-assign]


# ----------------------------------------------------------------------------- report


def _ungated_side(
    bench: Bench, probes: Probes, run: Callable[[], float]
) -> tuple[float, float, int]:
    """One ungated side from the built-out devices: wall s, CPU s, device operations."""
    bench.reset_devices()
    probes.reset()
    cpu = time.process_time()
    elapsed = run()
    return elapsed, time.process_time() - cpu, sum(probes.device_ops.values())


def measure(args: argparse.Namespace) -> dict[str, Any]:
    probes = Probes()
    probes.install_devices()
    anvil: AnvilProcess | None = None
    url = "embedded://"
    if args.chain == "anvil":
        big = ["--gas-limit", str(BIG_BLOCK_GAS)] if args.big_blocks else []
        anvil = start_anvil(extra_args=big)
        # anvil's HTTP server refuses bodies over ~2 MB; its websocket takes them.
        url = anvil.ws_url if args.big_blocks else anvil.url
    try:
        with (
            tempfile.TemporaryDirectory(prefix="coopchain-scale-") as tmp,
            ChainClient.connect(url, receipt_timeout=120) as client,
        ):
            bench = Bench(args, Path(tmp), client)
            log.info("%d simulated devices, %s", args.devices, latency_label(args))
            ungated, ungated_cpu, ungated_ops = _ungated_side(bench, probes, bench.ungated)
            log.info("ungated: %.2f s, %d device operations", ungated, ungated_ops)
            reviewed, reviewed_cpu, reviewed_ops = _ungated_side(
                bench, probes, bench.ungated_reviewed
            )
            log.info("ungated, reviewed: %.2f s, %d device operations", reviewed, reviewed_ops)
            bench.reset_devices()
            probes.install(client)
            install_phase_timers(probes, bench.owner)
            try:
                gated, txs = bench.gated(probes)
            except ChainError as exc:
                raise SystemExit(
                    f"the gated run failed in phase {probes.failed_in}: {exc} "
                    f"({type(exc).__name__})"
                ) from exc
            log.info("gated: %.2f s, %d transactions", gated, txs)
            proposal = {"content_bytes": bench.content_bytes, "propose_gas": bench.propose_gas}
            bench.nr.close_connections()
    finally:
        sessions.forget_all()
        if anvil is not None:
            anvil.stop()
    vote_wait = probes.wall_s["vote"]
    chain = sum(s for phase, s in probes.chain_s.items() if phase != "vote")
    return {
        "result": {
            "devices": args.devices,
            "ungated_s": round(ungated, 3),
            "gated_s": round(gated, 3),
            "chain_s": round(chain, 3),
            "vote_wait_s": round(vote_wait, 3),
            "chain_txs": txs,
            "ungated_reviewed_s": round(reviewed, 3),
        },
        "ungated_ops": ungated_ops,
        "ungated_cpu": ungated_cpu,
        "reviewed_ops": reviewed_ops,
        "reviewed_cpu": reviewed_cpu,
        "proposal": proposal,
        "phases": phase_figures(
            probes.wall_s,
            probes.cpu_s,
            chain_s=probes.chain_s,
            rpcs=probes.rpcs,
            device_ops=probes.device_ops,
        ),
    }


def side_row(label: str, seconds: float, measured: dict[str, Any], key: str, n: int) -> list[str]:
    """A table row for an ungated side (``measured[key + "_cpu"]``, ``[key + "_ops"]``)."""
    ops = measured[f"{key}_ops"]
    cpu = measured[f"{key}_cpu"]
    return [label, f"{seconds:.2f}", f"{cpu:.2f}", "-", "0", str(ops), f"{ops / n:.1f}"]


def method_latency(args: argparse.Namespace) -> dict[str, float]:
    """The simulator's per-method latencies for ``--latency-profile``."""
    return dict(FRR_LAB_LATENCY) if args.latency_profile == "frr-lab" else {}


def latency_label(args: argparse.Namespace) -> str:
    if args.latency_profile == "frr-lab":
        return "latency per NAPALM method as measured on the FRR lab"
    return f"latency {args.latency:g} s per device operation"


def render(measured: dict[str, Any], args: argparse.Namespace) -> str:
    result, phases = measured["result"], measured["phases"]
    n = result["devices"]
    out = [
        f"{n} SIMULATED devices, {latency_label(args)}, "
        f"{args.workers} Nornir workers, chain {args.chain}"
        + (f" with {BIG_BLOCK_GAS:,}-gas blocks over websocket" if args.big_blocks else ""),
        "",
        table(
            ["side / phase", "wall s", "cpu s", "chain s", "RPCs", "device ops", "ops/device"],
            [
                side_row("ungated (napalm_configure)", result["ungated_s"], measured, "ungated", n),
                side_row(
                    "ungated, reviewed (same safeguards)",
                    result["ungated_reviewed_s"],
                    measured,
                    "reviewed",
                    n,
                ),
                [
                    "gated (whole run)",
                    f"{result['gated_s']:.2f}",
                    "",
                    f"{result['chain_s']:.2f}",
                    "",
                    "",
                    "",
                ],
                *phase_rows(phases, n),
            ],
        ),
        "",
        target_line(result),
        target_line(result, "ungated_reviewed_s", "ungated reviewed"),
        f"chain transactions during the change: {result['chain_txs']} "
        "(propose + votes + claim + record; compare across N)",
        f"proposal content {measured['proposal']['content_bytes']:,} bytes of calldata, "
        f"propose gas {measured['proposal']['propose_gas']:,}",
        "chain s of a phase = wall time with a chain call in flight (an upper bound while "
        "Nornir threads overlap); cpu s = this process's CPU time (at most nproc x wall); "
        "vote is counted whole in vote_wait_s, not in chain_s",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="One change on N simulated devices: plain napalm_configure vs the gated "
        "flow (embedded chain, or --chain anvil).",
    )
    parser.add_argument("--devices", type=int, default=10, help="simulated devices (10)")
    parser.add_argument(
        "--latency", type=float, default=0.05, help="seconds per device operation (0.05)"
    )
    parser.add_argument(
        "--latency-profile",
        choices=["uniform", "frr-lab"],
        default="uniform",
        help="uniform: --latency at every device operation (default); frr-lab: each NAPALM "
        "method takes what it took on the FRR lab (open 0.58 s, commit 0.75 s, "
        "compare 0.30 s, load 0.08 s, get_config 0.06 s, ...)",
    )
    parser.add_argument("--workers", type=int, default=100, help="Nornir num_workers (100)")
    parser.add_argument("--chain", choices=["embedded", "anvil"], default="embedded")
    parser.add_argument(
        "--big-blocks",
        action="store_true",
        help=f"anvil only: block gas limit {BIG_BLOCK_GAS:,} and a websocket connection, "
        "for proposals too big for default blocks (~3.2 kB of content per device)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    args = parser.parse_args(argv)
    if args.devices < 1 or args.workers < 1 or args.latency < 0:
        parser.error("--devices and --workers must be >= 1, --latency >= 0")
    if args.big_blocks and args.chain != "anvil":
        parser.error("--big-blocks needs --chain anvil")
    setup_logging(args.verbose)
    measured = measure(args)
    if args.json:
        emit_json(measured["result"])
    else:
        info = machine()
        print(render(measured, args))
        print(
            f"\nmachine: {info['nproc']} x {info['cpu']}, python {info['python']}, {info['date']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
