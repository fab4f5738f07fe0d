"""Real-world FRR configurations nobody on this project wrote, through the gated flow on FRR.

The corpus (``tests/corpus/frr``, origins and adaptations in its README) is pushed, one
configuration after the other, to ONE router of ONE lab: before each, the router is reset
to a minimal base (its daemons restarted on it: set-up, not gated). For each configuration:

- it is prepared, proposed, approved by the sample site's voters and applied with
  ``apply_change`` while an out-of-band change is on the router: refused as stale, nothing
  pushed; the out-of-band change is undone (the read-back is byte-identical again);
- the same approved proposal is applied: the read-back verifies (Verified on chain);
- a wrong read-back (the real one with one line dropped and one added) is flagged, naming
  exactly those lines.

Configurations FRR 8.4 rejects (``tests/corpus/frr/rejected``) are refused at prepare with
FRR's own message; nothing is proposed. Marker ``lab``: root and FRR, else skipped locally
and failed in CI.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from needs import needs_lab
from nornir import InitNornir
from nornir.core import Nornir
from nornir.core.inventory import ConnectionOptions

from napalm_frr import RollbackIncomplete
from nornir_coopchain import session as sessions
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.demo import deploy_with_dev_keys, sample_operators
from nornir_coopchain.exceptions import ChangeRefused, ConfigError
from nornir_coopchain.gate import (
    apply_change,
    build_content,
    prepare_change,
    propose_change,
    wait_for_verdict,
)
from nornir_coopchain.lab import LabInfo, daemons, lab_down, lab_up
from nornir_coopchain.lab._run import wait_for
from nornir_coopchain.model.compliance import check_compliance, is_skipped
from nornir_coopchain.model.content import ChangeWindow, hash_text
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.session import CoopchainSession
from nornir_coopchain.settings import CONNECTION_NAME
from nornir_coopchain.voter.watch import PolicyVoter

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "corpus" / "frr"
CONFIGS = sorted(CORPUS.glob("*.conf"))
REJECTED = sorted((CORPUS / "rejected").glob("*.conf"))
HOST = "site17-r1"
BASE = "frr defaults traditional\nhostname site17-r1\n!\n"
"""The router between two configurations: nothing any tenant's voter guards."""
OOB = "ip route 198.18.99.0/24 Null0"
DAEMONS = ("zebra", "staticd", "bgpd", "bfdd")  # bfdd for the corpus's BFD peers


def test_the_corpus_is_large_enough_and_documented() -> None:
    readme = (CORPUS / "README.md").read_text()
    assert len(CONFIGS) >= 30
    assert REJECTED
    for path in [*CONFIGS, *REJECTED]:
        assert f"`{path.name}`" in readme, f"{path.name} has no origin in the README"


@dataclass
class Corpus:
    lab: LabInfo
    chain: ChainClient
    coop: CoopChain
    owner: CoopchainSession
    voters: dict[str, PolicyVoter]
    nr: Nornir
    templates: Path

    def reset(self) -> None:
        """The router back to BASE: its daemons restarted on it (set-up, not gated)."""
        router = self.lab.router(HOST)
        for daemon in reversed(DAEMONS):
            daemons.stop_daemon(router.directory, daemon)
        (router.directory / "frr.conf").write_text(BASE)
        shutil.chown(router.directory / "frr.conf", "frr", "frr")
        for daemon in DAEMONS:
            daemons.start_daemon(router.namespace, router.name, router.directory, daemon)
        wait_for(  # vtysh reaches every daemon before anything is sent to them
            lambda: set(daemons.vtysh(router.directory, "show daemons").split()) >= set(DAEMONS),
            what="vtysh connected to every daemon",
            timeout=20,
        )

    def running(self) -> str:
        device = self.nr.inventory.hosts[HOST].get_connection("napalm", self.nr.config)
        return str(device.get_config(retrieve="running")["running"])

    def out_of_band(self, line: str) -> None:
        """Configure ``line`` on the router directly with vtysh, behind the gate's back."""
        router = self.lab.router(HOST)
        daemons.vtysh(router.directory, "configure terminal", line)

    def approved(self, config: str, title: str) -> int:
        self.nr.inventory.hosts[HOST].data["corpus_config"] = config
        prepared = prepare_change(self.nr, templates=self.templates)
        now = self.chain.now()
        content = build_content(
            prepared,
            resource_set="TOWER-017",
            title=title[:64],
            window=ChangeWindow(start=now - 60, end=now + 3600),
            created_at=now,
            templates=self.templates,
        )
        proposal_id = propose_change(self.owner, content, prepared.candidates).proposal_id
        for voter in self.voters.values():
            voter.poll_once()
        state = wait_for_verdict(self.owner, proposal_id, timeout=5, poll_interval=0.05)
        assert state is ProposalState.Approved, title
        return proposal_id


