"""`coopchain demo`: three operators share tower site 17 and govern changes to it on chain.

Everything runs in this process: an embedded EVM chain with its publicly known DEV keys,
and the four routers of the sample inventory as SIMULATED devices (the ``coopchain_sim``
NAPALM driver). The flow is the product's own: templates rendered per host, dry-run diffs,
ONE signed proposal, the other operators' policy voters, the verdict, the push inside the
window, read-back verification, ONE record on chain, and an audit from chain data.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nornir import InitNornir
from nornir.core import Nornir
from nornir.core.inventory import ConnectionOptions
from nornir.core.task import Result, Task
from nornir_napalm.plugins.tasks import napalm_configure, napalm_get
from pydantic import BaseModel

from nornir_coopchain.chain.accounts import dev_accounts
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.deployment import DeploymentSpec
from nornir_coopchain.exceptions import ChangeRefused, ConfigError
from nornir_coopchain.gate import (
    apply_change,
    audit_change,
    build_content,
    prepare_change,
    propose_change,
    wait_for_verdict,
)
from nornir_coopchain.gate.declared import inventory_tenant_patterns
from nornir_coopchain.gate.propose import describe, failed_hosts
from nornir_coopchain.model.content import ChangeWindow, hash_text
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.plugins.tasks import coopchain_render
from nornir_coopchain.session import CoopchainSession, open_session
from nornir_coopchain.settings import CONNECTION_NAME, CoopchainSettings
from nornir_coopchain.voter.policy import VoterPolicy
from nornir_coopchain.voter.watch import PolicyVoter, VoterAction

__all__ = [
    "DemoReport",
    "RejectedProposal",
    "build_out",
    "deploy_with_dev_keys",
    "init_site",
    "run_demo",
    "running_hashes",
    "sample_operators",
]

SITE = "TOWER-017"
NEW_TENANT = "OPERATOR-C"


class RejectedProposal(BaseModel):
    """The second proposal, which a member's policy rejects."""

    proposal_id: int
    verdict: str
    apply_refused: str
    devices_touched: int


class DemoVote(BaseModel):
    """One policy voter's decision."""

    proposal_id: int
    operator: str
    vote: str
    rule: str | None
    reason: str


class DemoReport(BaseModel):
    """What `coopchain demo --json` prints."""

    chain_id: int
    contract: str
    proposal_id: int
    verdict: str
    devices: int
    verified: bool
    devices_ok: int
    devices_failed: int
    evidence_root: str
    chain_txs: int
    audit: str
    votes: list[DemoVote]
    rejected_proposal: RejectedProposal


def init_site(
    inventory: Path, *, device_state: Path | None, coopchain: CoopchainSettings, workers: int = 10
) -> Nornir:
    """A Nornir for the sample inventory, its simulated devices and one operator's session.

    Raises:
        ConfigError: the inventory files are missing.
    """
    files = {name: inventory / f"{name}.yaml" for name in ("hosts", "groups", "defaults")}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise ConfigError(
            "inventory not found: run from the project directory or pass --inventory",
            source=", ".join(missing),
        )
    nr = InitNornir(
        runner={"plugin": "threaded", "options": {"num_workers": workers}},
        inventory={
            "plugin": "SimpleInventory",
            "options": {
                "host_file": str(files["hosts"]),
                "group_file": str(files["groups"]),
                "defaults_file": str(files["defaults"]),
            },
        },
        logging={"enabled": False},
    )
    optional_args = {"state_dir": str(device_state)} if device_state else {}
    defaults = nr.inventory.defaults.connection_options
    defaults["napalm"] = ConnectionOptions(extras={"optional_args": optional_args})
    defaults[CONNECTION_NAME] = ConnectionOptions(extras=coopchain.model_dump(mode="json"))
    return nr


def _build_out(task: Task, templates: Path, tenants: dict[str, Any]) -> Result:
    rendered = task.run(coopchain_render, path=templates, tenants=tenants).result
    task.run(napalm_configure, configuration=rendered.config, replace=True, dry_run=False)
    return Result(host=task.host)


def build_out(nr: Nornir, templates: Path, tenants: dict[str, Any]) -> None:
    """Configure the simulated devices as the site was before the demo (not gated: set-up).

    Raises:
        ConfigError: a host could not be configured.
    """
    failed = failed_hosts(nr.run(task=_build_out, templates=templates, tenants=tenants))
    if failed:
        detail = "; ".join(f"{host}: {describe(error)}" for host, error in sorted(failed.items()))
        raise ConfigError(f"cannot build out the site: {detail}")


def running_hashes(nr: Nornir) -> dict[str, str]:
    """hash_text of every host's running config."""
    results = nr.run(
        task=napalm_get,
        getters=["config"],
        getters_options={"config": {"retrieve": "running"}},
        on_failed=True,
    )
    return {
        host: hash_text(multi[0].result["config"]["running"]) for host, multi in results.items()
    }


def deploy_with_dev_keys(client: ChainClient, inventory: Path) -> CoopChain:
    """Deploy the sample ``deployment.yaml`` with the chain's DEV keys as the members."""
    spec = DeploymentSpec.load(inventory / "deployment.yaml")
    keys = dev_accounts(client, len(spec.members))
    members = [
        member.model_copy(update={"address": key.address})
        for member, key in zip(spec.members, keys, strict=True)
    ]
    return CoopChain.deploy(client, keys[0], spec.model_copy(update={"members": members}))


