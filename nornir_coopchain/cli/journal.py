"""``coopchain journal list|discard``: the local journals of changes in the state directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from nornir_coopchain.cli._common import (
    InventoryOption,
    JsonOption,
    emit,
    inventory_extras,
    out,
    outcome,
)
from nornir_coopchain.exceptions import ConfigError

if TYPE_CHECKING:
    from nornir_coopchain.journal import ChangeJournal, Journal

__all__ = ["journal_app"]

journal_app = typer.Typer(
    help="List and discard the local journals of changes (state directory).",
    no_args_is_help=True,
)


def _unsent(record: ChangeJournal) -> bool:
    """Whether the journal holds nothing a proposal on chain may need: closed, or prepared
    and never sent (a run killed after sending may have a proposal it does not know yet)."""
    return record.phase == "closed" or (
        record.phase == "prepared" and record.propose_from_block is None
    )


def _journals(inventory: Path) -> tuple[Path, list[tuple[Journal, ChangeJournal]]]:
    from nornir_coopchain.journal import Journal
    from nornir_coopchain.settings import CoopchainSettings

    extras, source = inventory_extras(inventory)
    settings = CoopchainSettings.from_extras(extras, source=f"{source}: coopchain extras")
    root = settings.journal_dir()
    found = []
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if (entry / "journal.json").is_file():
                record = Journal(root, "0x" + entry.name).read()
                found.append((Journal(root, record.content_hash), record))
    return root, found


def _row(journal: Journal, record: ChangeJournal) -> dict[str, Any]:
    content = journal.content()
    begun, done = journal.pushes()
    return {
        "id": journal.path.name,
        "phase": record.phase,
        "proposal_id": record.proposal_id,
        "title": content.title,
        "resource_set": content.resource_set,
        "window_start": content.window.start,
        "chain_id": record.chain_id,
        "contract": record.contract,
        "apply_run": record.apply_run,
        "devices_begun": sorted(begun),
        "devices_done": sorted(done),
        "path": str(journal.path),
    }


@journal_app.command("list")
def list_journals(
    inventory: InventoryOption = Path("inventory"), as_json: JsonOption = False
) -> None:
    """Every change journal of this state directory: phase, proposal, title (with ``--json``
    also the run ID it claimed the apply under, and the devices whose push began and ended)."""
    with outcome(as_json):
        root, found = _journals(inventory)
        rows = [_row(journal, record) for journal, record in found]
    if as_json:
        emit({"state_dir": str(root), "journals": rows})
        return
    table = Table("id", "phase", "proposal", "resource set", "title", title=str(root))
    for row in rows:
        proposal = f"#{row['proposal_id']}" if row["proposal_id"] is not None else "-"
        table.add_row(row["id"], row["phase"], proposal, row["resource_set"], row["title"])
    out.print(table)


@journal_app.command("discard")
def discard(
    journal_id: Annotated[str, typer.Argument(help="The journal's id (or a unique prefix).")],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also discard a journal of a proposal on chain (its resume and audit data).",
        ),
    ] = False,
    inventory: InventoryOption = Path("inventory"),
    as_json: JsonOption = False,
) -> None:
    """Delete a journal that never reached the chain (or was closed), e.g. a refused proposal.

    A journal of a proposal on chain is kept unless --force: apply resumes from it and
    audit reads its evidence.
    """
    with outcome(as_json):
        _, found = _journals(inventory)
        matches = [(j, r) for j, r in found if j.path.name.startswith(journal_id.lower())]
        if len(matches) != 1:
            what = "no journal" if not matches else f"{len(matches)} journals"
            raise ConfigError(f"{what} with id {journal_id!r} (see `coopchain journal list`)")
        [(journal, record)] = matches
        if not _unsent(record) and not force:
            which = f"proposal #{record.proposal_id}" if record.proposal_id else "a sent proposal"
            raise ConfigError(
                f"journal {journal.path.name} is of {which} ({record.phase}): propose and apply "
                "resume from it and audit reads it; pass --force to discard it anyway",
                field="journal_id",
            )
        journal.discard()
    if as_json:
        emit({"discarded": journal.path.name, "phase": record.phase})
        return
    out.print(f"discarded journal {journal.path.name} ({record.phase})")
