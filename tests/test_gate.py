"""The whole gated change through Nornir: the sample site's four routers (SIMULATED driver),
three operators, the contract on the embedded chain and on anvil."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from nornir.core import Nornir
from nornir.core.exceptions import NornirExecutionError
from nornir.core.inventory import ConnectionOptions
from nornir.core.task import AggregatedResult
from nornir_napalm.plugins.tasks import napalm_configure
from nornir_utils.plugins.functions import print_result

from nornir_coopchain import session as sessions
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.devchain import DevChain
from nornir_coopchain.demo import (
    build_out,
    deploy_with_dev_keys,
    init_site,
    running_hashes,
    sample_operators,
)
from nornir_coopchain.exceptions import ChangeRefused, ConfigError, ProposalTooLarge
from nornir_coopchain.gate import apply as gate_apply
from nornir_coopchain.gate import (
    apply_change,
    audit_change,
    build_content,
    declare_emergency_change,
    dry_run_change,
    prepare_change,
    propose_change,
    run_emergency_change,
    run_gated_change,
    wait_for_verdict,
)
from nornir_coopchain.gate import push as gate_push
from nornir_coopchain.gate.approved import ApprovedChange, fetch_change
from nornir_coopchain.journal import Journal
from nornir_coopchain.model.content import ChangeWindow, EvidenceReport, hash_text
from nornir_coopchain.model.rules import ProposalState, VoteType
from nornir_coopchain.plugins.tasks._device import running_config
from nornir_coopchain.session import CoopchainSession
from nornir_coopchain.voter.policy import VoterPolicy
from nornir_coopchain.voter.watch import PolicyVoter

REPO = Path(__file__).resolve().parents[1]
SITE = "TOWER-017"
HOSTS = ("site17-r1", "site17-r2", "site17-r3", "site17-r4")


@dataclass
class Site:
    chain: ChainClient
    coop: CoopChain
    owner: CoopchainSession  # OPERATOR-A, the tower owner, proposes
    voters: dict[str, PolicyVoter]  # OPERATOR-B and OPERATOR-C vote by their policies
    nr: Nornir
    templates: Path
    tmp: Path

    def window(self, start: int = -60, length: int = 3600) -> ChangeWindow:
        now = self.chain.now()
        return ChangeWindow(start=now + start, end=now + start + length)

    def propose(
        self, title: str = "Turn up OPERATOR-C", executor: str | None = None, **window: int
    ) -> int:
        prepared = prepare_change(self.nr, templates=self.templates)
        content = build_content(
            prepared,
            resource_set=SITE,
            title=title,
            window=self.window(**window),
            created_at=self.chain.now(),
            templates=self.templates,
        )
        return propose_change(
            self.owner, content, prepared.candidates, executor=executor
        ).proposal_id

    def vote(self) -> dict[str, list[VoteType | None]]:
        return {op: [a.vote for a in voter.poll_once()] for op, voter in self.voters.items()}

    def approved(self, executor: str | None = None, **window: int) -> int:
        proposal_id = self.propose(executor=executor, **window)
        self.vote()
        assert wait_for_verdict(self.owner, proposal_id, timeout=5, poll_interval=0.05) is (
            ProposalState.Approved
        )
        return proposal_id

    def host_options(self, host: str, **optional_args: object) -> None:
        """Give one host's simulated device extra driver options (faults)."""
        options = dict(self.nr.inventory.defaults.connection_options["napalm"].extras or {})
        merged = {**options.get("optional_args", {}), **optional_args}
        self.nr.inventory.hosts[host].connection_options["napalm"] = ConnectionOptions(
            extras={"optional_args": merged}
        )
        self.nr.inventory.hosts[host].close_connections()


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain(request: pytest.FixtureRequest) -> Iterator[ChainClient]:
    """The embedded chain, or this module's own anvil (whose clock follows local time)."""
    embedded = request.param == "embedded"
    url = "embedded://" if embedded else request.getfixturevalue("own_anvil").url
    with ChainClient.connect(url, receipt_timeout=10) as client:
        yield client


@pytest.fixture
def site(chain: ChainClient, tmp_path: Path) -> Iterator[Site]:
    """Site 17 built out with OPERATOR-A and OPERATOR-B; OPERATOR-C not yet turned up."""
    coop = deploy_with_dev_keys(chain, REPO / "inventory")
    owner, voters = sample_operators(chain, coop.address, REPO / "inventory", tmp_path)
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    nr = init_site(REPO / "inventory", device_state=tmp_path / "devices", coopchain=owner.settings)
    tenants = nr.inventory.groups["site17"].data["tenants"]
    build_out(nr, templates, {op: data for op, data in tenants.items() if op != "OPERATOR-C"})
    yield Site(chain, coop, owner, voters, nr, templates, tmp_path)
    nr.close_connections()
    sessions.forget_all()


def _sent_by(site: Site) -> int:
    return site.chain.w3.eth.get_transaction_count(site.owner.account.address)


# ---------------------------------------------------------------- the whole flow


def test_approved_change_is_applied_verified_recorded_and_audited(site: Site) -> None:
    sent = _sent_by(site)
    report = run_gated_change(
        site.nr,
        site.owner,
        title="Turn up OPERATOR-C",
        window=site.window(),
        templates=site.templates,
        poll_interval=0.05,
        verdict_timeout=5,
        progress=lambda _line: site.vote(),
    ).report
    assert report.verdict is ProposalState.Approved
    outcome = report.outcome
    assert outcome is not None
    assert (outcome.state, outcome.devices_ok, outcome.devices_failed) == (
        ProposalState.Verified,
        4,
        0,
    )
    # ONE proposal, ONE claim and ONE record, whatever the device count
    assert _sent_by(site) - sent == 3
    info = site.coop.proposal(report.proposal_id)
    assert info.evidence_root == outcome.evidence_root
    audit = audit_change(site.coop, report.proposal_id, site.owner.settings.journal_dir())
    assert audit.result == "pass"
    assert [d.host for d in audit.devices] == list(HOSTS)
    journal = Journal.find(
        site.owner.settings.journal_dir(),
        chain_id=site.chain.chain_id,
        contract=site.coop.address,
        proposal_id=report.proposal_id,
    )
    assert journal is not None
    assert journal.read().phase == "recorded"


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
@pytest.mark.parametrize("run", [run_gated_change, run_emergency_change])
def test_change_over_the_content_cap_is_refused_before_anything_is_sent(
    site: Site, run: Callable[..., object]
) -> None:
    sent, before = _sent_by(site), running_hashes(site.nr)
    with pytest.raises(ProposalTooLarge, match="cap on proposal content is 100") as refused:
        run(
            site.nr,
            site.owner,
            title="Turn up OPERATOR-C",
            window=site.window(),
            templates=site.templates,
            max_content_bytes=100,
        )
    assert "Nothing was sent" in str(refused.value)
    assert (_sent_by(site), site.coop.proposal_count()) == (sent, 0)
    assert running_hashes(site.nr) == before
    assert not site.owner.settings.journal_dir().exists()


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_a_bad_tenant_pattern_is_refused_at_prepare_naming_host_and_field(site: Site) -> None:
    host = site.nr.inventory.hosts["site17-r3"]
    coop = dict(host["coopchain"])
    coop["tenants_patterns"] = {**coop["tenants_patterns"], "OPERATOR-C": ["(unclosed"]}
    host.data["coopchain"] = coop
    before = running_hashes(site.nr)
    with pytest.raises(ConfigError) as refused:
        prepare_change(site.nr, templates=site.templates)
    message = str(refused.value)
    assert "1 host(s)" in message
    assert "site17-r3" in message
    assert "tenant_patterns.OPERATOR-C.0" in message
    assert "not a valid regex" in message
    assert running_hashes(site.nr) == before
    assert site.coop.proposal_count() == 0


