"""The canonical content of ONE proposal, from a prepared change and its templates."""

from __future__ import annotations

import subprocess
from pathlib import Path

from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.gate.prepare import PreparedChange
from nornir_coopchain.model.content import ChangeWindow, DeviceChange, ProposalContent
from nornir_coopchain.model.hashing import canonical_json, keccak, to_hex32

__all__ = ["build_content", "templates_commit", "templates_hash"]


def templates_hash(templates: Path) -> str:
    """A hash of every file under the templates directory (paths and contents)."""
    files = sorted(path for path in templates.rglob("*") if path.is_file())
    listing = {
        str(path.relative_to(templates)): to_hex32(keccak(path.read_bytes())) for path in files
    }
    return to_hex32(keccak(canonical_json(listing)))


def templates_commit(templates: Path) -> str | None:
    """The git commit of the templates directory, or None when it is not in a git work tree
    or has uncommitted changes (then only :func:`templates_hash` pins it)."""
    git = ["git", "-C", str(templates)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0 or dirty.returncode != 0 or dirty.stdout.strip():
        return None
    return head.stdout.strip()


def build_content(
    prepared: PreparedChange,
    *,
    resource_set: str,
    title: str,
    window: ChangeWindow,
    created_at: int,
    description: str = "",
    templates: Path | None = None,
    only_changed: bool = True,
) -> ProposalContent:
    """The canonical content of ONE proposal covering every (changed) device.

    Raises:
        ConfigError: no device would change.
    """
    devices = [
        DeviceChange(
            host=device.host,
            platform=device.platform,
            base_config_hash=device.base_config_hash,
            candidate_hash=device.candidate_hash,
            diff=device.diff,
            diff_hash=device.diff_hash,
            tenants=prepared.tenants.get(device.host, ()),
            replace=device.replace,
            template=prepared.templates.get(device.host),
        )
        for device in prepared.devices
        if device.diff or not only_changed
    ]
    if not devices:
        raise ConfigError("nothing to propose: no device's running config differs")
    return ProposalContent(
        resource_set=resource_set,
        title=title,
        description=description,
        window=window,
        devices=tuple(devices),
        templates_hash=templates_hash(templates) if templates is not None else None,
        templates_commit=templates_commit(templates) if templates is not None else None,
        inventory_hash=prepared.inventory_hash,
        created_at=created_at,
    )
