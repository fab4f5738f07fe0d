#!/usr/bin/env python3
"""Gas of CoopChain side by side with OpenZeppelin Governor, measured from receipts.

One anvil (started here) holds both, with the same five voters:

* ours: CoopChain (the shipped artifact), five members, a Unanimous resource set in which
  the proposer votes too (so five voters, like the Governor's five token holders);
* the peer: OpenZeppelin 5.x Governor + GovernorSettings + GovernorCountingSimple +
  GovernorVotes + GovernorVotesQuorumFraction with an ERC20Votes token, one token per voter,
  each delegated to itself; compiled here from ``benchmarks/contracts/`` with the same pinned
  solc-js and settings as CoopChain (no artifact is committed for them);
* the naive evidence alternative: a tiny contract storing one bytes32 per device.

What is measured (``gasUsed`` of each receipt, intrinsic and calldata gas included):

* ``propose``: the same content bytes for both (the sample site's real change, "turn up
  OPERATOR-C", canonical JSON): our ``content`` calldata vs the Governor's ``description``
  (one dummy call that is never executed). Apart, in the table only: our propose of the
  compressed envelope that ``propose_change`` really posts for that content.
* ``cast_vote_first``: the first direct vote on a proposal; ``cast_vote``: the second one.
* ``vote_by_sig``: a later (third) vote by signature, relayed by another account: ours a
  1-ballot ``castVotes``, the Governor's ``castVoteBySig``.
* ``batch_extra_ballot`` (ours): (gas of a 4-ballot ``castVotes`` - gas of a 1-ballot one) / 3,
  each on a fresh proposal (a fifth ballot would decide the Unanimous vote early).
* ``record``: ``recordVerification`` of an approved proposal declaring 1, 10, 100, 1000 devices.
* ``claim_apply``: the first ``claimApply`` of an approved proposal (the claim a run makes
  before it pushes any device; it writes the proposal's one fresh slot). Apart, in the table
  only: a take-over (``claimApply`` from the current run to a new one).
* ``per_device_storage``: storing 1000 (device, evidence) pairs, in as few transactions as
  the per-transaction gas cap allows, summed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import BENCH_DIR, REPO, emit_json, log, machine, setup_logging, table, verdict
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3.contract import Contract

from nornir_coopchain.chain.accounts import dev_accounts
from nornir_coopchain.chain.artifacts import ContractArtifact
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.compiler import compile_sources
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.devchain import DevChain, start_anvil
from nornir_coopchain.chain.models import SignedBallot
from nornir_coopchain.model.hashing import keccak
from nornir_coopchain.model.rules import AggregationRule, ResourceSetPolicy, VoteType

VOTERS = 5
BENCH_SET = "BENCH-SITE"
DEVICE_COUNTS = (1, 10, 100, 1000)
PER_DEVICE = 1000
TX_GAS_CAP = 2**24  # EIP-7825 (Osaka) per-transaction cap; blocks allow more
TARGETS = {"cast_vote": 36_000, "batch_extra_ballot": 12_000, "record": 50_000}


def sample_content(now: int) -> tuple[bytes, bytes]:
    """The sample site's change (turn up OPERATOR-C on 4 routers): its canonical JSON, and
    the compressed envelope ``propose_change`` posts."""
    from nornir_coopchain.demo import build_out, init_site
    from nornir_coopchain.gate import build_content, prepare_change
    from nornir_coopchain.model.content import ChangeWindow
    from nornir_coopchain.settings import CoopchainSettings

    with tempfile.TemporaryDirectory(prefix="coopchain-gas-") as tmp:
        nr = init_site(
            REPO / "inventory",
            device_state=Path(tmp) / "devices",
            coopchain=CoopchainSettings(state_dir=Path(tmp) / "state"),
        )
        templates = REPO / "templates"
        tenants = nr.inventory.groups["site17"].data["tenants"]
        build_out(nr, templates, {op: data for op, data in tenants.items() if op != "OPERATOR-C"})
        prepared = prepare_change(nr, templates=templates)
        content = build_content(
            prepared,
            resource_set=BENCH_SET,
            title="Turn up OPERATOR-C on site 17",
            window=ChangeWindow(start=now - 60, end=now + 3600),
            created_at=now,
            templates=templates,
        )
        nr.close_connections()
        return content.canonical_bytes(), content.chain_bytes()


def compile_peers() -> dict[str, ContractArtifact]:
    """The Governor, its token and the per-device store, compiled with the pinned solc-js."""
    sources = {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted((BENCH_DIR / "contracts").glob("*.sol"))
    }
    return compile_sources(sources)


def gas_of(client: ChainClient, account: LocalAccount, fn: Any) -> int:
    """Send ``fn`` and return the receipt's gasUsed."""
    return int(client.transact(account, fn)["gasUsed"])


