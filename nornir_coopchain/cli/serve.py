"""``coopchain serve``: the read-only web dashboard of the operator's own node and journal."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nornir_coopchain.cli._common import (
    ChainOption,
    ContractOption,
    InventoryOption,
    err,
    outcome,
    resolve_settings,
    tenant_patterns,
)
from nornir_coopchain.exceptions import ConfigError

if TYPE_CHECKING:
    from nornir_coopchain.chain.contract import CoopChain

__all__ = ["app"]

app = typer.Typer()

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _tenant_patterns(inventory: Path) -> dict[str, Any]:
    """Each inventory host's ``coopchain.tenants_patterns`` (empty without hosts files)."""
    try:
        return tenant_patterns(inventory)
    except ConfigError as exc:
        err.print(f"per-hunk tenants unavailable: {exc}")
        return {}


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback by default: no authentication).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free).")] = 8000,
    poll: Annotated[
        float, typer.Option(min=0.1, help="Seconds between two polls of the chain's events.")
    ] = 2.0,
    inventory: InventoryOption = Path("inventory"),
    chain: ChainOption = None,
    contract: ContractOption = None,
) -> None:
    """Serve the read-only dashboard: proposals, diffs, votes, evidence, live (Ctrl-C stops)."""
    import uvicorn

    from nornir_coopchain.chain.contract import CoopChain
    from nornir_coopchain.session import chain_client, close_all
    from nornir_coopchain.web import Dashboard, create_app

    with outcome():
        settings = resolve_settings(inventory, chain=chain, contract=contract)
        address = settings.contract
        if address is None:
            raise ConfigError(
                "no contract address: deploy one with `coopchain chain deploy "
                "--write-inventory` or pass --contract",
                field="contract",
            )

        def connect() -> CoopChain:
            return CoopChain(chain_client(settings), address)

        dashboard = Dashboard(connect, settings.journal_dir(), _tenant_patterns(inventory))
    if host not in _LOOPBACK:
        err.print(f"[yellow]listening on {host}: the dashboard has no authentication[/yellow]")
    web = create_app(dashboard, operator=settings.operator, poll_interval=poll)
    err.print(f"dashboard of contract {address} on http://{host}:{port}/ (Ctrl-C stops)")
    try:
        # open event streams would hold a graceful shutdown for minutes: give them 5 s
        uvicorn.run(web, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    finally:
        close_all()
