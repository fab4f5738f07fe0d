"""The committed artifacts are exactly what the pinned compiler makes of the sources."""

from __future__ import annotations

import os

import pytest
from eth_utils.crypto import keccak
from needs import needs_solc

from nornir_coopchain.chain import compiler
from nornir_coopchain.chain.artifacts import ContractArtifact, load_artifact
from nornir_coopchain.chain.errors import CONTRACT_ERRORS
from nornir_coopchain.exceptions import ConfigError

ARTIFACTS = ("CoopChain", "MockERC1271Wallet")


@pytest.fixture(scope="module")
def compiled() -> dict[str, ContractArtifact]:
    needs_solc()
    return compiler.compile_contracts()


@pytest.mark.slow
@pytest.mark.parametrize("name", ARTIFACTS)
def test_committed_artifact_is_reproduced_byte_for_byte(
    compiled: dict[str, ContractArtifact], name: str
) -> None:
    committed = (compiler.ARTIFACTS_DIR / f"{name}.json").read_text(encoding="utf-8")
    assert compiler.render_artifact(compiled[name]) == committed, "run: scripts/compile-contracts"


@pytest.mark.slow
def test_every_deployable_contract_has_an_artifact(compiled: dict[str, ContractArtifact]) -> None:
    committed = {path.stem for path in compiler.ARTIFACTS_DIR.glob("*.json")}
    assert set(compiled) == committed == set(ARTIFACTS)


@pytest.mark.parametrize("name", ARTIFACTS)
def test_artifact_records_settings_and_current_source_hashes(name: str) -> None:
    # Needs no compiler: a source edited without recompiling shows up here.
    artifact = load_artifact(name)
    assert artifact.contract_name == name
    assert artifact.compiler["version"].startswith("0.8.37+")
    assert artifact.compiler["settings"] == compiler.COMPILER_SETTINGS
    own = {
        unit: text
        for unit, text in compiler.contract_sources().items()
        if unit in artifact.compiler["sources"]
    }
    assert own, "the artifact names none of the contract sources"
    for unit, text in own.items():
        assert artifact.compiler["sources"][unit]["keccak256"] == "0x" + keccak(text.encode()).hex()


def test_every_abi_error_has_exactly_one_class() -> None:
    abi_errors = [
        entry["name"] for entry in load_artifact("CoopChain").abi if entry["type"] == "error"
    ]
    class_errors = [cls.error_name for cls in CONTRACT_ERRORS]
    assert len(abi_errors) == len(set(abi_errors))
    assert len(class_errors) == len(set(class_errors))
    assert set(abi_errors) == set(class_errors)


def test_solc_errors_raise_config_error() -> None:
    needs_solc()
    source = "pragma solidity ^0.8.24;\ncontract Bad { uint x = ; }\n"
    with pytest.raises(ConfigError, match=r"Bad\.sol"):
        compiler.compile_sources({"Bad.sol": source})


def test_missing_tools_raise_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]
) -> None:
    monkeypatch.setenv(compiler.TOOLS_DIR_ENV, str(tmp_path))
    with pytest.raises(ConfigError, match=r"npm ci --prefix tools"):
        compiler.compile_sources({"Empty.sol": "pragma solidity ^0.8.24;\n"})
