"""Three operators as separate processes, each on its "own node", for the consortium tests.

:class:`Consortium` deploys the sample site's contract on one anvil and builds out its
SIMULATED routers (state files shared by every process, as real devices are), then gives
each operator its own inventory copy, DEV key, state directory and :class:`RpcProxy`:

* OPERATOR-A, the tower owner, runs its playbook (``tests/soak_playbook.py``) per change;
  ``A2`` is the same key and playbook from a second state directory (a second executor,
  racing the first to push and record);
* OPERATOR-B and OPERATOR-C run ``coopchain watch`` with their policies.

:meth:`Consortium.check` then judges the run from chain data and devices alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml
from chain_faults import Miner
from rpc_proxy import RpcProxy

from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.devchain import DevChain
from nornir_coopchain.chain.models import ApplyClaimed, VerificationRecorded
from nornir_coopchain.demo import build_out, deploy_with_dev_keys, init_site
from nornir_coopchain.gate import audit_change, fetch_change
from nornir_coopchain.journal import Journal
from nornir_coopchain.model.content import hash_text
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.settings import CoopchainSettings

ROOT = Path(__file__).resolve().parents[1]
CLI = (sys.executable, "-c", "from nornir_coopchain.cli import app; app()")
PLAYBOOK = Path(__file__).with_name("soak_playbook.py")
OPERATORS = {
    "A": (0, "OPERATOR-A"),
    "A2": (0, "OPERATOR-A"),
    "B": (1, "OPERATOR-B"),
    "C": (2, "OPERATOR-C"),
}
RECORDED = (ProposalState.Verified, ProposalState.VerificationFailed)
EXPECTED = {  # how each kind of change must end
    "approve": RECORDED,
    "reject": (ProposalState.Rejected,),
    "unvoted": (ProposalState.Rejected,),  # no quorum by the voting deadline
    "expire": (ProposalState.Expired,),  # approved, not applied by window end + grace
}


@dataclass
class Operator:
    """One operator's inventory, state directory and node (proxy)."""

    name: str
    inventory: Path
    state: Path
    proxy: RpcProxy
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = field(default=None, repr=False)


