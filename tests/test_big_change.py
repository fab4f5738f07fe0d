"""Big changes on the embedded chain: hundreds of devices go through as ONE compressed
proposal; a proposal the chain cannot take is refused before anything is sent."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_content_codec import realistic_content, realistic_device

from nornir_coopchain import session as sessions
from nornir_coopchain._files import write_atomic
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.demo import deploy_with_dev_keys, sample_operators
from nornir_coopchain.exceptions import ConfigError, ProposalTooLarge
from nornir_coopchain.gate import propose_change, wait_for_verdict
from nornir_coopchain.gate.approved import fetch_change
from nornir_coopchain.gate.propose import MAX_CONTENT_BYTES, TX_GAS_CAP, propose_gas
from nornir_coopchain.journal import ChangeJournal, Journal
from nornir_coopchain.model.codec import CONTENT_MAGIC
from nornir_coopchain.model.content import ChangeWindow, DeviceChange, ProposalContent
from nornir_coopchain.model.hashing import keccak, to_hex32
from nornir_coopchain.model.rules import ProposalState, VoteType
from nornir_coopchain.session import CoopchainSession
from nornir_coopchain.voter.policy import VoterPolicy
from nornir_coopchain.voter.watch import PolicyVoter

REPO = Path(__file__).resolve().parents[1]
SITE = "TOWER-017"


@dataclass
class Chain:
    client: ChainClient
    coop: CoopChain
    owner: CoopchainSession
    voters: list[PolicyVoter]

    def content(self, devices: int) -> ProposalContent:
        return realistic_content(devices, created_at=self.client.now())

    def sent(self) -> int:
        return self.client.w3.eth.get_transaction_count(self.owner.account.address)

    def journals(self) -> list[Path]:
        root = self.owner.settings.journal_dir()
        return sorted(root.iterdir()) if root.is_dir() else []


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    """The sample deployment; OPERATOR-B and -C approve any TOWER-017 change of up to 1,000
    devices (their policies read every proposal's content back from the chain)."""
    with ChainClient.connect("embedded://", receipt_timeout=10) as client:
        coop = deploy_with_dev_keys(client, REPO / "inventory")
        owner, sample = sample_operators(client, coop.address, REPO / "inventory", tmp_path)
        voters = [
            PolicyVoter(
                voter.session,
                VoterPolicy.from_yaml(
                    f"operator: {operator}\n"
                    "rules:\n"
                    "  - name: big-site-changes\n"
                    f"    approve_if: {{resource_sets: [{SITE}], max_devices: 1000}}\n"
                    "default: reject\n"
                ),
            )
            for operator, voter in sample.items()
        ]
        yield Chain(client, coop, owner, voters)
        sessions.forget_all()


def incompressible_content(chain: Chain, devices: int, diff_bytes: int) -> ProposalContent:
    """Random diffs: the envelope cannot make them smaller than about half their text."""
    changes = [
        DeviceChange.from_texts(
            host=f"r{index:04d}",
            platform="frr",
            running="",
            candidate=f"r{index}\n",
            diff=os.urandom(diff_bytes // 2).hex(),
        )
        for index in range(devices)
    ]
    now = chain.client.now()
    return ProposalContent(
        resource_set=SITE,
        title="Random diffs",
        window=ChangeWindow(start=now - 60, end=now + 3600),
        devices=tuple(changes),
        created_at=now,
    )


# --------------------------------------------------------------------------- it goes through


def test_three_hundred_devices_go_through_as_one_compressed_proposal(chain: Chain) -> None:
    content = chain.content(300)
    raw = content.chain_bytes()
    assert len(content.canonical_bytes()) > 900_000  # ~3.2 kB of diff per device
    assert len(raw) < 60_000

    handle = propose_change(chain.owner, content, {})
    info = chain.coop.proposal(handle.proposal_id)
    assert info.content_hash == content.content_hash() == to_hex32(keccak(raw))
    assert info.device_count == 300
    posted = chain.coop.fetch_content(handle.proposal_id)
    assert posted == raw
    assert posted.startswith(CONTENT_MAGIC)
    journal = Journal(chain.owner.settings.journal_dir(), info.content_hash)
    assert journal.content() == content  # the journal keeps canonical JSON, checked

    for voter in chain.voters:  # each reads the content back from the chain and decodes it
        (action,) = voter.poll_once()
        assert action.vote is VoteType.Approve, action.reason
    assert wait_for_verdict(chain.owner, handle.proposal_id, timeout=5, poll_interval=0.05) is (
        ProposalState.Approved
    )
    change = fetch_change(chain.coop, handle.proposal_id, states=(ProposalState.Approved,))
    assert change.content == content
    assert change.entry("site0042-r3") == realistic_device(42 * 4 + 2)

    receipt = chain.client.w3.eth.get_transaction_receipt(handle.tx_hash)  # type: ignore[arg-type]
    assert propose_gas(raw) <= receipt["gasUsed"] < 30_000_000 // 10


# --------------------------------------------------------------------------- refused before sending


def test_content_over_the_block_gas_limit_is_refused_before_anything_is_sent(
    chain: Chain,
) -> None:
    """~900 kB of random diffs still ~900 kB compressed: over a 30 M block at 40 gas per
    byte (the byte cap raised, so that the gas check is the one that refuses). Without the
    check, eth-tester would even mine it over its block gas limit; real nodes refuse it."""
    content = incompressible_content(chain, devices=4, diff_bytes=450_000)
    sent = chain.sent()
    with pytest.raises(ProposalTooLarge) as info:
        propose_change(chain.owner, content, {}, max_content_bytes=10**8)
    error = info.value
    limit = int(chain.client.w3.eth.get_block("latest")["gasLimit"])
    assert error.block_gas_limit == limit
    assert error.gas_limit == min(limit, TX_GAS_CAP)
    assert error.gas_needed > limit
    assert error.size_bytes == len(content.chain_bytes()) > 850_000
    assert error.device_count == 4
    message = str(error)
    for figure in (error.size_bytes, error.gas_needed, error.gas_limit, error.block_gas_limit):
        assert f"{figure:,}" in message
    assert "4 device(s)" in message
    assert "Split the change" in message
    assert "Nothing was sent" in message
    assert chain.sent() == sent
    assert chain.coop.proposal_count() == 0
    assert chain.journals() == []  # nothing to resume either


def test_content_over_the_byte_cap_is_refused(chain: Chain) -> None:
    content = chain.content(20)
    size = len(content.chain_bytes())
    with pytest.raises(ProposalTooLarge, match=f"cap on proposal content is {size - 1:,}"):
        propose_change(chain.owner, content, {}, max_content_bytes=size - 1)
    assert chain.coop.proposal_count() == 0
    assert chain.journals() == []
    assert size < MAX_CONTENT_BYTES
    handle = propose_change(chain.owner, content, {})  # the default cap takes it
    assert handle.proposal_id == 1


# --------------------------------------------------------------------------- older journals


def test_journal_from_before_the_envelope_resumes_with_plain_json(chain: Chain) -> None:
    """A journal whose content hash is that of the plain canonical JSON (written before the
    envelope, killed before sending) is resumed: the same bytes it named are posted, and
    voters still read plain JSON."""
    content = chain.content(5)
    plain = content.canonical_bytes()
    legacy_hash = to_hex32(keccak(plain))
    journal = Journal(chain.owner.settings.journal_dir(), legacy_hash)
    write_atomic(journal.path / "content.json", plain)
    journal.save(
        ChangeJournal(
            content_hash=legacy_hash,
            chain_id=chain.client.chain_id,
            contract=chain.coop.address,
            proposer=chain.owner.account.address,
        )
    )
    assert journal.content() == content

    handle = propose_change(chain.owner, chain.content(5), {})
    assert handle.journal.path == journal.path
    assert chain.coop.proposal(handle.proposal_id).content_hash == legacy_hash
    assert chain.coop.fetch_content(handle.proposal_id) == plain
    assert fetch_change(chain.coop, handle.proposal_id).content == content
    assert propose_change(chain.owner, content, {}).proposal_id == handle.proposal_id


def test_resume_posts_the_journalled_bytes_even_if_this_zlib_compresses_differently(
    chain: Chain,
) -> None:
    """A journal killed before sending keeps the exact envelope it meant to post
    (``posted.bin``). A rerun whose zlib would compress the same content differently (here:
    another level) posts the journalled bytes, and voters and apply read them."""
    content = chain.content(5)
    canonical = content.canonical_bytes()
    other_zlib = content.chain_bytes()[:9] + zlib.compress(canonical, 1)
    assert other_zlib != content.chain_bytes()
    other_hash = to_hex32(keccak(other_zlib))
    record = ChangeJournal(
        content_hash=other_hash,
        chain_id=chain.client.chain_id,
        contract=chain.coop.address,
        proposer=chain.owner.account.address,
    )
    root = chain.owner.settings.journal_dir()
    journal = Journal.create(root, content, {}, record, posted=other_zlib)
    assert (journal.path / "posted.bin").read_bytes() == other_zlib
    assert journal.content() == content

    handle = propose_change(chain.owner, chain.content(5), {})
    assert handle.journal.path == journal.path
    assert chain.coop.fetch_content(handle.proposal_id) == other_zlib
    assert chain.coop.proposal(handle.proposal_id).content_hash == other_hash
    assert fetch_change(chain.coop, handle.proposal_id).posted == other_zlib


def test_journal_refuses_posted_bytes_that_do_not_match_its_hash(chain: Chain) -> None:
    content = chain.content(2)
    record = ChangeJournal(
        content_hash=content.content_hash(),
        chain_id=chain.client.chain_id,
        contract=chain.coop.address,
        proposer=chain.owner.account.address,
    )
    root = chain.owner.settings.journal_dir()
    with pytest.raises(ConfigError, match="does not hash to the journal's content hash"):
        Journal.create(root, content, {}, record, posted=content.canonical_bytes())
    journal = Journal.create(root, content, {}, record, posted=content.chain_bytes())
    (journal.path / "posted.bin").write_bytes(content.canonical_bytes())
    with pytest.raises(ConfigError, match="posted content does not match") as refused:
        journal.posted()
    assert refused.value.source == str(journal.path / "posted.bin")
