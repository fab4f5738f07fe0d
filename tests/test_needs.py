"""tests/needs.py: a missing tool fails the test in CI and skips it elsewhere, saying how to
enable it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from needs import needs_anvil, needs_solc, needs_vtysh

from nornir_coopchain.chain import compiler


@pytest.fixture
def bare_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No anvil, node, solc-js or vtysh to be found."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("COOPCHAIN_ANVIL", str(tmp_path / "anvil"))  # not there
    monkeypatch.delenv("COOPCHAIN_VTYSH", raising=False)
    monkeypatch.setenv(compiler.TOOLS_DIR_ENV, str(tmp_path / "tools"))


NEEDS = [
    pytest.param(needs_anvil, "npm ci --prefix tools", id="anvil"),
    pytest.param(needs_solc, "npm ci --prefix tools", id="solc"),
    pytest.param(needs_vtysh, "COOPCHAIN_VTYSH", id="vtysh"),
]


@pytest.mark.usefixtures("bare_machine")
@pytest.mark.parametrize(("need", "how"), NEEDS)
def test_a_missing_need_skips_locally_saying_how_to_enable_it(
    need: Callable[[], object], how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=how):
        need()


@pytest.mark.usefixtures("bare_machine")
@pytest.mark.parametrize(("need", "how"), NEEDS)
def test_a_missing_need_fails_in_ci(
    need: Callable[[], object], how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"cannot run in CI: .*{how}"):
        need()


def test_vtysh_is_found_where_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vtysh = tmp_path / "vtysh"
    monkeypatch.setenv("COOPCHAIN_VTYSH", str(vtysh))
    assert needs_vtysh() == str(vtysh)
