"""What a test needs from the machine: skipped locally with how to enable it, failed in CI.

In CI (``CI=true``) nothing may be skipped silently: a test whose anvil or FRR lab is
missing fails there.
"""

from __future__ import annotations

import os

import pytest

from nornir_coopchain.chain.devchain import find_anvil
from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.lab import check_prerequisites


def unavailable(reason: str) -> None:
    """Fail in CI, skip elsewhere, saying why (and how to enable it)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"cannot run in CI: {reason}")
    pytest.skip(reason)


def needs_anvil() -> None:
    """anvil on PATH (``npm ci --prefix tools``, which ``scripts/test`` runs)."""
    if find_anvil() is None:
        unavailable("anvil not installed: run `npm ci --prefix tools` (or scripts/test)")


def needs_lab() -> None:
    """Root and the FRR lab's packages (``scripts/test`` installs them when run as root)."""
    try:
        check_prerequisites()
    except ConfigError as e:
        unavailable(f"FRRouting lab unavailable: {e}")
