"""The consortium under faults: three operators as separate processes, each on its own node.

``test_soak`` runs N changes (``COOPCHAIN_SOAK_CHANGES``, default 6, stopping early after
``COOPCHAIN_SOAK_SECONDS``, default 120) through the owner's playbook while B and C vote
with ``coopchain watch``, injecting faults at random (seed printed;
``COOPCHAIN_SOAK_SEED`` replays one; ``COOPCHAIN_SOAK_CONFIRMATIONS=N`` runs it on a chain
that mines a block every 0.3 s with the operators reading N blocks deep, and adds reorgs of
up to N blocks): kill -9 of the playbook at any phase and restart,
proxy faults (latency, connection reset before or after the node acted, stall, a lagging
head) on any operator's node, a device that refuses the commit or silently reverts lines,
a voter offline for a while, a second executor racing the playbook; a change with a failing
device is also raced or killed while it pushes. Two last changes run out of time: one
approved but not applied by its window's end and record grace (Expired), one nobody votes
on by its deadline (Rejected); the clock is moved for them. It ends with the checks of
:meth:`consortium.Consortium.check` and prints the figures as JSON (also kept in
``artifacts/soak.json``).
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest
from chain_faults import rollback
from consortium import Consortium
from rpc_proxy import RpcProxy

from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.devchain import AnvilProcess, DevChain
from nornir_coopchain.exceptions import ChainConnectionError
from nornir_coopchain.journal import Journal
from nornir_coopchain.model.rules import ProposalState

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
HOSTS = ("site17-r1", "site17-r2", "site17-r3", "site17-r4")
PROXY_FAULTS = ("latency", "reset", "reset_after", "stall", "lag")
MAX_RESTARTS = 12  # per change
KILL_PHASES = ("any", "proposing", "proposed", "applying", "verified")  # journal phases
CHANGE_TIMEOUT = 600.0  # seconds per change, however many restarts


def _env(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@pytest.mark.anvil
def test_proxy_resets_stalls_and_serves_a_lagging_head(anvil: AnvilProcess) -> None:
    proxy = RpcProxy(anvil.url)
    try:
        with ChainClient.connect(anvil.url) as direct, ChainClient.connect(proxy.url) as own:
            DevChain(direct).mine(3)
            head = direct.block_number()
            proxy.lag = 2
            assert own.block_number() == head - 2
            assert own.now() == direct.block_timestamp(head - 2)  # "latest" is behind too
            proxy.clear()
            proxy.drop = 1.0
            with pytest.raises(ChainConnectionError):
                own.block_number()
            proxy.clear()
            proxy.stall(0.5)
            assert own.block_number() == head  # held, then answered
            assert proxy.faults >= 2
    finally:
        proxy.close()


class Soak:
    """One soak run: the consortium, the random plan and the figures."""

    def __init__(self, consortium: Consortium, rng: random.Random):
        self.c = consortium
        self.rng = rng
        self.faults: dict[str, int] = {}
        self.restarts = 0
        self.recoveries: list[float] = []
        self.kinds: dict[int, str] = {}
        self.outcomes: list[dict[str, Any]] = []
        self.kill_phases: dict[str, int] = {}
        self.with_failing_device: dict[str, int] = {}  # faults that hit a change with one
        self.voter_restarts = 0
        self.offline: set[str] = set()  # voters kept offline on purpose

    def _fault(self, kind: str) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + 1

    def _count_failing(self, kind: str) -> None:
        self.with_failing_device[kind] = self.with_failing_device.get(kind, 0) + 1

    def _plan(self, kind: str) -> list[tuple[float, str]]:
        """(seconds after the start, fault) for one change: one to three of them."""
        choices = ["kill", "proxy", "proxy", "voter"] + (["race"] if kind == "approve" else [])
        choices += ["reorg"] if self.c.confirmations else []
        picked = self.rng.sample(choices, self.rng.randint(1, 3))
        # a kill is armed early and fires once the playbook reaches the phase picked for it
        return sorted(
            (self.rng.uniform(0.3, 2.0 if fault == "kill" else 8.0), fault) for fault in picked
        )

    def _proxy_fault(self, now: float, until: list[tuple[float, RpcProxy]]) -> None:
        name = self.rng.choice(("A", "B", "C"))
        proxy = self.c.operators[name].proxy
        kind = self.rng.choice(PROXY_FAULTS)
        seconds = self.rng.uniform(1.0, 4.0)
        if kind == "latency":
            proxy.latency = 0.3
        elif kind == "reset":
            proxy.drop = 0.3
        elif kind == "reset_after":
            proxy.drop_after = 0.2
        elif kind == "stall":
            proxy.stall(seconds)
        else:
            proxy.lag = 3
        until.append((now + seconds, proxy))
        self._fault(f"proxy_{kind}")

    def _reorg(self) -> bool:
        """Once the head block holds a transaction, roll back 1 to ``confirmations`` blocks
        (a reorg no deeper than the operators wait for): whether it did."""
        if not self.c.client.w3.eth.get_block("latest")["transactions"]:
            return False
        rollback(self.c.client, self.rng.randint(1, self.c.confirmations))
        self._fault("reorg")
        return True

    def _phase(self, pid_file: Path) -> str:
        """How far the playbook's change is: its journal's phase, or before its proposal."""
        if not pid_file.exists():
            return "proposing"
        journal = Journal.find(
            self.c.operators["A"].state / "changes",
            chain_id=self.c.client.chain_id,
            contract=self.c.coop.address,
            proposal_id=json.loads(pid_file.read_text())["proposal_id"],
        )
        return journal.read().phase if journal is not None else "proposed"

    def _time_runs_out(self, kind: str, pid_file: Path) -> bool:
        """Move the clock past the voting deadline (unvoted), or past the window and its
        record grace once approved (expire, then give the playbook its go-ahead)."""
        pid = json.loads(pid_file.read_text())["proposal_id"]
        if kind == "unvoted":
            DevChain(self.c.client).increase_time(3600 + 120)
            return True
        if kind == "expire" and self.c.coop.proposal(pid).state is ProposalState.Approved:
            DevChain(self.c.client).increase_time(7200 + 1800 + 120)
            (pid_file.parent / f"{pid_file.stem}.hold").unlink()
            return True
        return False

    def change(self, k: int, kind: str) -> None:
        """Run change ``k`` to its end under its planned faults."""
        faults: dict[str, dict[str, Any]] = {}
        if kind == "approve" and self.rng.random() < 0.3:
            host = self.rng.choice(HOSTS)
            if self.rng.random() < 0.5:
                faults[host] = {"commit_error": True}
                self._fault("device_refuses")
            else:
                faults[host] = {"commit_drops": [r"^ip route 10\."]}
                self._fault("device_reverts")
        spec = {"change": k, "kind": kind, "faults": faults}
        plan = self._plan(kind) if kind in ("approve", "reject") else []
        if faults:  # the failing device's push must be done once whatever else happens
            extra = self.rng.choice(("race", "kill_applying"))
            plan = sorted([*plan, (self.rng.uniform(0.3, 2.0), extra)])
        if kind == "expire":
            (self.c.out / f"{k}.hold").touch()
        started = time.monotonic()
        process = self.c.playbook(spec)
        injected: list[float] = []
        clear_at: list[tuple[float, RpcProxy]] = []
        voter_back: list[tuple[float, str]] = []
        result, pid_file = self.c.out / f"{k}.json", self.c.out / f"{k}.pid"
        raced, restarts, expired = False, 0, False
        kill_in: tuple[float, str] | None = None  # (not before, in which phase)
        reorg_armed = False
        while not result.exists():
            now = time.monotonic()
            assert now - started < CHANGE_TIMEOUT, (
                f"change {k} did not finish (logs: {self.c.work})"
            )
            if kill_in is not None and now - started >= kill_in[0]:
                phase = self._phase(pid_file)
                if kill_in[1] in ("any", phase) and self.c.kill("A"):
                    kill_in = None
                    self._fault("kill_proposer")
                    self.kill_phases[phase] = self.kill_phases.get(phase, 0) + 1
                    if faults:
                        self._count_failing(f"kill_proposer_{phase}")
                    injected.append(now)
                    process = self.c.playbook(spec)
            while plan and now - started >= plan[0][0]:
                _, fault = plan.pop(0)
                if fault == "kill":  # when the playbook reaches a phase picked at random
                    kill_in = (now - started, self.rng.choice(KILL_PHASES))
                elif fault == "kill_applying":  # while it pushes
                    kill_in = (now - started, "applying")
                elif fault == "proxy":
                    self._proxy_fault(now, clear_at)
                    injected.append(now)
                elif fault == "voter":
                    name = self.rng.choice(("B", "C"))
                    if self.c.kill(name):
                        self._fault("voter_offline")
                        injected.append(now)
                        voter_back.append((now + self.rng.uniform(2.0, 8.0), name))
                elif fault == "reorg":
                    reorg_armed = True
                elif fault == "race":
                    raced = True  # started once the proposal exists
            if reorg_armed and self._reorg():
                reorg_armed = False
                injected.append(now)
            if raced and pid_file.exists() and self.c.operators["A2"].process is None:
                self.c.playbook({**spec, "race": True}, "A2")
                self._fault("racing_executor")
                if faults:
                    self._count_failing("racing_executor")
                injected.append(now)
            racer = self.c.operators["A2"].process
            race_result = self.c.out / f"{k}.race.json"
            if racer is not None and racer.poll() not in (None, 0) and not race_result.exists():
                restarts += 1  # the racer failed (its node): rerun it from its state directory
                assert restarts <= MAX_RESTARTS, f"change {k} keeps failing (logs: {self.c.work})"
                self.c.playbook({**spec, "race": True}, "A2")
            for entry in [e for e in clear_at if e[0] <= now]:
                entry[1].clear()
                clear_at.remove(entry)
            for entry in [e for e in voter_back if e[0] <= now]:
                self.c.start_voter(entry[1])
                voter_back.remove(entry)
            for name in {"B", "C"} - {name for _, name in voter_back} - self.offline:
                if self.c.start_voter(name):  # it had stopped by itself: a supervisor's restart
                    self.voter_restarts += 1
            if not expired and pid_file.exists() and self._time_runs_out(kind, pid_file):
                expired = True
            if process.poll() is not None and not result.exists():
                restarts += 1  # it failed (e.g. its node reset the connection): run again
                assert restarts <= MAX_RESTARTS, f"change {k} keeps failing (logs: {self.c.work})"
                process = self.c.playbook(spec)
            time.sleep(0.05)
        done = time.monotonic()
        self.recoveries += [done - at for at in injected]
        self.restarts += restarts
        for _, proxy in clear_at:
            proxy.clear()
        for _, name in voter_back:
            self.c.start_voter(name)
        racer = self.c.operators["A2"].process
        if racer is not None:
            racer.wait(timeout=300)
            self.c.operators["A2"].process = None
        process.wait(timeout=60)
        outcome = json.loads(result.read_text())
        self.kinds[outcome["proposal_id"]] = kind
        self.outcomes.append({"change": k, "kind": kind, **outcome})


@pytest.mark.soak
@pytest.mark.anvil
def test_soak(tmp_path: Path, own_anvil: AnvilProcess) -> None:
    seed = int(os.environ.get("COOPCHAIN_SOAK_SEED", random.randrange(2**32)))
    changes = int(_env("COOPCHAIN_SOAK_CHANGES", 6))
    budget = _env("COOPCHAIN_SOAK_SECONDS", 120)
    print(f"soak seed {seed} (COOPCHAIN_SOAK_SEED={seed} replays it)")
    rng = random.Random(seed)
    confirmations = int(_env("COOPCHAIN_SOAK_CONFIRMATIONS", 0))
    consortium = Consortium(tmp_path, own_anvil.url, seed=seed, confirmations=confirmations)
    soak = Soak(consortium, rng)
    started = time.monotonic()
    try:
        consortium.start_voter("B")
        consortium.start_voter("C")
        k = 0
        while k < changes and (k < 2 or time.monotonic() - started < budget):
            k += 1
            soak.change(k, "reject" if rng.random() < 0.25 else "approve")
        soak.change(k + 1, "expire")  # approved, but not applied in time
        soak.offline = {"B", "C"}
        consortium.kill("B")
        consortium.kill("C")
        soak.change(k + 2, "unvoted")  # nobody votes by the deadline
        states, problems = consortium.check(soak.kinds)
    finally:
        consortium.close()
    figures = {
        "seed": seed,
        "confirmations": confirmations,
        "changes": len(soak.outcomes),
        "changes_by_kind": {
            kind: sum(1 for o in soak.outcomes if o["kind"] == kind)
            for kind in ("approve", "reject", "expire", "unvoted")
        },
        "proposals_by_state": states,
        "faults_injected": dict(sorted(soak.faults.items())),
        "playbook_kills_by_phase": dict(sorted(soak.kill_phases.items())),
        "faults_on_changes_with_a_failing_device": dict(sorted(soak.with_failing_device.items())),
        "playbook_restarts_after_failure": soak.restarts,
        "voter_restarts_after_failure": soak.voter_restarts,
        "max_recovery_seconds": round(max(soak.recoveries, default=0.0), 1),
        "seconds": round(time.monotonic() - started, 1),
        "problems": problems,
    }
    print(json.dumps(figures, indent=1))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # kept for CI (ignored by git)
    (ARTIFACTS / "soak.json").write_text(json.dumps(figures, indent=1))
    assert not problems, problems
    assert states.get("Expired", 0) == 1
