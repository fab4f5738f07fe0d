"""The journal's state machine and its proposal-ID index (no chain needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_content_codec import realistic_content

from nornir_coopchain.exceptions import ConfigError, JournalStateError
from nornir_coopchain.journal import TRANSITIONS, ChangeJournal, HostRecord, Journal, Phase
from nornir_coopchain.model.hashing import keccak, to_hex32

CHAIN_ID, CONTRACT = 31337, "0x" + "12" * 20


def _journal(root: Path, created_at: int = 1_700_000_000) -> Journal:
    content = realistic_content(2, created_at=created_at)
    posted = content.chain_bytes()
    record = ChangeJournal(
        content_hash=to_hex32(keccak(posted)),
        chain_id=CHAIN_ID,
        contract=CONTRACT,
        proposer="0x" + "34" * 20,
    )
    return Journal.create(root, content, {"r1": "hostname r1\n"}, record, posted=posted)


def _find(root: Path, proposal_id: int) -> Journal | None:
    return Journal.find(root, chain_id=CHAIN_ID, contract=CONTRACT, proposal_id=proposal_id)


def test_the_phases_follow_the_change_and_each_is_persisted(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.sending(17)
    journal.proposed(4, "0xaa")
    journal.decided("Approved")
    journal.applying()
    journal.verified({"r1": HostRecord(error="unreachable")}, "0x" + "ab" * 32)
    journal.recorded("0x" + "ef" * 32, "0xbb")
    record = Journal(tmp_path, journal.content_hash).read()  # as a new process reads it
    assert record.phase == "recorded"
    assert (record.propose_from_block, record.proposal_id, record.propose_tx) == (17, 4, "0xaa")
    assert (record.verdict, record.record_tx, record.evidence_root) == (
        "Approved",
        "0xbb",
        "0x" + "ef" * 32,
    )
    assert record.hosts["r1"].error == "unreachable"
    assert journal.candidates() == {"r1": "hostname r1\n"}


@pytest.mark.parametrize(
    ("reached", "illegal"),
    [
        (["proposed"], "recorded"),
        ([], "applying"),
        (["proposed", "applying", "verified", "recorded"], "closed"),
        (["proposed", "closed"], "applying"),
        (["proposed", "decided"], "proposed"),
    ],
)
def test_an_illegal_transition_raises_and_writes_nothing(
    tmp_path: Path, reached: list[Phase], illegal: Phase
) -> None:
    journal = _journal(tmp_path)
    moves = {
        "proposed": lambda: journal.proposed(4, "0xaa"),
        "decided": lambda: journal.decided("Approved"),
        "applying": journal.applying,
        "verified": lambda: journal.verified({}, "0x" + "ab" * 32),
        "recorded": lambda: journal.recorded("0x" + "ef" * 32, "0xbb"),
        "closed": lambda: journal.closed("Rejected"),
    }
    for phase in reached:
        moves[phase]()
    before = (journal.path / "journal.json").read_bytes()
    assert illegal not in TRANSITIONS[journal.read().phase]
    with pytest.raises(JournalStateError, match=f"cannot move to {illegal}"):
        moves[illegal]()
    assert (journal.path / "journal.json").read_bytes() == before


def test_a_closed_journal_keeps_the_verdict(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.proposed(4, "0xaa")
    assert journal.closed("Rejected").verdict == "Rejected"
    assert journal.read().phase == "closed"


def test_find_reads_the_index_not_every_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = _journal(tmp_path)
    journal.proposed(4, "0xaa")
    _journal(tmp_path, created_at=1_700_000_500).proposed(5, "0xcc")

    def no_scan(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("scanned every journal")

    monkeypatch.setattr(Journal, "all", no_scan)
    found = _find(tmp_path, 4)
    assert found is not None
    assert found.path == journal.path


def test_an_index_entry_to_a_missing_journal_is_rebuilt(tmp_path: Path) -> None:
    gone = _journal(tmp_path)
    gone.proposed(4, "0xaa")
    shutil.rmtree(gone.path)
    assert _find(tmp_path, 4) is None
    assert not any((tmp_path / "index").iterdir())  # the stale entry is gone

    # the same proposal ID now in another journal (e.g. copied from another state directory)
    other = _journal(tmp_path, created_at=1_700_000_500)
    other.save(other.read().model_copy(update={"proposal_id": 4, "phase": "proposed"}))
    found = _find(tmp_path, 4)
    assert found is not None
    assert found.path == other.path
    (entry,) = (tmp_path / "index").iterdir()
    assert entry.read_text() == other.path.name


def test_an_index_entry_to_a_journal_of_another_proposal_is_not_trusted(tmp_path: Path) -> None:
    first = _journal(tmp_path)
    first.proposed(4, "0xaa")
    second = _journal(tmp_path, created_at=1_700_000_500)
    second.proposed(5, "0xcc")
    (entry,) = [e for e in (tmp_path / "index").iterdir() if e.name.endswith("-4")]
    entry.write_text(second.path.name)  # corrupted: points at proposal 5's journal
    found = _find(tmp_path, 4)
    assert found is not None
    assert found.path == first.path
    assert entry.read_text() == first.path.name


def test_a_journal_written_with_the_removed_prepared_field_still_reads(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    data = json.loads((journal.path / "journal.json").read_bytes())
    data["hosts"] = {"r1": {"prepared": None, "applied": None, "verified": None, "error": "x"}}
    (journal.path / "journal.json").write_text(json.dumps(data))
    assert journal.read().hosts["r1"].error == "x"


def test_the_same_bytes_proposed_again_after_their_proposal_ended_get_a_new_journal(
    tmp_path: Path,
) -> None:
    """Proposed, canceled, then the very same content (same second, same window) proposed
    again: the closed journal is moved aside, not resumed."""
    first = _journal(tmp_path)
    first.proposed(1, "0xaa")
    first.closed("Canceled")
    again = _journal(tmp_path)
    assert again.path == first.path
    assert (again.read().phase, again.read().proposal_id) == ("prepared", None)
    assert [
        record.proposal_id
        for _, record in Journal.all(tmp_path, chain_id=CHAIN_ID, contract=CONTRACT)
    ] == [None]
    kept = tmp_path / "closed" / f"{first.path.name}-1" / "journal.json"
    assert json.loads(kept.read_text())["phase"] == "closed"
    assert _find(tmp_path, 1) is None


def test_push_marks_and_host_records_read_back_per_host_whatever_the_name(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    assert journal.pushes() == (frozenset(), {})
    names = ("r1", "core/r2.example.net", ".r3", "r 4%")
    for host in names:
        journal.pushing(host)
    journal.pushed("core/r2.example.net", HostRecord(error="StaleBaseError: changed"))
    begun, done = Journal(tmp_path, journal.content_hash).pushes()  # as a resume reads them
    assert begun == frozenset(names)
    assert done == {"core/r2.example.net": HostRecord(error="StaleBaseError: changed")}


def test_a_corrupted_host_record_names_its_file(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.pushed("r1", HostRecord(error="x"))
    file = journal.path / "hosts" / "r1.json"
    file.write_text("{not json")
    with pytest.raises(ConfigError, match="corrupted host record") as raised:
        journal.pushes()
    assert str(file) in str(raised.value)


def test_a_resumed_run_keeps_the_run_id_it_claimed_under(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    journal.sending(1)
    journal.proposed(1, "0xaa")
    assert journal.applying("0x" + "01" * 32).apply_run == "0x" + "01" * 32
    assert journal.applying("0x" + "02" * 32).apply_run == "0x" + "01" * 32
