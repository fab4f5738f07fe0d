"""The operator's day on the ``coopchain`` command: stuck states, cancel, exit codes, help."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import shlex
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from coop_helpers import propose as sign_and_propose
from typer.testing import CliRunner

from nornir_coopchain import __version__
from nornir_coopchain.chain.accounts import dev_accounts
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.deployment import DeploymentSpec
from nornir_coopchain.chain.devchain import AnvilProcess, find_anvil
from nornir_coopchain.cli import app
from nornir_coopchain.cli.member import record_member
from nornir_coopchain.model.rules import AggregationRule

ROOT = Path(__file__).resolve().parents[1]
A, B, C = ("--dev-account", "0"), ("--dev-account", "1"), ("--dev-account", "2")
TITLE = ("--title", "Turn up OPERATOR-C")


def run(*args: str, code: int = 0, stdin: str | None = None) -> Any:
    result = CliRunner().invoke(app, list(args), input=stdin)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def run_json(*args: str, code: int = 0) -> dict[str, Any]:
    payload = json.loads(run(*args, "--json", code=code).stdout)
    assert isinstance(payload, dict)
    return payload


@pytest.fixture
def deployed(sample_site: Path, own_anvil: AnvilProcess) -> Path:
    """The site on a fresh contract, its SIMULATED routers built out without OPERATOR-C."""
    run_json("chain", "deploy", "--write-inventory", "--chain", own_anvil.url, *A)
    built = run_json("sim", "build", "--without", "OPERATOR-C")
    assert built["hosts"]["site17-r1"] == ["OPERATOR-A", "OPERATOR-B"]
    return sample_site


@pytest.mark.anvil
def test_a_refused_proposal_leaves_no_journal_to_trap_the_next(deployed: Path) -> None:
    refused = run_json("propose", *TITLE, "--start", "2020-01-01T00:00", "--yes", *A, code=3)
    assert refused["error"]["type"] == "InvalidWindow"  # the contract's, as a sentence
    assert refused["error"]["message"].startswith(
        "the change window 2020-01-01T00:00:00+00:00 to 2020-01-01T01:00:00+00:00 is empty"
    )
    assert run_json("journal", "list")["journals"] == []

    proposed = run_json("propose", *TITLE, "--yes", *A)
    assert proposed["window"]["start_utc"] > "2025"  # not the refused 2020 window replayed
    [listed] = run_json("journal", "list")["journals"]
    assert (listed["phase"], listed["proposal_id"]) == ("proposed", proposed["proposal_id"])
    kept = run_json("journal", "discard", listed["id"][:6], code=2)
    assert "pass --force" in kept["error"]["message"]
    assert run_json("journal", "discard", listed["id"], "--force")["discarded"] == listed["id"]
    assert run_json("journal", "list")["journals"] == []


@pytest.mark.anvil
def test_a_resumed_proposal_reports_what_the_chain_holds(deployed: Path) -> None:
    first = run_json("propose", *TITLE, "--start", "+5", "--yes", *A)
    again = run_json("propose", *TITLE, "--start", "+30", "--yes", *A)
    assert again["resumed"] is True
    assert again["proposal_id"] == first["proposal_id"]
    assert (again["content_hash"], again["window"]) == (first["content_hash"], first["window"])
    shown = run_json("status", str(first["proposal_id"]))
    assert (again["window"], again["content_hash"]) == (shown["window"], shown["content_hash"])


@pytest.mark.anvil
def test_a_change_too_big_is_refused_before_its_diffs(
    deployed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ChainClient, "block_gas_limit", lambda self: 50_000)
    result = run("propose", *TITLE, *A, code=3)
    assert "ProposalTooLarge" in result.stderr
    assert "OPERATOR-C" not in result.stdout  # no diff shown
    assert "Propose this change" not in result.stderr


@pytest.mark.anvil
def test_the_proposer_cancels_and_audit_of_a_never_applied_change(deployed: Path) -> None:
    pid = str(run_json("propose", *TITLE, "--yes", *A)["proposal_id"])
    audited = run_json("audit", pid)
    assert (audited["result"], audited["recorded"], audited["problems"]) == (
        "not applied",
        False,
        [],
    )
    assert "was never applied" in run("audit", pid).stdout

    not_mine = run_json("cancel", pid, *B, code=3)
    assert "only its proposer may cancel it" in not_mine["error"]["message"]
    canceled = run_json("cancel", pid, *A)
    assert canceled["state"] == "Canceled"
    assert run_json("status", pid)["state"] == "Canceled"
    assert [row["phase"] for row in run_json("journal", "list")["journals"]] == ["closed"]
    assert "is Canceled" in run_json("cancel", pid, *A, code=3)["error"]["message"]


def test_sim_build_refuses_real_devices(sample_site: Path) -> None:
    hosts_file = sample_site / "inventory" / "hosts.yaml"
    hosts = yaml.safe_load(hosts_file.read_text())
    hosts["site17-r4"]["platform"] = "eos"
    hosts_file.write_text(yaml.safe_dump(hosts))
    refused = run_json("sim", "build", code=2)
    assert "not simulated devices" in refused["error"]["message"]
    assert "site17-r4" in refused["error"]["message"]
    assert not (sample_site / "devices").exists()


def test_help_version_and_verbose() -> None:
    assert run("--version").stdout.strip() == __version__
    short = run("propose", "-h").stdout
    assert "--json" in short
    assert "-y, --yes" in short
    assert "<bool>" not in short  # flags are shown as flags
    assert "<bool>" not in run("--help").stdout
    assert "-v, --verbose" in run("-h").stdout
    assert run("-v", "version").stdout.strip() == __version__
    assert "Got unexpected extra argument" in run("version", "--json", "true", code=2).stderr


def test_chain_up_finds_anvil_in_the_checkout_it_runs_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "clone"
    binary = checkout / "tools" / "node_modules" / ".bin" / "anvil"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    (checkout / "inventory").mkdir()
    monkeypatch.delenv("COOPCHAIN_ANVIL", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.chdir(checkout / "inventory")
    assert find_anvil() == str(binary)
    monkeypatch.setenv("COOPCHAIN_ANVIL", str(binary))
    assert find_anvil() == str(binary)


@pytest.mark.anvil
def test_propose_without_a_terminal_or_yes_exits_2_with_a_sentence(deployed: Path) -> None:
    """As a separate process with stdin closed (cron, CI): not "Aborted." with exit 1."""
    command = [sys.executable, "-c", "from nornir_coopchain.cli import app; app()"]
    done = subprocess.run(
        [*command, "propose", *TITLE, *A],
        cwd=deployed,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "add --yes to propose without asking" in done.stderr
    assert "Aborted." not in done.stderr


@pytest.mark.anvil
def test_init_anywhere_then_its_next_steps_make_a_funded_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_anvil: AnvilProcess
) -> None:
    """Installed (sample from the package's data), run outside any checkout, a weak password
    refused; the printed steps fund the new key and make it a member through governance."""
    import nornir_coopchain

    prefix = tmp_path / "prefix"
    for name in ("inventory", "templates"):
        shutil.copytree(ROOT / name, prefix / "share" / "nornir_coopchain" / name)
    monkeypatch.setattr(sys, "prefix", str(prefix))
    fake = tmp_path / "site-packages" / "nornir_coopchain" / "__init__.py"
    monkeypatch.setattr(nornir_coopchain, "__file__", str(fake))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEW_KEY_PASSWORD", "abc")
    init = ("init", "site", "--operator", "OPERATOR-D", "--password", "env:NEW_KEY_PASSWORD")
    weak = run_json(*init, "--chain", own_anvil.url, code=2)
    assert (weak["error"]["type"], "password too weak" in weak["error"]["message"]) == (
        "KeystoreError",
        True,
    )
    assert not (tmp_path / "site" / "keys").exists()

    monkeypatch.setenv("NEW_KEY_PASSWORD", "four words of passphrase")
    made = run_json(*init, "--chain", own_anvil.url)
    assert made["inventory"] == "copied"
    address = made["address"]
    monkeypatch.chdir(tmp_path / "site")
    pid = None
    for step in made["next_steps"][1:]:  # the chain is up already (own_anvil)
        args = [
            arg.replace("N", str(pid)) if arg == "N" else arg
            for arg in shlex.split(step, comments=True)
        ]
        result = run_json(*args[1:])
        pid = result.get("proposal_id", pid)
    members = {row["operator_id"]: row["account"] for row in result["members"]}
    assert members["OPERATOR-D"] == address
    spec = yaml.safe_load((tmp_path / "site" / "inventory" / "deployment.yaml").read_text())
    assert {"operator": "OPERATOR-D", "address": address, "weight": 1} in spec["members"]
    assert "# DEV KEYS" in (tmp_path / "site" / "inventory" / "deployment.yaml").read_text()


@pytest.mark.anvil
def test_long_diffs_go_through_a_pager_on_a_terminal(deployed: Path) -> None:
    """On a terminal the diffs (longer than its screen) go to $PAGER, then the question."""
    controller, terminal = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(controller, 4096):
                chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    command = [sys.executable, "-c", "from nornir_coopchain.cli import app; app()"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PAGER": "cat > paged.txt", "LINES": "25"}
    os.write(controller, b"n\n")
    try:
        done = subprocess.run(
            [*command, "propose", *TITLE, *A],
            cwd=deployed,
            env=env,
            stdin=terminal,
            stdout=terminal,
            stderr=subprocess.PIPE,
            timeout=300,
        )
    finally:
        os.close(terminal)
    reader.join(timeout=10)
    os.close(controller)
    assert done.returncode == 3, done.stderr[-2000:]
    paged = (deployed / "paged.txt").read_text()
    assert "site17-r4 (eos), tenants touched:" in paged
    assert "OPERATOR-C" in paged
    assert b"site17-r4 (eos)" not in b"".join(chunks)  # not printed on the screen itself


def test_a_new_member_goes_into_the_deployment_file(tmp_path: Path) -> None:
    new = ("OPERATOR-D", "0x90F79bf6EB2c4f870365E785982E1f101E93b906", 2)
    sample = tmp_path / "deployment.yaml"
    shutil.copy(ROOT / "inventory" / "deployment.yaml", sample)
    assert record_member(sample, *new)
    assert not record_member(sample, *new)  # listed already
    flow = tmp_path / "flow.yaml"
    spec = yaml.safe_load(sample.read_text())
    spec["members"] = spec["members"][:3]
    flow.write_text(yaml.safe_dump(spec, default_flow_style=True))
    assert record_member(flow, *new)
    for path in (sample, flow):
        members = DeploymentSpec.load(path).members
        assert [(m.operator, m.address, m.weight) for m in members][-1] == new
        assert len(members) == 4
    assert "# DEV KEYS" in sample.read_text()  # the sample's comments are kept


@pytest.mark.anvil
def test_canceling_the_pending_proposal_lets_the_change_be_declared_an_emergency(
    deployed: Path,
) -> None:
    r1 = ("--hosts", "site17-r1", "--yes", *A)
    pid = str(run_json("propose", *TITLE, *r1)["proposal_id"])
    refused = run_json("propose", *TITLE, "--emergency", *r1, code=3)
    assert f"cancel it (`coopchain cancel {pid}`)" in refused["error"]["message"]
    run_json("cancel", pid, *A)
    declared = run_json("propose", *TITLE, "--emergency", *r1)
    assert (declared["proposal_id"], declared["emergency"], declared["resumed"]) == (
        int(pid) + 1,
        True,
        False,
    )


@pytest.mark.anvil
def _table_rows(text: str) -> list[tuple[str, ...]]:
    """The rows of a printed table, each cell's wrapped lines joined with spaces (a line whose
    first cell is empty continues the row above)."""
    rows: list[list[list[str]]] = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if not cells:
            continue
        if cells[0] or not rows:
            rows.append([[cell] for cell in cells])
        else:
            for parts, cell in zip(rows[-1], cells, strict=True):
                parts.append(cell)
    return [tuple(" ".join(p for p in parts if p) for parts in row) for row in rows]


def test_status_and_show_name_the_rule_a_proposal_was_created_under(
    deployed: Path, own_anvil: AnvilProcess
) -> None:
    """Governance turns TOWER-017 into a simple majority after #1 was proposed: status and show
    still say #1 is decided under Supermajority 6667 bps, and that the set's rule is now
    another."""
    pid = str(run_json("propose", *TITLE, "--yes", *A)["proposal_id"])
    listed = run_json("status")
    with ChainClient.connect(own_anvil.url) as client:
        coop = CoopChain(client, listed["contract"])
        owner = dev_accounts(client, 1)[0]
        site = coop.resource_set("TOWER-017")
        simple = site.model_copy(
            update={"rule": AggregationRule.SimpleMajority, "threshold_bps": 0, "quorum_bps": 0}
        )
        calls = coop.governance_content([coop.configure_resource_set_call("TOWER-017", simple)])
        governance = sign_and_propose(coop, owner, resource_set=coop.governance_set, content=calls)
        gid = str(governance.proposal_id)
        for voter in (B, C):
            run_json("vote", gid, "approve", *voter)
        coop.execute_governance(owner, int(gid), calls)

    was = {"name": "Supermajority", "threshold_bps": 6667, "quorum_bps": 5000}
    now = {"name": "SimpleMajority", "threshold_bps": 0, "quorum_bps": 0}
    for detail in (run_json("status", pid), run_json("show", pid)):
        assert detail["rule"] == {**was, "label": "Supermajority 6667 bps, quorum 5000 bps"}
        assert detail["current_rule"] == {**now, "label": "SimpleMajority"}
        assert detail["rule_changed"] is True
    [row] = [row for row in run_json("status")["proposals"] if row["proposal_id"] == int(pid)]
    assert (row["rule"]["name"], row["rule_changed"]) == ("Supermajority", True)
    said = (
        "decided under Supermajority 6667 bps, quorum 5000 bps (the set's rule when proposed); "
        "the set's rule is now SimpleMajority"
    )
    assert dict(_table_rows(run("status", pid).stdout))["rule"] == said
    assert said in run("show", pid).stdout
    listing = run("status").stdout
    [listed_row] = [row for row in _table_rows(listing) if row[0] == pid]
    assert "Supermajority 6667 bps, quorum 5000 bps *" in listed_row
    assert "governance has changed the set's rule since" in listing
    governed = run_json("status", gid)
    assert (governed["rule"]["name"], governed["rule_changed"]) == ("Unanimous", False)