def sample_operators(
    client: ChainClient, contract: str, inventory: Path, state: Path
) -> tuple[CoopchainSession, dict[str, PolicyVoter]]:
    """The tower owner's session (DEV key 0) and the tenants' policy voters (keys 1 and 2),
    each with its own state directory under ``state``."""

    def session(index: int, operator: str) -> CoopchainSession:
        settings = CoopchainSettings(
            chain_url=client.url,
            contract=contract,
            dev_account=index,
            operator=operator,
            resource_set=SITE,
            state_dir=state / operator.lower(),
        )
        return open_session(settings, client)

    patterns = inventory_tenant_patterns(inventory)
    voters = {
        operator: PolicyVoter(
            session(index, operator),
            VoterPolicy.load(inventory / "policies" / f"{operator.lower()}.yaml"),
            tenant_patterns=patterns,
        )
        for index, operator in ((1, "OPERATOR-B"), (2, "OPERATOR-C"))
    }
    return session(0, "OPERATOR-A"), voters


def _demo_vote(session: CoopchainSession, action: VoterAction) -> DemoVote:
    vote = action.vote.name if action.vote is not None else "deferred"
    return DemoVote(
        proposal_id=action.proposal_id,
        operator=session.operator,
        vote=vote,
        rule=action.rule,
        reason=action.reason,
    )


def run_demo(
    *,
    inventory: Path = Path("inventory"),
    templates: Path = Path("templates"),
    url: str = "embedded://",
    progress: Callable[[str], None] | None = None,
) -> DemoReport:
    """Run the demo on a fresh chain and fresh simulated devices; report what happened.

    Arguments:
        inventory: the sample inventory (hosts, groups, defaults, deployment, policies).
        templates: the templates directory.
        url: the chain (``embedded://`` or a dev node such as anvil: its DEV keys are used).
        progress: called with a line of text at each step.
    """
    say = progress or (lambda _line: None)
    with (
        tempfile.TemporaryDirectory(prefix="coopchain-demo-") as tmp,
        ChainClient.connect(url) as client,
    ):
        state = Path(tmp)
        coop = deploy_with_dev_keys(client, inventory)
        say(f"deployed CoopChain {coop.address} on chain {client.chain_id} (DEV keys)")
        owner, voters = sample_operators(client, coop.address, inventory, state)
        nr = init_site(inventory, device_state=state / "devices", coopchain=owner.settings)

        site = nr.inventory.groups["site17"]
        before = {op: data for op, data in site.data["tenants"].items() if op != NEW_TENANT}
        build_out(nr, templates, before)
        say(f"site 17 built out (SIMULATED devices) with {', '.join(sorted(before))}")

        def gated(title: str) -> tuple[int, int, list[DemoVote], ProposalState]:
            prepared = prepare_change(nr, templates=templates)
            now = client.now()
            content = build_content(
                prepared,
                resource_set=SITE,
                title=title,
                window=ChangeWindow(start=now - 60, end=now + 3600),
                created_at=now,
                templates=templates,
            )
            first_block = client.block_number()
            handle = propose_change(owner, content, prepared.candidates)
            devices = content.device_count
            say(f"OPERATOR-A proposed #{handle.proposal_id}: {title} ({devices} devices)")
            votes: list[DemoVote] = []
            for voter in voters.values():
                for action in voter.poll_once():
                    votes.append(_demo_vote(voter.session, action))
                    say(f"  {votes[-1].operator}: {votes[-1].vote} ({action.reason})")
            verdict = wait_for_verdict(owner, handle.proposal_id, timeout=30, poll_interval=0.1)
            say(f"verdict on #{handle.proposal_id}: {verdict.name}")
            return handle.proposal_id, first_block, votes, verdict

        pid, first_block, votes, verdict = gated(f"Turn up {NEW_TENANT} on site 17")
        outcome = apply_change(nr, owner, pid, templates=templates)
        chain_txs = client.block_number() - first_block
        say(
            f"applied and verified: {outcome.devices_ok} ok, {outcome.devices_failed} failed; "
            f"recorded {outcome.state.name}"
        )
        audit = audit_change(coop, pid, owner.settings.journal_dir())
        say(f"audit of #{pid} from chain data and journal: {audit.result}")

        tenants_b = site.data["tenants"]["OPERATOR-B"]
        tenants_b["accept"] = [*copy.deepcopy(tenants_b["accept"]), {"prefix": "198.51.100.0/24"}]
        untouched = running_hashes(nr)
        rejected_id, _, rejected_votes, rejected_verdict = gated(
            "Let OPERATOR-B announce 198.51.100.0/24 at site 17"
        )
        try:
            apply_change(nr, owner, rejected_id, templates=templates)
            refusal = "applied (unexpected)"
        except ChangeRefused as exc:
            refusal = str(exc)
        touched = sum(1 for host, value in running_hashes(nr).items() if untouched[host] != value)
        say(f"apply of #{rejected_id} refused: {refusal}; devices touched: {touched}")

        return DemoReport(
            chain_id=client.chain_id,
            contract=coop.address,
            proposal_id=pid,
            verdict=verdict.name,
            devices=len(outcome.devices),
            verified=outcome.state is ProposalState.Verified,
            devices_ok=outcome.devices_ok,
            devices_failed=outcome.devices_failed,
            evidence_root=outcome.evidence_root,
            chain_txs=chain_txs,
            audit=audit.result,
            votes=votes + rejected_votes,
            rejected_proposal=RejectedProposal(
                proposal_id=rejected_id,
                verdict=rejected_verdict.name,
                apply_refused=refusal,
                devices_touched=touched,
            ),
        )