def calldata_floor(fn: Any) -> int:
    """EIP-7623 (Prague) floor of a call's gas: 21000 + 10 x (zero bytes + 4 x non-zero)."""
    data = bytes(HexBytes(fn._encode_transaction_data()))
    zeros = data.count(0)
    return 21_000 + 10 * (zeros + 4 * (len(data) - zeros))


# ----------------------------------------------------------------------------- ours


class Ours:
    """CoopChain with ``VOTERS`` members and a Unanimous set in which the proposer votes."""

    def __init__(self, client: ChainClient, accounts: list[LocalAccount]):
        self.client = client
        self.accounts = accounts
        self.propose_floor = 0
        everyone = (1 << len(accounts)) - 1
        policy = ResourceSetPolicy(
            rule=AggregationRule.Unanimous,
            eligible_mask=everyone,
            voting_period=3600,
            max_window=86400,
            record_grace=600,
            proposer_votes=True,
        )
        members = [(a.address, f"OP-{i}", 1) for i, a in enumerate(accounts)]
        policies = {"coopchain.governance": policy, BENCH_SET: policy}
        self.coop = CoopChain.deploy_with(client, accounts[0], members, policies)

    def propose(self, content: bytes, device_count: int = 4) -> tuple[int, int]:
        """(proposal ID, gas) of a proposal carrying ``content``."""
        coop, proposer = self.coop, self.accounts[0]
        now = self.client.now()
        request = coop.build_request(
            proposer.address,
            BENCH_SET,
            content,
            manifest_root="0x" + keccak(content).hex(),
            device_count=device_count,
            window_start=now - 60,
            window_end=now + 3600,
        )
        signature = coop.sign_request(proposer, request)
        fn = coop.contract.functions.propose(request.as_tuple(), signature, content)
        gas = gas_of(self.client, proposer, fn)
        self.propose_floor = calldata_floor(fn)
        return coop.proposal_count(), gas

    def vote(self, voter: int, proposal_id: int) -> int:
        fn = self.coop.contract.functions.castVote(proposal_id, int(VoteType.Approve))
        return gas_of(self.client, self.accounts[voter], fn)

    def ballot(self, voter: int, proposal_id: int) -> SignedBallot:
        return self.coop.sign_ballot(self.accounts[voter], proposal_id, VoteType.Approve)

    def cast_votes(self, ballots: list[SignedBallot], relayer: int = 0) -> int:
        fn = self.coop.contract.functions.castVotes([b.as_tuple() for b in ballots])
        return gas_of(self.client, self.accounts[relayer], fn)

    def claim(self, proposal_id: int, run: bytes, previous: bytes = bytes(32)) -> int:
        fn = self.coop.contract.functions.claimApply(proposal_id, run, previous)
        return gas_of(self.client, self.accounts[0], fn)

    def record(self, proposal_id: int, devices: int) -> int:
        root = keccak(b"evidence root of %d devices" % devices)
        fn = self.coop.contract.functions.recordVerification(proposal_id, root, devices, 0)
        return gas_of(self.client, self.accounts[0], fn)


def measure_ours(
    client: ChainClient, accounts: list[LocalAccount], content: bytes
) -> dict[str, Any]:
    ours = Ours(client, accounts)
    log.info("CoopChain deployed at %s", ours.coop.address)
    pid, propose_gas = ours.propose(content)
    propose_floor = ours.propose_floor
    first = ours.vote(1, pid)
    later = ours.vote(2, pid)
    by_sig = ours.cast_votes([ours.ballot(3, pid)], relayer=0)

    one_pid, _ = ours.propose(content)
    one = ours.cast_votes([ours.ballot(1, one_pid)], relayer=0)
    four_pid, _ = ours.propose(content)
    four = ours.cast_votes([ours.ballot(v, four_pid) for v in range(1, 5)], relayer=0)
    extra = round((four - one) / 3)

    records: dict[str, int] = {}
    claims: dict[str, int] = {}
    for devices in DEVICE_COUNTS:
        rec_pid, _ = ours.propose(content, device_count=devices)
        ours.cast_votes([ours.ballot(v, rec_pid) for v in range(VOTERS)], relayer=0)
        if not claims:  # a claim reads no device count, and a record no claim: measured once
            first_run, next_run = keccak(b"run 1"), keccak(b"run 2")
            claims["first"] = ours.claim(rec_pid, first_run)
            claims["take_over"] = ours.claim(rec_pid, next_run, first_run)
        records[str(devices)] = ours.record(rec_pid, devices)
    return {
        "propose": propose_gas,
        "cast_vote_first": first,
        "cast_vote": later,
        "vote_by_sig": by_sig,
        "batch_extra_ballot": extra,
        "record": records,
        "claim_apply": claims["first"],
        "_batch": {"1": one, "4": four},
        "_claim_take_over": claims["take_over"],
        "_propose_floor": propose_floor,
    }