@pytest.fixture(scope="module")
def corpus() -> Iterator[Corpus]:
    """One lab with one router (and bfdd), the sample site's contract and voters."""
    needs_lab()
    base = Path(tempfile.mkdtemp(prefix="cccorpus-", dir="/tmp"))
    base.chmod(0o755)
    templates = base / "templates"
    (templates / "frr").mkdir(parents=True)
    (templates / "frr" / "corpus.j2").write_text("{{ corpus_config }}")
    try:
        lab = lab_up(1, base / "lab")
        files = {
            f"{kind}_file": str(lab.inventory / f"{name}.yaml")
            for kind, name in (("host", "hosts"), ("group", "groups"), ("defaults", "defaults"))
        }
        nr = InitNornir(
            runner={"plugin": "serial"},
            inventory={"plugin": "SimpleInventory", "options": files},
            logging={"enabled": False},
        )
        nr.inventory.hosts[HOST].data["template"] = "corpus.j2"
        with ChainClient.connect("embedded://", receipt_timeout=10) as chain:
            coop = deploy_with_dev_keys(chain, REPO / "inventory")
            owner, voters = sample_operators(chain, coop.address, REPO / "inventory", base)
            nr.inventory.defaults.connection_options[CONNECTION_NAME] = ConnectionOptions(
                extras=owner.settings.model_dump(mode="json")
            )
            try:
                yield Corpus(lab, chain, coop, owner, voters, nr, templates)
            finally:
                nr.close_connections()
                sessions.forget_all()
    finally:
        lab_down(base / "lab")
        shutil.rmtree(base, ignore_errors=True)
        for log in Path("/tmp").glob("frr-corpus-*.log"):  # the corpus's `log file` targets
            log.unlink(missing_ok=True)


def _wrong_readback(config: str, running: str) -> None:
    """The real read-back with its last stanza line dropped and a route added is flagged,
    naming exactly those two lines."""
    lines = running.splitlines()
    index = max(
        i for i, line in enumerate(lines) if line[:1].isspace() and not is_skipped(line.strip())
    )
    dropped = lines.pop(index).strip()
    wrong = "\n".join(lines) + "\nip route 198.18.98.0/24 Null0\n"
    report = check_compliance(config, wrong, "frr")
    assert not report.compliant
    assert len(report.missing) == 1
    assert report.missing[0].endswith(f" > {dropped}"), (dropped, report.missing)
    assert report.extra == ("ip route 198.18.98.0/24 Null0",)


@pytest.mark.lab
@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_public_config_verifies_stale_is_refused_and_a_wrong_readback_is_flagged(
    corpus: Corpus, path: Path
) -> None:
    config = path.read_text()
    corpus.reset()
    proposal_id = corpus.approved(config, path.stem)
    base = corpus.running()

    corpus.out_of_band(OOB)  # after the approval
    changed = corpus.running()
    assert OOB in changed.splitlines()
    with pytest.raises(ChangeRefused, match=rf"{HOST}: StaleBaseError"):
        apply_change(corpus.nr, corpus.owner, proposal_id, templates=corpus.templates)
    assert corpus.running() == changed  # nothing pushed
    corpus.out_of_band(f"no {OOB}")
    assert hash_text(corpus.running()) == hash_text(base)

    outcome = apply_change(corpus.nr, corpus.owner, proposal_id, templates=corpus.templates)
    (device,) = outcome.devices
    assert outcome.state is ProposalState.Verified, (device.missing, device.extra, device.error)
    assert device.verified
    assert device.applied
    assert not device.rolled_back
    _wrong_readback(config, corpus.running())


@pytest.mark.lab
@pytest.mark.slow
@pytest.mark.parametrize("path", REJECTED, ids=[p.stem for p in REJECTED])
def test_config_frr_rejects_is_refused_at_prepare_with_frrs_message(
    corpus: Corpus, path: Path
) -> None:
    corpus.reset()
    before = corpus.running()
    count = corpus.coop.proposal_count()
    corpus.nr.inventory.hosts[HOST].data["corpus_config"] = path.read_text()
    with pytest.raises(ConfigError, match=r"site17-r1: .*% Unknown command"):
        prepare_change(corpus.nr, templates=corpus.templates)
    assert corpus.coop.proposal_count() == count  # nothing proposed
    assert corpus.running() == before


@pytest.mark.lab
@pytest.mark.slow
def test_rollback_is_proven_by_the_readback_not_by_frr_reloads_exit_status(
    corpus: Corpus,
) -> None:
    corpus.reset()
    device = corpus.nr.inventory.hosts[HOST].get_connection("napalm", corpus.nr.config)
    base = device.get_config(retrieve="running")["running"]
    assert not base.startswith("Building configuration")  # loadable as it is:
    device.load_replace_candidate(config=base)
    assert device.compare_config() == ""
    device.discard_config()

    # Undoing static routes in VRFs: frr-reload.py sends `vrf red` to bgpd too, which
    # refuses it (exit 1), yet the device ends up as saved: restored.
    device.load_replace_candidate(config=(CORPUS / "25-static-vrf-r1.conf").read_text())
    device.commit_config()
    assert "vrf red" in device.get_config(retrieve="running")["running"]
    device.rollback()
    assert check_compliance(base, device.get_config(retrieve="running")["running"], "frr").compliant

    # A vty password FRR 8.4 cannot remove again: the rollback is partial and says which
    # line is left; it is never reported as restored.
    device.load_merge_candidate(config="password zebra\n")
    device.commit_config()
    with pytest.raises(RollbackIncomplete, match=r"residual lines extra: password zebra") as left:
        device.rollback()
    assert (left.value.missing, left.value.extra) == ((), ("password zebra",))
