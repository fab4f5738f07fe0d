"""The ``coopchain`` command: one module per command group.

Exit codes: 0 success; 1 the outcome was a failure; 2 bad input; 3 refused; 4 the chain
could not be used (see :mod:`nornir_coopchain.cli._common`).
"""

from __future__ import annotations

import typer

from nornir_coopchain.cli import apply, chain, change, lab, serve, setup, vote
from nornir_coopchain.cli._common import EXIT_BAD_INPUT, EXIT_CHAIN, EXIT_FAILED, EXIT_REFUSED

__all__ = ["EXIT_BAD_INPUT", "EXIT_CHAIN", "EXIT_FAILED", "EXIT_REFUSED", "app"]

app = typer.Typer(
    help="Co-owner approval on a blockchain for changes to shared network equipment.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for group in (setup.app, chain.app, change.app, vote.app, apply.app, serve.app):
    app.add_typer(group)
app.add_typer(chain.chain_app, name="chain")
app.add_typer(lab.lab_app, name="lab")