# ----------------------------------------------------------------------------- the peer


def _contract(client: ChainClient, artifact: ContractArtifact, address: str) -> Contract:
    return client.w3.eth.contract(address=to_checksum_address(address), abi=artifact.abi)


def oz_ballot_signature(
    account: LocalAccount, chain_id: int, governor: str, proposal_id: int, nonce: int
) -> bytes:
    """EIP-712 ``Ballot(uint256 proposalId,uint8 support,address voter,uint256 nonce)``."""
    message = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Ballot": [
                {"name": "proposalId", "type": "uint256"},
                {"name": "support", "type": "uint8"},
                {"name": "voter", "type": "address"},
                {"name": "nonce", "type": "uint256"},
            ],
        },
        "primaryType": "Ballot",
        "domain": {
            "name": "BenchGovernor",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": governor,
        },
        "message": {
            "proposalId": proposal_id,
            "support": 1,  # For
            "voter": account.address,
            "nonce": nonce,
        },
    }
    signed = Account.sign_message(encode_typed_data(full_message=message), account.key)
    return bytes(signed.signature)


def measure_governor(
    client: ChainClient,
    accounts: list[LocalAccount],
    artifacts: dict[str, ContractArtifact],
    content: bytes,
) -> dict[str, int]:
    holders = [a.address for a in accounts]
    token_artifact, gov_artifact = artifacts["BenchVotesToken"], artifacts["BenchGovernor"]
    token = _contract(client, token_artifact, client.deploy(accounts[0], token_artifact, holders))
    for account in accounts:
        client.transact(account, token.functions.delegate(account.address))
    governor = _contract(
        client, gov_artifact, client.deploy(accounts[0], gov_artifact, token.address)
    )
    log.info("Governor deployed at %s (token %s)", governor.address, token.address)
    DevChain(client).mine(1)  # the delegations are checkpointed before the snapshot

    description = content.decode("utf-8")
    targets, values, calldatas = [governor.address], [0], [b""]
    propose = governor.functions.propose(targets, values, calldatas, description)
    propose_gas = gas_of(client, accounts[0], propose)
    proposal_id = int(
        client.call(governor.functions.hashProposal(targets, values, calldatas, keccak(content)))
    )
    DevChain(client).mine(2)  # past the voting delay (1 block): Active
    first = gas_of(client, accounts[1], governor.functions.castVote(proposal_id, 1))
    later = gas_of(client, accounts[2], governor.functions.castVote(proposal_id, 1))
    voter = accounts[3]
    nonce = int(client.call(governor.functions.nonces(voter.address)))
    signature = oz_ballot_signature(voter, client.chain_id, governor.address, proposal_id, nonce)
    by_sig = gas_of(
        client,
        accounts[0],
        governor.functions.castVoteBySig(proposal_id, 1, voter.address, signature),
    )
    return {
        "propose": propose_gas,
        "cast_vote_first": first,
        "cast_vote": later,
        "vote_by_sig": by_sig,
        "_propose_floor": calldata_floor(propose),
    }


def measure_per_device(
    client: ChainClient, account: LocalAccount, artifact: ContractArtifact
) -> tuple[int, int]:
    """(summed gas, transactions) of storing ``PER_DEVICE`` evidence entries."""
    store = _contract(client, artifact, client.deploy(account, artifact))
    devices = [keccak(f"site-{i // 4:04d}-r{i % 4 + 1}".encode()) for i in range(PER_DEVICE)]
    evidence = [keccak(b"evidence:" + device) for device in devices]
    total, txs, start, chunk = 0, 0, 0, PER_DEVICE
    while start < PER_DEVICE:
        fn = store.functions.store(devices[start : start + chunk], evidence[start : start + chunk])
        tx = {"from": account.address, "to": store.address, "data": fn._encode_transaction_data()}
        try:
            fits = client.estimate_gas(tx) <= TX_GAS_CAP  # type: ignore[arg-type]
        except Exception as exc:
            log.info("%d entries in one tx refused (%s); splitting", chunk, exc)
            fits = False
        if not fits and chunk > 1:
            chunk = (chunk + 1) // 2
            continue
        total += gas_of(client, account, fn)
        txs += 1
        start += chunk
    return total, txs