def test_rejected_change_touches_no_device(site: Site) -> None:
    site.approved()
    apply_change(site.nr, site.owner, 1, templates=site.templates)
    tenant_b = site.nr.inventory.groups["site17"].data["tenants"]["OPERATOR-B"]
    tenant_b["accept"] = [*tenant_b["accept"], {"prefix": "198.51.100.0/24"}]
    before = running_hashes(site.nr)
    proposal_id = site.propose("Widen OPERATOR-B's accepted prefixes")
    votes = site.vote()
    assert votes["OPERATOR-B"] == [VoteType.Reject]
    assert site.coop.state(proposal_id) is ProposalState.Rejected
    with pytest.raises(ChangeRefused, match="Rejected"):
        apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert running_hashes(site.nr) == before


# ---------------------------------------------------------------- refusals before any push


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_config_changed_out_of_band_is_refused_as_stale(site: Site) -> None:
    proposal_id = site.approved()
    site.nr.filter(name="site17-r2").run(
        task=napalm_configure,
        configuration="ip route 198.18.99.0/24 Null0\n",
        replace=False,
        dry_run=False,
    )
    before = running_hashes(site.nr)
    with pytest.raises(ChangeRefused, match=r"site17-r2: StaleBaseError") as refused:
        apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert "no device touched" in str(refused.value)
    assert running_hashes(site.nr) == before
    assert site.coop.state(proposal_id) is ProposalState.Approved


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_window_not_yet_open_then_closed(site: Site) -> None:
    proposal_id = site.approved(start=1000, length=600)
    before = running_hashes(site.nr)
    with pytest.raises(ChangeRefused, match="window opens at"):
        apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    DevChain(site.chain).increase_time(1000 + 600 + 3600)
    assert site.coop.state(proposal_id) is ProposalState.Expired
    with pytest.raises(ChangeRefused, match="Expired"):
        apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert running_hashes(site.nr) == before


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_template_changed_after_approval_is_refused(site: Site) -> None:
    proposal_id = site.approved()
    template = site.templates / "frr" / "site_router.j2"
    template.write_text(template.read_text() + "\nlog syslog debugging\n")
    before = running_hashes(site.nr)
    with pytest.raises(ChangeRefused, match="differs from the approved candidate"):
        apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert running_hashes(site.nr) == before


def _lying_proposal(site: Site) -> int:
    """A proposal whose content does not hash to the manifest root it declares."""
    prepared = prepare_change(site.nr, templates=site.templates)
    content = build_content(
        prepared,
        resource_set=SITE,
        title="lying",
        window=site.window(),
        created_at=site.chain.now(),
    )
    raw = content.canonical_bytes()
    coop, owner = site.coop, site.owner.account
    request = coop.build_request(
        owner.address,
        SITE,
        raw,
        manifest_root="0x" + "11" * 32,  # not the manifest of these devices
        device_count=content.device_count,
        window_start=content.window.start,
        window_end=content.window.end,
    )
    return coop.propose(owner, request, coop.sign_request(owner, request), raw).proposal_id


def test_content_that_does_not_match_its_manifest_is_refused(site: Site) -> None:
    rejected = _lying_proposal(site)
    actions = {op: voter.poll_once() for op, voter in site.voters.items()}
    assert [a.vote for a in actions["OPERATOR-B"]] == [VoteType.Reject]
    assert "does not check out" in actions["OPERATOR-B"][0].reason
    assert site.coop.state(rejected) is ProposalState.Rejected

    approved = _lying_proposal(site)  # approved by hand, without looking
    for voter in site.voters.values():
        site.coop.cast_vote(voter.session.account, approved, VoteType.Approve)
    before = running_hashes(site.nr)
    with pytest.raises(ChangeRefused, match="manifest root"):
        apply_change(site.nr, site.owner, approved, templates=site.templates)
    assert running_hashes(site.nr) == before
    audit = audit_change(site.coop, approved, site.owner.settings.journal_dir())
    assert (audit.result, audit.content_ok) == ("fail", False)


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_an_entry_is_approved_only_under_the_on_chain_manifest_root(site: Site) -> None:
    change = fetch_change(site.coop, site.approved())
    assert change.entry("site17-r1").host == "site17-r1"
    with pytest.raises(ChangeRefused, match="not in the manifest"):
        change.entry("site99-r1")
    forged = change.proposal.model_copy(update={"manifest_root": "0x" + "11" * 32})
    tampered = ApprovedChange(proposal=forged, content=change.content, posted=change.posted)
    with pytest.raises(ChangeRefused, match="does not prove against the manifest root"):
        tampered.entry("site17-r1")


def test_tampered_evidence_fails_the_audit(site: Site) -> None:
    proposal_id = site.approved()
    apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    journal = Journal.find(
        site.owner.settings.journal_dir(),
        chain_id=site.chain.chain_id,
        contract=site.coop.address,
        proposal_id=proposal_id,
    )
    assert journal is not None
    report = journal.evidence()
    assert report is not None
    forged = report.devices[0].model_copy(update={"readback_hash": "0x" + "ee" * 32})
    with pytest.raises(ConfigError, match="already holds other evidence"):
        journal.write_evidence(EvidenceReport(devices=(forged, *report.devices[1:])))
    tampered = EvidenceReport(devices=(forged, *report.devices[1:]))
    (journal.path / "evidence.json").write_bytes(tampered.canonical_bytes())  # by hand
    audit = audit_change(site.coop, proposal_id, site.owner.settings.journal_dir())
    assert (audit.result, audit.evidence_root_ok) == ("fail", False)


