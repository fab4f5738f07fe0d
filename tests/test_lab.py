"""The gated change end to end on REAL routing software: four FRRouting routers in network
namespaces (nornir_coopchain.lab), reached over SSH by the napalm_frr driver, three
operators voting on the embedded chain.

The lab tests (marker ``lab``) need root and the Debian packages frr, frr-pythontools and
openssh-server: skipped locally without them (with the fix), a failure when CI=true. One
lab serves the module; every lab test first builds the site out as it was before
OPERATOR-C's turn-up (tenants A and B), with a plain replace (set-up, not gated). The pure
parts of the lab plan and of the driver's parsing are tested first, without root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from napalm.base.exceptions import CommitConfirmException, CommitError
from needs import needs_lab
from nornir import InitNornir
from nornir.core import Nornir
from nornir.core.inventory import ConnectionOptions
from nornir_napalm.plugins.tasks import napalm_configure, napalm_get

from napalm_frr import FRROptions
from napalm_frr.parse import bgp_neighbors, clean_reload_diff, expand_address_families
from nornir_coopchain import session as sessions
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.demo import build_out, deploy_with_dev_keys, sample_operators
from nornir_coopchain.exceptions import ChangeRefused, ConfigError
from nornir_coopchain.gate import (
    apply_change,
    audit_change,
    build_content,
    prepare_change,
    propose_change,
    run_gated_change,
    wait_for_verdict,
)
from nornir_coopchain.journal import Journal
from nornir_coopchain.lab import LabInfo, check_prerequisites, lab_down, lab_up, set_sshd
from nornir_coopchain.lab.frrconf import pe_config, router_config
from nornir_coopchain.lab.plan import load_site, make_plan
from nornir_coopchain.model.content import ChangeWindow
from nornir_coopchain.model.rules import ProposalState, VoteType
from nornir_coopchain.session import CoopchainSession
from nornir_coopchain.settings import CONNECTION_NAME
from nornir_coopchain.voter.watch import PolicyVoter

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "templates"
SITE = "TOWER-017"
HOSTS = ("site17-r1", "site17-r2", "site17-r3", "site17-r4")
NEW_TENANT = "OPERATOR-C"


# ---------------------------------------------------------------- without root: plan, parsing


def test_plan_reuses_the_sample_site_and_gives_each_pe_every_routers_peer_address() -> None:
    plan = make_plan(Path("/tmp/x"), "beef", 5, load_site(REPO / "inventory"), 200)
    assert [r.name for r in plan.routers] == [*HOSTS, "site17-r5"]
    assert plan.routers[0].tenant_links["OPERATOR-A"]["backhaul"]["local"] == "198.19.1.1/30"
    assert plan.routers[4].tenant_links["OPERATOR-C"]["backhaul"]["local"] == "198.19.3.17/30"
    assert (plan.routers[1].mgmt_host, plan.routers[1].mgmt_address) == (
        "198.19.200.5",
        "198.19.200.6",
    )
    pe_c = plan.tenants[2]
    assert (pe_c.operator, pe_c.vlan, pe_c.peer_asn) == ("OPERATOR-C", 103, 64603)
    assert pe_c.addresses[:2] == ("198.19.3.2/30", "198.19.3.6/30")
    assert plan.router_ns(plan.routers[0]) == "ccbeef-r1"
    base = router_config(plan, plan.routers[0])
    assert " neighbor 198.19.3.2 remote-as 64603" in base.splitlines()
    assert " no bgp ebgp-requires-policy" in base.splitlines()
    assert "  network 203.0.113.128/26" in pe_config(plan, pe_c).splitlines()
    with pytest.raises(ConfigError, match=r"1\.\.9"):
        make_plan(Path("/tmp/x"), "beef", 10, load_site(REPO / "inventory"), 200)


def test_reload_diff_drops_the_forwarding_line_zebra_never_echoes() -> None:
    diff = (
        "\nLines To Delete\n===============\nipv6 forwarding\n\nLines To Add\n====\nip forwarding\n"
    )
    assert clean_reload_diff(diff, "frr version 8.4.4\n") == (
        "Lines To Delete\n===============\nipv6 forwarding\n"
    )
    assert "ip forwarding" in clean_reload_diff(diff, "no ip forwarding\n").split("Add")[1]
    assert clean_reload_diff("\nLines To Add\n====\nip forwarding\n", "") == ""


def test_bgp_neighbors_from_frr_json() -> None:
    peer = {
        "remoteAs": 64601,
        "localAs": 65017,
        "remoteRouterId": "198.19.1.2",
        "localRouterId": "192.0.2.171",
        "bgpState": "Established",
        "bgpTimerUpMsec": 106000,
        "nbrDesc": "PE",
        "addressFamilyInfo": {"ipv4Unicast": {"acceptedPrefixCounter": 2, "sentPrefixCounter": 3}},
    }
    summary = {"default": {"ipv4Unicast": {"peers": {"198.19.1.2": {"pfxRcd": 2}}}}}
    got = bgp_neighbors({"default": {"vrfId": 0, "198.19.1.2": peer}}, summary)
    assert got["global"]["router_id"] == "192.0.2.171"
    assert got["global"]["peers"]["198.19.1.2"] == {
        "local_as": 65017,
        "remote_as": 64601,
        "remote_id": "198.19.1.2",
        "is_up": True,
        "is_enabled": True,
        "description": "PE",
        "uptime": 106,
        "address_family": {
            "ipv4": {"received_prefixes": 2, "accepted_prefixes": 2, "sent_prefixes": 3}
        },
    }


def test_bgp_neighbors_report_remote_as_for_internal_external_and_peer_group_members() -> None:
    # FRR 8.4 `show bgp vrf all neighbors json` for `remote-as internal` (alone) and for a
    # member of a peer group with `remote-as external`, before and after the session is up.
    internal = {"remoteAs": 0, "localAs": 65001, "nbrInternalLink": True, "bgpState": "Idle"}
    member = {"remoteAs": 0, "localAs": 65001, "nbrExternalLink": True, "peerGroup": "PG"}
    up = {**member, "remoteAs": 64601, "bgpState": "Established"}
    got = bgp_neighbors(
        {"default": {"10.1.1.1": internal, "192.168.255.3": member, "198.19.1.2": up}}, {}
    )
    peers = got["global"]["peers"]
    assert peers["10.1.1.1"]["remote_as"] == 65001  # internal: our own AS
    assert peers["198.19.1.2"]["remote_as"] == 64601  # external, learned from the session
    assert peers["192.168.255.3"]["remote_as"] == 0  # external and never up: not known


def test_short_address_family_is_sent_in_the_form_frr_prints() -> None:
    # frr-reload.py 8.4.4 crashes (UnboundLocalError: rm_match) on `address-family ipv4`.
    config = "router bgp 65000\n  address-family ipv4\n    redistribute connected\n"
    assert expand_address_families(config) == config.replace("ipv4\n", "ipv4 unicast\n")
    unchanged = (
        " address-family ipv4 unicast\n address-family l2vpn evpn\n address-family ipv6 vpn\n"
    )
    assert expand_address_families(unchanged) == unchanged


def test_driver_options_are_checked() -> None:
    options = FRROptions.parse({"vty_socket": "/run/r1", "rundir": "/run/r1", "port": 22})
    assert (options.vty_socket, options.device_dir) == ("/run/r1", "/run/r1/napalm_frr")
    with pytest.raises(ValueError, match="absolute"):
        FRROptions.parse({"confdir": "etc/frr"})


class _LateDataChannel:
    """An SSH exec channel whose exit status arrives before its last output (as OpenSSH
    sends it when the command ends with output still in its pipe, e.g. under CPU load)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks, self.polls = chunks, 0
        self.eof_received = self.closed = False

    def settimeout(self, timeout: float) -> None:
        """No timeout needed."""

    def exec_command(self, command: str) -> None:
        """The command 'runs' at once."""

    def shutdown_write(self) -> None:
        """No stdin."""

    def exit_status_ready(self) -> bool:
        return True  # from the start: before any output

    def recv_ready(self) -> bool:
        self.polls += 1
        return bool(self.chunks) and self.polls % 3 == 0  # each chunk a little later

    def recv(self, size: int) -> bytes:
        chunk = self.chunks.pop(0)
        self.eof_received = not self.chunks
        return chunk

    def recv_stderr_ready(self) -> bool:
        return False

    def recv_exit_status(self) -> int:
        return 0

    def close(self) -> None:
        """Nothing to free."""


