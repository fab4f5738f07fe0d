"""``coopchain watch`` as an unattended service: notices by webhook and e-mail, JSON lines,
and a chain that goes away and comes back. Receivers run on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from needs import needs_anvil
from typer.testing import CliRunner

from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.devchain import AnvilProcess, DevChain, start_anvil
from nornir_coopchain.chain.models import VoteCast
from nornir_coopchain.cli import app
from nornir_coopchain.notify import Notice, WebhookNotifier

ROOT = Path(__file__).resolve().parents[1]
CLI = (sys.executable, "-c", "from nornir_coopchain.cli import app; app()")
A, B, C = ("--dev-account", "0"), ("--dev-account", "1"), ("--dev-account", "2")
DEFER = {"operator": "OPERATOR-B", "my_stanzas": [], "rules": [], "default": "defer"}


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result.stdout


def run_json(*args: str, code: int = 0) -> dict[str, Any]:
    payload = json.loads(run(*args, "--json", code=code))
    assert isinstance(payload, dict)
    return payload


class _Receiver(BaseHTTPRequestHandler):
    bodies: queue.Queue[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.bodies.put(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def webhook() -> Iterator[tuple[str, queue.Queue[dict[str, Any]]]]:
    """A local webhook receiver: its URL and the JSON bodies it was sent."""
    bodies: queue.Queue[dict[str, Any]] = queue.Queue()
    handler = type("Handler", (_Receiver,), {"bodies": bodies})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    finally:
        server.shutdown()
        server.server_close()


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[str, _Mailbox]]:
    """A local SMTP server (aiosmtpd): its HOST:PORT and the messages it received."""
    mailbox = _Mailbox()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"127.0.0.1:{port}", mailbox
    finally:
        controller.stop()


@pytest.fixture
def site(sample_site: Path) -> Path:
    """The sample site with a policy for B that leaves every vote to a human."""
    (sample_site / "defer.yaml").write_text(yaml.safe_dump(DEFER))
    return sample_site


def _take(bodies: queue.Queue[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """Exactly ``count`` bodies posted so far (10 s for each at most)."""
    taken = [bodies.get(timeout=10) for _ in range(count)]
    assert bodies.empty()
    return taken


def _deploy(url: str) -> str:
    return str(run_json("chain", "deploy", "--write-inventory", "--chain", url, *A)["contract"])


def test_webhook_payloads_for_slack_and_teams(
    webhook: tuple[str, queue.Queue[dict[str, Any]]],
) -> None:
    url, bodies = webhook
    notice = Notice(
        kind="verdict", proposal_id=3, contract="0x1", operator="OPERATOR-B", text="#3 Approved"
    )
    assert WebhookNotifier(url, "slack").send(notice)
    assert bodies.get(timeout=10) == {"text": "*[coopchain] verdict: #3*\n#3 Approved"}
    assert WebhookNotifier(url, "teams").send(notice)
    card = bodies.get(timeout=10)
    assert (card["@type"], card["summary"], card["text"]) == (
        "MessageCard",
        "[coopchain] verdict: #3",
        "#3 Approved",
    )
    assert not WebhookNotifier("http://127.0.0.1:9/nothing").send(notice)  # logged, not raised


@pytest.mark.anvil
def test_watch_notifies_by_webhook_and_email_and_prints_json_lines(
    site: Path,
    own_anvil: AnvilProcess,
    webhook: tuple[str, queue.Queue[dict[str, Any]]],
    smtp: tuple[str, _Mailbox],
) -> None:
    url, bodies = webhook
    server, mailbox = smtp
    _deploy(own_anvil.url)
    run("sim", "build", "--without", "OPERATOR-C")
    notify = ("--notify-webhook", url, "--notify-email", "noc@example.net", "--smtp", server)
    watch = ("watch", "--policy", "defer.yaml", "--max-polls", "1", "--json-lines", *notify, *B)

    pid = str(run_json("propose", "--title", "Turn up OPERATOR-C", "--yes", *A)["proposal_id"])
    verbose = CliRunner().invoke(app, ["-v", *watch])
    assert verbose.exit_code == 0, verbose.stderr
    assert f"INFO nornir_coopchain.voter.watch: proposal {pid}:" in verbose.stderr
    lines = [json.loads(line) for line in verbose.stdout.splitlines()]
    events = {line["event"]: line for line in lines}
    assert sorted(line["event"] for line in lines) == ["action", "notice", "stopped"]
    assert events["action"]["needs_human"] is True
    assert (events["notice"]["kind"], events["notice"]["proposal_id"]) == ("vote-needed", int(pid))

    run_json("vote", pid, "approve", *B)
    run_json("vote", pid, "approve", *C)
    hosts_file = site / "inventory" / "hosts.yaml"
    hosts = yaml.safe_load(hosts_file.read_text())
    drops = {"state_dir": "devices", "commit_drops": ["^ntp server"]}
    hosts["site17-r4"]["connection_options"] = {"napalm": {"extras": {"optional_args": drops}}}
    hosts_file.write_text(yaml.safe_dump(hosts))
    assert run_json("apply", pid, *A, code=1)["state"] == "VerificationFailed"

    emergency = ("--hosts", "site17-r4", "--emergency", "--yes", *A)
    second = str(run_json("propose", "--title", "Outage on r4", *emergency)["proposal_id"])
    run_json("vote", second, "reject", *B)
    text = run(*(arg for arg in watch if arg != "--json-lines"))
    assert f"#{second}: nothing to do: already Rejected" in text  # not "left to a human"
    assert "left to a human" not in text
    assert "notice unratified-emergency: emergency change 2 was NOT ratified" in text

    expected = [
        ("vote-needed", 1),
        ("verdict", 1),
        ("recorded", 1),
        ("verification-failed", 1),
        ("verdict", 2),
        ("unratified-emergency", 2),
    ]
    posted = [bodies.get(timeout=10) for _ in expected]
    assert bodies.empty()
    assert sorted((body["kind"], body["proposal_id"]) for body in posted) == sorted(expected)
    assert all(body["operator"] == "OPERATOR-B" for body in posted)
    subjects = sorted(str(message["Subject"]) for message in mailbox.messages)
    assert subjects == sorted(f"[coopchain] {kind}: #{pid}" for kind, pid in expected)
    assert all(message["To"] == "noc@example.net" for message in mailbox.messages)


def _read_lines(process: subprocess.Popen[str], into: queue.Queue[dict[str, Any]]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        into.put(json.loads(line))


def _next(lines: queue.Queue[dict[str, Any]], event: str) -> dict[str, Any]:
    """The next JSON line of this event (120 s at most)."""
    deadline = time.monotonic() + 120
    while True:
        line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
        if line["event"] == event:
            return line


@pytest.mark.anvil
@pytest.mark.slow
def test_watch_waits_for_the_chain_survives_its_restart_and_never_votes_twice(
    site: Path, tmp_path: Path
) -> None:
    needs_anvil()
    state = tmp_path / "anvil-state.json"
    chain = start_anvil(extra_args=["--state", str(state)])
    contract = _deploy(chain.url)
    run("sim", "build", "--without", "OPERATOR-C")
    chain.stop()  # the watcher starts while the chain is down
    policy = "inventory/policies/operator-b.yaml"
    watch = [*CLI, "watch", "--policy", policy, "--interval", "0.2", "--json-lines", *B]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(watch, cwd=site, env=env, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[dict[str, Any]] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process, lines), daemon=True).start()
    try:
        assert "cannot reach node" in _next(lines, "outage")["error"]
        chain = start_anvil(port=chain.port, extra_args=["--state", str(state)])
        first = run_json("propose", "--title", "Turn up OPERATOR-C", "--yes", *A)["proposal_id"]
        assert (_next(lines, "action")["proposal_id"], "Approve") == (first, "Approve")
        chain.stop()  # anvil saves its state on the way out
        assert "error" in _next(lines, "outage")
        chain = start_anvil(port=chain.port, extra_args=["--state", str(state)])
        hosts = ("--hosts", "site17-r1")
        second = run_json("propose", "--title", "r1 only", *hosts, "--start", "+1", "--yes", *A)
        action = _next(lines, "action")
        assert (action["proposal_id"], action["vote"]) == (second["proposal_id"], "Approve")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        chain.stop()
    assert process.returncode == 0
    stopped = _next(lines, "stopped")
    assert stopped["actions"] == 2  # each proposal handled once, across the restart
    chain = start_anvil(extra_args=["--state", str(state)])
    with chain, ChainClient.connect(chain.url) as client:
        events = CoopChain(client, contract).events(0)
    votes = [event for event in events if isinstance(event, VoteCast)]
    b_votes = [
        (vote.proposal_id, vote.support.name) for vote in votes if vote.voter.endswith("79C8")
    ]
    assert b_votes == [(first, "Approve"), (second["proposal_id"], "Approve")]


@pytest.mark.anvil
def test_a_verdict_by_deadline_is_told_after_a_watcher_restart(
    site: Path, own_anvil: AnvilProcess, webhook: tuple[str, queue.Queue[dict[str, Any]]]
) -> None:
    """No event marks a vote that ends by its deadline: the watcher keeps the open proposals
    beside its cursor and tells their verdict, and an emergency change left unratified."""
    url, bodies = webhook
    _deploy(own_anvil.url)
    watch = ("watch", "--policy", "defer.yaml", "--max-polls", "1", "--notify-webhook", url, *B)
    ordinary = run_json("propose", "--title", "Turn up", "--yes", *A)["proposal_id"]
    emergency = ("--hosts", "site17-r1", "--emergency", "--yes", *A)
    declared = run_json("propose", "--title", "Outage on r1", *emergency)["proposal_id"]
    run(*watch)
    needed = sorted((body["kind"], body["proposal_id"]) for body in _take(bodies, 2))
    assert needed == [("vote-needed", ordinary), ("vote-needed", declared)]
    with ChainClient.connect(own_anvil.url) as client:
        DevChain(client).increase_time(2 * 3600)  # past both voting deadlines (1 h)
    run(*watch)  # a new process: what is open comes from the state directory
    told = _take(bodies, 3)
    kinds = sorted((body["kind"], body["proposal_id"]) for body in told)
    assert kinds == sorted(
        [("verdict", ordinary), ("verdict", declared), ("unratified-emergency", declared)]
    )
    verdicts = [body for body in told if body["kind"] == "verdict"]
    outcomes = {body["proposal_id"]: body["details"]["outcome"] for body in verdicts}
    assert outcomes[declared] == "Rejected"
    assert outcomes[ordinary] in ("Expired", "Rejected")