# ---------------------------------------------------------------- failures on some devices


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_a_rollback_that_fails_is_recorded_with_the_reason_missing_and_extra(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from napalm_coopchain_sim.driver import CoopchainSimDriver
    from napalm_frr import RollbackIncomplete

    def incomplete(self: CoopchainSimDriver) -> None:
        raise RollbackIncomplete("rollback incomplete: residual lines extra: vnc defaults", (), ())

    monkeypatch.setattr(CoopchainSimDriver, "rollback", incomplete)
    site.host_options("site17-r3", commit_drops=[r"OPERATOR-C"])
    proposal_id = site.approved()
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    (failed,) = [d for d in outcome.devices if not d.verified]
    assert failed.host == "site17-r3"
    assert not failed.rolled_back  # never recorded as restored
    assert failed.rollback_error == (
        "RollbackIncomplete: rollback incomplete: residual lines extra: vnc defaults"
    )
    assert any("OPERATOR-C" in line for line in failed.missing)  # the report is kept
    assert outcome.state is ProposalState.VerificationFailed
    journal = Journal.find(
        site.owner.settings.journal_dir(),
        chain_id=site.chain.chain_id,
        contract=site.coop.address,
        proposal_id=proposal_id,
    )
    assert journal is not None
    record = journal.read().hosts["site17-r3"]
    assert record.verified is not None
    assert record.verified.rollback_error == failed.rollback_error


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_one_device_that_does_not_take_the_change_is_rolled_back_and_recorded(site: Site) -> None:
    before = running_hashes(site.nr)
    site.host_options("site17-r3", commit_drops=[r"OPERATOR-C"])
    proposal_id = site.approved()
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert (outcome.state, outcome.devices_ok, outcome.devices_failed) == (
        ProposalState.VerificationFailed,
        3,
        1,
    )
    failed = {d.host: d for d in outcome.devices if not d.verified}
    assert list(failed) == ["site17-r3"]
    assert failed["site17-r3"].rolled_back
    assert any("OPERATOR-C" in line for line in failed["site17-r3"].missing)
    assert running_hashes(site.nr)["site17-r3"] == before["site17-r3"]
    audit = audit_change(site.coop, proposal_id, site.owner.settings.journal_dir())
    assert {d.host: d.passed for d in audit.devices} == {
        "site17-r1": True,
        "site17-r2": True,
        "site17-r3": False,
        "site17-r4": True,
    }
    assert audit.evidence_root_ok


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_unreachable_device_fails_alone_and_is_named(site: Site) -> None:
    proposal_id = site.approved()
    site.host_options("site17-r4", unreachable=True)
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert (outcome.devices_ok, outcome.devices_failed) == (3, 1)
    (failed,) = [d for d in outcome.devices if not d.verified]
    assert failed.host == "site17-r4"
    assert failed.error is not None
    assert "ConnectionException" in failed.error


# ---------------------------------------------------------------- resume after a kill


def test_resume_after_kill_between_propose_sent_and_journal(site: Site) -> None:
    proposal_id = site.propose()
    journal = Journal(
        site.owner.settings.journal_dir(), site.coop.proposal(proposal_id).content_hash
    )
    record = journal.read()
    journal.save(
        record.model_copy(update={"proposal_id": None, "propose_tx": None, "phase": "prepared"})
    )
    assert site.propose() == proposal_id
    assert site.coop.proposal_count() == 1


def test_resume_after_kill_between_verified_and_recorded(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    proposal_id = site.approved()

    def killed(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt("killed before the record was sent")

    monkeypatch.setattr(site.owner.coop, "record_verification", killed)
    with pytest.raises(KeyboardInterrupt):
        apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    monkeypatch.undo()
    assert site.coop.state(proposal_id) is ProposalState.Approved
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert (outcome.state, outcome.devices_ok) == (ProposalState.Verified, 4)


def test_resume_after_kill_between_record_sent_and_journal(site: Site) -> None:
    proposal_id = site.approved()
    first = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    journal = Journal.find(
        site.owner.settings.journal_dir(),
        chain_id=site.chain.chain_id,
        contract=site.coop.address,
        proposal_id=proposal_id,
    )
    assert journal is not None
    journal.save(journal.read().model_copy(update={"phase": "verified", "record_tx": None}))
    sent = _sent_by(site)
    again = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert again.resumed
    assert (again.state, again.evidence_root) == (first.state, first.evidence_root)
    assert _sent_by(site) == sent  # no second record


def test_resume_after_kill_midway_through_the_devices(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    proposal_id = site.approved()
    before = running_hashes(site.nr)
    site.host_options("site17-r3", unreachable=True)
    site.host_options("site17-r4", unreachable=True)

    def killed(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt("killed after two of four devices")

    monkeypatch.setattr(site.owner.coop, "record_verification", killed)
    with pytest.raises(KeyboardInterrupt):
        apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    monkeypatch.undo()
    site.host_options("site17-r3")
    site.host_options("site17-r4")
    midway = running_hashes(site.nr)
    assert [midway[h] != before[h] for h in HOSTS] == [True, True, False, False]
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert (outcome.state, outcome.devices_ok, outcome.devices_failed) == (
        ProposalState.Verified,
        4,
        0,
    )


# ---------------------------------------------------------------- the policy voter


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_policy_voter_restart_neither_misses_nor_repeats(site: Site, tmp_path: Path) -> None:
    voter_b = site.voters["OPERATOR-B"]
    cursor = tmp_path / "b-cursor.json"
    first = PolicyVoter(voter_b.session, voter_b.policy, state_file=cursor)
    proposal_id = site.propose()
    assert [(a.proposal_id, a.vote) for a in first.poll_once()] == [(proposal_id, VoteType.Approve)]
    restarted = PolicyVoter(voter_b.session, voter_b.policy, state_file=cursor)
    assert restarted.poll_once() == []


# ---------------------------------------------------------------- governance the peers lack


def _commit_confirm_times_out(site: Site, host: str) -> None:
    """The simulated device's commit-confirm timer fires now: it reverts at its next use
    (no sleep against a wall-clock timer)."""
    from napalm_coopchain_sim.store import FileStore

    store = FileStore(site.tmp / "devices")
    with store.transaction(host, "") as state:
        assert state.pending is not None, f"{host}: no commit-confirm pending"
        state.pending.deadline = store.now()


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_an_auto_reverted_commit_is_recorded_as_failed(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nornir_coopchain.plugins.tasks.coopchain_verify import coopchain_verify

    def late_verify(task: object, **kwargs: object) -> object:
        if task.host.name == "site17-r2":  # type: ignore[attr-defined]
            _commit_confirm_times_out(site, "site17-r2")  # before the read-back
        return coopchain_verify(task, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gate_push, "coopchain_verify", late_verify)
    before = running_hashes(site.nr)
    proposal_id = site.approved()
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    failed = {d.host: d for d in outcome.devices if not d.verified}
    assert list(failed) == ["site17-r2"]
    assert not failed["site17-r2"].rolled_back  # it reverted itself; nothing left to roll back
    assert outcome.state is ProposalState.VerificationFailed
    assert running_hashes(site.nr)["site17-r2"] == before["site17-r2"]


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_a_commit_that_reverts_between_read_back_and_confirm_is_recorded_as_failed(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read-back complies, then the commit-confirm expires before the confirm: the
    refused confirm makes the task read the device again, and the revert is a failure."""
    from importlib import import_module

    # the module: the package's attribute of that name is the task, as in nornir_napalm
    verify_module = import_module("nornir_coopchain.plugins.tasks.coopchain_verify")

    reads: list[str] = []

    def read_then_wait(device: Any) -> str:
        running = running_config(device)
        reads.append(device.hostname)
        if device.hostname == "site17-r2" and reads.count("site17-r2") == 1:
            _commit_confirm_times_out(site, "site17-r2")  # after a compliant read-back
        return running

    monkeypatch.setattr(verify_module, "running_config", read_then_wait)
    before = running_hashes(site.nr)
    proposal_id = site.approved()
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    failed = {d.host: d for d in outcome.devices if not d.verified}
    assert list(failed) == ["site17-r2"]
    assert not failed["site17-r2"].rolled_back
    assert failed["site17-r2"].missing  # the evidence is the second read: the reverted config
    assert reads.count("site17-r2") == 2
    assert reads.count("site17-r1") == 1
    assert outcome.state is ProposalState.VerificationFailed
    assert running_hashes(site.nr)["site17-r2"] == before["site17-r2"]
    assert running_hashes(site.nr)["site17-r1"] != before["site17-r1"]


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_an_affected_tenant_must_approve(site: Site) -> None:
    c_voter = site.voters["OPERATOR-C"]
    hesitant = VoterPolicy.from_yaml("operator: OPERATOR-C\nrules: []\ndefault: defer\n")
    site.voters["OPERATOR-C"] = PolicyVoter(c_voter.session, hesitant)
    proposal_id = site.propose()  # turns up OPERATOR-C: its stanzas are touched
    assert site.coop.proposal(proposal_id).required_mask == 0b100
    votes = site.vote()
    assert votes == {"OPERATOR-B": [VoteType.Approve], "OPERATOR-C": [None]}
    assert site.coop.state(proposal_id) is ProposalState.Active  # B alone is not enough
    DevChain(site.chain).increase_time(3601)
    assert wait_for_verdict(site.owner, proposal_id, timeout=1, poll_interval=0.05) is (
        ProposalState.Rejected
    )


def test_each_tenant_audits_its_devices_from_a_proof_file_alone(site: Site) -> None:
    from nornir_coopchain.gate import audit_proof
    from nornir_coopchain.model.content import EvidenceProof

    proposal_id = site.approved()
    apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    journal = Journal.find(
        site.owner.settings.journal_dir(),
        chain_id=site.chain.chain_id,
        contract=site.coop.address,
        proposal_id=proposal_id,
    )
    assert journal is not None
    raw = (journal.path / "proofs" / "site17-r3.json").read_bytes()
    proof = EvidenceProof.from_bytes(raw)
    tenant_view = site.voters["OPERATOR-C"].session.coop  # another operator's own client
    assert audit_proof(tenant_view, proposal_id, proof).passed
    forged = proof.model_copy(
        update={"evidence": proof.evidence.model_copy(update={"compliant": False})}
    )
    assert not audit_proof(tenant_view, proposal_id, forged).evidence_proven


# ---------------------------------------------------------------- break-glass


def test_emergency_change_is_applied_before_the_vote_then_ratified(site: Site) -> None:
    before = running_hashes(site.nr)
    sent = _sent_by(site)
    report = run_emergency_change(
        site.nr,
        site.owner,
        title="Outage: turn up OPERATOR-C now",
        window=site.window(),
        templates=site.templates,
    ).report
    outcome = report.outcome
    assert (outcome.state, outcome.emergency, outcome.devices_ok) == (ProposalState.Active, True, 4)
    assert _sent_by(site) - sent == 3  # ONE declaration, claim and record; no waiting for votes
    assert all(running_hashes(site.nr)[h] != before[h] for h in HOSTS)
    info = site.coop.proposal(report.proposal_id)
    assert (info.state, info.emergency, info.recorded) == (ProposalState.Active, True, True)
    assert info.voted_mask == 0  # applied and recorded before any vote
    assert (report.ratify_by, info.evidence_root) == (info.vote_end, outcome.evidence_root)
    audit = audit_change(site.coop, report.proposal_id, site.owner.settings.journal_dir())
    assert audit.result == "pass"

    assert site.vote() == {"OPERATOR-B": [VoteType.Approve], "OPERATOR-C": [VoteType.Approve]}
    info = site.coop.proposal(report.proposal_id)
    assert (info.state, info.ratified, info.unratified) == (ProposalState.Verified, True, False)
    again = apply_change(site.nr, site.owner, report.proposal_id, templates=site.templates)
    assert again.resumed  # never recorded twice


def test_emergency_change_recorded_elsewhere_is_not_applied_again(site: Site) -> None:
    report = run_emergency_change(
        site.nr, site.owner, title="Outage", window=site.window(), templates=site.templates
    ).report
    shutil.rmtree(site.owner.settings.journal_dir())  # another machine: no journal here
    applied = running_hashes(site.nr)
    with pytest.raises(ChangeRefused, match="already recorded before its ratification"):
        apply_change(site.nr, site.owner, report.proposal_id, templates=site.templates)
    assert running_hashes(site.nr) == applied


def test_unratified_emergency_change_stays_applied_and_on_record(site: Site) -> None:
    site.approved()
    apply_change(site.nr, site.owner, 1, templates=site.templates)
    tenant_b = site.nr.inventory.groups["site17"].data["tenants"]["OPERATOR-B"]
    tenant_b["accept"] = [*tenant_b["accept"], {"prefix": "198.51.100.0/24"}]
    report = run_emergency_change(
        site.nr, site.owner, title="Outage: widen B's prefixes", window=site.window()
    ).report
    applied = running_hashes(site.nr)
    assert site.vote()["OPERATOR-B"] == [VoteType.Reject]
    info = site.coop.proposal(report.proposal_id)
    assert (info.state, info.unratified, info.recorded) == (ProposalState.Rejected, True, True)
    assert info.evidence_root == report.outcome.evidence_root
    assert running_hashes(site.nr) == applied  # an alarm, never an automatic revert


def test_emergency_refusals_touch_no_device(site: Site) -> None:
    from nornir_coopchain.chain import errors

    before = running_hashes(site.nr)
    tenant = site.voters["OPERATOR-B"].session  # OPERATOR-B holds no emergency role
    with pytest.raises(errors.NotEmergencyRole):
        run_emergency_change(site.nr, tenant, title="not mine", window=site.window())
    with pytest.raises(errors.InvalidWindow):
        run_emergency_change(site.nr, site.owner, title="later", window=site.window(start=600))
    ordinary = site.propose()
    with pytest.raises(ChangeRefused, match="is Active, not Approved"):
        apply_change(site.nr, site.owner, ordinary, templates=site.templates)
    prepared = prepare_change(site.nr, templates=site.templates)
    content = build_content(
        prepared,
        resource_set=SITE,
        title="Outage: turn up OPERATOR-C now",
        window=site.window(),
        created_at=site.chain.now(),
    )
    with pytest.raises(ChangeRefused, match="pending as an ordinary proposal"):
        declare_emergency_change(site.owner, content, prepared.candidates)
    site.coop.cancel(site.owner.account, ordinary)
    emergency = declare_emergency_change(site.owner, content, prepared.candidates).proposal_id
    with pytest.raises(ChangeRefused, match="only its proposer or executor may apply"):
        apply_change(site.nr, tenant, emergency, templates=site.templates)
    assert running_hashes(site.nr) == before


# ---------------------------------------------------------------- the Nornir way


class _Seen:
    """A Nornir processor that counts the hosts each task completed."""

    def __init__(self) -> None:
        self.completed: dict[str, int] = {}

    def task_started(self, task: Any) -> None: ...
    def task_completed(self, task: Any, result: Any) -> None: ...
    def task_instance_started(self, task: Any, host: Any) -> None: ...
    def subtask_instance_started(self, task: Any, host: Any) -> None: ...
    def subtask_instance_completed(self, task: Any, host: Any, result: Any) -> None: ...

    def task_instance_completed(self, task: Any, host: Any, result: Any) -> None:
        self.completed[task.name] = self.completed.get(task.name, 0) + 1


STEPS = [
    "coopchain diff",
    "coopchain approval",
    "coopchain push",
    "coopchain read-back",
    "coopchain evidence",
]


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_gated_change_is_a_nornir_result_that_print_result_shows(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = _Seen()
    now = datetime.fromtimestamp(site.chain.now(), timezone.utc)
    result = run_gated_change(  # the session comes from the hosts' coopchain options
        site.nr.with_processors([seen]),
        title="Turn up OPERATOR-C",
        window=ChangeWindow(start=now - timedelta(minutes=1), end=(now + timedelta(hours=1))),
        templates=site.templates,
        poll_interval=0.05,
        verdict_timeout=5,
        progress=lambda _line: site.vote(),
    )
    assert isinstance(result, AggregatedResult)
    assert not result.failed
    assert result.report.verdict is ProposalState.Approved
    for host in HOSTS:
        steps = result[host]
        assert [step.name for step in steps] == STEPS
        assert steps[0].diff
        assert steps[0].changed
        assert "Verified" in steps[1].result
        assert "complies" in steps[3].result
        assert result.report.outcome.evidence_root in steps[4].result
    assert seen.completed["coopchain prepare"] == len(HOSTS)  # processors keep firing
    assert seen.completed[f"coopchain apply #{result.report.proposal_id}"] == len(HOSTS)
    print_result(result)
    shown = capsys.readouterr().out
    assert all(host in shown for host in HOSTS)
    assert "coopchain read-back" in shown
    assert "+" in shown  # the diff


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_a_rejected_change_is_a_failed_nornir_result(site: Site) -> None:
    site.approved()
    apply_change(site.nr, site.owner, 1, templates=site.templates)
    tenant_b = site.nr.inventory.groups["site17"].data["tenants"]["OPERATOR-B"]
    tenant_b["accept"] = [*tenant_b["accept"], {"prefix": "198.51.100.0/24"}]  # B rejects it
    before = running_hashes(site.nr)
    result = run_gated_change(
        site.nr,
        site.owner,
        title="Widen B's prefixes",
        window=site.window(),
        templates=site.templates,
        poll_interval=0.05,
        verdict_timeout=5,
        progress=lambda _line: site.vote(),
    )
    assert result.report.verdict is ProposalState.Rejected
    assert result.failed
    changed = [host for host in HOSTS if result[host][0].changed]
    assert changed
    assert sorted(result.failed_hosts) == sorted(changed)
    for host in changed:
        assert [step.name for step in result[host]] == STEPS[:2]  # nothing pushed
        assert result[host][1].failed
        assert "Rejected" in result[host][1].result
    with pytest.raises(NornirExecutionError):
        result.raise_on_error()
    assert running_hashes(site.nr) == before


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_a_dry_run_of_the_whole_flow_sends_nothing_and_says_who_must_approve(
    site: Site,
) -> None:
    sent, before = _sent_by(site), running_hashes(site.nr)
    dry = dry_run_change(
        site.nr,
        site.owner,
        title="Turn up OPERATOR-C",
        window=site.window(),
        resource_set=SITE,
        templates=site.templates,
    )
    report = dry.report
    assert (_sent_by(site), site.coop.proposal_count()) == (sent, 0)
    assert running_hashes(site.nr) == before
    assert not site.owner.settings.journal_dir().exists()
    assert report.devices == HOSTS
    assert report.tenants == ("OPERATOR-C",)
    assert report.electorate == ("OPERATOR-B", "OPERATOR-C")  # two-person rule
    assert report.must_approve == ("OPERATOR-C",)  # affected_must_approve
    assert report.veto == ()  # the veto holder proposes
    assert report.rule.startswith("Supermajority, threshold 6667 bps, quorum 5000 bps")
    assert report.content_bytes > 0
    assert 21_000 < report.gas_estimate < site.chain.block_gas_limit()
    assert not dry.failed
    assert all(dry[host][0].diff and dry[host][0].changed for host in HOSTS)
    # as napalm_configure(dry_run=True): the same call with dry_run sends nothing either
    same = run_gated_change(
        site.nr, site.owner, title="x", window=site.window(), templates=site.templates, dry_run=True
    )
    assert same.report.devices == HOSTS
    assert (_sent_by(site), site.coop.proposal_count()) == (sent, 0)
    # the proposal it sizes is the one propose sends
    proposed = propose_change(
        site.owner, *_content_and_candidates(site), max_content_bytes=report.content_bytes
    )
    assert site.coop.proposal(proposed.proposal_id).device_count == len(HOSTS)


def _content_and_candidates(site: Site) -> tuple[Any, dict[str, str]]:
    prepared = prepare_change(site.nr, templates=site.templates)
    content = build_content(
        prepared,
        resource_set=SITE,
        title="Turn up OPERATOR-C",
        window=site.window(),
        created_at=site.chain.now(),
        templates=site.templates,
    )
    return content, prepared.candidates


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_apply_renders_the_template_the_proposal_pinned(site: Site) -> None:
    proposal_id = site.approved()
    content = fetch_change(site.coop, proposal_id).content
    assert {device.host: device.template for device in content.devices} == {
        host: f"{site.nr.inventory.hosts[host]['template_platform']}/site_router.j2"
        for host in HOSTS
    }
    site.nr.inventory.groups["site17"].data["template"] = "moved.j2"  # no such template now
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert (outcome.state, outcome.devices_ok) == (ProposalState.Verified, len(HOSTS))


# ---------------------------------------------------------------- co-owners who do not trust


OUT_OF_BAND = "ip route 10.99.99.0/24 Null0\n"


def _r2_with_a_commit_first(
    site: Site, monkeypatch: pytest.MonkeyPatch, candidate: str | None, *, plain: bool
) -> tuple[list[str], Callable[[], int]]:
    """Another session commits to r2 just before the apply's commit: ``candidate`` (a
    merge), or the apply's own candidate when None (another run pushing the approved
    config). ``plain``: r2's driver cannot check the base inside its commit (as a plain
    NAPALM driver). Returns the running configs that commit left, and r2's commit count."""
    import functools
    import json

    from napalm_coopchain_sim import CoopchainSimDriver

    if plain:
        site.host_options("site17-r2", commit_checks_base=False)
    state = site.tmp / "devices" / "site17-r2.json"
    commit = CoopchainSimDriver.commit_config
    landed: list[str] = []

    @functools.wraps(commit)
    def other_first(self: CoopchainSimDriver, *args: Any, **kwargs: Any) -> None:
        if self.hostname == "site17-r2" and not landed:
            other = CoopchainSimDriver(
                "site17-r2", optional_args={"state_dir": site.tmp / "devices"}
            )
            other.open()
            if candidate is None:
                other._candidate = self._candidate  # white box: the same approved candidate
            else:
                other.load_merge_candidate(config=candidate)
            commit(other)
            landed.append(running_config(other))
        commit(self, *args, **kwargs)

    monkeypatch.setattr(CoopchainSimDriver, "commit_config", other_first)
    return landed, lambda: int(json.loads(state.read_text())["commits"])


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_a_device_changed_during_the_commit_is_refused_as_stale_and_keeps_its_line(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The out-of-band commit lands after the apply read r2 and before its commit: the
    commit's own base check refuses it, nothing changes on r2, r2 is recorded failed."""
    proposal_id = site.approved()
    landed, commits = _r2_with_a_commit_first(site, monkeypatch, OUT_OF_BAND, plain=False)
    before = commits()
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert landed
    assert commits() == before + 1  # the out-of-band commit only
    failed = {d.host: d for d in outcome.devices if not d.verified}
    assert list(failed) == ["site17-r2"]
    assert "StaleBaseError" in (failed["site17-r2"].error or "")
    assert outcome.state is ProposalState.VerificationFailed  # never Verified
    assert running_hashes(site.nr)["site17-r2"] == hash_text(landed[0])
    assert "ip route 10.99.99.0/24 Null0" in landed[0]
    assert audit_change(site.coop, proposal_id, site.owner.settings.journal_dir()).result == (
        "fail"
    )


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_a_driver_without_the_in_commit_check_is_rolled_back_after_the_commit(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The out-of-band commit lands between the read and the commit; the approved commit
    goes through (nothing checks inside it), then the config the driver saved before it is
    compared with the approved base: r2 is rolled back to it (the out-of-band line kept) and
    recorded failed, never Verified."""
    proposal_id = site.approved()
    landed, commits = _r2_with_a_commit_first(site, monkeypatch, OUT_OF_BAND, plain=True)
    before = commits()
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert landed
    assert commits() == before + 2  # the out-of-band commit, then the approved one
    failed = {d.host: d for d in outcome.devices if not d.verified}
    assert list(failed) == ["site17-r2"]
    assert "rolled back to the config it ran before the commit" in (failed["site17-r2"].error or "")
    assert outcome.state is ProposalState.VerificationFailed  # never Verified
    assert running_hashes(site.nr)["site17-r2"] == hash_text(landed[0])
    assert "ip route 10.99.99.0/24 Null0" in landed[0]
    assert audit_change(site.coop, proposal_id, site.owner.settings.journal_dir()).result == (
        "fail"
    )


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_a_driver_without_the_in_commit_check_keeps_the_approved_config_another_run_pushed(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another run pushed the approved config between the read and the commit: the saved
    config is the approved one, so the commit stands and r2 verifies."""
    proposal_id = site.approved()
    landed, commits = _r2_with_a_commit_first(site, monkeypatch, None, plain=True)
    before = commits()
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert landed
    assert commits() == before + 2
    assert (outcome.state, outcome.devices_ok) == (ProposalState.Verified, len(HOSTS))
    assert running_hashes(site.nr)["site17-r2"] == hash_text(landed[0])


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_only_the_proposer_or_its_executor_pushes(site: Site) -> None:
    proposal_id = site.approved()
    before = running_hashes(site.nr)
    tenant = site.voters["OPERATOR-B"].session
    with pytest.raises(ChangeRefused) as refused:
        apply_change(site.nr, tenant, proposal_id, templates=site.templates)
    message = str(refused.value)
    assert "only its proposer or executor may apply" in message
    assert f"its proposer is OPERATOR-A ({site.owner.account.address})" in message
    assert "it names no executor" in message
    assert running_hashes(site.nr) == before
    assert site.coop.state(proposal_id) is ProposalState.Approved


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_one_apply_at_a_time_per_proposal_and_state_directory(site: Site) -> None:
    from nornir_coopchain.journal import apply_lock

    proposal_id = site.approved()
    before = running_hashes(site.nr)
    held = apply_lock(
        site.owner.settings.journal_dir(),
        chain_id=site.chain.chain_id,
        contract=site.coop.address,
        proposal_id=proposal_id,
    )
    with held, pytest.raises(ChangeRefused, match="being applied by another process"):
        apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert running_hashes(site.nr) == before
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert outcome.state is ProposalState.Verified  # the lock went with its holder


def test_the_apply_lock_goes_with_a_killed_holder(tmp_path: Path) -> None:
    """The OS releases the apply lock of a process killed outright (SIGKILL: no cleanup)."""
    import signal
    import subprocess
    import sys

    from nornir_coopchain.journal import apply_lock

    contract = "0x" + "ab" * 20
    hold = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from nornir_coopchain.journal import apply_lock\n"
        f"with apply_lock(Path(sys.argv[1]), chain_id=1, contract={contract!r}, proposal_id=5):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(120)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(tmp_path)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\n"
        with (
            pytest.raises(ChangeRefused, match=f"another process .*pid {holder.pid}"),
            apply_lock(tmp_path, chain_id=1, contract=contract, proposal_id=5),
        ):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    with apply_lock(tmp_path, chain_id=1, contract=contract, proposal_id=5):
        pass


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_a_change_recorded_by_another_run_is_said_so_and_not_pushed(site: Site) -> None:
    from nornir_coopchain.exceptions import AlreadyRecorded

    proposal_id = site.approved()
    apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    shutil.rmtree(site.owner.settings.journal_dir())  # another state directory recorded it
    applied = running_hashes(site.nr)
    with pytest.raises(AlreadyRecorded, match="already recorded on chain by another run"):
        apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert running_hashes(site.nr) == applied


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_chain_lost_at_the_record_names_the_devices_and_a_rerun_records(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nornir_coopchain.exceptions import ChainConnectionError

    proposal_id = site.approved()

    def gone(*_args: object, **_kwargs: object) -> None:
        raise ChainConnectionError("cannot reach http://127.0.0.1:8545")

    monkeypatch.setattr(site.owner.coop, "record_verification", gone)
    with pytest.raises(ChainConnectionError) as lost:
        apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    message = str(lost.value)
    assert f"pushed by this run: {', '.join(HOSTS)}; not pushed: none" in message
    assert f"Run `coopchain apply {proposal_id}` again to resume" in message
    monkeypatch.undo()
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert (outcome.state, outcome.devices_ok) == (ProposalState.Verified, 4)
    assert audit_change(site.coop, proposal_id, site.owner.settings.journal_dir()).result == (
        "pass"
    )


# ---------------------------------------------------------------- one data path


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_apply_pushes_the_kept_candidates_and_finds_its_journal_by_index(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proposed from this state directory with the templates and inventory unchanged, apply
    renders nothing again (it pushes the candidates the proposal was made from) and scans no
    journal (the proposal-ID index); the journal keeps the verdict."""
    proposal_id = site.approved()
    renders: list[str] = []
    render = gate_apply.coopchain_render

    def counted(task: Any, **kwargs: Any) -> Any:
        renders.append(task.host.name)
        return render(task, **kwargs)

    def no_scan(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("scanned every journal")

    monkeypatch.setattr(gate_apply, "coopchain_render", counted)
    monkeypatch.setattr(Journal, "all", no_scan)
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert (outcome.state, outcome.devices_ok) == (ProposalState.Verified, 4)
    assert renders == []
    journal = Journal.find(
        site.owner.settings.journal_dir(),
        chain_id=site.chain.chain_id,
        contract=site.coop.address,
        proposal_id=proposal_id,
    )
    assert journal is not None
    assert (journal.read().phase, journal.read().verdict) == ("recorded", "Approved")


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_a_driver_that_checks_the_base_in_its_commit_is_not_read_again_before_it(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator's commit checks the running config the preflight read: each device is
    read twice (preflight, read-back), and a change landing between preflight and push is
    still refused as stale by the commit, leaving the device as it was changed."""
    from napalm_coopchain_sim import CoopchainSimDriver

    proposal_id = site.approved()
    reads: list[str] = []
    get_config = CoopchainSimDriver.get_config

    def counted(self: CoopchainSimDriver, *args: Any, **kwargs: Any) -> Any:
        reads.append(self.hostname)
        return get_config(self, *args, **kwargs)

    push = gate_push._push_host
    landed: list[str] = []

    def out_of_band_first(task: Any, **kwargs: Any) -> Any:
        if task.host.name == "site17-r2":
            other = CoopchainSimDriver(
                "site17-r2", optional_args={"state_dir": site.tmp / "devices"}
            )
            other.open()
            other.load_merge_candidate(config="ip route 10.99.99.0/24 Null0\n")
            other.commit_config()
            landed.append(str(get_config(other, retrieve="running")["running"]))
        return push(task, **kwargs)

    monkeypatch.setattr(CoopchainSimDriver, "get_config", counted)
    monkeypatch.setattr(gate_push, "_push_host", out_of_band_first)
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert {host: reads.count(host) for host in HOSTS if host != "site17-r2"} == {
        host: 2 for host in HOSTS if host != "site17-r2"
    }
    failed = {d.host: d for d in outcome.devices if not d.verified}
    assert list(failed) == ["site17-r2"]
    assert "StaleBaseError" in (failed["site17-r2"].error or "")
    assert running_hashes(site.nr)["site17-r2"] == hash_text(landed[0])


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_a_rerun_after_the_devices_were_verified_records_and_pushes_nothing_again(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after every device was pushed and read back (journal ``verified``): a failed
    device was rolled back to its base, yet the rerun records the kept evidence and does not
    push it (nor any other device) again."""
    from napalm_coopchain_sim.driver import CoopchainSimDriver
    from nornir_coopchain.exceptions import ChainConnectionError

    site.host_options("site17-r3", commit_drops=[r"OPERATOR-C"])
    proposal_id = site.approved()
    commits: list[str] = []
    commit = CoopchainSimDriver.commit_config

    def counted(self: CoopchainSimDriver, *args: Any, **kwargs: Any) -> None:
        commits.append(self.hostname)
        commit(self, *args, **kwargs)

    def gone(*_args: object, **_kwargs: object) -> None:
        raise ChainConnectionError("cannot reach http://127.0.0.1:8545")

    monkeypatch.setattr(CoopchainSimDriver, "commit_config", counted)
    with monkeypatch.context() as lost:
        lost.setattr(site.owner.coop, "record_verification", gone)
        with pytest.raises(ChainConnectionError):
            apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert sorted(commits) == sorted(HOSTS)
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert sorted(commits) == sorted(HOSTS)  # the rerun pushed nothing
    assert outcome.resumed
    assert (outcome.state, outcome.devices_ok, outcome.devices_failed) == (
        ProposalState.VerificationFailed,
        3,
        1,
    )
    assert [d.host for d in outcome.devices if not d.verified] == ["site17-r3"]
    assert audit_change(site.coop, proposal_id, site.owner.settings.journal_dir()).result == (
        "fail"  # r3 did not verify: the audit proves what was recorded, and says so
    )


class _Killed(BaseException):
    """Stands for a kill -9 in the middle of the push pass (not an Exception: nothing in the
    run catches it, so no host record is written for the device it hits)."""


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
@pytest.mark.parametrize("committed", [True, False], ids=["after-commit", "before-commit"])
def test_a_rerun_after_a_kill_in_the_push_pass_pushes_no_device_twice(
    site: Site, monkeypatch: pytest.MonkeyPatch, committed: bool
) -> None:
    """Killed while pushing the last device, after a failed device was rolled back to its
    base (journal ``applying``): the rerun keeps what the devices read back, does not push
    the rolled-back one again, and for the device it was killed on, verifies it if the commit
    was made, else records it failed (a commit that may have been undone is never repeated)."""
    from nornir.plugins.runners import SerialRunner

    from napalm_coopchain_sim.driver import CoopchainSimDriver

    site.host_options("site17-r3", commit_drops=[r"OPERATOR-C"])
    proposal_id = site.approved()
    nr = site.nr.with_runner(SerialRunner())  # r1, r2, r3 (rolled back), then r4
    commits: list[str] = []
    commit = CoopchainSimDriver.commit_config

    def killed_on_r4(self: CoopchainSimDriver, *args: Any, **kwargs: Any) -> None:
        if self.hostname == "site17-r4" and committed:
            commit(self, *args, **kwargs)
            commits.append(self.hostname)
        if self.hostname == "site17-r4":
            raise _Killed
        commit(self, *args, **kwargs)
        commits.append(self.hostname)

    with monkeypatch.context() as kill:
        kill.setattr(CoopchainSimDriver, "commit_config", killed_on_r4)
        with pytest.raises(_Killed):
            apply_change(nr, site.owner, proposal_id, templates=site.templates)
    journal = Journal.find(
        site.owner.settings.journal_dir(),
        chain_id=site.owner.client.chain_id,
        contract=site.coop.address,
        proposal_id=proposal_id,
    )
    assert journal is not None
    assert journal.read().phase == "applying"
    expected = sorted(HOSTS) if committed else sorted(HOSTS[:3])
    assert sorted(commits) == expected
    bases = running_hashes(site.nr)
    assert (
        bases["site17-r3"]
        == fetch_change(site.coop, proposal_id).entry("site17-r3").base_config_hash
    )

    def counted(self: CoopchainSimDriver, *args: Any, **kwargs: Any) -> None:
        commits.append(self.hostname)
        commit(self, *args, **kwargs)

    monkeypatch.setattr(CoopchainSimDriver, "commit_config", counted)
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert sorted(commits) == expected  # the rerun pushed nothing
    failed = {d.host: d for d in outcome.devices if not d.verified}
    if committed:
        assert sorted(failed) == ["site17-r3"]
    else:
        assert sorted(failed) == ["site17-r3", "site17-r4"]
        assert "is not pushed a second time" in (failed["site17-r4"].error or "")
    assert failed["site17-r3"].rolled_back  # its own read-back kept, not a generic failure
    assert failed["site17-r3"].extra or failed["site17-r3"].missing
    assert outcome.state is ProposalState.VerificationFailed
    report = audit_change(site.coop, proposal_id, site.owner.settings.journal_dir())
    assert report.result == "fail"  # r3 (and r4) did not verify: the audit says so


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_the_chain_lost_at_the_claim_touches_no_device_and_a_rerun_claims_and_pushes(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nornir_coopchain.exceptions import ChainConnectionError

    proposal_id = site.approved()
    before = running_hashes(site.nr)

    def gone(*_args: object, **_kwargs: object) -> None:
        raise ChainConnectionError("cannot reach http://127.0.0.1:8545")

    with monkeypatch.context() as lost:
        lost.setattr(site.owner.coop, "claim_apply", gone)
        with pytest.raises(ChainConnectionError, match="could not be used to claim") as raised:
            apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert "no device was touched" in str(raised.value)
    assert running_hashes(site.nr) == before
    assert int(site.coop.proposal(proposal_id).apply_run, 16) == 0
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert (outcome.state, outcome.devices_ok) == (ProposalState.Verified, 4)
    assert int(site.coop.proposal(proposal_id).apply_run, 16) != 0


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_ctrl_c_as_the_push_pass_starts_still_waits_for_the_devices_in_flight(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real SIGINT while the push thread is being started: the pass it started is waited
    for (no session closed under a commit), Ctrl-C is reported as ApplyInterrupted, and a
    rerun verifies every device, none pushed twice."""
    import signal
    import threading

    from napalm_coopchain_sim.driver import CoopchainSimDriver
    from nornir_coopchain.gate.push import ApplyInterrupted

    proposal_id = site.approved()
    start = threading.Thread.start

    def interrupted_start(self: threading.Thread) -> None:
        start(self)
        if self.name.startswith("coopchain-apply-"):
            signal.raise_signal(signal.SIGINT)  # Ctrl-C, as the thread has just started

    commits: list[str] = []
    commit = CoopchainSimDriver.commit_config

    def counted(self: CoopchainSimDriver, *args: Any, **kwargs: Any) -> None:
        commit(self, *args, **kwargs)
        commits.append(self.hostname)

    monkeypatch.setattr(CoopchainSimDriver, "commit_config", counted)
    with monkeypatch.context() as ctrl_c:
        ctrl_c.setattr(threading.Thread, "start", interrupted_start)
        stopped: BaseException | None = None
        try:  # not pytest.raises: a bare KeyboardInterrupt would end the whole session
            apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
        except KeyboardInterrupt as exc:
            stopped = exc
    assert isinstance(stopped, ApplyInterrupted), f"Ctrl-C escaped the wait: {stopped!r}"
    assert sorted(stopped.pushed) == sorted(commits)
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=site.templates)
    assert (outcome.state, outcome.devices_ok) == (ProposalState.Verified, 4)
    assert sorted(commits) == sorted(HOSTS)  # each once, by one run or the other


@pytest.mark.parametrize("chain", ["embedded"], indirect=True)
def test_the_named_executor_is_refused_by_the_proposer_s_claim_and_takes_over_when_told(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two keys may push (the proposer and the executor it named), each from its own state
    directory: the proposer's claim refuses the executor, naming the run, until the executor
    takes it over; the devices the proposer pushed are verified, not pushed again."""
    from nornir.plugins.runners import SerialRunner

    from napalm_coopchain_sim.driver import CoopchainSimDriver
    from nornir_coopchain.exceptions import ClaimedByAnotherRun

    executor = site.voters["OPERATOR-B"].session  # its own key and state directory
    proposal_id = site.approved(executor=executor.account.address)
    commits: list[str] = []
    commit = CoopchainSimDriver.commit_config

    def counted(self: CoopchainSimDriver, *args: Any, **kwargs: Any) -> None:
        if self.hostname == "site17-r3" and not executor_runs:
            raise _Killed  # the proposer's run dies before r3's commit
        commit(self, *args, **kwargs)
        commits.append(self.hostname)

    executor_runs: list[bool] = []
    monkeypatch.setattr(CoopchainSimDriver, "commit_config", counted)
    nr = site.nr.with_runner(SerialRunner())
    with pytest.raises(_Killed):
        apply_change(nr, site.owner, proposal_id, templates=site.templates)
    assert sorted(commits) == ["site17-r1", "site17-r2"]
    claimed = site.coop.proposal(proposal_id).apply_run
    executor_runs.append(True)
    with pytest.raises(ClaimedByAnotherRun) as refused:
        apply_change(site.nr, executor, proposal_id, templates=site.templates)
    assert refused.value.current_run == claimed
    assert f"--take-over {claimed}" in str(refused.value)
    assert sorted(commits) == ["site17-r1", "site17-r2"]  # the executor touched nothing
    outcome = apply_change(
        site.nr, executor, proposal_id, templates=site.templates, take_over=claimed
    )
    assert (outcome.state, outcome.devices_ok) == (ProposalState.Verified, 4)
    assert sorted(commits) == sorted(HOSTS)  # r1, r2 by the proposer; r3, r4 by the executor
    assert site.coop.proposal(proposal_id).apply_run != claimed
