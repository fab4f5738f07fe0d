"""What a proposer declares on chain, recomputed by the voters, `show`, `status` and `audit`.

The contract trusts the request's affectedMask (and stores its window, resource set and
creation time as given); a proposer who lies there must be caught by every reader of the
content. The issue's repro: mask 0 on a set with affectedMustApprove was Approved without the
affected tenant.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nornir.core import Nornir
from typer.testing import CliRunner

from nornir_coopchain import session as sessions
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.cli import app
from nornir_coopchain.demo import build_out, deploy_with_dev_keys, init_site, sample_operators
from nornir_coopchain.gate import audit_change, build_content, prepare_change
from nornir_coopchain.gate.approved import fetch_change
from nornir_coopchain.gate.declared import check_declared, inventory_tenant_patterns
from nornir_coopchain.model.content import ChangeWindow, ProposalContent
from nornir_coopchain.model.rules import ProposalState, VoteType
from nornir_coopchain.session import CoopchainSession
from nornir_coopchain.voter.watch import PolicyVoter

REPO = Path(__file__).resolve().parents[1]
SITE = "TOWER-017"


@dataclass
class Site:
    chain: ChainClient
    owner: CoopchainSession  # OPERATOR-A proposes (and lies)
    voters: dict[str, PolicyVoter]
    nr: Nornir
    content: ProposalContent  # the honest content of "turn up OPERATOR-C"

    def propose(self, content: ProposalContent, affected_mask: int, **fields: int) -> int:
        """Sign and relay a request for ``content`` with the proposer's chosen fields."""
        coop, account = self.owner.coop, self.owner.account
        posted = content.chain_bytes()
        request = coop.build_request(
            account.address,
            SITE,
            posted,
            manifest_root=content.manifest_root(),
            device_count=content.device_count,
            window_start=fields.get("window_start", content.window.start),
            window_end=fields.get("window_end", content.window.end),
            affected_mask=affected_mask,
        )
        return coop.propose(
            account, request, coop.sign_request(account, request), posted
        ).proposal_id


@pytest.fixture
def site(chain: ChainClient, tmp_path: Path) -> Iterator[Site]:
    coop = deploy_with_dev_keys(chain, REPO / "inventory")
    owner, voters = sample_operators(chain, coop.address, REPO / "inventory", tmp_path)
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    nr = init_site(REPO / "inventory", device_state=tmp_path / "devices", coopchain=owner.settings)
    tenants = nr.inventory.groups["site17"].data["tenants"]
    build_out(nr, templates, {op: data for op, data in tenants.items() if op != "OPERATOR-C"})
    now = chain.now()
    content = build_content(
        prepare_change(nr, templates=templates),
        resource_set=SITE,
        title="Turn up OPERATOR-C",
        window=ChangeWindow(start=now - 60, end=now + 3600),
        created_at=now,
        templates=templates,
    )
    yield Site(chain, owner, voters, nr, content)
    nr.close_connections()
    sessions.forget_all()


def _mask(site: Site, *operators: str) -> int:
    index = {member.operator_id: member.index for member in site.owner.coop.members()}
    return sum(1 << index[operator] for operator in operators)


def test_a_proposer_declaring_no_affected_tenant_is_rejected_by_the_affected_one(
    site: Site,
) -> None:
    assert site.content.tenants == ("OPERATOR-C",)
    pid = site.propose(site.content, affected_mask=0)
    assert site.owner.coop.proposal(pid).required_mask == 0  # the contract took the lie
    (action,) = site.voters["OPERATOR-C"].poll_once()  # the affected tenant
    assert action.vote is VoteType.Reject, action.reason
    assert "affectedMask on chain is 0b0 (no members)" in action.reason
    assert "touches tenants OPERATOR-C: 0b100 (members 2)" in action.reason
    assert site.owner.coop.state(pid) is ProposalState.Rejected


def test_an_honest_mask_passes_and_a_lying_window_is_named(site: Site) -> None:
    honest = site.propose(site.content, _mask(site, "OPERATOR-C"))
    coop = site.owner.coop
    assert check_declared(coop, fetch_change(coop, honest)) == ()
    # The content says one window (the voters' policies judge it), the chain holds another.
    start = site.content.window.start + 3600
    lying = site.propose(site.content, _mask(site, "OPERATOR-C"), window_start=start)
    (mismatch,) = check_declared(coop, fetch_change(coop, lying))
    assert mismatch == f"windowStart on chain is {start}, the content says {start - 3600}"


def _hide_tenants(site: Site) -> int:
    """Propose the change with no tenant on any device, and a mask to match (0)."""
    data = site.content.model_dump(mode="json", by_alias=True)
    data["devices"] = [{**device, "tenants": []} for device in data["devices"]]
    return site.propose(ProposalContent.model_validate(data), affected_mask=0)


def test_device_tenants_are_recomputed_from_the_diff_and_the_inventory_patterns(
    site: Site, tmp_path: Path
) -> None:
    """A content that hides the tenants on its devices (and a mask to match) is caught by the
    inventory's tenant patterns, in the voters and in the audit."""
    pid = _hide_tenants(site)
    coop = site.owner.coop
    patterns = inventory_tenant_patterns(REPO / "inventory")
    change = fetch_change(coop, pid)
    assert len(check_declared(coop, change)) == 0  # without the patterns: consistent
    found = check_declared(coop, change, patterns)
    assert any(
        item.startswith(
            "site17-r1: the content declares tenants none, its diff and the "
            "inventory's tenant patterns touch OPERATOR-C"
        )
        for item in found
    ), found
    (action,) = site.voters["OPERATOR-C"].poll_once()
    assert action.vote is VoteType.Reject
    assert "site17-r1: the content declares tenants none" in action.reason

    report = audit_change(coop, pid, tmp_path, tenant_patterns=patterns)
    assert report.result == "fail"
    assert any(problem.startswith("declared: site17-r1:") for problem in report.problems)


@pytest.mark.parametrize("chain", [pytest.param("anvil", marks=pytest.mark.anvil)], indirect=True)
def test_show_and_status_flag_what_the_content_contradicts(site: Site) -> None:
    pid = _hide_tenants(site)
    coop = site.owner.coop
    found = check_declared(
        coop, fetch_change(coop, pid), inventory_tenant_patterns(REPO / "inventory")
    )
    assert found
    runner = CliRunner()
    flags = ["--chain", site.chain.url, "--contract", coop.address, "--json"]
    flags += ["--inventory", str(REPO / "inventory")]
    shown = runner.invoke(app, ["show", str(pid), *flags])
    assert shown.exit_code == 1, shown.output
    assert json.loads(shown.stdout)["declared_mismatches"] == list(found)
    status = runner.invoke(app, ["status", str(pid), *flags])
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["declared_mismatches"] == list(found)
