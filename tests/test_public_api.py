"""The public API imports the way a Nornir user writes it, and the layers only look down."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

PUBLIC = [
    ("nornir_coopchain.plugins.tasks", "coopchain_render"),
    ("nornir_coopchain.plugins.tasks", "coopchain_prepare"),
    ("nornir_coopchain.plugins.tasks", "coopchain_apply"),
    ("nornir_coopchain.plugins.tasks", "coopchain_verify"),
    ("nornir_coopchain", "run_gated_change"),
    ("nornir_coopchain", "run_emergency_change"),
    ("nornir_coopchain", "dry_run_change"),
    ("nornir_coopchain", "ChangeWindow"),
    ("nornir_coopchain", "coopchain_session"),
]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(("module", "name"), PUBLIC)
def test_each_public_name_imports_in_a_fresh_interpreter(module: str, name: str) -> None:
    run = _python(
        f"from {module} import {name}\n"
        "import inspect\n"
        f"assert inspect.isfunction({name}) or inspect.isclass({name}), {name}\n"
        f"print({name}.__module__)"
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("nornir_coopchain.")


def test_the_package_root_exports_what_it_lists() -> None:
    import nornir_coopchain

    for name in nornir_coopchain.__all__:
        assert getattr(nornir_coopchain, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        nornir_coopchain.nothing_here  # noqa: B018


def test_importing_the_change_model_does_not_load_the_chain_or_nornir() -> None:
    run = _python(
        "import sys\n"
        "import nornir_coopchain.model.content\n"
        "print(sorted(m for m in ('web3', 'nornir', 'napalm') if m in sys.modules))"
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_import_contracts_hold() -> None:
    """Layers only look down, no cycle inside a package, the model is pure (pyproject.toml)."""
    run = _python(
        "import sys\n"
        "from importlinter.cli import lint_imports\n"
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True))"
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "BROKEN" not in run.stdout
    assert run.stdout.count("KEPT") == 4


def test_one_session_per_run_from_the_hosts_coopchain_options() -> None:
    """coopchain_settings reads what Nornir resolves for every host; they must agree."""
    from nornir import InitNornir
    from nornir.core.inventory import ConnectionOptions

    from nornir_coopchain.exceptions import ConfigError
    from nornir_coopchain.plugins.connections.coopchain import coopchain_settings

    inventory = REPO / "inventory"
    nr = InitNornir(
        inventory={
            "plugin": "SimpleInventory",
            "options": {
                "host_file": str(inventory / "hosts.yaml"),
                "group_file": str(inventory / "groups.yaml"),
                "defaults_file": str(inventory / "defaults.yaml"),
            },
        },
        logging={"enabled": False},
    )
    assert coopchain_settings(nr).resource_set == "TOWER-017"
    nr.inventory.hosts["site17-r2"].connection_options["coopchain"] = ConnectionOptions(
        extras={"resource_set": "OTHER"}
    )
    with pytest.raises(ConfigError, match="the hosts' coopchain settings differ"):
        coopchain_settings(nr)
