"""``coopchain sim build``: give the SIMULATED devices a built-out starting state."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nornir_coopchain.cli._common import (
    InventoryOption,
    JsonOption,
    TemplatesOption,
    emit,
    inventory_extras,
    out,
    outcome,
    site,
)
from nornir_coopchain.exceptions import ConfigError

if TYPE_CHECKING:
    from nornir.core.inventory import Host
    from nornir.core.task import Result, Task

__all__ = ["sim_app"]

SIM_PLATFORM = "coopchain_sim"

sim_app = typer.Typer(
    help="SIMULATED devices only: set up the sample site's starting state.", no_args_is_help=True
)


def _tenants(host: Host, without: list[str]) -> list[str]:
    tenants = host.get("tenants") or {}
    unknown = sorted(set(without) - set(tenants))
    if unknown:
        raise ConfigError(f"not a tenant of {host.name}: {', '.join(unknown)}", field="--without")
    return sorted(set(tenants) - set(without))


def _build(task: Task, templates: Path, without: list[str]) -> Result:
    """Render the host without some tenants and replace its running config with it."""
    from nornir.core.task import Result
    from nornir_napalm.plugins.tasks import napalm_configure

    from nornir_coopchain.plugins.tasks import coopchain_render

    tenants = task.host.get("tenants") or {}
    kept = {name: data for name, data in tenants.items() if name not in without}
    rendered = task.run(coopchain_render, path=templates, tenants=kept).result
    task.run(napalm_configure, configuration=rendered.config, replace=True, dry_run=False)
    return Result(host=task.host)


@sim_app.command("build")
def build(
    without: Annotated[
        list[str] | None,
        typer.Option(
            "--without", help="Leave this tenant (operator ID) out of the build (repeatable)."
        ),
    ] = None,
    inventory: InventoryOption = Path("inventory"),
    templates: TemplatesOption = Path("templates"),
    as_json: JsonOption = False,
) -> None:
    """Configure every SIMULATED device as rendered from the inventory, not gated (set-up).

    The site as it runs before a change: e.g. `--without OPERATOR-C` before turning C up.
    Refused when a host is not a simulated device (`platform: coopchain_sim`).
    """
    from nornir_coopchain.gate.propose import describe, failed_hosts
    from nornir_coopchain.settings import CoopchainSettings

    left_out = sorted(set(without or ()))
    with outcome(as_json):
        extras, source = inventory_extras(inventory)
        settings = CoopchainSettings.from_extras(extras, source=f"{source}: coopchain extras")
        with site(inventory, settings) as nr:
            real = sorted(
                name for name, host in nr.inventory.hosts.items() if host.platform != SIM_PLATFORM
            )
            if real:
                raise ConfigError(
                    f"not simulated devices (platform is not {SIM_PLATFORM}): {', '.join(real)}; "
                    "a real site is changed only through `coopchain propose`",
                    source=str(inventory / "hosts.yaml"),
                )
            built = {name: _tenants(host, left_out) for name, host in nr.inventory.hosts.items()}
            failed = failed_hosts(nr.run(task=_build, templates=templates, without=left_out))
            if failed:
                detail = "; ".join(
                    f"{name}: {describe(exc)}" for name, exc in sorted(failed.items())
                )
                raise ConfigError(f"cannot build the simulated site: {detail}")
    if as_json:
        emit({"simulated": True, "hosts": built, "without": left_out})
        return
    for name, tenants in built.items():
        out.print(f"{name} (SIMULATED): built with {', '.join(tenants) or 'no tenants'}")
