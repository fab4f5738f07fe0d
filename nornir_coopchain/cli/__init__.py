"""The ``coopchain`` command: one module per command group.

Exit codes: 0 success; 1 the outcome was a failure; 2 bad input; 3 refused; 4 the chain
could not be used (see :mod:`nornir_coopchain.cli._common`).
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from nornir_coopchain import __version__
from nornir_coopchain.cli import (
    apply,
    chain,
    change,
    journal,
    lab,
    member,
    serve,
    setup,
    sim,
    vote,
)
from nornir_coopchain.cli._common import EXIT_BAD_INPUT, EXIT_CHAIN, EXIT_FAILED, EXIT_REFUSED

__all__ = ["EXIT_BAD_INPUT", "EXIT_CHAIN", "EXIT_FAILED", "EXIT_REFUSED", "app"]

app = typer.Typer(
    help="Co-owner approval on a blockchain for changes to shared network equipment.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: a flag is shown as a flag, without a value type
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(shown: bool) -> None:
    if shown:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            show_default=False,
            help="Log to stderr: -v what is done, -vv debug.",
        ),
    ] = 0,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Co-owner approval on a blockchain for changes to shared network equipment."""
    if verbose:
        _log_to_stderr(logging.DEBUG if verbose > 1 else logging.INFO)


def _log_to_stderr(level: int) -> None:
    """Our loggers' records at ``level`` and above on this run's stderr (one handler)."""
    logger = logging.getLogger("nornir_coopchain")
    for handler in [h for h in logger.handlers if getattr(h, "coopchain_cli", False)]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.coopchain_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


for group in (setup.app, chain.app, change.app, vote.app, apply.app, serve.app):
    app.add_typer(group)
app.add_typer(chain.chain_app, name="chain")
app.add_typer(lab.lab_app, name="lab")
app.add_typer(sim.sim_app, name="sim")
app.add_typer(journal.journal_app, name="journal")
app.add_typer(member.member_app, name="member")
