"""`coopchain demo`: three operators share a tower site and govern one change on chain.

It runs on the embedded chain with the chain's labelled development accounts, so it needs
nothing installed. The configurations are sample texts standing in for rendered device
configs: this demo exercises the contract and the chain client (proposal, votes, verdict,
verification record, audit from chain data, a vetoed second proposal); pushing to devices
with NAPALM arrives with the Nornir tasks.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from eth_account.signers.local import LocalAccount
from pydantic import BaseModel

from nornir_coopchain.chain.accounts import dev_accounts
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.deployment import DeploymentSpec
from nornir_coopchain.model.content import (
    ChangeWindow,
    DeviceChange,
    DeviceEvidence,
    EvidenceReport,
    ProposalContent,
    hash_text,
)
from nornir_coopchain.model.rules import ProposalState, VoteType

__all__ = ["DemoReport", "RejectedProposal", "run_demo"]

SITE = "TOWER-017"
OPERATORS = ("OPERATOR-A", "OPERATOR-B", "OPERATOR-C")
ROUTERS = ("site17-r1", "site17-r2", "site17-r3")


class RejectedProposal(BaseModel):
    """The second proposal, vetoed by the tower owner."""

    proposal_id: int
    verdict: str
    devices_touched: int


class DemoReport(BaseModel):
    """What `coopchain demo --json` prints."""

    chain_id: int
    contract: str
    proposal_id: int
    verdict: str
    devices: int
    verified: bool
    evidence_root: str
    chain_txs: int
    gas_used: dict[str, int]
    audit: str
    rejected_proposal: RejectedProposal


def _running_config(host: str) -> str:
    return (
        f"hostname {host}\n"
        "interface eth0.101\n description OPERATOR-A RAN backhaul\n"
        "interface eth0.102\n description OPERATOR-B RAN backhaul\n"
        "router bgp 65017\n neighbor 10.17.1.1 remote-as 64601\n"
    )


def _candidate_config(host: str) -> str:
    return _running_config(host) + " neighbor 10.17.3.1 remote-as 64603\nntp server 10.17.0.10\n"


def _content(window: ChangeWindow, created_at: int, title: str) -> ProposalContent:
    devices = []
    for host in ROUTERS:
        running, candidate = _running_config(host), _candidate_config(host)
        diff = "".join(
            difflib.unified_diff(
                running.splitlines(keepends=True),
                candidate.splitlines(keepends=True),
                "running",
                "candidate",
            )
        )
        devices.append(
            DeviceChange(
                host=host,
                platform="frr",
                base_config_hash=hash_text(running),
                candidate_hash=hash_text(candidate),
                diff=diff,
                diff_hash=hash_text(diff),
                tenants=("OPERATOR-C",),
                replace=True,
            )
        )
    return ProposalContent(
        resource_set=SITE,
        title=title,
        description="Add OPERATOR-C's BGP session to the shared site routers and an NTP server.",
        window=window,
        devices=tuple(devices),
        created_at=created_at,
    )


def _deployment(accounts: list[LocalAccount]) -> DeploymentSpec:
    return DeploymentSpec.model_validate(
        {
            "members": [
                {"operator": operator, "address": account.address, "weight": weight}
                for operator, account, weight in zip(OPERATORS, accounts, (40, 35, 25), strict=True)
            ],
            "resource_sets": {
                "governance": {"rule": "unanimous", "voting_period": "1d", "max_window": "7d"},
                SITE: {
                    "rule": "supermajority",
                    "threshold_bps": 6667,
                    "quorum_bps": 5000,
                    "veto": ["OPERATOR-A"],
                    "voting_period": "1h",
                    "max_window": "4h",
                    "record_grace": "30m",
                },
            },
        }
    )


def run_demo(url: str = "embedded://", progress: Callable[[str], None] | None = None) -> DemoReport:
    """Run the demo on a fresh chain and report what happened.

    Arguments:
        url: the chain; the default is a fresh in-process chain.
        progress: called with a line of text at each step.
    """
    say = progress or (lambda _line: None)
    gas: dict[str, int] = {}
    with ChainClient.connect(url) as client:
        owner, member_b, member_c = dev_accounts(client, 3)
        relayer = dev_accounts(client, 4)[3]
        coop = CoopChain.deploy(client, owner, _deployment([owner, member_b, member_c]))
        say(f"deployed CoopChain at {coop.address} (chain {client.chain_id})")
        txs = 1

        now = client.now()
        window = ChangeWindow(start=now, end=now + 3600)
        content = _content(window, now, "Turn up OPERATOR-C BGP backhaul at site 17")
        raw = content.canonical_bytes()
        request = coop.build_request(
            owner.address,
            SITE,
            raw,
            manifest_root=content.manifest_root(),
            device_count=content.device_count,
            window_start=window.start,
            window_end=window.end,
        )
        created = coop.propose(relayer, request, coop.sign_request(owner, request), raw)
        txs += 1
        say(f"OPERATOR-A proposed #{created.proposal_id}: {content.device_count} devices")

        vote = coop.cast_vote(member_b, created.proposal_id, VoteType.Approve)
        gas["cast_vote"] = vote.gas_used
        ballot = coop.sign_ballot(member_c, created.proposal_id, VoteType.Approve)
        batch = coop.cast_votes(relayer, [ballot])
        gas["cast_votes_1"] = batch.gas_used
        txs += 2
        verdict = coop.state(created.proposal_id)
        say(f"OPERATOR-B voted directly, OPERATOR-C by signed ballot: {verdict.name}")

        on_chain = ProposalContent.from_bytes(coop.fetch_content(created.proposal_id))
        evidence = EvidenceReport(
            devices=tuple(
                DeviceEvidence(
                    host=device.host,
                    readback_hash=device.candidate_hash,
                    compliant=True,
                    missing_lines=0,
                    extra_lines=0,
                    report_hash=hash_text(f"{device.host}: compliant\n"),
                )
                for device in on_chain.devices
            )
        )
        record = coop.record_verification(
            owner,
            created.proposal_id,
            evidence.evidence_root(),
            evidence.devices_ok,
            evidence.devices_failed,
        )
        gas["record_verification"] = record.gas_used
        txs += 1
        info = coop.proposal(created.proposal_id)
        say(f"verification recorded: {info.state.name}")

        audit_ok = (
            on_chain.content_hash() == info.content_hash
            and on_chain.manifest_root() == info.manifest_root
            and evidence.evidence_root() == info.evidence_root
        )
        say(f"audit from chain data: {'pass' if audit_ok else 'fail'}")

        second = _content(window, client.now(), "Move site 17 NTP to OPERATOR-B's server")
        raw2 = second.canonical_bytes()
        request2 = coop.build_request(
            member_b.address,
            SITE,
            raw2,
            manifest_root=second.manifest_root(),
            device_count=second.device_count,
            window_start=window.start,
            window_end=window.end,
        )
        created2 = coop.propose(member_b, request2, coop.sign_request(member_b, request2), raw2)
        coop.cast_vote(owner, created2.proposal_id, VoteType.Reject)
        txs += 2
        rejected = coop.state(created2.proposal_id)
        say(f"OPERATOR-B proposed #{created2.proposal_id}; the tower owner vetoed: {rejected.name}")

        return DemoReport(
            chain_id=client.chain_id,
            contract=coop.address,
            proposal_id=created.proposal_id,
            verdict=verdict.name,
            devices=content.device_count,
            verified=info.state is ProposalState.Verified,
            evidence_root=info.evidence_root,
            chain_txs=txs,
            gas_used=gas,
            audit="pass" if audit_ok else "fail",
            rejected_proposal=RejectedProposal(
                proposal_id=created2.proposal_id, verdict=rejected.name, devices_touched=0
            ),
        )
