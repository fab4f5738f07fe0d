"""Render and dry-run every host: the diffs and configs one change is made from."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from nornir.core import Nornir
from nornir.core.exceptions import NornirSubTaskError
from nornir.core.task import MultiResult, Result, Task
from pydantic import BaseModel, ConfigDict

from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.model.diffs import touched_tenants
from nornir_coopchain.model.hashing import keccak, to_hex32
from nornir_coopchain.plugins.results import PreparedDevice, RenderedConfig
from nornir_coopchain.plugins.tasks.coopchain_prepare import coopchain_prepare
from nornir_coopchain.plugins.tasks.coopchain_render import coopchain_render

__all__ = [
    "PreparedChange",
    "describe",
    "failed_hosts",
    "failure_of",
    "inventory_hash",
    "prepare_change",
]


class PreparedChange(BaseModel):
    """The dry run of a change on every host: diffs and the configs they were made from."""

    model_config = ConfigDict(frozen=True)

    devices: tuple[PreparedDevice, ...]
    candidates: dict[str, str]
    tenants: dict[str, tuple[str, ...]]
    """Each host's touched tenants: its ``coopchain.tenants_patterns`` matched on its diff."""
    inventory_hash: str
    templates: dict[str, str] = {}
    """Each host's rendered template, relative to the templates directory (pinned in the
    content)."""

    @property
    def changed_hosts(self) -> tuple[str, ...]:
        """Hosts whose diff is not empty."""
        return tuple(device.host for device in self.devices if device.diff)


def _render_and_prepare(task: Task, template: str | None, templates: Path, replace: bool) -> Result:
    """Render, dry-run, and attribute the diff to tenants (here, where it overlaps the other
    hosts' device waits, rather than once per host in the main thread)."""
    rendered: RenderedConfig = task.run(coopchain_render, template=template, path=templates).result
    prepared: PreparedDevice = task.run(
        coopchain_prepare, config=rendered.config, replace=replace
    ).result
    patterns = (task.host.get("coopchain") or {}).get("tenants_patterns") or {}
    tenants = touched_tenants(prepared.diff, patterns) if prepared.diff else ()
    return Result(host=task.host, result=(rendered, prepared, tenants), diff=prepared.diff)


def failed_hosts(results: dict[str, MultiResult]) -> dict[str, BaseException | None]:
    """Each failed host with the exception that made it fail (:func:`failure_of`)."""
    return {host: failure_of(multi) for host, multi in results.items() if multi.failed}


def failure_of(results: Iterable[Result]) -> BaseException | None:
    """The exception that made a host's task fail: the innermost, not Nornir's
    ``NornirSubTaskError`` wrapper; None when no result carries one."""
    causes = [
        r.exception
        for r in results
        if r.exception is not None and not isinstance(r.exception, NornirSubTaskError)
    ]
    return causes[0] if causes else None


def describe(error: BaseException | None) -> str:
    """``Type: message`` of a host's failure."""
    return f"{type(error).__name__}: {error}" if error is not None else "failed"


def inventory_hash(nr: Nornir) -> str:
    """A hash of every host's inventory data (what its config is rendered from)."""
    data = {host: dict(nr.inventory.hosts[host].items()) for host in sorted(nr.inventory.hosts)}
    return to_hex32(keccak(json.dumps(data, sort_keys=True, default=str).encode()))


def prepare_change(
    nr: Nornir,
    *,
    template: str | None = None,
    templates: Path = Path("templates"),
    replace: bool = True,
) -> PreparedChange:
    """Render every host's config, dry-run it (load, compare, discard) and find the tenants
    its diff touches (the host's ``coopchain.tenants_patterns``).

    Raises:
        ConfigError: a host failed to render or diff, or has a tenant pattern that is not a
            valid regex; it names each failed host. Nothing was proposed and no device was
            changed.
    """
    results = nr.run(
        task=_render_and_prepare,
        name="coopchain prepare",
        template=template,
        templates=templates,
        replace=replace,
        on_failed=True,
    )
    failed = failed_hosts(results)
    if failed:
        detail = "; ".join(f"{host}: {describe(error)}" for host, error in sorted(failed.items()))
        raise ConfigError(f"cannot prepare the change on {len(failed)} host(s): {detail}")
    devices, candidates, tenants, templates_used = [], {}, {}, {}
    for host in sorted(results):
        rendered, prepared, touched = results[host][0].result
        devices.append(prepared)
        candidates[host] = rendered.config
        templates_used[host] = rendered.template
        tenants[host] = touched
    return PreparedChange(
        devices=tuple(devices),
        candidates=candidates,
        tenants=tenants,
        inventory_hash=inventory_hash(nr),
        templates=templates_used,
    )
