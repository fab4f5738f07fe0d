"""The ``coopchain`` command against a real anvil, in a scratch working directory.

Every invocation is a separate CLI run; the SIMULATED devices keep their state in files
under the working directory (napalm ``optional_args.state_dir``), so runs share it like
separate processes would.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from typer.testing import CliRunner

from nornir_coopchain.chain.accounts import load_keystore
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.models import VoteCast
from nornir_coopchain.cli import app

if TYPE_CHECKING:
    from click.testing import Result

    from nornir_coopchain.chain.devchain import AnvilProcess

ROOT = Path(__file__).resolve().parents[1]
PLAIN_KEY = "0x" + "4c" * 32
A, B, C = ("--dev-account", "0"), ("--dev-account", "1"), ("--dev-account", "2")


CLI = (sys.executable, "-c", "from nornir_coopchain.cli import app; app()")
"""The CLI as a separate process (for signals)."""


def stop(process: subprocess.Popen[bytes], signum: int) -> tuple[bytes, bytes]:
    """Send ``signum`` and wait (30 s at most) for the process to end, reading both pipes so
    that a chatty child cannot block on them; its stdout and stderr."""
    process.send_signal(signum)
    try:
        return process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        pytest.fail(f"still running 30 s after signal {signum}; stderr: {stderr[-2000:]!r}")


def run(*args: str, code: int = 0) -> Result:
    """Invoke the CLI and check its exit code."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def run_json(*args: str, code: int = 0) -> dict[str, Any]:
    """Invoke with --json: stdout must be exactly one JSON object."""
    payload = json.loads(run(*args, "--json", code=code).stdout)
    assert isinstance(payload, dict)
    return payload


