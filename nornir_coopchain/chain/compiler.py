"""Reproducible compilation of the contracts with the pinned Solidity compiler (solc-js).

Development-time only: the package ships the compiled artifacts, and ``scripts/compile-contracts``
regenerates them. The compiler, OpenZeppelin and anvil are pinned in ``tools/package.json`` and
installed with ``npm ci --prefix tools``; ``scripts/solc-json.js`` runs solc-js on a standard-JSON
input. Identical sources and :data:`COMPILER_SETTINGS` give byte-identical artifacts (the
metadata hash is left out of the bytecode).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

from nornir_coopchain.chain.artifacts import ContractArtifact
from nornir_coopchain.exceptions import ConfigError

__all__ = [
    "ARTIFACTS_DIR",
    "COMPILER_SETTINGS",
    "CONTRACTS_DIR",
    "REPO_ROOT",
    "TOOLS_DIR_ENV",
    "compile_contracts",
    "compile_sources",
    "contract_sources",
    "render_artifact",
    "solc_version",
    "tools_dir",
]

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
SOLC_DRIVER = REPO_ROOT / "scripts" / "solc-json.js"
TOOLS_DIR_ENV = "COOPCHAIN_TOOLS_DIR"

#: The solc settings every artifact is built with (recorded in the artifact).
COMPILER_SETTINGS: dict[str, Any] = {
    "evmVersion": "cancun",
    "metadata": {"bytecodeHash": "none"},
    "optimizer": {"enabled": True, "runs": 200},
    "viaIR": True,
}

_OUTPUT_SELECTION = {
    "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"]}
}
_TIMEOUT_SECONDS = 600
_INSTALL_HINT = "run: npm ci --prefix tools"


def tools_dir() -> Path:
    """The folder holding the pinned npm tools (``$COOPCHAIN_TOOLS_DIR`` or ``<repo>/tools``)."""
    override = os.environ.get(TOOLS_DIR_ENV)
    return Path(override).resolve() if override else REPO_ROOT / "tools"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise ConfigError(f"node is not on PATH; install Node.js 20 and {_INSTALL_HINT}")
    if not (tools_dir() / "node_modules" / "solc" / "package.json").is_file():
        raise ConfigError(
            f"solc-js is missing from {tools_dir() / 'node_modules'}; {_INSTALL_HINT}"
        )
    if not SOLC_DRIVER.is_file():
        raise ConfigError(f"the compiler driver {SOLC_DRIVER} is missing (needs a source checkout)")
    return node


def _run_driver(args: list[str], stdin: str) -> str:
    env = {**os.environ, TOOLS_DIR_ENV: str(tools_dir())}
    try:
        done = subprocess.run(
            [_node(), str(SOLC_DRIVER), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(f"solc-js did not finish within {_TIMEOUT_SECONDS} s") from exc
    if done.returncode != 0:
        raise ConfigError(f"solc-js failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout


def solc_version() -> str:
    """The pinned compiler's long version, e.g. ``0.8.37+commit.xxxxxxxx.Emscripten.clang``."""
    return _run_driver(["--version"], "").strip()


def contract_sources(directory: Path = CONTRACTS_DIR) -> dict[str, str]:
    """All ``.sol`` files under ``directory`` by source unit name (path relative to it)."""
    return {
        path.relative_to(directory).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(directory.rglob("*.sol"))
    }


def _source_text(name: str, sources: dict[str, str]) -> str:
    if name in sources:
        return sources[name]
    return (tools_dir() / "node_modules" / name).read_text(encoding="utf-8")


def _source_hashes(metadata: dict[str, Any], sources: dict[str, str]) -> dict[str, dict[str, str]]:
    hashes: dict[str, dict[str, str]] = {}
    for name, entry in sorted(metadata["sources"].items()):
        data = _source_text(name, sources).encode("utf-8")
        digest = "0x" + keccak(data).hex()
        if digest != entry["keccak256"]:
            raise ConfigError(f"{name}: the compiler saw different content than {digest}")
        hashes[name] = {"keccak256": digest, "sha256": hashlib.sha256(data).hexdigest()}
    return hashes


def compile_sources(
    sources: dict[str, str], *, settings: dict[str, Any] | None = None
) -> dict[str, ContractArtifact]:
    """Compile Solidity sources with the pinned solc-js.

    Arguments:
        sources: source text by source unit name (e.g. ``"CoopChain.sol"``); imports not
            given here (``@openzeppelin/...``) are read from ``tools/node_modules``.
        settings: solc settings; defaults to :data:`COMPILER_SETTINGS`.

    Returns:
        An artifact for every deployable contract defined in ``sources`` (interfaces and
        imported contracts are left out), by contract name.

    Raises:
        ConfigError: when node or the tools are missing, or solc reports an error (the message
            holds solc's formatted messages).
    """
    chosen = dict(COMPILER_SETTINGS if settings is None else settings)
    request = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sorted(sources.items())},
        "settings": {**chosen, "outputSelection": _OUTPUT_SELECTION},
    }
    output = json.loads(_run_driver([], json.dumps(request, sort_keys=True)))
    problems = output.get("errors", [])
    errors = [item for item in problems if item.get("severity") == "error"]
    if errors:
        raise ConfigError(
            "solc: " + "\n".join(str(item.get("formattedMessage", item)).strip() for item in errors)
        )
    for item in problems:
        logger.warning("solc: %s", str(item.get("formattedMessage", item)).strip())

    artifacts: dict[str, ContractArtifact] = {}
    for unit in sorted(sources):
        for name, contract in sorted(output.get("contracts", {}).get(unit, {}).items()):
            bytecode = contract["evm"]["bytecode"]["object"]
            if not bytecode:
                continue  # an interface or abstract contract
            if name in artifacts:
                raise ConfigError(f"two contracts are named {name}", source=unit)
            metadata = json.loads(contract["metadata"])
            artifacts[name] = ContractArtifact(
                contract_name=name,
                abi=contract["abi"],
                bytecode="0x" + bytecode,
                deployed_bytecode="0x" + contract["evm"]["deployedBytecode"]["object"],
                compiler={
                    "version": metadata["compiler"]["version"],
                    "settings": chosen,
                    "sources": _source_hashes(metadata, sources),
                },
            )
    return artifacts


def compile_contracts() -> dict[str, ContractArtifact]:
    """Compile every contract under ``chain/contracts`` (test contracts included)."""
    return compile_sources(contract_sources())


def render_artifact(artifact: ContractArtifact) -> str:
    """The artifact file's exact text (stable key order and indentation, final newline)."""
    return json.dumps(artifact.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
