"""What a test needs from the machine: skipped locally with how to enable it, failed in CI.

In CI (``CI=true``) nothing may be skipped silently: a test whose anvil, solc-js, vtysh or
FRR lab is missing fails there.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

from nornir_coopchain.chain import compiler
from nornir_coopchain.chain.devchain import find_anvil
from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.lab import check_prerequisites


def unavailable(reason: str) -> NoReturn:
    """Fail in CI, skip elsewhere, saying why (and how to enable it)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"cannot run in CI: {reason}")
    pytest.skip(reason)


def needs_anvil() -> None:
    """anvil on PATH (``npm ci --prefix tools``, which ``scripts/test`` runs)."""
    if find_anvil() is None:
        unavailable("anvil not installed: run `npm ci --prefix tools` (or scripts/test)")


def needs_solc() -> None:
    """node and the pinned solc-js under the tools folder (``npm ci --prefix tools``)."""
    solc = compiler.tools_dir() / "node_modules" / "solc" / "package.json"
    if shutil.which("node") is None or not solc.is_file():
        unavailable(f"node or {solc} missing: run `npm ci --prefix tools` (or scripts/test)")


def needs_vtysh() -> str:
    """FRRouting's vtysh (``$COOPCHAIN_VTYSH`` or on PATH); its path."""
    vtysh = os.environ.get("COOPCHAIN_VTYSH") or shutil.which("vtysh")
    if vtysh is None:
        unavailable(
            "vtysh (FRRouting) not installed: scripts/test installs it (or set COOPCHAIN_VTYSH)"
        )
    return vtysh


def needs_lab() -> None:
    """Root and the FRR lab's packages (``scripts/test`` installs them when run as root)."""
    try:
        check_prerequisites()
    except ConfigError as e:
        unavailable(f"FRRouting lab unavailable: {e}")
