"""Chains without instant finality: ``confirmations`` deep reads, on anvil with
``anvil_rollback`` standing in for a reorg (the rolled-back blocks' transactions are gone,
as on the losing side of a fork); and a voter whose node fails a poll.

The proposer's client wants 2 confirmations; blocks come only when the test mines them
(a background miner while it should, ``anvil_mine`` otherwise), so each step is ordered.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chain_faults import Miner, rollback
from rpc_proxy import RpcProxy

from nornir_coopchain import session as sessions
from nornir_coopchain.chain.accounts import dev_accounts
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.devchain import AnvilProcess, DevChain
from nornir_coopchain.chain.models import VerificationRecorded
from nornir_coopchain.demo import build_out, deploy_with_dev_keys, init_site
from nornir_coopchain.exceptions import ChainConnectionError, ChangeRefused
from nornir_coopchain.gate import (
    ChangeOutcome,
    VerdictTimeout,
    apply_change,
    audit_change,
    build_content,
    prepare_change,
    propose_change,
    wait_for_verdict,
)
from nornir_coopchain.gate.declared import inventory_tenant_patterns
from nornir_coopchain.model.content import ChangeWindow
from nornir_coopchain.model.rules import ProposalState, VoteType
from nornir_coopchain.session import open_session
from nornir_coopchain.settings import CoopchainSettings
from nornir_coopchain.voter.policy import VoterPolicy
from nornir_coopchain.voter.watch import PolicyVoter

pytestmark = pytest.mark.anvil

REPO = Path(__file__).resolve().parents[1]
DEPTH = 2


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        done.wait(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def site(own_anvil: AnvilProcess, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Site 17 built out; the proposer (OPERATOR-A) reads 2 blocks deep, the voters at once."""
    fast = ChainClient.connect(own_anvil.url, receipt_timeout=30)
    deep = ChainClient.connect(
        own_anvil.url, confirmations=DEPTH, receipt_timeout=60, rebroadcast_after=0.5
    )
    miner = Miner(DevChain(fast))
    miner.start()
    coop = deploy_with_dev_keys(fast, REPO / "inventory")
    settings = CoopchainSettings(
        chain_url=own_anvil.url,
        contract=coop.address,
        dev_account=0,
        operator="OPERATOR-A",
        resource_set="TOWER-017",
        state_dir=tmp_path / "operator-a",
        confirmations=DEPTH,
    )
    owner = open_session(settings, deep)
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    nr = init_site(REPO / "inventory", device_state=tmp_path / "devices", coopchain=settings)
    tenants = nr.inventory.groups["site17"].data["tenants"]
    build_out(nr, templates, {op: data for op, data in tenants.items() if op != "OPERATOR-C"})
    now = fast.now()
    prepared = prepare_change(nr, templates=templates)
    content = build_content(
        prepared,
        resource_set="TOWER-017",
        title="Turn up OPERATOR-C",
        window=ChangeWindow(start=now - 60, end=now + 3600),
        created_at=now,
        templates=templates,
    )
    pid = propose_change(owner, content, prepared.candidates).proposal_id
    miner.stop()
    yield {
        "fast": fast,
        "coop": CoopChain(fast, coop.address),
        "owner": owner,
        "nr": nr,
        "templates": templates,
        "tmp": tmp_path,
        "pid": pid,
        "miner": miner,
        "voters": dev_accounts(fast, 3)[1:],
    }
    miner.stop()
    nr.close_connections()
    sessions.forget_all()
    fast.close()
    deep.close()


def apply_in_thread(
    site: dict[str, Any],
) -> tuple[threading.Thread, list[ChangeOutcome | BaseException]]:
    """The owner's apply_change, started in a thread; its outcome (or error) lands in the list."""
    outcome: list[ChangeOutcome | BaseException] = []

    def push() -> None:
        try:
            outcome.append(
                apply_change(site["nr"], site["owner"], site["pid"], templates=site["templates"])
            )
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=push, daemon=True)
    worker.start()
    return worker, outcome


def deepen_the_claim(site: dict[str, Any]) -> threading.Thread:
    """Mine ``DEPTH`` blocks once the apply's claim is at the head (so that the apply goes on
    to push and record), and no more."""
    coop, pid = site["coop"], site["pid"]

    def mine() -> None:
        wait_until(lambda: int(coop.proposal(pid).apply_run, 16) != 0, "the claim")
        DevChain(site["fast"]).mine(DEPTH)

    miner = threading.Thread(target=mine, daemon=True)
    miner.start()
    return miner


def recorded_once_as_blocks_come(
    site: dict[str, Any],
    worker: threading.Thread,
    outcome: list[ChangeOutcome | BaseException],
) -> None:
    """Mine until the apply in ``worker`` ends; it must end Verified with ONE record, each
    device pushed once, and audit."""
    coop, pid = site["coop"], site["pid"]
    site["miner"].start()
    worker.join(timeout=90)
    site["miner"].stop()
    assert not worker.is_alive()
    [result] = outcome
    assert isinstance(result, ChangeOutcome), result
    assert result.state is ProposalState.Verified
    assert coop.proposal(pid).state is ProposalState.Verified
    start = coop.proposal_created(pid).block_number
    assert len([e for e in coop.events(start) if isinstance(e, VerificationRecorded)]) == 1
    assert set(commits(site["tmp"]).values()) == {2}  # build-out, then this change: once each
    assert audit_change(coop, pid, site["owner"].settings.journal_dir()).result == "pass"