def _extras(defaults: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    data = yaml.safe_load(defaults.read_text())
    return data, data["connection_options"]["coopchain"]["extras"]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample inventory and templates, with state under tmp_path and a chain URL that
    nothing answers (the ``contract`` fixture points it at anvil)."""
    for name in ("inventory", "templates"):
        shutil.copytree(ROOT / name, tmp_path / name)
    defaults = tmp_path / "inventory" / "defaults.yaml"
    data, extras = _extras(defaults)
    data["connection_options"]["napalm"]["extras"]["optional_args"]["state_dir"] = "devices"
    extras.update(chain_url="http://127.0.0.1:9", state_dir="state")
    defaults.write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def contract(workdir: Path, own_anvil: AnvilProcess) -> str:
    """A fresh contract on anvil; its address and anvil's URL written into the inventory."""
    deployed = run_json("chain", "deploy", "--write-inventory", "--chain", own_anvil.url, *A)
    extras = _extras(workdir / "inventory" / "defaults.yaml")[1]
    assert (extras["contract"], extras["chain_url"]) == (deployed["contract"], own_anvil.url)
    return str(deployed["contract"])


def propose(title: str = "Build out site 17") -> dict[str, Any]:
    return run_json("propose", "--title", title, "--yes", *A)


def device_state(workdir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((workdir / "devices").glob("*"))}


@pytest.mark.anvil
def test_propose_vote_show_apply_audit(contract: str) -> None:
    proposed = propose()
    pid = str(proposed["proposal_id"])
    assert {device["host"] for device in proposed["devices"]} == {
        "site17-r1",
        "site17-r2",
        "site17-r3",
        "site17-r4",
    }
    assert all("+router bgp 65017" in device["diff"] for device in proposed["devices"])

    assert run_json("vote", pid, "approve", *B)["state"] == "Active"
    voted = run_json("vote", pid, "approve", *C)
    assert voted["state"] == "Approved"
    assert voted["tally"] == {"approve": 2, "reject": 0, "abstain": 0, "total": 2}

    listed = run_json("status")["proposals"]
    assert [(row["proposal_id"], row["state"]) for row in listed] == [(int(pid), "Approved")]
    detail = run_json("status", pid)
    assert detail["electorate"] == detail["voted"] == ["OPERATOR-B", "OPERATOR-C"]
    assert detail["apply_run"] == "0x" + "00" * 32  # no run has claimed the apply yet
    assert "Approved" in run("status").stdout

    shown = run_json("show", pid, "--rerender")
    assert shown["content_ok"] is True
    assert [device["diff"] for device in shown["devices"]] == [
        device["diff"] for device in proposed["devices"]
    ]
    assert all(device["rerender"]["match"] for device in shown["devices"])

    applied = run_json("apply", pid, "--wait", "5", *A)
    assert applied["state"] == "Verified"
    assert [device["status"] for device in applied["devices"]] == ["verified"] * 4

    assert "is Verified, no longer open" in run("vote", pid, "reject", *B, code=2).stderr
    assert "no proposal 99 on contract" in run("status", "99", code=2).stderr

    audited = run_json("audit", pid)
    assert audited["result"] == "pass"
    assert all(device["passed"] for device in audited["devices"])
    assert run_json("audit", pid, "--host", "site17-r4")["devices"][0]["host"] == "site17-r4"

    # A tenant audits its device from the proof file alone (tenant-private evidence).
    (proof,) = Path("state").glob("changes/*/proofs/site17-r3.json")
    alone = run_json("audit", pid, "--proof", str(proof))
    assert (alone["result"], alone["devices"][0]["host"]) == ("pass", "site17-r3")
    forged = json.loads(proof.read_text())
    forged["evidence"]["compliant"] = not forged["evidence"]["compliant"]
    Path("forged.json").write_text(json.dumps(forged, sort_keys=True, separators=(",", ":")))
    assert run_json("audit", pid, "--proof", "forged.json", code=1)["result"] == "fail"


@pytest.mark.anvil
def test_emergency_change_applied_before_the_vote_and_unratified_in_status(
    contract: str, workdir: Path
) -> None:
    refused = run_json("propose", "--title", "x", "--emergency", "--yes", *B, code=3)
    assert refused["error"]["type"] == "NotEmergencyRole"  # OPERATOR-B holds no such role
    later = ("--start", "+30", "--emergency", "--yes", *A)
    assert run_json("propose", "--title", "x", *later, code=2)["error"]["type"] == "ConfigError"

    declared = run_json(
        "propose", "--title", "Outage on r1", "--hosts", "site17-r1", "--emergency", "--yes", *A
    )
    pid = str(declared["proposal_id"])
    assert declared["emergency"] is True
    applied = run_json("apply", pid, *A)  # no vote needed first
    assert (applied["state"], applied["emergency"]) == ("Active", True)
    assert [device["status"] for device in applied["devices"]] == ["verified"]
    pending = run_json("status", pid)
    assert (pending["state"], pending["ratification"], pending["unratified"]) == (
        "Active",
        "pending",
        False,
    )
    assert pending["recorded"] is True
    assert pending["deadline"] == declared["ratify_by"]

    devices = device_state(workdir)
    assert run_json("vote", pid, "reject", *B)["state"] == "Rejected"
    unratified = run_json("status", pid)
    assert (unratified["state"], unratified["ratification"], unratified["unratified"]) == (
        "Rejected",
        "unratified",
        True,
    )
    assert "UNRATIFIED" in run("status", pid).stdout
    assert "UNRATIFIED" in run("status").stdout
    assert run_json("status")["proposals"][0]["unratified"] is True
    assert device_state(workdir) == devices  # an alarm, nothing reverted

    second = run_json(
        "propose", "--title", "Outage on r2", "--hosts", "site17-r2", "--emergency", "--yes", *A
    )
    pid = str(second["proposal_id"])
    run_json("apply", pid, *A)
    run_json("vote", pid, "approve", *B)
    assert run_json("vote", pid, "approve", *C)["state"] == "Verified"
    ratified = run_json("status", pid)
    assert (ratified["ratification"], ratified["unratified"]) == ("ratified", False)
    assert "ratified" in run("status", pid).stdout


@pytest.mark.anvil
def test_propose_shows_the_diffs_and_asks_first(contract: str) -> None:
    unanswered = CliRunner().invoke(app, ["propose", "--title", "Build out", *A], input="")
    assert unanswered.exit_code == 2, unanswered.output  # no terminal, no --yes: not "Aborted."
    assert "add --yes to propose without asking" in unanswered.stderr
    declined = CliRunner().invoke(app, ["propose", "--title", "Build out", *A], input="n\n")
    assert declined.exit_code == 3
    assert "declined: nothing was proposed" in declined.stderr
    assert "site17-r4 (eos)" in declined.stdout
    assert "+router bgp 65017" in declined.stdout
    assert "Propose this change of 4 device(s) on TOWER-017?" in declined.stderr
    assert run_json("status")["proposals"] == []

    accepted = CliRunner().invoke(app, ["propose", "--title", "Build out", *A], input="y\n")
    assert accepted.exit_code == 0, accepted.stderr
    assert "proposed #1" in accepted.stdout
    assert "Build out" in run("show", "1").stdout


@pytest.mark.anvil
def test_a_device_that_fails_verification_exits_1(contract: str, workdir: Path) -> None:
    pid = str(propose()["proposal_id"])
    run_json("vote", pid, "approve", *B)
    run_json("vote", pid, "approve", *C)
    hosts_file = workdir / "inventory" / "hosts.yaml"
    hosts = yaml.safe_load(hosts_file.read_text())
    drops = {"state_dir": "devices", "commit_drops": ["^ntp server"]}
    hosts["site17-r4"]["connection_options"] = {"napalm": {"extras": {"optional_args": drops}}}
    hosts_file.write_text(yaml.safe_dump(hosts))

    applied = run_json("apply", pid, *A, code=1)
    assert applied["state"] == "VerificationFailed"
    statuses = {device["host"]: device["status"] for device in applied["devices"]}
    assert statuses.pop("site17-r4") in ("rolled back", "failed")
    assert set(statuses.values()) == {"verified"}
    audited = run_json("audit", pid, code=1)
    assert audited["result"] == "fail"
    assert [d["host"] for d in audited["devices"] if not d["passed"]] == ["site17-r4"]


@pytest.mark.anvil
def test_signed_ballots_go_in_one_transaction(
    contract: str, workdir: Path, own_anvil: AnvilProcess
) -> None:
    pid = str(propose()["proposal_id"])
    for voter, file in ((B, "b.json"), (C, "c.json")):
        run_json("sign-ballot", pid, "approve", "--out", file, *voter)

    refused = run("sign-ballot", pid, "approve", "--out", "x.json", "--dev-account", "5", code=2)
    assert "is not a member" in refused.stderr
    tampered = json.loads((workdir / "b.json").read_text()) | {"support": 1}
    (workdir / "tampered.json").write_text(json.dumps(tampered))
    bad = run("submit-ballots", "tampered.json", *A, code=2)
    assert "tampered.json: signature: signed by" in bad.stderr

    submitted = run_json("submit-ballots", "b.json", "c.json", *A)
    assert submitted["ballots"] == 2
    assert submitted["proposals"][0]["state"] == "Approved"
    with ChainClient.connect(own_anvil.url) as client:
        receipt = client.w3.eth.get_transaction_receipt(submitted["tx_hash"])
        votes = CoopChain(client, contract).decode_logs(receipt["logs"])
    assert sum(isinstance(event, VoteCast) for event in votes) == 2


@pytest.mark.anvil
def test_watch_stops_cleanly_when_killed(contract: str, workdir: Path) -> None:
    watch = [*CLI, "watch", "--policy", "inventory/policies/operator-b.yaml", *B]
    process = subprocess.Popen(
        [*watch, "--interval", "0.2"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )
    try:
        assert process.stderr is not None
        assert b"watching" in process.stderr.readline()
    finally:
        stdout, stderr = stop(process, signal.SIGTERM)
    assert process.returncode == 0, stderr[-2000:]
    assert b"no new proposals" in stdout


@pytest.mark.anvil
def test_watch_votes_and_a_rejected_change_is_not_applied(contract: str, workdir: Path) -> None:
    pid = propose()["proposal_id"]
    policy = ("--policy", "inventory/policies/operator-b.yaml")
    watched = run_json("watch", *policy, "--max-polls", "1", *B)
    [action] = watched["actions"]
    assert (action["proposal_id"], action["vote"], action["rule"]) == (
        pid,
        "Reject",
        "hands-off-my-stanzas",
    )
    assert run_json("watch", *policy, "--max-polls", "1", *B)["actions"] == []
    assert run_json("status", str(pid))["state"] == "Rejected"

    before = device_state(workdir)
    refused = run_json("apply", str(pid), *A, code=3)
    assert refused["error"]["type"] == "ChangeRefused"
    assert "Rejected" in refused["error"]["message"]
    assert device_state(workdir) == before


def test_propose_json_needs_yes(workdir: Path) -> None:
    result = run("propose", "--title", "x", "--json", code=2)
    assert json.loads(result.stdout)["error"]["type"] == "ConfigError"
    assert "--yes" in result.stderr


def test_propose_without_a_resource_set_is_refused_before_the_chain_is_asked(
    workdir: Path,
) -> None:
    defaults = workdir / "inventory" / "defaults.yaml"
    data, extras = _extras(defaults)
    extras.pop("resource_set", None)
    defaults.write_text(yaml.safe_dump(data))
    result = run("propose", "--title", "x", "--yes", *A, code=2)  # the chain URL answers not
    assert "no resource set: pass --resource-set" in result.stderr


def test_bad_deployment_file_names_file_and_field(workdir: Path) -> None:
    spec = yaml.safe_load((workdir / "inventory" / "deployment.yaml").read_text())
    spec["members"][1]["weight"] = 0
    (workdir / "bad.yaml").write_text(yaml.safe_dump(spec))
    result = run("chain", "deploy", "bad.yaml", *A, code=2)
    assert "bad.yaml: members.1.weight:" in result.stderr


def test_plain_private_key_in_inventory_is_refused(workdir: Path) -> None:
    defaults = workdir / "inventory" / "defaults.yaml"
    data, extras = _extras(defaults)
    extras["keystore"] = PLAIN_KEY
    defaults.write_text(yaml.safe_dump(data))
    result = run("status", code=2)
    assert "KeystoreError" in result.stderr
    assert "keystore: a plain private key is not accepted" in result.stderr
    assert "coopchain init" in result.stderr
    assert PLAIN_KEY[2:] not in result.stdout + result.stderr


def test_embedded_chain_is_refused_outside_demo(workdir: Path) -> None:
    result = run("status", "--chain", "embedded://", code=2)
    assert "chain_url" in result.stderr
    assert "coopchain chain up" in result.stderr


def test_init_scaffolds_a_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COOPCHAIN_TEST_PASSWORD", "correct horse")
    args = ("init", "site", "--operator", "OPERATOR-A", "--password", "env:COOPCHAIN_TEST_PASSWORD")
    first = run_json(*args)
    site = tmp_path / "site"
    assert (first["inventory"], first["templates"], first["keystore_created"]) == (
        "copied",
        "copied",
        True,
    )
    keystore = site / "keys" / "operator-a.json"
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    defaults = (site / "inventory" / "defaults.yaml").read_text()
    extras = _extras(site / "inventory" / "defaults.yaml")[1]
    assert extras["keystore"] == "keys/operator-a.json"
    assert extras["password"] == "env:COOPCHAIN_TEST_PASSWORD"
    assert extras["operator"] == "OPERATOR-A"
    assert extras["chain_url"] == "http://127.0.0.1:8545"
    assert "correct horse" not in defaults + json.dumps(first)
    assert "# This operator's coopchain session" in defaults  # comments kept
    assert load_keystore(keystore, "correct horse").address == first["address"]

    again = run_json(*args)
    assert (again["inventory"], again["keystore_created"]) == ("present", False)
    assert again["address"] == first["address"]


@pytest.mark.anvil
@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_chain_up_serves_dev_accounts_and_saves_state(
    tmp_path: Path, anvil: AnvilProcess, sigint: str
) -> None:
    """Ctrl-C stops it, also when it starts with SIGINT ignored (as a background job of a
    non-interactive shell does: Python then leaves SIGINT ignored)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    state = tmp_path / "anvil-state.json"
    up = [*CLI, "chain", "up", "--port", port, "--state", str(state), "--json"]
    if sigint == "ignored":  # exec keeps the ignored disposition, and the pid
        up = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *up]
    process = subprocess.Popen(
        up,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        served = json.loads(process.stdout.readline())
        assert served["url"] == f"http://127.0.0.1:{port}"
        assert served["dev_accounts"][1] == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
        assert "publicly known" in served["dev_keys"]
    finally:
        _, stderr = stop(process, signal.SIGINT)
    assert process.returncode == 0, stderr[-2000:]
    assert b"state saved" in stderr
    assert state.is_file()


def test_demo_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    report = run_json("demo")
    assert report["proposal_id"] == 1
    assert report["verdict"] == "Approved"
    assert report["devices"] == 4
    assert report["verified"] is True
    assert report["chain_txs"] >= 3
    assert report["audit"] == "pass"
    assert report["rejected_proposal"]["devices_touched"] == 0


# ---------------------------------------------------------------- co-owners who do not trust

SITE_HOSTS = ("site17-r1", "site17-r2", "site17-r3", "site17-r4")


def _approved() -> str:
    pid = str(propose()["proposal_id"])
    run_json("vote", pid, "approve", *B)
    assert run_json("vote", pid, "approve", *C)["state"] == "Approved"
    return pid


def _slow_commits(workdir: Path) -> None:
    """Every simulated device takes 2 s to commit (so that runs overlap)."""
    defaults = workdir / "inventory" / "defaults.yaml"
    data = yaml.safe_load(defaults.read_text())
    data["connection_options"]["napalm"]["extras"]["optional_args"]["method_latency"] = {
        "commit_config": 2
    }
    defaults.write_text(yaml.safe_dump(data))


def _commit_does_not_stick(workdir: Path, host: str) -> None:
    """The simulated ``host`` drops the OPERATOR-C lines of every commit (its read-back
    fails, and it is rolled back to its base)."""
    hosts_file = workdir / "inventory" / "hosts.yaml"
    hosts = yaml.safe_load(hosts_file.read_text())
    defaults = yaml.safe_load((workdir / "inventory" / "defaults.yaml").read_text())
    optional = defaults["connection_options"]["napalm"]["extras"]["optional_args"]
    extras = {"optional_args": {**optional, "commit_drops": ["OPERATOR-C"]}}
    hosts[host]["connection_options"] = {"napalm": {"extras": extras}}
    hosts_file.write_text(yaml.safe_dump(hosts))


def _other_state_dir(workdir: Path) -> str:
    """A copy of the inventory whose operator keeps its state in ``state-b``."""
    shutil.copytree(workdir / "inventory", workdir / "inventory-b")
    defaults = workdir / "inventory-b" / "defaults.yaml"
    data, extras = _extras(defaults)
    extras["state_dir"] = "state-b"
    defaults.write_text(yaml.safe_dump(data))
    return "inventory-b"


def _commits(workdir: Path) -> dict[str, int]:
    """How many commits each simulated device applied."""
    files = {path.stem: path for path in (workdir / "devices").glob("*.json")}
    return {
        host: json.loads(files[host].read_text())["commits"] if host in files else 0
        for host in SITE_HOSTS
    }


def _spawn(workdir: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*CLI, *args, "--json"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )


def _finish(process: subprocess.Popen[bytes]) -> tuple[int, dict[str, Any]]:
    """Wait (bounded) for a spawned CLI run; its exit code and its JSON object."""
    try:
        stdout, stderr = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"still running after 180 s: {process.communicate()[1][-2000:]!r}")
    assert b"Traceback" not in stderr, stderr[-3000:]
    return process.returncode, json.loads(stdout)


def _concurrently(workdir: Path, *runs: tuple[str, ...]) -> list[tuple[int, dict[str, Any]]]:
    processes = [_spawn(workdir, *args) for args in runs]
    return [_finish(process) for process in processes]


@pytest.mark.anvil
def test_two_applies_from_one_state_directory_push_each_device_once(
    contract: str, workdir: Path
) -> None:
    pid = _approved()
    _slow_commits(workdir)
    before = _commits(workdir)
    results = _concurrently(workdir, ("apply", pid, *A), ("apply", pid, *A))
    assert _commits(workdir) == {host: count + 1 for host, count in before.items()}
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 3]), results
    for code, payload in results:
        if code == 3:  # the lock: one apply at a time from one state directory
            assert payload["error"]["type"] == "ChangeRefused"
            assert "being applied by another process" in payload["error"]["message"]
        else:  # the winner, or a run that started once it was over (resumed)
            assert payload["state"] == "Verified"
    assert run_json("audit", pid)["result"] == "pass"


@pytest.mark.anvil
def test_the_proposer_in_two_state_directories_pushes_each_device_once(
    contract: str, workdir: Path
) -> None:
    """No lock is shared, and one device's commit does not stick (its rollback restores the
    very base a second run's in-commit check expects): the claim on chain lets one run push,
    the other is refused before any device (or, started after the record, says that another
    run recorded it)."""
    pid = _approved()
    _slow_commits(workdir)
    _commit_does_not_stick(workdir, "site17-r3")
    other = _other_state_dir(workdir)
    before = _commits(workdir)
    results = _concurrently(workdir, ("apply", pid, *A), ("apply", pid, *A, "--inventory", other))
    assert _commits(workdir) == {host: count + 1 for host, count in before.items()}
    assert sorted(code for code, _ in results) == [1, 3], results  # r3 failed; one refused
    for inventory, (code, payload) in zip(("inventory", other), results, strict=True):
        if code == 3:
            assert payload["error"]["type"] in ("ClaimedByAnotherRun", "AlreadyRecorded")
            assert "another run" in payload["error"]["message"]
        else:
            assert payload["state"] == "VerificationFailed"
            assert [d["host"] for d in payload["devices"] if not d["verified"]] == ["site17-r3"]
            winner = inventory
    assert run_json("status", pid)["state"] == "VerificationFailed"
    assert run_json("audit", pid, "--inventory", winner, code=1)["result"] == "fail"


@pytest.mark.anvil
def test_a_run_refused_by_the_claim_names_the_run_and_takes_it_over_when_told(
    contract: str, workdir: Path
) -> None:
    """A run whose state directory is lost after its claim blocks every other run, which
    names it; `--take-over RUN_ID` pushes from another state directory."""
    pid = _approved()
    _slow_commits(workdir)
    other = _other_state_dir(workdir)
    before = _commits(workdir)
    process = _spawn(workdir, "apply", pid, *A)
    deadline = time.monotonic() + 60
    while not int(claimed := run_json("status", pid)["apply_run"], 16):  # its claim mined
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the apply never claimed the change"
        time.sleep(0.05)
    process.kill()  # kill -9, then its state directory is lost
    process.communicate()
    shutil.rmtree(workdir / "state")
    refused = run_json("apply", pid, *A, "--inventory", other, code=3)["error"]
    assert refused["type"] == "ClaimedByAnotherRun"
    assert f"--take-over {claimed}" in refused["message"]
    assert "touched no device" in refused["message"]
    taken = run_json("apply", pid, *A, "--inventory", other, "--take-over", claimed)
    assert taken["state"] == "Verified"
    assert run_json("status", pid)["apply_run"] != claimed
    # whatever the killed run committed is verified, not pushed again
    assert _commits(workdir) == {host: count + 1 for host, count in before.items()}


@pytest.mark.anvil
def test_a_member_who_is_neither_proposer_nor_executor_touches_no_device(
    contract: str, workdir: Path
) -> None:
    pid = _approved()
    _slow_commits(workdir)
    other = _other_state_dir(workdir)
    before = _commits(workdir)
    (owner_code, owner), (tenant_code, tenant) = _concurrently(
        workdir, ("apply", pid, *A), ("apply", pid, *B, "--inventory", other)
    )
    assert (owner_code, owner["state"]) == (0, "Verified")
    assert tenant_code == 3
    assert "only its proposer or executor may apply" in tenant["error"]["message"]
    assert "its proposer is OPERATOR-A" in tenant["error"]["message"]
    assert _commits(workdir) == {host: count + 1 for host, count in before.items()}
    assert run_json("audit", pid)["result"] == "pass"


def _wait_for_push(state: Path, process: subprocess.Popen[bytes]) -> None:
    """Wait (bounded, 120 s) until the apply under ``state`` notes its first device's push."""
    for _ in range(2400):
        if any(state.glob("changes/*/hosts/*.pushing")):
            return
        if process.poll() is not None:
            pytest.fail(f"ended before a push: {process.communicate()[1][-2000:]!r}")
        time.sleep(0.05)
    pytest.fail("no push noted within 120 s")


def _wait_for_phase(state: Path, phase: str, process: subprocess.Popen[bytes]) -> None:
    """Wait (bounded, 120 s) until a journal under ``state`` reaches ``phase``."""
    for _ in range(2400):
        for journal in state.glob("changes/*/journal.json"):
            with contextlib.suppress(ValueError, OSError):
                if json.loads(journal.read_text())["phase"] == phase:
                    return
        if process.poll() is not None:
            pytest.fail(f"ended before {phase!r}: {process.communicate()[1][-2000:]!r}")
        time.sleep(0.05)
    pytest.fail(f"no journal reached {phase!r} within 120 s")


@pytest.mark.anvil
def test_ctrl_c_while_applying_names_the_devices_pushed_and_a_rerun_resumes(
    contract: str, workdir: Path
) -> None:
    pid = _approved()
    _slow_commits(workdir)
    before = _commits(workdir)
    process = _spawn(workdir, "apply", pid, *A)
    _wait_for_phase(workdir / "state", "applying", process)
    stdout, stderr = stop(process, signal.SIGINT)
    assert process.returncode == 130, stderr[-2000:]
    assert b"Traceback" not in stderr
    error = json.loads(stdout)["error"]
    assert (error["type"], error["exit_code"]) == ("Interrupted", 130)
    assert f"Run `coopchain apply {pid}` again to resume" in error["message"]
    assert b"Interrupted" in stderr
    after = _commits(workdir)
    assert sorted(error["pushed"]) == [h for h in SITE_HOSTS if after[h] != before[h]]
    assert run_json("status", pid)["state"] == "Approved"  # nothing recorded
    [journal] = run_json("journal", "list")["journals"]
    assert journal["devices_begun"] == journal["devices_done"]  # the pushes in flight ended
    assert sorted(error["pushed"]) == journal["devices_done"]
    if journal["devices_begun"]:  # then it pushed under its claim
        assert journal["apply_run"] == run_json("status", pid)["apply_run"]

    resumed = run_json("apply", pid, *A)
    assert resumed["state"] == "Verified"
    assert _commits(workdir) == {host: count + 1 for host, count in before.items()}
    assert run_json("audit", pid)["result"] == "pass"


@pytest.mark.anvil
def test_chain_lost_while_applying_exits_4_naming_the_devices_pushed(workdir: Path) -> None:
    from needs import needs_anvil

    from nornir_coopchain.chain.devchain import start_anvil

    needs_anvil()
    with start_anvil() as anvil:  # this test's own: it stops it mid-apply
        run_json("chain", "deploy", "--write-inventory", "--chain", anvil.url, *A)
        pid = _approved()
        _slow_commits(workdir)
        before = _commits(workdir)
        process = _spawn(workdir, "apply", pid, *A)
        _wait_for_push(workdir / "state", process)  # claimed, pushing
        anvil.stop()
        code, payload = _finish(process)
    assert code == 4, payload
    error = payload["error"]
    assert error["type"] == "ChainConnectionError"
    after = _commits(workdir)
    pushed = ", ".join(h for h in SITE_HOSTS if after[h] != before[h])
    assert f"pushed by this run: {pushed}; not pushed: none" in error["message"]
    assert f"Run `coopchain apply {pid}` again to resume" in error["message"]
