"""``coopchain init``, ``demo`` and ``version``."""

from __future__ import annotations

import getpass
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

import nornir_coopchain
from nornir_coopchain import __version__
from nornir_coopchain.cli._common import (
    EXIT_FAILED,
    JsonOption,
    emit,
    err,
    inventory_extras,
    out,
    outcome,
)
from nornir_coopchain.cli._defaults import set_extras
from nornir_coopchain.exceptions import ConfigError, KeystoreError

if TYPE_CHECKING:
    from nornir_coopchain.chain.accounts import PasswordSource

__all__ = ["app"]

app = typer.Typer()

CHAIN_UP_URL = "http://127.0.0.1:8545"
_SAMPLE = ("inventory", "templates")


def _sample_dir() -> Path | None:
    """The project checkout holding the sample inventory and templates, if any."""
    for candidate in (Path(nornir_coopchain.__file__).resolve().parents[1], Path.cwd()):
        if all((candidate / name).is_dir() for name in _SAMPLE):
            return candidate
    return None


def _scaffold(directory: Path) -> dict[str, str]:
    """Copy the sample inventory and templates into ``directory`` unless present."""
    wanted = [name for name in _SAMPLE if not (directory / name).exists()]
    if wanted:
        sample = _sample_dir()
        if sample is None:
            raise ConfigError(
                "no sample inventory/ and templates/ found next to the installed package or "
                "in the current directory: run from the project checkout",
                field=", ".join(wanted),
            )
        for name in wanted:
            shutil.copytree(sample / name, directory / name)
    return {name: "copied" if name in wanted else "present" for name in _SAMPLE}


def _keystore_address(path: Path) -> str:
    try:
        return "0x" + str(json.loads(path.read_text())["address"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeystoreError("exists but is not a keystore V3 file", source=str(path)) from exc


def _new_password(source: PasswordSource, path: Path) -> str:
    secret = source.read(purpose=str(path))
    if source.prompt and getpass.getpass("Repeat password: ") != secret:
        raise KeystoreError("the passwords differ", source=str(path))
    return secret


@app.command()
def init(
    operator: Annotated[
        str, typer.Option("--operator", help="Your operator (member) ID, e.g. OPERATOR-A.")
    ],
    directory: Annotated[Path, typer.Argument(help="Working directory to set up.")] = Path("."),
    password: Annotated[
        str,
        typer.Option(
            "--password",
            help="Where the keystore password comes from: env:NAME, file:PATH, prompt.",
        ),
    ] = "prompt",
    chain: Annotated[
        str | None, typer.Option("--chain", help=f"Chain URL to set (default {CHAIN_UP_URL}).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Set up a working directory: sample inventory and templates, your encrypted keystore.

    Creates keys/<operator>.json (keystore V3, mode 0600, never overwritten) and points
    inventory/defaults.yaml at it. The password itself is never printed or stored.
    """
    from nornir_coopchain.chain.accounts import PasswordSource, create_keystore
    from nornir_coopchain.settings import CoopchainSettings

    with outcome(as_json):
        relative = Path("keys") / f"{operator.lower()}.json"
        keystore = directory / relative
        created = not keystore.exists()
        secret = _new_password(PasswordSource.parse(password), keystore) if created else None
        directory.mkdir(parents=True, exist_ok=True)
        copied = _scaffold(directory)
        defaults = directory / "inventory" / "defaults.yaml"
        extras, source = inventory_extras(directory / "inventory")
        updates: dict[str, Any] = {
            "keystore": str(relative),
            "password": password,
            "operator": operator,
        }
        if chain is not None or str(extras.get("chain_url", "embedded://")).startswith("embedded"):
            updates["chain_url"] = chain or CHAIN_UP_URL
        if extras.get("dev_account") is not None:
            updates["dev_account"] = None
        CoopchainSettings.from_extras({**extras, **updates}, source=source)
        if secret is not None:
            address = str(create_keystore(keystore, secret))
        else:
            address = _keystore_address(keystore)
        set_extras(defaults, updates)
    report = {
        "directory": str(directory),
        **copied,
        "keystore": str(keystore),
        "keystore_created": created,
        "address": address,
        "defaults": str(defaults),
        "chain_url": updates.get("chain_url", extras.get("chain_url")),
    }
    if as_json:
        emit(report)
        return
    for name in _SAMPLE:
        out.print(f"{name}/: {report[name]}")
    state = "created" if created else "kept (existing)"
    out.print(f"keystore {keystore} {state}: [bold]{address}[/bold]")
    out.print(f"{defaults}: keystore, password source and operator set")
    out.print(
        "next: `coopchain chain up` in another terminal, then "
        "`coopchain chain deploy --write-inventory`"
    )


def _progress(enabled: bool) -> Callable[[str], None]:
    if not enabled:
        return lambda _line: None
    return lambda line: err.print(f"[cyan]•[/cyan] {line}")


@app.command()
def demo(
    as_json: JsonOption = False,
    url: Annotated[
        str, typer.Option("--chain", help="embedded:// or a dev node such as anvil (DEV keys).")
    ] = "embedded://",
    inventory: Annotated[Path, typer.Option(help="Sample inventory directory.")] = Path(
        "inventory"
    ),
    templates: Annotated[Path, typer.Option(help="Templates directory.")] = Path("templates"),
) -> None:
    """Three operators govern changes to a shared tower site (embedded chain, SIMULATED devices)."""
    from nornir_coopchain.demo import run_demo

    with outcome(as_json):
        report = run_demo(
            inventory=inventory, templates=templates, url=url, progress=_progress(not as_json)
        )
    if as_json:
        emit(report.model_dump(mode="json"))
    else:
        table = Table(title="coopchain demo", show_header=False)
        for key, value in report.model_dump(exclude={"votes", "rejected_proposal"}).items():
            table.add_row(key, str(value))
        rejected = report.rejected_proposal
        table.add_row(
            "rejected_proposal",
            f"#{rejected.proposal_id} {rejected.verdict}, devices touched: "
            f"{rejected.devices_touched}",
        )
        out.print(table)
    if report.audit != "pass" or report.rejected_proposal.devices_touched:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def version(as_json: JsonOption = False) -> None:
    """Print the version."""
    if as_json:
        emit({"version": __version__})
    else:
        out.print(__version__)
