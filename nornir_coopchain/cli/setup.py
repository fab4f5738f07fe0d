"""``coopchain init``, ``demo`` and ``version``."""

from __future__ import annotations

import getpass
import json
import shutil
import site
import sys
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


def _sample_dirs() -> tuple[Path, ...]:
    """Where the sample site may be: the project checkout, the current directory, and the
    installed package's data (``share/nornir_coopchain`` under the install prefix)."""
    share = Path("share", "nornir_coopchain")
    return (
        Path(nornir_coopchain.__file__).resolve().parents[1],
        Path.cwd(),
        Path(sys.prefix) / share,
        Path(site.getuserbase()) / share,
    )


def _sample_dir() -> Path | None:
    """The first place holding the sample inventory and templates, if any."""
    for candidate in _sample_dirs():
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
                "no sample inventory/ and templates/ found in the project checkout, the "
                f"current directory or the installed package's data ({sys.prefix}/share/"
                "nornir_coopchain): reinstall with `pip install .`",
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


MIN_PASSWORD_LENGTH = 12


def check_password_strength(secret: str, source: str) -> None:
    """Refuse a weak keystore password: at least 12 characters of at least two kinds (lower
    case, upper case, digits, anything else), and not one character repeated.

    Raises:
        KeystoreError: naming the rule (never the password).
    """
    kinds = sum(
        any(test(char) for char in secret)
        for test in (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    )
    if len(secret) < MIN_PASSWORD_LENGTH or kinds < 2 or len(set(secret)) < 4:
        raise KeystoreError(
            f"password too weak: use at least {MIN_PASSWORD_LENGTH} characters mixing at least "
            "two of lower case, upper case, digits and other characters (a passphrase of "
            "several words will do)",
            source=source,
        )


def _new_password(source: PasswordSource, path: Path) -> str:
    secret = source.read(purpose=str(path))
    check_password_strength(secret, str(path))
    if source.prompt and getpass.getpass("Repeat password: ") != secret:
        raise KeystoreError("the passwords differ", source=str(path))
    return secret


def _next_steps(operator: str, address: str) -> list[str]:
    """The commands that make the new key a funded member on a dev chain, in order."""
    return [
        "coopchain chain up  # in another terminal; leave it running",
        "coopchain chain deploy --dev-account 0 --write-inventory  # or set the consortium's "
        "contract in inventory/defaults.yaml",
        f"coopchain chain fund {address} --dev-account 0",
        f"coopchain member add {address} --operator {operator} --dev-account 0",
        "coopchain vote N approve --dev-account 1  # N: the number `member add` printed",
        "coopchain vote N approve --dev-account 2",
        "coopchain member execute N  # with your own key; adds you to inventory/deployment.yaml",
        "coopchain members",
    ]


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
        "next_steps": _next_steps(operator, address),
    }
    if as_json:
        emit(report)
        return
    for name in _SAMPLE:
        out.print(f"{name}/: {report[name]}")
    state = "created" if created else "kept (existing)"
    out.print(f"keystore {keystore} {state}: [bold]{address}[/bold]")
    out.print(f"{defaults}: keystore, password source and operator set")
    out.print(f"next, on a dev chain, in {directory}:")
    for step in _next_steps(operator, address):
        out.print(f"  {step}")


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