def test_remote_reads_until_end_of_file_not_until_the_exit_status() -> None:
    from types import SimpleNamespace

    from napalm_frr.remote import Remote

    chunks = [b"Current configuration:\n", b"interface eth0\n", b"exit\n", b"end\n"]
    channel = _LateDataChannel(list(chunks))
    transport = SimpleNamespace(is_active=lambda: True, open_session=lambda timeout: channel)
    connection = SimpleNamespace(remote_conn_pre=SimpleNamespace(get_transport=lambda: transport))
    done = Remote(connection, "r1").run("vtysh -c 'show running-config'", timeout=5)
    assert (done.returncode, done.stdout) == (0, b"".join(chunks).decode())


def test_a_running_config_without_its_end_line_is_a_failed_read() -> None:
    from types import SimpleNamespace

    from napalm.base.exceptions import CommandErrorException

    from napalm_frr import FRRDriver
    from napalm_frr.remote import Completed

    cut = "Current configuration:\n!\nfrr version 8.4.4\ninterface eth0\n description up"
    device = FRRDriver("r1")
    device._remote = SimpleNamespace(  # white box: a read that came back short
        run=lambda command, stdin=None, timeout=0: Completed(command, 0, cut, "")
    )
    with pytest.raises(CommandErrorException, match="did not end with `end`"):
        device.get_config(retrieve="running")