def commits(tmp: Path) -> dict[str, int]:
    return {
        path.stem: json.loads(path.read_text())["commits"]
        for path in sorted((tmp / "devices").glob("*.json"))
    }


def test_a_vote_reorged_out_is_never_acted_on(site: dict[str, Any]) -> None:
    coop, owner, pid = site["coop"], site["owner"], site["pid"]
    b, c = site["voters"]
    dev = DevChain(site["fast"])
    before = commits(site["tmp"])
    coop.cast_vote(b, pid, VoteType.Approve)
    coop.cast_vote(c, pid, VoteType.Approve)
    assert coop.proposal(pid).state is ProposalState.Approved  # at the head, not yet final
    with pytest.raises(VerdictTimeout):
        wait_for_verdict(owner, pid, timeout=1, poll_interval=0.05)
    with pytest.raises(ChangeRefused, match="is Active, not Approved"):
        apply_change(site["nr"], owner, pid, templates=site["templates"])
    assert commits(site["tmp"]) == before

    rollback(site["fast"], 1)  # C's vote is gone
    dev.mine(DEPTH + 1)
    assert coop.proposal(pid).state is ProposalState.Active
    with pytest.raises(VerdictTimeout):
        wait_for_verdict(owner, pid, timeout=1, poll_interval=0.05)
    assert commits(site["tmp"]) == before

    site["fast"].nonces.reset()
    coop.cast_vote(c, pid, VoteType.Approve)  # voted again, and this time it stays
    dev.mine(DEPTH)
    assert wait_for_verdict(owner, pid, timeout=30, poll_interval=0.05) is ProposalState.Approved


def test_a_record_reorged_out_is_sent_again(site: dict[str, Any]) -> None:
    coop, pid = site["coop"], site["pid"]
    b, c = site["voters"]
    dev = DevChain(site["fast"])
    coop.cast_vote(b, pid, VoteType.Approve)
    coop.cast_vote(c, pid, VoteType.Approve)
    dev.mine(DEPTH)
    worker, outcome = apply_in_thread(site)
    deepen_the_claim(site).join(timeout=90)
    wait_until(lambda: coop.proposal(pid).state is ProposalState.Verified, "the record")
    assert worker.is_alive()  # the record has no confirmations yet
    rollback(site["fast"], 1)  # the record is gone
    assert coop.proposal(pid).state is ProposalState.Approved
    recorded_once_as_blocks_come(site, worker, outcome)


def test_a_voter_whose_node_resets_the_connection_polls_again(site: dict[str, Any]) -> None:
    proxy = RpcProxy(site["fast"].url)
    settings = CoopchainSettings(
        chain_url=proxy.url,
        contract=site["coop"].address,
        dev_account=1,
        operator="OPERATOR-B",
        state_dir=site["tmp"] / "operator-b",
    )
    errors: list[str] = []

    def reset(error: str, _pause: float) -> None:
        errors.append(error)
        proxy.clear()

    try:
        voter = PolicyVoter(
            open_session(settings),
            VoterPolicy.load(REPO / "inventory" / "policies" / "operator-b.yaml"),
            tenant_patterns=inventory_tenant_patterns(REPO / "inventory"),
        )
        proxy.drop = 1.0  # every request reset, until the voter has seen it
        actions = voter.watch(interval=0.05, max_polls=3, on_outage=reset)
    finally:
        proxy.close()
    assert len(errors) == 1
    assert [(a.proposal_id, a.vote) for a in actions] == [(site["pid"], VoteType.Approve)]


def test_a_node_failing_to_serve_the_proposal_transaction_is_a_chain_connection_error(
    site: dict[str, Any],
) -> None:
    proxy = RpcProxy(site["fast"].url)
    try:
        with ChainClient.connect(proxy.url) as client:
            coop = CoopChain(client, site["coop"].address)
            proxy.fail_methods = {"eth_getTransactionByHash"}
            with pytest.raises(ChainConnectionError, match="transaction"):
                coop.fetch_content(site["pid"])
    finally:
        proxy.close()


def test_a_resumed_run_takes_a_record_as_done_only_once_it_is_deep(
    site: dict[str, Any],
) -> None:
    coop, owner, pid = site["coop"], site["owner"], site["pid"]
    b, c = site["voters"]
    coop.cast_vote(b, pid, VoteType.Approve)
    coop.cast_vote(c, pid, VoteType.Approve)
    DevChain(site["fast"]).mine(DEPTH)
    deep = owner.client
    deep.receipt_timeout = 10  # the first run stops waiting for its record's confirmations
    claim = deepen_the_claim(site)  # ... but not for its claim's
    with pytest.raises(ChainConnectionError, match="could not be used to record"):
        apply_change(site["nr"], owner, pid, templates=site["templates"])
    claim.join(timeout=90)
    assert coop.proposal(pid).state is ProposalState.Verified  # at the head only
    deep.receipt_timeout = 60
    deep.nonces.reset()  # as a new process: nothing kept from the first run
    deep.inflight.clear()
    worker, outcome = apply_in_thread(site)
    worker.join(timeout=3)
    assert worker.is_alive()  # the record it found could still be reorged out
    rollback(site["fast"], 1)  # and it is
    recorded_once_as_blocks_come(site, worker, outcome)
