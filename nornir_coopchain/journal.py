"""The local journal of a gated change, so a run killed at any point resumes where it stopped.

One directory per change under ``<state_dir>/changes/<content hash>/``:

- ``content.json``: the proposal content, canonical bytes (what went on chain);
- ``candidates/<host>.cfg``: the rendered configs the proposal's hashes were made from;
- ``evidence.json``: the evidence report whose Merkle root was recorded on chain;
- ``proofs/<host>.json``: one device's evidence and its inclusion proof, for its tenants;
- ``journal.json``: the phase reached, transaction hashes and per-host results.

Every file is written atomically (temp file + rename). The chain is the source of truth: a
journal that lags behind it (killed after a transaction was sent) is brought up to date
from chain data, never the other way round.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nornir_coopchain._files import write_atomic as _write_atomic
from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.model.content import EvidenceReport, ProposalContent, hash_text
from nornir_coopchain.plugins.results import AppliedDevice, PreparedDevice, VerifiedDevice

__all__ = ["ChangeJournal", "HostRecord", "Journal", "Phase"]

Phase = Literal["prepared", "proposed", "decided", "applying", "verified", "recorded", "closed"]
"""``closed``: the proposal ended without a record (rejected, canceled or expired)."""


class HostRecord(BaseModel):
    """What happened on one host, phase by phase."""

    model_config = ConfigDict(extra="forbid")

    prepared: PreparedDevice | None = None
    applied: AppliedDevice | None = None
    verified: VerifiedDevice | None = None
    error: str | None = None


class ChangeJournal(BaseModel):
    """The journal file of one change."""

    model_config = ConfigDict(extra="forbid")

    content_hash: str
    chain_id: int
    contract: str
    proposer: str
    phase: Phase = "prepared"
    propose_from_block: int | None = None  # set just before the propose tx is sent
    proposal_id: int | None = None
    propose_tx: str | None = None
    verdict: str | None = None
    record_tx: str | None = None
    evidence_root: str | None = None
    hosts: dict[str, HostRecord] = Field(default_factory=dict)


class Journal:
    """The journal directory of one change.

    Arguments:
        root: ``<state_dir>/changes``.
        content_hash: the change's content hash (``0x…``).
    """

    def __init__(self, root: Path, content_hash: str):
        self.content_hash = content_hash
        self.path = root / content_hash.removeprefix("0x")[:16]

    @classmethod
    def create(
        cls,
        root: Path,
        content: ProposalContent,
        candidates: dict[str, str],
        journal: ChangeJournal,
    ) -> Journal:
        """Write a new change's content, candidates and journal (or reopen the same change)."""
        made = cls(root, content.content_hash())
        if made.exists():
            return made
        for host, config in candidates.items():
            _write_atomic(made.path / "candidates" / f"{host}.cfg", config.encode())
        _write_atomic(made.path / "content.json", content.canonical_bytes())
        made.save(journal)
        return made

    @classmethod
    def all(
        cls, root: Path, *, chain_id: int, contract: str
    ) -> Iterator[tuple[Journal, ChangeJournal]]:
        """Every journal of this chain and contract in the state directory, with its record."""
        if not root.is_dir():
            return
        for entry in sorted(root.iterdir()):
            if not (entry / "journal.json").is_file():
                continue
            record = cls(root, "0x" + entry.name).read()
            if (record.chain_id, record.contract.lower()) == (chain_id, contract.lower()):
                yield cls(root, record.content_hash), record

    @classmethod
    def find(cls, root: Path, *, chain_id: int, contract: str, proposal_id: int) -> Journal | None:
        """The journal of an on-chain proposal, if this state directory has it."""
        for journal, record in cls.all(root, chain_id=chain_id, contract=contract):
            if record.proposal_id == proposal_id:
                return journal
        return None

    def exists(self) -> bool:
        """Whether this change has a journal."""
        return (self.path / "journal.json").is_file()

    def read(self) -> ChangeJournal:
        """Load ``journal.json``.

        Raises:
            ConfigError: a missing or corrupted journal, naming the file.
        """
        file = self.path / "journal.json"
        try:
            return ChangeJournal.model_validate_json(file.read_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot read journal: {exc.strerror}", source=str(file)) from exc
        except ValidationError as exc:
            raise ConfigError(
                f"corrupted journal: {exc.errors()[0]['msg']}", source=str(file)
            ) from exc

    def save(self, journal: ChangeJournal) -> None:
        """Write ``journal.json`` atomically."""
        _write_atomic(self.path / "journal.json", journal.model_dump_json(indent=2).encode())

    def content(self) -> ProposalContent:
        """The change's content, checked against its hash."""
        file = self.path / "content.json"
        content = ProposalContent.from_bytes(file.read_bytes())
        if content.content_hash() != self.content_hash:
            raise ConfigError("content does not match the journal's content hash", source=str(file))
        return content

    def candidate(self, host: str) -> str:
        """The rendered config stored for ``host``, checked against the approved hash."""
        file = self.path / "candidates" / f"{host}.cfg"
        try:
            return file.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read candidate: {exc.strerror}", source=str(file)) from exc

    def candidate_hash(self, host: str) -> str:
        """hash_text of the stored candidate of ``host``."""
        return hash_text(self.candidate(host))

    def write_evidence(self, report: EvidenceReport) -> None:
        """Keep the evidence report whose root is recorded on chain, and one inclusion proof
        per host (``proofs/<host>.json``) to hand to the operators each device concerns."""
        _write_atomic(self.path / "evidence.json", report.canonical_bytes())
        for device in report.devices:
            proof = report.proof_for(device.host)
            _write_atomic(self.path / "proofs" / f"{device.host}.json", proof.canonical_bytes())

    def evidence(self) -> EvidenceReport | None:
        """The evidence report, if the change got that far."""
        file = self.path / "evidence.json"
        if not file.is_file():
            return None
        return EvidenceReport.from_bytes(file.read_bytes())
