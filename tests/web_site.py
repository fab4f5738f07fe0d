"""The sample site 17 for the dashboard tests: one recorded change and one open proposal."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from nornir.core import Nornir

from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.demo import build_out, deploy_with_dev_keys, init_site, sample_operators
from nornir_coopchain.gate import build_content, prepare_change, propose_change, run_gated_change
from nornir_coopchain.model.content import ChangeWindow
from nornir_coopchain.session import CoopchainSession
from nornir_coopchain.voter.watch import PolicyVoter
from nornir_coopchain.web import Dashboard

REPO = Path(__file__).resolve().parents[1]
SITE = "TOWER-017"
HOSTS = ("site17-r1", "site17-r2", "site17-r3", "site17-r4")


@dataclass
class WebSite:
    chain: ChainClient
    coop: CoopChain
    owner: CoopchainSession  # OPERATOR-A proposes, and runs the dashboard
    voters: dict[str, PolicyVoter]
    nr: Nornir
    templates: Path

    def window(self) -> ChangeWindow:
        now = self.chain.now()
        return ChangeWindow(start=now - 60, end=now + 3600)

    def recorded_change(self) -> int:
        """Turn up OPERATOR-C: approved by the policy voters, applied, verified, recorded."""
        report = run_gated_change(
            self.nr,
            self.owner,
            title="Turn up OPERATOR-C",
            description="Adds OPERATOR-C's BGP session and prefix lists on the 4 site routers.",
            window=self.window(),
            templates=self.templates,
            poll_interval=0.05,
            verdict_timeout=10,
            progress=lambda _line: [voter.poll_once() for voter in self.voters.values()],
        ).report
        return report.proposal_id

    def open_proposal(self) -> int:
        """Widen OPERATOR-B's accepted prefixes: proposed, nobody voted yet."""
        tenant_b = self.nr.inventory.groups["site17"].data["tenants"]["OPERATOR-B"]
        tenant_b["accept"] = [*tenant_b["accept"], {"prefix": "198.51.100.0/24"}]
        return self.propose("Widen OPERATOR-B's accepted prefixes")

    def propose(self, title: str) -> int:
        """Propose the inventory's change as it stands now (nobody votes)."""
        prepared = prepare_change(self.nr, templates=self.templates)
        content = build_content(
            prepared,
            resource_set=SITE,
            title=title,
            window=self.window(),
            created_at=self.chain.now(),
            templates=self.templates,
        )
        return propose_change(self.owner, content, prepared.candidates).proposal_id

    def dashboard(self) -> Dashboard:
        """The owner's dashboard, with the inventory's tenant patterns."""
        patterns = {
            name: (host.get("coopchain") or {}).get("tenants_patterns") or {}
            for name, host in self.nr.inventory.hosts.items()
        }
        return Dashboard(lambda: self.coop, self.owner.settings.journal_dir(), patterns)


def build_site(chain: ChainClient, tmp: Path) -> WebSite:
    """Site 17 built out with OPERATOR-A and OPERATOR-B; OPERATOR-C not yet turned up."""
    coop = deploy_with_dev_keys(chain, REPO / "inventory")
    owner, voters = sample_operators(chain, coop.address, REPO / "inventory", tmp)
    templates = tmp / "templates"
    shutil.copytree(REPO / "templates", templates)
    nr = init_site(REPO / "inventory", device_state=tmp / "devices", coopchain=owner.settings)
    tenants = nr.inventory.groups["site17"].data["tenants"]
    build_out(nr, templates, {op: data for op, data in tenants.items() if op != "OPERATOR-C"})
    return WebSite(chain, coop, owner, voters, nr, templates)
