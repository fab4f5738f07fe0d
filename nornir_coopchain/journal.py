"""The local journal of a gated change, so a run killed at any point resumes where it stopped.

One directory per change under ``<state_dir>/changes/<content hash>/``:

- ``content.json``: the proposal content, canonical JSON, for people;
- ``posted.bin``: the exact ``content`` bytes proposed (the compressed envelope,
  :meth:`~nornir_coopchain.model.content.ProposalContent.chain_bytes`), whose hash names the
  directory; a resume posts these very bytes, so it never depends on this process's zlib
  compressing the same way (journals written before this file hold the hash of the
  envelope or of ``content.json``, which is re-encoded to check it);
- ``candidates.json``: the rendered config of each host, from which the proposal's hashes
  were made (what apply pushes while the templates and inventory are unchanged;
  ``coopchain show --rerender`` renders them again);
- ``evidence-<root>.json``: an evidence report made by a run, kept (write once) before its
  root is sent on chain, so a resume finds the evidence of a record it sent;
- ``evidence.json``: the evidence report whose Merkle root was recorded on chain, written once
  (a run never replaces it with other evidence);
- ``proofs/<host>.json``: one device's evidence and its inclusion proof, for its tenants;
- ``hosts/<host>.pushing``: written (durable) right before a run commits to the host, so a
  resume that finds the device at its base knows a commit may have been made and undone
  there, and does not push it a second time;
- ``hosts/<host>.json``: what happened on the host (a :class:`HostRecord`), written as soon as
  its push and read-back are done, so a resume reuses it and touches the device no more;
- ``journal.json``: the phase reached, transaction hashes and per-host results.

The phase moves only through the named transitions of :class:`Journal` (:meth:`~Journal.sending`,
:meth:`~Journal.proposed`, :meth:`~Journal.decided`, :meth:`~Journal.applying`,
:meth:`~Journal.verified`, :meth:`~Journal.recorded`, :meth:`~Journal.closed`); a transition
the state machine does not allow raises :class:`JournalStateError`. ``<root>/index/`` maps
each proposal ID to its change's directory (a hint: an entry whose journal is missing or
names another proposal is rebuilt from the journals, never trusted).

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
import shutil
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nornir_coopchain._files import write_atomic as _write_atomic
from nornir_coopchain.exceptions import ChangeRefused, ConfigError, JournalStateError
from nornir_coopchain.model.content import EvidenceReport, ProposalContent
from nornir_coopchain.model.hashing import keccak, to_hex32
from nornir_coopchain.plugins.results import AppliedDevice, VerifiedDevice

__all__ = ["TRANSITIONS", "ChangeJournal", "HostRecord", "Journal", "Phase", "apply_lock"]

Phase = Literal["prepared", "proposed", "decided", "applying", "verified", "recorded", "closed"]
"""``closed``: the proposal ended without a record (rejected, canceled or expired)."""

TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    "prepared": frozenset({"prepared", "proposed", "closed"}),
    "proposed": frozenset({"decided", "applying", "closed"}),  # an emergency change: applying
    "decided": frozenset({"applying", "closed"}),
    "applying": frozenset({"applying", "verified", "recorded", "closed"}),  # a resumed run
    "verified": frozenset({"applying", "recorded", "closed"}),
    "recorded": frozenset({"recorded"}),
    "closed": frozenset(),
}
"""The phases each phase may move to (itself: a resumed run repeating the phase)."""


class HostRecord(BaseModel):
    """What happened on one host, phase by phase."""

    model_config = ConfigDict(extra="forbid")

    applied: AppliedDevice | None = None
    verified: VerifiedDevice | None = None
    error: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_never_written(cls, data: object) -> object:
        """Journals written before it was removed carry ``prepared: null``."""
        if isinstance(data, dict) and data.get("prepared", 0) is None:
            return {key: value for key, value in data.items() if key != "prepared"}
        return data


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
    """The proposal's state when its vote ended (``Approved``, ``Rejected``, ...)."""
    apply_run: str | None = None
    """The run ID this state directory claimed the push under on chain (kept by a resume)."""
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
            if made.read().phase != "closed":
                return made
            made._retire()  # the same bytes proposed again after that proposal ended
        rendered = json.dumps(candidates, indent=1, sort_keys=True).encode()
        _write_atomic(made.path / "candidates.json", rendered, durable=False)
        _write_atomic(made.path / "content.json", content.canonical_bytes())
        _write_atomic(made.path / "posted.bin", posted)
        made.save(journal)
        made._index(journal)
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
        """The journal of an on-chain proposal, if this state directory has it.

        Read through the proposal-ID index; an entry whose journal is missing or is not of
        that proposal is not trusted: the journals are scanned and the entry rebuilt (or
        removed when none is of that proposal).
        """
        entry = _index_entry(root, chain_id, contract, proposal_id)
        if entry.is_file():
            journal = cls(root, "0x" + entry.read_text().strip())
            if journal.exists() and _is_of(journal.read(), chain_id, contract, proposal_id):
                return journal
        for journal, record in cls.all(root, chain_id=chain_id, contract=contract):
            if record.proposal_id == proposal_id:
                journal._index(record)
                return journal
        entry.unlink(missing_ok=True)
        return None

    def _retire(self) -> None:
        """Move this closed journal aside (``closed/<name>-<proposal>``), out of every
        listing, so that a new proposal of the very same bytes gets a journal of its own."""
        record = self.read()
        target = self.path.parent / "closed" / f"{self.path.name}-{record.proposal_id}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        self.path.rename(target)

    def exists(self) -> bool:
        """Whether this change has a journal."""
        return (self.path / "journal.json").is_file()

    def discard(self) -> None:
        """Delete this change's journal directory (a change that never reached the chain)."""
        shutil.rmtree(self.path, ignore_errors=True)

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
        """Write ``journal.json`` atomically, as it is (the transitions below check the phase)."""
        _write_atomic(self.path / "journal.json", journal.model_dump_json(indent=2).encode())

    def sending(self, from_block: int) -> ChangeJournal:
        """Prepared, the proposal about to be sent: a resume looks for it from ``from_block``."""
        return self._move("prepared", propose_from_block=from_block)

    def proposed(self, proposal_id: int, tx_hash: str | None) -> ChangeJournal:
        """The proposal is on chain (also indexed by its ID)."""
        record = self._move("proposed", proposal_id=proposal_id, propose_tx=tx_hash)
        self._index(record)
        return record

    def decided(self, verdict: str) -> ChangeJournal:
        """The vote ended with ``verdict`` (a proposal state name)."""
        return self._move("decided", verdict=verdict)

    def applying(self, run_id: str | None = None) -> ChangeJournal:
        """Pushing to the devices, under ``run_id`` (the claim on chain; a resume keeps the
        run ID the journal already has)."""
        record = self.read()
        keep = record.apply_run is not None or run_id is None
        return self._move("applying", **({} if keep else {"apply_run": run_id}))

    def pushing(self, host: str) -> None:
        """Note, durably and before its commit, that a run is pushing ``host``."""
        _write_atomic(self._host_file(host, ".pushing"), b"")

    def pushed(self, host: str, record: HostRecord) -> None:
        """Keep what happened on ``host`` once its push and read-back are done (not fsynced:
        lost with a power cut, the resume finds the push mark and reads the device again)."""
        data = record.model_dump_json().encode()
        _write_atomic(self._host_file(host, ".json"), data, durable=False)

    def pushes(self) -> tuple[frozenset[str], dict[str, HostRecord]]:
        """The hosts whose push a run began (:meth:`pushing`), and what happened on those
        whose push was done (:meth:`pushed`).

        Raises:
            ConfigError: a host's record is corrupted, naming the file.
        """
        folder = self.path / "hosts"
        if not folder.is_dir():
            return frozenset(), {}
        begun, done = set(), {}
        for file in folder.iterdir():
            host = urllib.parse.unquote(file.stem)
            if file.suffix == ".pushing":
                begun.add(host)
            elif file.suffix == ".json":
                try:
                    done[host] = HostRecord.model_validate_json(file.read_bytes())
                except ValidationError as exc:
                    msg = exc.errors()[0]["msg"]
                    raise ConfigError(f"corrupted host record: {msg}", source=str(file)) from exc
        return frozenset(begun), done

    def _host_file(self, host: str, suffix: str) -> Path:
        return self.path / "hosts" / (urllib.parse.quote(host, safe="") + suffix)

    def verified(self, hosts: dict[str, HostRecord], evidence_root: str) -> ChangeJournal:
        """Every device pushed and read back, with what happened on each, and the root of
        the evidence report kept for them (:meth:`stage_evidence`): a resume records that
        report and touches no device again."""
        return self._move("verified", hosts=hosts, evidence_root=evidence_root)

    def recorded(self, evidence_root: str, record_tx: str | None = None) -> ChangeJournal:
        """The verification is on chain (``record_tx`` None: a resume did not see it sent)."""
        update: dict[str, object] = {"evidence_root": evidence_root}
        if record_tx is not None:
            update["record_tx"] = record_tx
        return self._move("recorded", **update)

    def closed(self, verdict: str | None = None) -> ChangeJournal:
        """The proposal ended without a record (rejected, canceled, expired)."""
        return self._move("closed", **({"verdict": verdict} if verdict is not None else {}))

    def _move(self, phase: Phase, **update: object) -> ChangeJournal:
        """Check ``phase`` may follow the journal's, then write the record with ``update``.

        Raises:
            JournalStateError: the state machine does not allow it; nothing was written.
        """
        record = self.read()
        if phase not in TRANSITIONS[record.phase]:
            raise JournalStateError(
                f"journal of proposal {record.proposal_id} is {record.phase}: it cannot move to "
                f"{phase}",
                source=str(self.path / "journal.json"),
            )
        moved = record.model_copy(update={**update, "phase": phase})
        self.save(moved)
        return moved

    def _index(self, record: ChangeJournal) -> None:
        if record.proposal_id is not None:
            entry = _index_entry(
                self.path.parent, record.chain_id, record.contract, record.proposal_id
            )
            _write_atomic(entry, self.path.name.encode())

    def candidates(self) -> dict[str, str]:
        """The rendered config of each host kept when the change was proposed (may be empty:
        a journal opened by an executor from another state directory)."""
        file = self.path / "candidates.json"
        loaded = json.loads(file.read_bytes()) if file.is_file() else {}
        return {str(host): str(config) for host, config in loaded.items()}

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


def _index_entry(root: Path, chain_id: int, contract: str, proposal_id: int) -> Path:
    return root / "index" / f"{chain_id}-{contract.lower()}-{proposal_id}"


def _is_of(record: ChangeJournal, chain_id: int, contract: str, proposal_id: int) -> bool:
    mine = (record.chain_id, record.contract.lower(), record.proposal_id)
    return mine == (chain_id, contract.lower(), proposal_id)


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