def test_lab_needs_root_and_says_how(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ConfigError, match=r"needs root.*scripts/test.*frr frr-pythontools"):
        check_prerequisites()


@pytest.fixture(scope="module")
def lab() -> Iterator[LabInfo]:
    """One lab of four routers for the whole module, removed at the end."""
    needs_lab()
    # FRR's daemons run as user frr: the lab must sit below directories others may enter.
    base = Path(tempfile.mkdtemp(prefix="cclab-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield lab_up(4, base / "lab")
    finally:
        lab_down(base / "lab")
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Site:
    lab: LabInfo
    chain: ChainClient
    coop: CoopChain
    owner: CoopchainSession
    voters: dict[str, PolicyVoter]
    nr: Nornir

    def window(self) -> ChangeWindow:
        now = self.chain.now()
        return ChangeWindow(start=now - 60, end=now + 3600)

    def propose(self, title: str = "Turn up OPERATOR-C") -> int:
        prepared = prepare_change(self.nr, templates=TEMPLATES)
        content = build_content(
            prepared,
            resource_set=SITE,
            title=title,
            window=self.window(),
            created_at=self.chain.now(),
            templates=TEMPLATES,
        )
        return propose_change(self.owner, content, prepared.candidates).proposal_id

    def vote(self) -> dict[str, list[VoteType | None]]:
        return {op: [a.vote for a in voter.poll_once()] for op, voter in self.voters.items()}

    def approved(self) -> int:
        proposal_id = self.propose()
        self.vote()
        state = wait_for_verdict(self.owner, proposal_id, timeout=5, poll_interval=0.05)
        assert state is ProposalState.Approved
        return proposal_id

    def journal(self, proposal_id: int) -> Journal:
        journal = Journal.find(
            self.owner.settings.journal_dir(),
            chain_id=self.chain.chain_id,
            contract=self.coop.address,
            proposal_id=proposal_id,
        )
        assert journal is not None
        return journal


def _get(nr: Nornir, getter: str, **options: Any) -> dict[str, Any]:
    results = nr.run(
        task=napalm_get, getters=[getter], getters_options={getter: options}, on_failed=True
    )
    failed = [host for host, multi in results.items() if multi.failed]
    assert not failed, f"{getter} failed on {failed}: {results[failed[0]][0].exception!r}"
    return {host: multi[0].result[getter] for host, multi in results.items()}


def running_configs(nr: Nornir) -> dict[str, str]:
    """Every router's running config, read over SSH."""
    return {h: c["running"] for h, c in _get(nr, "config", retrieve="running").items()}


def wait_for_sessions(nr: Nornir, peers: dict[str, set[str]], timeout: float = 45.0) -> None:
    """Wait (bounded) until each router has exactly ``peers[router]`` as BGP peers, all
    Established and each with the PE's two prefixes accepted."""
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    for _ in range(int(timeout) + 1):
        seen = {host: n["global"]["peers"] for host, n in _get(nr, "bgp_neighbors").items()}
        if all(
            set(seen[host]) == wanted
            and all(
                p["is_up"] and p["address_family"]["ipv4"]["accepted_prefixes"] == 2
                for p in seen[host].values()
            )
            for host, wanted in peers.items()
        ):
            return
        if time.monotonic() > deadline:
            break
        time.sleep(1.0)
    states = {h: {a: p["is_up"] for a, p in ps.items()} for h, ps in seen.items()}
    pytest.fail(f"BGP sessions not as intended after {timeout:g} s: {states}")


def _backhaul_peers(nr: Nornir, tenants: tuple[str, ...]) -> dict[str, set[str]]:
    return {
        host: {nr.inventory.hosts[host]["tenant_links"][op]["backhaul"]["peer"] for op in tenants}
        for host in HOSTS
    }


@pytest.fixture
def site(lab: LabInfo, tmp_path: Path) -> Iterator[Site]:
    """The lab's routers built out with OPERATOR-A and OPERATOR-B; a fresh contract."""
    files = {
        f"{kind}_file": str(lab.inventory / f"{name}.yaml")
        for kind, name in (("host", "hosts"), ("group", "groups"), ("defaults", "defaults"))
    }
    nr = InitNornir(
        runner={"plugin": "threaded", "options": {"num_workers": 8}},
        inventory={
            "plugin": "SimpleInventory",
            "options": files,
        },
        logging={"enabled": False},
    )
    with ChainClient.connect("embedded://", receipt_timeout=10) as chain:
        coop = deploy_with_dev_keys(chain, REPO / "inventory")
        owner, voters = sample_operators(chain, coop.address, REPO / "inventory", tmp_path)
        nr.inventory.defaults.connection_options[CONNECTION_NAME] = ConnectionOptions(
            extras=owner.settings.model_dump(mode="json")
        )
        tenants = nr.inventory.groups["site17"].data["tenants"]
        build_out(nr, TEMPLATES, {op: t for op, t in tenants.items() if op != NEW_TENANT})
        try:
            yield Site(lab, chain, coop, owner, voters, nr)
        finally:
            nr.close_connections()
            sessions.forget_all()


# ---------------------------------------------------------------- the whole flow


@pytest.mark.lab
@pytest.mark.slow
def test_approved_change_is_applied_verified_recorded_and_bgp_comes_up(site: Site) -> None:
    nr = site.nr
    wait_for_sessions(nr, _backhaul_peers(nr, ("OPERATOR-A", "OPERATOR-B")))
    sent = site.chain.w3.eth.get_transaction_count(site.owner.account.address)
    report = run_gated_change(
        nr,
        site.owner,
        title="Turn up OPERATOR-C",
        window=site.window(),
        templates=TEMPLATES,
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
    ), outcome.devices
    assert all(d.applied and not d.rolled_back for d in outcome.devices)
    sent_now = site.chain.w3.eth.get_transaction_count(site.owner.account.address)
    assert sent_now - sent == 3  # ONE proposal, ONE claim and ONE record for four routers
    assert site.coop.proposal(report.proposal_id).evidence_root == outcome.evidence_root
    audit = audit_change(site.coop, report.proposal_id, site.owner.settings.journal_dir())
    assert audit.result == "pass"
    assert [d.host for d in audit.devices] == list(HOSTS)
    assert site.journal(report.proposal_id).read().phase == "recorded"

    # Committed with commit-confirm (revert_in=300 by default) and confirmed by the verify.
    for host in HOSTS:
        assert not nr.inventory.hosts[host].get_connection("napalm", nr.config).has_pending_commit()
    running = running_configs(nr)
    assert all("neighbor OPERATOR-C peer-group" in running[h] for h in HOSTS)
    # The new tenant's eBGP sessions come up; the others stayed up.
    wait_for_sessions(nr, _backhaul_peers(nr, ("OPERATOR-A", "OPERATOR-B", NEW_TENANT)))


@pytest.mark.lab
@pytest.mark.slow
def test_rejected_change_leaves_every_running_config_byte_identical(site: Site) -> None:
    tenant_b = site.nr.inventory.groups["site17"].data["tenants"]["OPERATOR-B"]
    tenant_b["accept"] = [*tenant_b["accept"], {"prefix": "198.51.100.0/24"}]
    startup = _get(site.nr, "config", retrieve="startup")
    before = running_configs(site.nr)
    proposal_id = site.propose("Widen OPERATOR-B's accepted prefixes")
    votes = site.vote()
    assert votes["OPERATOR-B"] == [VoteType.Reject]
    assert site.coop.state(proposal_id) is ProposalState.Rejected
    with pytest.raises(ChangeRefused, match="Rejected"):
        apply_change(site.nr, site.owner, proposal_id, templates=TEMPLATES)
    assert running_configs(site.nr) == before
    assert _get(site.nr, "config", retrieve="startup") == startup


# ---------------------------------------------------------------- refusals before any push


@pytest.mark.lab
@pytest.mark.slow
def test_config_changed_out_of_band_is_refused_as_stale(site: Site) -> None:
    proposal_id = site.approved()
    oob = site.nr.filter(name="site17-r2").run(
        task=napalm_configure,
        configuration="ip route 198.18.99.0/24 Null0\n",
        replace=False,
        dry_run=False,
    )
    assert not oob.failed, oob["site17-r2"][0].exception
    before = running_configs(site.nr)
    assert "ip route 198.18.99.0/24 Null0" in before["site17-r2"]
    with pytest.raises(ChangeRefused, match=r"site17-r2: StaleBaseError") as refused:
        apply_change(site.nr, site.owner, proposal_id, templates=TEMPLATES)
    assert "no device touched" in str(refused.value)
    assert running_configs(site.nr) == before
    assert site.coop.state(proposal_id) is ProposalState.Approved


# ---------------------------------------------------------------- failures on some devices


@pytest.mark.lab
@pytest.mark.slow
def test_change_that_does_not_take_is_rolled_back_and_recorded_as_failed(site: Site) -> None:
    # A typo in site17-r3's data: its OPERATOR-C RAN subnet with host bits. FRR accepts the
    # lines and silently rewrites them to the network address (ip route, network,
    # prefix-list), so the read-back is not the approved config.
    links = site.nr.inventory.hosts["site17-r3"]["tenant_links"][NEW_TENANT]
    links["ran"]["routes"][0]["prefix"] = "198.18.33.5/24"
    before = running_configs(site.nr)
    proposal_id = site.approved()
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=TEMPLATES)
    assert (outcome.state, outcome.devices_ok, outcome.devices_failed) == (
        ProposalState.VerificationFailed,
        3,
        1,
    )
    failed = {d.host: d for d in outcome.devices if not d.verified}
    assert list(failed) == ["site17-r3"]
    r3 = failed["site17-r3"]
    assert r3.applied
    assert r3.rolled_back
    assert "ip route 198.18.33.5/24 198.19.13.10 eth1.203" in r3.missing
    assert "ip route 198.18.33.0/24 198.19.13.10 eth1.203" in r3.extra
    after = running_configs(site.nr)
    assert after["site17-r3"] == before["site17-r3"]  # rolled back, byte for byte
    assert all(after[h] != before[h] for h in HOSTS if h != "site17-r3")
    audit = audit_change(site.coop, proposal_id, site.owner.settings.journal_dir())
    assert {d.host: d.passed for d in audit.devices} == {
        "site17-r1": True,
        "site17-r2": True,
        "site17-r3": False,
        "site17-r4": True,
    }
    assert audit.evidence_root_ok


@pytest.mark.lab
@pytest.mark.slow
def test_change_bgpd_refuses_at_commit_is_restored_and_recorded_as_failed(site: Site) -> None:
    # A typo in site17-r3's data: its OPERATOR-C PE given as the router's own backhaul
    # address. vtysh accepts the line when the candidate is loaded (`vtysh -m -f` checks the
    # syntax) but bgpd refuses it at commit ("Can not configure the local system as
    # neighbor"): frr-reload.py --reload fails half way and the driver restores the device.
    nr = site.nr
    backhaul = nr.inventory.hosts["site17-r3"]["tenant_links"][NEW_TENANT]["backhaul"]
    backhaul["peer"] = backhaul["local"].split("/")[0]
    before = running_configs(nr)
    proposal_id = site.approved()
    outcome = apply_change(nr, site.owner, proposal_id, templates=TEMPLATES)
    assert (outcome.state, outcome.devices_ok, outcome.devices_failed) == (
        ProposalState.VerificationFailed,
        3,
        1,
    )
    (failed,) = [d for d in outcome.devices if not d.verified]
    assert failed.host == "site17-r3"
    assert not failed.applied
    assert not failed.rolled_back
    assert failed.error is not None
    assert failed.error.startswith("CommitError: ")
    assert "applying the candidate failed" in failed.error
    assert "previous config restored" in failed.error
    after = running_configs(nr)
    assert after["site17-r3"] == before["site17-r3"]  # restored, byte for byte
    others = [h for h in HOSTS if h != "site17-r3"]
    assert all(
        after[h] != before[h] and "neighbor OPERATOR-C peer-group" in after[h] for h in others
    )
    # No revert timer left anywhere: r3's never started, the others' were confirmed.
    for host in HOSTS:
        assert not nr.inventory.hosts[host].get_connection("napalm", nr.config).has_pending_commit()
    audit = audit_change(site.coop, proposal_id, site.owner.settings.journal_dir())
    assert [d.host for d in audit.devices if not d.passed] == ["site17-r3"]
    assert audit.evidence_root_ok


@pytest.mark.lab
@pytest.mark.slow
def test_unreachable_router_fails_alone_and_is_named(site: Site) -> None:
    proposal_id = site.approved()
    before = running_configs(site.nr)
    set_sshd(site.lab, "site17-r4", running=False)
    try:
        site.nr.inventory.hosts["site17-r4"].close_connections()
        outcome = apply_change(site.nr, site.owner, proposal_id, templates=TEMPLATES)
    finally:
        set_sshd(site.lab, "site17-r4", running=True)
    assert (outcome.state, outcome.devices_ok, outcome.devices_failed) == (
        ProposalState.VerificationFailed,
        3,
        1,
    )
    (failed,) = [d for d in outcome.devices if not d.verified]
    assert failed.host == "site17-r4"
    assert not failed.applied
    assert failed.error is not None
    assert "ConnectionException" in failed.error
    assert "site17-r4" in failed.error or site.lab.router("site17-r4").mgmt_address in failed.error
    audit = audit_change(site.coop, proposal_id, site.owner.settings.journal_dir())
    assert [d.host for d in audit.devices if not d.passed] == ["site17-r4"]
    assert running_configs(site.nr)["site17-r4"] == before["site17-r4"]


# ---------------------------------------------------------------- the driver's commit-confirm


@pytest.mark.lab
@pytest.mark.slow
def test_commit_confirm_blocks_commits_until_confirmed_and_reverts_when_left(site: Site) -> None:
    device = site.nr.inventory.hosts["site17-r2"].get_connection("napalm", site.nr.config)
    before = device.get_config(retrieve="running")["running"]
    first, second = "ip route 198.18.77.0/24 Null0", "ip route 198.18.78.0/24 Null0"
    device.load_merge_candidate(config=f"{first}\n")
    device.commit_config(revert_in=300)
    try:
        assert device.has_pending_commit()
        changed = device.get_config(retrieve="running")["running"]
        assert first in changed.splitlines()
        # A second commit is refused before it touches anything; its candidate stays loaded.
        device.load_merge_candidate(config=f"{second}\n")
        with pytest.raises(CommitError, match="a commit-confirm is pending; confirm first"):
            device.commit_config()
        assert device.get_config(retrieve="running")["running"] == changed
        assert device.get_config(retrieve="candidate")["candidate"] == f"{second}\n"
        assert device.has_pending_commit()
        device.confirm_commit()
        assert not device.has_pending_commit()
        with pytest.raises(CommitConfirmException, match="no pending commit"):
            device.confirm_commit()
        device.commit_config()  # the kept candidate, now that nothing is pending
    finally:
        if device.has_pending_commit():
            device.confirm_commit()
    confirmed = device.get_config(retrieve="running")["running"]
    assert {first, second} <= set(confirmed.splitlines())
    assert not device.has_pending_commit()

    # Left unconfirmed, the device reverts by itself to the config before that commit.
    device.load_merge_candidate(config="no ip route 198.18.77.0/24 Null0\n")
    device.commit_config(revert_in=1)
    try:
        running = device.get_config(retrieve="running")["running"]
        deadline = time.monotonic() + 20
        while running != confirmed and time.monotonic() < deadline:
            time.sleep(0.25)
            running = device.get_config(retrieve="running")["running"]
    finally:  # never leave a timer behind; one that fired is refused once its revert is done
        with contextlib.suppress(CommitConfirmException):
            if device.has_pending_commit():
                device.confirm_commit()
    assert running == confirmed
    assert not device.has_pending_commit()
    with pytest.raises(CommitConfirmException):
        device.confirm_commit()
    assert running != before  # only the unconfirmed commit was undone

    # A confirm that comes once the timer has fired fails, and only after the revert is
    # done: what is read next is the reverted config, never one still being reverted.
    device.load_merge_candidate(config="no ip route 198.18.77.0/24 Null0\n")
    device.commit_config(revert_in=1)
    reverting = f"test -e {device._firing_file}"  # white box: the timer fired
    deadline = time.monotonic() + 20
    while device._run(reverting).returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(CommitConfirmException):
        device.confirm_commit()
    assert device.get_config(retrieve="running")["running"] == confirmed
    assert not device.has_pending_commit()

    # Until its revert is done, a fired commit-confirm is still pending (not settled).
    device.load_merge_candidate(config="no ip route 198.18.77.0/24 Null0\n")
    device.commit_config(revert_in=1)
    while device.has_pending_commit() and time.monotonic() < deadline + 20:
        time.sleep(0.02)
    assert device.get_config(retrieve="running")["running"] == confirmed


# ---------------------------------------------------------------- co-owners who do not trust


def _second_session(nr: Nornir, host: str) -> Any:
    """Another NAPALM session on ``host``'s router, as an operator elsewhere would open."""
    import napalm

    params = nr.inventory.hosts[host].get_connection_parameters("napalm")
    extras = params.extras or {}
    driver = napalm.get_network_driver(str(params.platform))(
        str(params.hostname),
        str(params.username),
        str(params.password or ""),
        optional_args={"port": params.port, **extras.get("optional_args", {})},
    )
    driver.open()
    return driver


@pytest.mark.lab
@pytest.mark.slow
def test_router_changed_during_the_commit_is_refused_as_stale_and_keeps_its_line(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The out-of-band commit lands after the apply read r2 and before its commit: the base
    check in the commit's own SSH command refuses it before frr-reload.py runs."""
    import functools

    from napalm_frr import FRRDriver

    proposal_id = site.approved()
    commit = FRRDriver.commit_config
    landed: list[str] = []

    @functools.wraps(commit)
    def out_of_band_first(self: FRRDriver, *args: Any, **kwargs: Any) -> None:
        if self.hostname == site.nr.inventory.hosts["site17-r2"].hostname and not landed:
            other = _second_session(site.nr, "site17-r2")
            try:
                other.load_merge_candidate(config="ip route 10.99.99.0/24 Null0\n")
                commit(other)
                landed.append(other.get_config(retrieve="running")["running"])
            finally:
                other.close()
        commit(self, *args, **kwargs)

    monkeypatch.setattr(FRRDriver, "commit_config", out_of_band_first)
    outcome = apply_change(site.nr, site.owner, proposal_id, templates=TEMPLATES)
    assert landed
    assert "ip route 10.99.99.0/24 Null0" in landed[0]
    failed = {d.host: d for d in outcome.devices if not d.verified}
    assert list(failed) == ["site17-r2"], outcome.devices
    assert "StaleBaseError" in (failed["site17-r2"].error or "")
    assert outcome.state is ProposalState.VerificationFailed  # never Verified
    monkeypatch.undo()
    assert running_configs(site.nr)["site17-r2"] == landed[0]  # nothing changed by the apply
    device = site.nr.inventory.hosts["site17-r2"].get_connection("napalm", site.nr.config)
    assert not device.has_pending_commit()


@pytest.mark.lab
@pytest.mark.slow
def test_large_running_config_reads_whole_while_the_cpu_is_busy(site: Site) -> None:
    import subprocess
    import sys

    device = site.nr.inventory.hosts["site17-r1"].get_connection("napalm", site.nr.config)
    # ~200 kB of running config; one list per line (FRR adds to one list in quadratic time)
    lines = [
        f"ip prefix-list BIG{n} seq 5 permit 10.{n // 250}.{n % 250}.0/24" for n in range(4000)
    ]
    device.load_merge_candidate(config="\n".join(lines) + "\n")
    device.commit_config()
    whole = device.get_config(retrieve="running")["running"]
    assert lines[-1] in whole
    assert whole.rstrip().endswith("\nend")
    burn = "import time\nend = time.monotonic() + 120\nwhile time.monotonic() < end: pass\n"
    burners = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(2)]
    try:
        reads = [device.get_config(retrieve="running")["running"] for _ in range(25)]
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    assert [len(read) for read in reads] == [len(whole)] * len(reads)
    assert all(read == whole for read in reads)
