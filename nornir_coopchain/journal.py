"""The local journal of a gated change, so a run killed at any point resumes where it stopped.

One directory per change under ``<state_dir>/changes/<content hash>/``:

- ``content.json``: the proposal content, canonical JSON, for people;
- ``posted.bin``: the exact ``content`` bytes proposed (the compressed envelope,
  :meth:`~nornir_coopchain.model.content.ProposalContent.chain_bytes`), whose hash names the
  directory; a resume posts these very bytes, so it never depends on this process's zlib
  compressing the same way (journals written before this file hold the hash of the
  envelope or of ``content.json``, which is re-encoded to check it);
- ``candidates.json``: the rendered config of each host, from which the proposal's hashes
  were made (a record for people; ``coopchain show --rerender`` renders them again);
- ``evidence-<root>.json``: an evidence report made by a run, kept (write once) before its
  root is sent on chain, so a resume finds the evidence of a record it sent;
- ``evidence.json``: the evidence report whose Merkle root was recorded on chain, written once
  (a run never replaces it with other evidence);
- ``proofs/<host>.json``: one device's evidence and its inclusion proof, for its tenants;
- ``journal.json``: the phase reached, transaction hashes and per-host results.

Every file is written atomically (temp file + rename), and fsynced unless it can be derived
again (the candidates, and the per-host proofs: an fsync per host costs seconds at 1,000
hosts). The chain is the source of truth: a journal that lags behind it (killed after a
transaction was sent) is brought up to date from chain data, never the other way round.

:func:`apply_lock` lets one process at a time apply a proposal from a state directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nornir_coopchain._files import write_atomic as _write_atomic
from nornir_coopchain.exceptions import ChangeRefused, ConfigError
from nornir_coopchain.model.content import EvidenceReport, ProposalContent
from nornir_coopchain.model.hashing import keccak, to_hex32
from nornir_coopchain.plugins.results import AppliedDevice, PreparedDevice, VerifiedDevice

__all__ = ["ChangeJournal", "HostRecord", "Journal", "Phase", "apply_lock"]

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
        *,
        posted: bytes,
    ) -> Journal:
        """Write a new change's content, candidates and journal (or reopen the same change).

        Arguments:
            root: ``<state_dir>/changes``.
            content: the change's content.
            candidates: the rendered config of each host.
            journal: the journal record; its ``content_hash`` names the directory.
            posted: the ``content`` bytes proposed (or to propose), kept as they are.

        Raises:
            ConfigError: ``posted`` does not hash to ``journal.content_hash``.
        """
        if to_hex32(keccak(posted)) != journal.content_hash.lower():
            raise ConfigError("posted content does not hash to the journal's content hash")
        made = cls(root, journal.content_hash)
        if made.exists():
            return made
        rendered = json.dumps(candidates, indent=1, sort_keys=True).encode()
        _write_atomic(made.path / "candidates.json", rendered, durable=False)
        _write_atomic(made.path / "content.json", content.canonical_bytes())
        _write_atomic(made.path / "posted.bin", posted)
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
        """The change's content, as posted (see :meth:`posted`)."""
        return ProposalContent.from_chain_bytes(self.posted())

    def posted(self) -> bytes:
        """The exact ``content`` bytes of the proposal, checked against the content hash.

        Raises:
            ConfigError: the bytes do not hash to the journal's content hash, naming the file.
        """
        file = self.path / "posted.bin"
        if file.is_file():
            posted = file.read_bytes()
            if to_hex32(keccak(posted)) != self.content_hash.lower():
                raise ConfigError(
                    "posted content does not match the journal's content hash", source=str(file)
                )
            return posted
        # A journal from before posted.bin: re-encode content.json to find the posted form.
        file = self.path / "content.json"
        known = ProposalContent.from_bytes(file.read_bytes()).bytes_for_hash(self.content_hash)
        if known is None:
            raise ConfigError("content does not match the journal's content hash", source=str(file))
        return known

    def stage_evidence(self, report: EvidenceReport) -> None:
        """Keep a run's evidence report, named by its root, before the root is sent on chain.

        Raises:
            ConfigError: a different report is already kept under that root.
        """
        _write_once(self._staged(report.evidence_root()), report.canonical_bytes())

    def write_evidence(self, report: EvidenceReport) -> None:
        """Keep the evidence report whose root is recorded on chain, and one inclusion proof
        per host (``proofs/<host>.json``) to hand to the operators each device concerns.

        Written once: the same report again changes nothing.

        Raises:
            ConfigError: ``evidence.json`` already holds another report, naming the file.
        """
        _write_once(self.path / "evidence.json", report.canonical_bytes())
        for proof in report.proofs():
            proof_file = self.path / "proofs" / f"{proof.evidence.host}.json"
            _write_atomic(proof_file, proof.canonical_bytes(), durable=False)

    def evidence(self, root: str | None = None) -> EvidenceReport | None:
        """The recorded evidence report, if the change got that far; with ``root``, also a
        report a run kept (:meth:`stage_evidence`) under that root."""
        files = [self.path / "evidence.json"]
        if root is not None:
            files.append(self._staged(root))
        for file in files:
            if file.is_file():
                report = EvidenceReport.from_bytes(file.read_bytes())
                if root is None or report.evidence_root() == root.lower():
                    return report
        return None

    def _staged(self, root: str) -> Path:
        return self.path / f"evidence-{root.lower().removeprefix('0x')[:16]}.json"


def _write_once(path: Path, data: bytes) -> None:
    """Write ``path`` unless it exists; an existing file must hold ``data``.

    Raises:
        ConfigError: the file holds something else (it is left as it is).
    """
    if path.is_file():
        if path.read_bytes() != data:
            raise ConfigError("already holds other evidence; not replaced", source=str(path))
        return
    _write_atomic(path, data)


@contextlib.contextmanager
def apply_lock(root: Path, *, chain_id: int, contract: str, proposal_id: int) -> Iterator[None]:
    """Hold the state directory's lock on applying one proposal (an OS file lock, which the
    OS releases when the process ends, also by a crash or kill).

    Arguments:
        root: ``<state_dir>/changes``.
        chain_id: the chain's ID.
        contract: the contract's address.
        proposal_id: the proposal number.

    Raises:
        ChangeRefused: another process holds it (naming its pid); nothing was done.
    """
    name = f"apply-{chain_id}-{contract.lower()}-{proposal_id}.lock"
    path = root / "locks" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise ChangeRefused(
                f"proposal {proposal_id} is being applied by another process from this state "
                f"directory (pid {holder}); nothing was done here: wait for it to end, then "
                f"run `coopchain apply {proposal_id}` again to see its outcome"
            ) from None
        try:
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