class Consortium:
    """The site, its contract and the operators' set-up (see the module docstring).

    Arguments:
        work: an empty working directory.
        anvil_url: the one node behind every proxy.
        seed: seeds the proxies.
        confirmations: the operators' ``confirmations`` setting; above 0, a block is mined
            every 0.3 s (reorgs are the caller's: :func:`chain_faults.rollback`).
    """

    def __init__(self, work: Path, anvil_url: str, *, seed: int, confirmations: int = 0):
        self.work = work
        self.confirmations = confirmations
        self.client = ChainClient.connect(anvil_url, receipt_timeout=60)
        # blocks keep coming, as on a live chain (else a receipt never gets deep)
        self.miner = Miner(DevChain(self.client), every=0.3)
        if confirmations:
            self.miner.start()
        self.coop = deploy_with_dev_keys(self.client, ROOT / "inventory")
        self.devices = work / "devices"
        self.templates = work / "templates"
        self.out = work / "out"
        self.out.mkdir()
        (work / "logs").mkdir()
        shutil.copytree(ROOT / "templates", self.templates)
        self._build_out()
        self.operators = {
            name: self._operator(name, anvil_url, seed + index)
            for index, name in enumerate(OPERATORS)
        }

    def _build_out(self) -> None:
        settings = CoopchainSettings(contract=self.coop.address)
        nr = init_site(ROOT / "inventory", device_state=self.devices, coopchain=settings)
        build_out(nr, self.templates, nr.inventory.groups["site17"].data["tenants"])
        nr.close_connections()

    def _operator(self, name: str, anvil_url: str, seed: int) -> Operator:
        key, operator = OPERATORS[name]
        inventory, state = self.work / f"inventory-{name}", self.work / f"state-{name}"
        shutil.copytree(ROOT / "inventory", inventory)
        proxy = RpcProxy(anvil_url, seed=seed)
        defaults = inventory / "defaults.yaml"
        data = yaml.safe_load(defaults.read_text())
        data["connection_options"]["napalm"]["extras"]["optional_args"].update(
            state_dir=str(self.devices),
            method_latency={"commit_config": 0.5},  # a push takes a while, as on devices
        )
        data["connection_options"]["coopchain"]["extras"].update(
            chain_url=proxy.url,
            contract=self.coop.address,
            dev_account=key,
            operator=operator,
            state_dir=str(state),
            receipt_timeout=30,
            confirmations=self.confirmations,
        )
        defaults.write_text(yaml.safe_dump(data))
        return Operator(name, inventory, state, proxy)

    # ---------------------------------------------------------------- processes

    def _spawn(self, operator: Operator, args: list[str], log: str) -> subprocess.Popen[bytes]:
        handle = (self.work / "logs" / log).open("ab")
        operator.log = handle
        return subprocess.Popen(
            args,
            cwd=self.work,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}", "COLUMNS": "200"},
        )

    def start_voter(self, name: str) -> bool:
        """Start ``coopchain watch`` for B or C unless it runs; whether it had stopped."""
        operator = self.operators[name]
        if operator.process is not None and operator.process.poll() is None:
            return False
        stopped = operator.process is not None
        policy = operator.inventory / "policies" / f"{OPERATORS[name][1].lower()}.yaml"
        args = [*CLI, "watch", "--policy", str(policy), "--interval", "0.3"]
        operator.process = self._spawn(
            operator, [*args, "--inventory", str(operator.inventory)], f"watch-{name}.log"
        )
        return stopped

    def kill(self, name: str) -> bool:
        """kill -9 an operator's process; whether one was running."""
        process = self.operators[name].process
        if process is None or process.poll() is not None:
            return False
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        return True

    def playbook(self, spec: dict[str, Any], name: str = "A") -> subprocess.Popen[bytes]:
        """Start (or restart) the owner's playbook for one change (``A2``: the racer)."""
        operator = self.operators[name]
        path = self.out / f"{spec['change']}.{name}.spec.json"
        path.write_text(
            json.dumps(
                {
                    **spec,
                    "inventory": str(operator.inventory),
                    "templates": str(self.templates),
                    "out": str(self.out),
                }
            )
        )
        args = [sys.executable, str(PLAYBOOK), str(path)]
        operator.process = self._spawn(operator, args, f"change-{spec['change']}-{name}.log")
        return operator.process

    def close(self) -> None:
        """Stop every process and proxy."""
        for name in self.operators:
            self.kill(name)
        self.miner.stop()
        for operator in self.operators.values():
            operator.proxy.close()
            if operator.log is not None:
                operator.log.close()
        self.client.close()

    # ---------------------------------------------------------------- judging the run

    def _rpc(self, method: str, params: list[Any]) -> Any:
        return self.client.w3.provider.make_request(method, params)["result"]  # type: ignore[arg-type]

    def committed(self) -> dict[str, list[str]]:
        """Each device's commit log (sha256 of each committed candidate)."""
        return {
            path.stem: json.loads(path.read_text())["committed"]
            for path in sorted(self.devices.glob("*.json"))
        }

    def _candidates(self, proposal_id: int) -> dict[str, str]:
        """The rendered candidates of a proposal (from a journal), checked against the chain."""
        change = fetch_change(self.coop, proposal_id)
        for name in ("A", "A2"):
            journal = Journal.find(
                self.operators[name].state / "changes",
                chain_id=self.client.chain_id,
                contract=self.coop.address,
                proposal_id=proposal_id,
            )
            if journal is not None:
                candidates: dict[str, str] = json.loads(
                    (journal.path / "candidates.json").read_text()
                )
                for device in change.content.devices:
                    assert hash_text(candidates[device.host]) == device.candidate_hash
                return candidates
        raise AssertionError(f"no journal holds proposal {proposal_id}")

    def _audit(self, proposal_id: int) -> dict[str, bool] | None:
        """Each device's compliance, from the first state directory whose evidence matches
        the record (content, evidence root, every device in the manifest and proven); None
        when none does."""
        for name in ("A", "A2"):
            root = self.operators[name].state / "changes"
            try:
                report = audit_change(self.coop, proposal_id, root)
            except Exception:  # this state directory lacks the evidence
                continue
            whole = report.content_ok and report.evidence_root_ok and not report.problems
            if whole and all(d.in_manifest and d.evidence_proven for d in report.devices):
                return {device.host: device.compliant for device in report.devices}
        return None

    def check(self, kinds: dict[int, str]) -> tuple[dict[str, int], list[str]]:
        """Judge the run: proposal states by name, and every broken promise found.

        Arguments:
            kinds: the proposal IDs the playbook reported, with the change's kind.
        """
        coop: CoopChain = self.coop
        problems: list[str] = []
        count = coop.proposal_count()
        if sorted(kinds) != list(range(1, count + 1)):
            problems.append(f"{count} proposals on chain for the changes {sorted(kinds)}")
        records: dict[int, int] = {}
        claims: dict[int, int] = {}
        for event in coop.events(0):
            if isinstance(event, VerificationRecorded):
                records[event.proposal_id] = records.get(event.proposal_id, 0) + 1
            elif isinstance(event, ApplyClaimed):
                claims[event.proposal_id] = claims.get(event.proposal_id, 0) + 1
        logs = self.committed()
        states: dict[str, int] = {}
        for pid in range(1, count + 1):
            state = coop.proposal(pid).state
            states[state.name] = states.get(state.name, 0) + 1
            recorded = state in RECORDED
            if records.get(pid, 0) != (1 if recorded else 0):
                problems.append(f"proposal {pid} ({state.name}) recorded {records.get(pid, 0)}x")
            if claims.get(pid, 0) > 1 or (recorded and not claims.get(pid)):
                problems.append(f"proposal {pid} ({state.name}) claimed {claims.get(pid, 0)}x")
            if state is ProposalState.Approved:
                problems.append(f"proposal {pid} was approved and never recorded")
            compliant = self._audit(pid) if recorded else {}
            if compliant is None:
                problems.append(f"proposal {pid} does not audit")
                compliant = {}
            if state is ProposalState.Verified and not all(compliant.values()):
                problems.append(f"proposal {pid} is Verified with a device not compliant")
            expected = EXPECTED.get(kinds.get(pid, ""))
            if expected is not None and state not in expected:
                problems.append(f"proposal {pid} ({kinds[pid]}) ended {state.name}")
            for host, text in self._candidates(pid).items():
                pushed = logs[host].count(hashlib.sha256(text.encode()).hexdigest())
                if pushed > (1 if recorded else 0):
                    problems.append(f"proposal {pid} ({state.name}) pushed {pushed}x to {host}")
                if compliant.get(host) and pushed != 1:
                    problems.append(f"proposal {pid}: {host} verified, but pushed {pushed}x")
        status = self._rpc("txpool_status", [])
        if int(status["pending"], 16) or int(status["queued"], 16):
            problems.append(f"transactions left in the pool: {status}")
        for address in self.client.w3.eth.accounts[:3]:  # the members' DEV keys
            mined = self.client.w3.eth.get_transaction_count(address, "latest")
            pending = self.client.w3.eth.get_transaction_count(address, "pending")
            if mined != pending:
                problems.append(f"{address}: nonce {mined} mined, {pending} pending")
        return states, problems
