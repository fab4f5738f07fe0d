"""The proposer's playbook in the consortium soak: ONE change through the public gate API.

    python tests/soak_playbook.py SPEC.json

SPEC: ``{"inventory", "templates", "out", "change", "kind", "faults"}``. Change ``k`` adds
one static route to every site-17 router: the owner's (``kind`` approve, unvoted or expire;
the voters approve it when they vote) or OPERATOR-B's (``kind`` reject, which B's policy
rejects). ``faults`` gives a host's simulated device extra driver options (a device that
refuses or reverts).

Killed at any point, it is simply run again: the proposal is resumed from the journal (never
proposed twice), and ``apply_change`` resumes the push (never pushed or recorded twice). The
playbook's own bookkeeping is ``OUT/k.pid`` (written once the proposal exists, so that a
rerun after the change was applied does not propose the changed devices afresh) and
``OUT/k.json``, its result. While ``OUT/k.hold`` exists it waits after the verdict (for a
go-ahead), then applies only what is still Approved. With ``"race": true`` it is a second
executor: it only waits for the verdict of the proposal in ``OUT/k.pid`` and applies it
(result in ``OUT/k.race.json``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from nornir import InitNornir
from nornir.core import Nornir
from nornir.core.inventory import ConnectionOptions

from nornir_coopchain.exceptions import AlreadyRecorded, ClaimedByAnotherRun
from nornir_coopchain.gate import (
    apply_change,
    build_content,
    prepare_change,
    propose_change,
    wait_for_verdict,
)
from nornir_coopchain.model.content import ChangeWindow
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.session import open_session
from nornir_coopchain.settings import CONNECTION_NAME, CoopchainSettings


def write_once(path: Path, data: dict[str, Any]) -> None:
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(data))
    os.replace(temp, path)


def route_for(change: int, kind: str) -> tuple[str, str]:
    """(tenant, prefix) of the route change ``change`` adds (its next hop: the tenant's)."""
    if kind == "reject":
        return "OPERATOR-B", f"198.18.29.{change % 250}/32"
    return "OPERATOR-A", f"10.{change // 250}.{change % 250}.0/24"


def inventory(spec: dict[str, Any]) -> Nornir:
    folder = Path(spec["inventory"])
    nr = InitNornir(
        runner={"plugin": "threaded", "options": {"num_workers": 4}},
        inventory={
            "plugin": "SimpleInventory",
            "options": {
                "host_file": str(folder / "hosts.yaml"),
                "group_file": str(folder / "groups.yaml"),
                "defaults_file": str(folder / "defaults.yaml"),
            },
        },
        logging={"enabled": False},
    )
    tenant, prefix = route_for(spec["change"], spec["kind"])
    defaults = nr.inventory.defaults.connection_options["napalm"].extras or {}
    for name, host in nr.inventory.hosts.items():
        links = json.loads(json.dumps(host.data["tenant_links"]))
        ran = links[tenant]["ran"]
        ran["routes"] = [
            *ran["routes"],
            {"prefix": prefix, "next_hop": ran["routes"][0]["next_hop"]},
        ]
        host.data["tenant_links"] = links
        if name in spec["faults"]:
            merged = {**defaults.get("optional_args", {}), **spec["faults"][name]}
            host.connection_options["napalm"] = ConnectionOptions(extras={"optional_args": merged})
    return nr


def main(spec: dict[str, Any]) -> None:
    out, change = Path(spec["out"]), spec["change"]
    templates = Path(spec["templates"])
    nr = inventory(spec)
    extras = nr.inventory.defaults.connection_options[CONNECTION_NAME].extras
    session = open_session(CoopchainSettings.from_extras(extras, source=spec["inventory"]))
    pid_file = out / f"{change}.pid"
    if not pid_file.exists() and not spec.get("race"):
        prepared = prepare_change(nr, templates=templates)
        now = session.client.now()
        content = build_content(
            prepared,
            resource_set="TOWER-017",
            title=f"soak change {change} ({spec['kind']})",
            window=ChangeWindow(start=now - 60, end=now + 7200),
            created_at=now,
            templates=templates,
        )
        pid = propose_change(session, content, prepared.candidates).proposal_id
        write_once(pid_file, {"proposal_id": pid})
    pid = json.loads(pid_file.read_text())["proposal_id"]
    print(f"change {change}: proposal {pid}", flush=True)
    verdict = wait_for_verdict(session, pid, timeout=900, poll_interval=0.3)
    result: dict[str, Any] = {"proposal_id": pid, "verdict": verdict.name}
    hold = out / f"{change}.hold"
    for _ in range(9000):  # the go-ahead for the maintenance, 15 minutes at most
        if not hold.exists():
            break
        time.sleep(0.1)
    if verdict is ProposalState.Approved:
        verdict = session.coop.proposal(pid).state  # it may have expired meanwhile
        result["state"] = verdict.name
    if verdict is ProposalState.Approved:
        try:
            outcome = apply_change(nr, session, pid, templates=templates, revert_in=60)
            result.update(state=outcome.state.name, devices_failed=outcome.devices_failed)
        except AlreadyRecorded:  # the other executor recorded it
            result.update(state=session.coop.proposal(pid).state.name, elsewhere=True)
        except ClaimedByAnotherRun:  # the other executor pushes it
            if spec.get("race"):
                result.update(state=session.coop.proposal(pid).state.name, refused=True)
            else:  # its record (or the window's end) ends the change
                result.update(state=_ended(session, pid).name, elsewhere=True)
    write_once(out / f"{change}{'.race' if spec.get('race') else ''}.json", result)
    print(json.dumps(result), flush=True)
    nr.close_connections()


def _ended(session: Any, pid: int) -> ProposalState:
    """The proposal's state once it is no longer Approved (15 minutes at most)."""
    for _ in range(3000):
        state: ProposalState = session.coop.proposal(pid).state
        if state is not ProposalState.Approved:
            return state
        time.sleep(0.3)
    raise TimeoutError(f"proposal {pid} still Approved after 15 minutes")


if __name__ == "__main__":
    main(json.loads(Path(sys.argv[1]).read_text()))