# ----------------------------------------------------------------------------- report


def run() -> dict[str, Any]:
    artifacts = compile_peers()
    log.info("compiled %s", ", ".join(sorted(artifacts)))
    with start_anvil() as anvil, ChainClient.connect(anvil.url, receipt_timeout=60) as client:
        accounts = dev_accounts(client, VOTERS)
        content, posted = sample_content(client.now())
        log.info("content: %d bytes of canonical JSON, %d posted", len(content), len(posted))
        ours = measure_ours(client, accounts, content)
        _, propose_posted = Ours(client, accounts).propose(posted)
        peer = measure_governor(client, accounts, artifacts, content)
        per_device, per_device_txs = measure_per_device(
            client, accounts[0], artifacts["PerDeviceEvidence"]
        )
    batch = ours.pop("_batch")
    take_over = ours.pop("_claim_take_over")
    floors = {"ours": ours.pop("_propose_floor"), "oz_governor": peer.pop("_propose_floor")}
    return {
        "result": {
            "ours": ours,
            "oz_governor": peer,
            "per_device_storage": {str(PER_DEVICE): per_device},
        },
        "extra": {
            "content_bytes": len(content),
            "posted_bytes": len(posted),
            "propose_posted": propose_posted,
            "batch": batch,
            "claim_take_over": take_over,
            "per_device_txs": per_device_txs,
            "propose_floor": floors,
        },
    }


def render(result: dict[str, Any], extra: dict[str, Any]) -> str:
    ours, peer = result["ours"], result["oz_governor"]
    rows = []
    for key, label in (
        ("propose", f"propose ({extra['content_bytes']} content bytes)"),
        ("cast_vote_first", "first direct vote"),
        ("cast_vote", "later direct vote"),
        ("vote_by_sig", "vote by signature (later vote)"),
    ):
        rows.append([label, f"{ours[key]:,}", f"{peer[key]:,}", f"{ours[key] / peer[key]:.2f}"])
    rows.append(
        [
            f"propose as propose_change posts it ({extra['posted_bytes']} compressed bytes)",
            f"{extra['propose_posted']:,}",
            f"{peer['propose']:,}",
            f"{extra['propose_posted'] / peer['propose']:.2f}",
        ]
    )
    rows.append(["extra ballot in one batch", f"{ours['batch_extra_ballot']:,}", "-", "-"])
    first_claim = f"{ours['claim_apply']:,}"
    rows.append(["apply claim (first claimApply, before any push)", first_claim, "-", "-"])
    rows.append(["apply claim taking over another run", f"{extra['claim_take_over']:,}", "-", "-"])
    per_device = result["per_device_storage"][str(PER_DEVICE)]
    for devices, gas in ours["record"].items():
        naive = f"{per_device:,}" if devices == str(PER_DEVICE) else "-"
        ratio = f"{gas / per_device:.4f}" if devices == str(PER_DEVICE) else "-"
        rows.append([f"verification record, {devices} devices", f"{gas:,}", naive, ratio])
    out = [
        "gas used (receipts); peer = OpenZeppelin Governor, or per-device storage for records",
        table(["operation", "CoopChain", "peer", "ours/peer"], rows),
        "",
        f"per-device storage of {PER_DEVICE} entries took {extra['per_device_txs']} tx(s); "
        f"castVotes with 1 ballot {extra['batch']['1']:,}, with 4 {extra['batch']['4']:,}",
        "EIP-7623 calldata floor of propose: "
        f"ours {extra['propose_floor']['ours']:,}, "
        f"Governor {extra['propose_floor']['oz_governor']:,} "
        "(gasUsed at the floor = the content bytes' price, not execution)",
        "",
        "targets:",
    ]
    worst_record = max(ours["record"].values())
    for label, value, target in (
        ("direct vote (later) <= 36,000", ours["cast_vote"], TARGETS["cast_vote"]),
        ("direct vote (first) <= 36,000", ours["cast_vote_first"], TARGETS["cast_vote"]),
        (
            "extra batched ballot <= 12,000",
            ours["batch_extra_ballot"],
            TARGETS["batch_extra_ballot"],
        ),
        ("record <= 50,000 (any device count)", worst_record, TARGETS["record"]),
    ):
        out.append(f"  {label:40} {value:>8,}  {verdict(value <= target)}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Gas of CoopChain vs OpenZeppelin Governor and per-device storage "
        "(starts its own anvil).",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    measured = run()
    if args.json:
        emit_json(measured["result"])
    else:
        info = machine()
        print(render(measured["result"], measured["extra"]))
        print(
            f"\nmachine: {info['nproc']} x {info['cpu']}, python {info['python']}, {info['date']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
