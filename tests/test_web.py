"""The dashboard (``coopchain serve``) through Starlette's TestClient on the embedded chain:
the sample site 17 with one recorded change (#1) and one open proposal (#2)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from coop_helpers import propose
from eth_account import Account
from nornir.core.inventory import ConnectionOptions
from starlette.testclient import TestClient
from typer.testing import CliRunner
from web_site import HOSTS, REPO, SITE, WebSite, build_site

from nornir_coopchain import session as sessions
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.eip712 import proposal_digest
from nornir_coopchain.cli import app as cli
from nornir_coopchain.gate import audit_change, audit_proof, run_emergency_change
from nornir_coopchain.journal import Journal
from nornir_coopchain.model.content import EvidenceProof, EvidenceReport
from nornir_coopchain.model.rules import AggregationRule, VoteType
from nornir_coopchain.web import Dashboard, create_app

RECORDED, OPEN = 1, 2


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebSite]:
    with ChainClient.connect("embedded://", receipt_timeout=10) as chain:
        built = build_site(chain, tmp_path_factory.mktemp("site"))
        assert (built.recorded_change(), built.open_proposal()) == (RECORDED, OPEN)
        yield built
        built.nr.close_connections()
        sessions.forget_all()


@pytest.fixture
def client(site: WebSite) -> TestClient:
    web = create_app(site.dashboard(), operator="OPERATOR-A", poll_interval=0.01, stream_rounds=1)
    return TestClient(web)


def _journal(site: WebSite, proposal_id: int) -> Journal:
    journal = Journal.find(
        site.owner.settings.journal_dir(),
        chain_id=site.chain.chain_id,
        contract=site.coop.address,
        proposal_id=proposal_id,
    )
    assert journal is not None
    return journal


def test_list_shows_each_proposal_with_window_state_votes_and_rule(
    site: WebSite, client: TestClient
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "Turn up OPERATOR-C" in page.text
    assert "Widen OPERATOR-B&#39;s accepted prefixes" in page.text
    info = site.coop.proposal(RECORDED)
    listed = {row["proposal_id"]: row for row in client.get("/api/proposals").json()["proposals"]}
    row = listed[RECORDED]
    assert row["window"]["start_iso"].endswith("+00:00")
    assert row["window"]["start"] == info.window_start
    assert row["window"]["start_iso"] in page.text
    assert (row["state"], row["proposer_operator"], row["resource_set"]) == (
        "Verified",
        "OPERATOR-A",
        "TOWER-017",
    )
    assert row["votes"] | {"threshold": None} == {
        "approve": 2,
        "reject": 0,
        "abstain": 0,
        "total": 2,
        "rule": "Supermajority",
        "threshold": None,
        "threshold_bps": 6667,
        "quorum_bps": 5000,
        "current_rule": None,  # the set's rule has not changed since
        "current_threshold": None,
    }
    assert "66.67%" in row["votes"]["threshold"]
    assert (row["emergency"], row["unratified"], row["recorded"]) == (False, False, True)
    assert listed[OPEN]["state"] == "Active"


def test_list_filters_by_state_and_resource_set(client: TestClient) -> None:
    def ids(query: str) -> list[int]:
        answer = client.get(f"/api/proposals?{query}")
        assert answer.status_code == 200
        return [row["proposal_id"] for row in answer.json()["proposals"]]

    assert ids("") == [OPEN, RECORDED]
    assert ids("state=Verified") == [RECORDED]
    assert ids("state=Active&resource_set=TOWER-017") == [OPEN]
    assert ids("resource_set=TOWER-999") == []
    page = client.get("/?state=Verified")
    assert "Turn up OPERATOR-C" in page.text
    assert "Widen OPERATOR-B" not in page.text
    assert client.get("/?state=Bogus").status_code == 400


def test_proposal_shows_coloured_diffs_with_tenants_per_hunk(client: TestClient) -> None:
    detail = client.get(f"/api/proposals/{RECORDED}").json()
    assert [device["host"] for device in detail["devices"]] == list(HOSTS)
    for device in detail["devices"]:
        changed = [hunk for hunk in device["hunks"] if hunk["changed"]]
        assert changed
        assert all(hunk["tenants"] == ["OPERATOR-C"] for hunk in changed)
        assert ["file", "--- running"] in device["hunks"][0]["lines"]
    page = client.get(f"/proposals/{RECORDED}").text
    assert '<span class="l-add">+ip route 198.18.31.0/24' in page
    assert 'touches <mark class="tenant">OPERATOR-C</mark>' in page


def test_proposal_shows_the_signed_request_timeline_verdict_and_outcome(
    site: WebSite, client: TestClient
) -> None:
    detail = client.get(f"/api/proposals/{RECORDED}").json()
    info = site.coop.proposal(RECORDED)
    request = detail["request"]
    assert (request["number"], request["content_hash"], request["result"]) == (
        RECORDED,
        info.content_hash,
        "Verified",
    )
    assert request["timestamp"] == info.created_at
    signed, _ = site.coop.signed_request(RECORDED)
    digest = proposal_digest(site.chain.chain_id, site.coop.address, signed)
    signer = Account._recover_hash(digest, signature=bytes.fromhex(request["signature"][2:]))
    assert signer == request["participant"] == site.owner.account.address
    kinds = [event["kind"] for event in detail["timeline"]]
    assert kinds == [
        "ProposalCreated",
        "VoteCast",
        "VoteCast",
        "VerdictReached",
        "ApplyClaimed",
        "VerificationRecorded",
    ]
    claimed = next(e["summary"] for e in detail["timeline"] if e["kind"] == "ApplyClaimed")
    assert info.apply_run in claimed
    votes = [event["summary"] for event in detail["timeline"] if event["kind"] == "VoteCast"]
    assert votes == ["OPERATOR-B voted Approve (1 unit)", "OPERATOR-C voted Approve (1 unit)"]
    assert detail["verdict"].startswith("verdict Approved")
    assert {device["outcome"] for device in detail["devices"]} == {"verified"}
    assert {device["audit"] for device in detail["devices"]} == {"pass"}
    page = client.get(f"/proposals/{RECORDED}").text
    assert request["signature"] in page
    assert "OPERATOR-B voted Approve" in page


def test_evidence_root_audit_is_recomputed_from_the_journal(
    site: WebSite, client: TestClient
) -> None:
    detail = client.get(f"/api/proposals/{RECORDED}").json()
    recorded = site.coop.proposal(RECORDED).evidence_root
    expected = audit_change(site.coop, RECORDED, site.owner.settings.journal_dir())
    assert detail["audit"] == {
        "evidence_root": recorded,
        "recorded": True,
        "result": expected.result,
        "evidence_root_ok": True,
        "problems": [],
    }
    assert "audits (pass)" in client.get(f"/proposals/{RECORDED}").text
    evidence = _journal(site, RECORDED).path / "evidence.json"
    original = evidence.read_bytes()
    report = EvidenceReport.from_bytes(original)
    leaf = report.devices[0].model_copy(update={"compliant": False})
    tampered = report.model_copy(update={"devices": (leaf, *report.devices[1:])})
    try:
        evidence.write_bytes(tampered.canonical_bytes())
        detail = client.get(f"/api/proposals/{RECORDED}").json()
        page = client.get(f"/proposals/{RECORDED}").text
    finally:
        evidence.write_bytes(original)
    assert (detail["audit"]["result"], detail["audit"]["evidence_root_ok"]) == ("fail", False)
    assert "does not hash to the recorded evidence root" in detail["audit"]["problems"][0]
    assert "does not audit (fail)" in page


def test_proof_download_is_what_audit_proof_accepts(site: WebSite, client: TestClient) -> None:
    answer = client.get(f"/proposals/{RECORDED}/proofs/site17-r3.json")
    assert answer.status_code == 200
    disposition = answer.headers["content-disposition"]
    assert disposition == f'attachment; filename="proposal-{RECORDED}-site17-r3.json"'
    proof = EvidenceProof.from_bytes(answer.content)
    assert proof.evidence.host == "site17-r3"
    assert audit_proof(site.coop, RECORDED, proof).passed
    assert client.get(f"/api/proposals/{RECORDED}/proofs/site17-r3").content == answer.content
    page = client.get(f"/proposals/{RECORDED}").text
    assert f'href="/proposals/{RECORDED}/proofs/site17-r3.json" download' in page


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/proposals/99", 404, "no proposal 99"),
        ("/proposals/abc", 400, "not a proposal number"),
        ("/proposals/0", 400, "not a proposal number"),
        ("/proposals/-1", 400, "not a proposal number"),
        ("/proposals/99999999999999999999999", 400, "not a proposal number"),
        (f"/proposals/{RECORDED}/proofs/site99-r1.json", 404, "no evidence for host"),
        (f"/proposals/{OPEN}/proofs/site17-r1.json", 404, "keeps no evidence"),
        ("/api/events?from_block=x", 400, "not a block number"),
        ("/nowhere", 404, "no page at /nowhere"),
    ],
)
def test_bad_input_is_a_clear_page_and_status(
    client: TestClient, path: str, status: int, says: str
) -> None:
    page = client.get(path)
    assert page.status_code == status
    assert says in page.text
    assert "Traceback" not in page.text
    if path.startswith("/proposals/"):
        api = client.get("/api" + path.removesuffix(".json"))
        assert api.status_code == status
        assert says in api.json()["error"]["message"]


def test_chain_down_is_a_503_page_not_a_trace(site: WebSite) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed

    def connect() -> CoopChain:
        return CoopChain(ChainClient.connect(f"http://127.0.0.1:{port}"), site.coop.address)

    client = TestClient(create_app(Dashboard(connect, Path("unused"))))
    for path in ("/", f"/proposals/{RECORDED}"):
        page = client.get(path)
        assert page.status_code == 503
        assert "The chain cannot be used" in page.text
        assert "Traceback" not in page.text
    api = client.get("/api/proposals")
    assert api.status_code == 503
    assert api.json()["error"]["type"] == "ChainConnectionError"


def test_rendered_candidates_never_reach_the_page(site: WebSite, client: TestClient) -> None:
    candidates = _journal(site, RECORDED).path / "candidates.json"
    original = candidates.read_text()
    rendered = json.loads(original)
    secret = "neighbor 198.19.13.2 password S3cretNeverShown"
    try:
        candidates.write_text(json.dumps({host: f"{secret}\n" for host in rendered}))
        texts = [
            client.get(path).text
            for path in (
                "/",
                f"/proposals/{RECORDED}",
                f"/api/proposals/{RECORDED}",
                f"/proposals/{RECORDED}/proofs/site17-r1.json",
            )
        ]
    finally:
        candidates.write_text(original)
    assert not any("S3cretNeverShown" in text for text in texts)


def test_a_new_vote_comes_through_the_event_cursor_and_stream(
    site: WebSite, client: TestClient
) -> None:
    start = site.chain.block_number() + 1
    assert client.get(f"/api/events?from_block={start}").json()["events"] == []
    voter = site.voters["OPERATOR-B"].session.account
    site.coop.cast_vote(voter, OPEN, VoteType.Approve)
    batch = client.get(f"/api/events?from_block={start}").json()
    assert [(e["kind"], e["proposal_id"], e["summary"]) for e in batch["events"]] == [
        ("VoteCast", OPEN, "OPERATOR-B voted Approve (1 unit)")
    ]
    assert batch["next_block"] == site.chain.block_number() + 1
    assert client.get(f"/api/events?from_block={batch['next_block']}").json()["events"] == []
    stream = client.get("/api/events/stream", headers={"Last-Event-ID": str(start)})
    assert stream.headers["content-type"].startswith("text/event-stream")
    frames = [frame for frame in stream.text.split("\n\n") if "event: chain" in frame]
    assert len(frames) == 1
    assert f"id: {batch['next_block']}\n" in frames[0]
    assert json.loads(frames[0].split("data: ", 1)[1])["summary"].startswith("OPERATOR-B voted")
    assert client.get(f"/api/proposals/{OPEN}").json()["row"]["votes"]["approve"] == 1


def test_serve_refuses_the_embedded_chain_no_other_process_can_reach() -> None:
    result = CliRunner().invoke(cli, ["serve", "--inventory", str(REPO / "inventory")])
    assert result.exit_code == 2
    assert "embedded://" in result.output


def test_rolled_back_device_and_unratified_emergency_are_shown(tmp_path: Path) -> None:
    with ChainClient.connect("embedded://", receipt_timeout=10) as chain:
        site = build_site(chain, tmp_path)
        napalm = site.nr.inventory.defaults.connection_options["napalm"].extras or {}
        drops = {**napalm.get("optional_args", {}), "commit_drops": [r"OPERATOR-C"]}
        r3 = site.nr.inventory.hosts["site17-r3"]
        r3.connection_options["napalm"] = ConnectionOptions(extras={"optional_args": drops})
        r3.close_connections()
        failed = site.recorded_change()
        tenant_b = site.nr.inventory.groups["site17"].data["tenants"]["OPERATOR-B"]
        tenant_b["accept"] = [*tenant_b["accept"], {"prefix": "198.51.100.0/24"}]
        emergency = run_emergency_change(
            site.nr,
            site.owner,
            title="Outage: widen B's prefixes",
            window=site.window(),
            templates=site.templates,
        ).report.proposal_id
        site.voters["OPERATOR-B"].poll_once()  # B's policy rejects: never ratified
        client = TestClient(create_app(site.dashboard(), operator="OPERATOR-C"))
        detail = client.get(f"/api/proposals/{failed}").json()
        page = client.get(f"/proposals/{failed}").text
        rows = {row["proposal_id"]: row for row in client.get("/api/proposals").json()["proposals"]}
        listing = client.get("/").text
        site.nr.close_connections()
        sessions.forget_all()
    outcomes = {device["host"]: device for device in detail["devices"]}
    assert outcomes["site17-r3"]["outcome"] == "rolled back"
    assert outcomes["site17-r3"]["reason"]
    assert (outcomes["site17-r3"]["audit"], outcomes["site17-r1"]["audit"]) == ("fail", "pass")
    assert {outcomes[h]["outcome"] for h in ("site17-r1", "site17-r2", "site17-r4")} == {"verified"}
    assert (detail["row"]["state"], detail["audit"]["evidence_root_ok"]) == (
        "VerificationFailed",
        True,
    )
    assert 'class="o-rolled-back">rolled back</strong>' in page
    assert '<mark class="tenant tenant-me">OPERATOR-C</mark>' in page  # this node's tenancy
    assert (rows[emergency]["emergency"], rows[emergency]["unratified"]) == (True, True)
    assert (rows[failed]["emergency"], rows[failed]["unratified"]) == (False, False)
    assert "UNRATIFIED EMERGENCY" in listing


def test_a_proposal_shows_the_rule_it_was_created_under_after_governance_changed_it(
    tmp_path: Path,
) -> None:
    """An auditor's question: which rule decided this proposal? The one snapshotted when it
    was created, not the set's rule after a later governance change (said as well)."""
    with ChainClient.connect("embedded://", receipt_timeout=10) as chain:
        site = build_site(chain, tmp_path)
        before = site.open_proposal()
        coop, voters = site.coop, [v.session.account for v in site.voters.values()]
        simple = coop.resource_set(SITE).model_copy(
            update={"rule": AggregationRule.SimpleMajority, "threshold_bps": 0, "quorum_bps": 0}
        )
        calls = coop.governance_content([coop.configure_resource_set_call(SITE, simple)])
        owner = site.owner.account
        governance = propose(coop, owner, resource_set=coop.governance_set, content=calls)
        for voter in voters:
            coop.cast_vote(voter, governance.proposal_id, VoteType.Approve)
        coop.execute_governance(owner, governance.proposal_id, calls)
        after = propose(coop, owner, resource_set=SITE).proposal_id  # under the new rule
        client = TestClient(create_app(site.dashboard(), operator="OPERATOR-A"))
        rows = {row["proposal_id"]: row for row in client.get("/api/proposals").json()["proposals"]}
        detail = client.get(f"/api/proposals/{before}").json()
        page = client.get(f"/proposals/{before}").text
        listing = client.get("/").text
        site.nr.close_connections()
        sessions.forget_all()
    votes = rows[before]["votes"]
    assert (votes["rule"], votes["threshold_bps"], votes["quorum_bps"]) == (
        "Supermajority",
        6667,
        5000,
    )
    assert "66.67%" in votes["threshold"]
    assert (votes["current_rule"], votes["current_threshold"]) == (
        "SimpleMajority",
        "more approve than reject; any veto holder's reject rejects",
    )
    assert detail["row"]["votes"] == votes
    said = (
        "decided under Supermajority (the set's rule when proposed); the set's rule is now "
        "SimpleMajority: more approve than reject"
    )
    assert said in page
    assert said in listing
    assert (rows[after]["votes"]["rule"], rows[after]["votes"]["current_rule"]) == (
        "SimpleMajority",
        None,
    )
