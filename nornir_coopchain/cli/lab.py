"""``coopchain lab up|down|status``: the FRRouting lab (see :mod:`nornir_coopchain.lab`).

Exit codes: 0 done; 1 the lab could not be built or is not healthy; 2 bad input (not root,
FRR or sshd missing, bad options).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nornir_coopchain.exceptions import ConfigError, CoopchainError

__all__ = ["lab_app"]

lab_app = typer.Typer(
    help="An FRRouting lab of the sample site in network namespaces (needs root).",
    no_args_is_help=True,
)

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)

DirOption = Annotated[
    Path, typer.Option("--dir", help="The lab's state directory (configs, keys, inventory).")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object.")]
DEFAULT_DIR = Path(".coopchain/lab")


@contextmanager
def _outcome(as_json: bool) -> Iterator[None]:
    try:
        yield
    except CoopchainError as exc:
        code = 2 if isinstance(exc, ConfigError) else 1
        _err.print(f"[red]{type(exc).__name__}[/red]: {escape(str(exc))}", soft_wrap=True)
        if as_json:
            error = {"type": type(exc).__name__, "message": str(exc), "exit_code": code}
            typer.echo(json.dumps({"error": error}))
        raise typer.Exit(code) from exc


def _emit(payload: dict[str, Any]) -> None:
    typer.echo(json.dumps(payload, default=str))


@lab_app.command("up")
def up(
    routers: Annotated[int, typer.Option("--routers", help="How many site routers (1-9).")] = 4,
    directory: DirOption = DEFAULT_DIR,
    site: Annotated[
        Path | None, typer.Option("--site", help="Sample inventory to take the site from.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Build the lab (or keep it, if it is already up and healthy) and write its inventory."""
    from nornir_coopchain.lab import lab_up

    with _outcome(as_json):
        info = lab_up(routers, directory, site=site)
    if as_json:
        _emit(info.model_dump(mode="json"))
        return
    table = Table("router", "namespace", "management (SSH)", "vty socket")
    for router in info.routers:
        table.add_row(router.name, router.namespace, router.mgmt_address, str(router.directory))
    _out.print(table)
    _out.print(f"lab {info.lab_id}: inventory {info.inventory}, SSH key {info.ssh_key}")


@lab_app.command("down")
def down(directory: DirOption = DEFAULT_DIR, as_json: JsonFlag = False) -> None:
    """Remove the lab: its processes, namespaces, links and files."""
    from nornir_coopchain.lab import lab_down

    with _outcome(as_json):
        removed = lab_down(directory)
    if as_json:
        _emit({"removed": removed})
    else:
        _out.print("lab removed" if removed else f"no lab in {directory}")


@lab_app.command("status")
def status(directory: DirOption = DEFAULT_DIR, as_json: JsonFlag = False) -> None:
    """Show whether every namespace, daemon and sshd of the lab runs; exit 1 if not."""
    from nornir_coopchain.lab import lab_status

    with _outcome(as_json):
        state = lab_status(directory)
    if as_json:
        _emit({**state.model_dump(mode="json"), "healthy": state.healthy})
    elif state.info is None:
        _out.print(f"no lab in {directory}")
    else:
        table = Table("router", "namespace", "daemons", "sshd", "BGP established")
        for router in state.routers:
            running = " ".join(d for d, alive in router.daemons.items() if alive) or "-"
            table.add_row(
                router.name,
                "yes" if router.namespace else "MISSING",
                running,
                "up" if router.sshd else "DOWN",
                "-" if router.bgp_established is None else str(router.bgp_established),
            )
        _out.print(table)
        pes = ", ".join(f"{op} {'up' if ok else 'DOWN'}" for op, ok in state.pes.items())
        _out.print(
            f"lab {state.info.lab_id}: PEs {pes}; {'healthy' if state.healthy else 'NOT healthy'}"
        )
    if not state.healthy:
        raise typer.Exit(1)
