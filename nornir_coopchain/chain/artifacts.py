"""Compiled contract artifacts shipped inside the package."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["ContractArtifact", "load_artifact"]


class ContractArtifact(BaseModel):
    """ABI, bytecode and the compiler settings that produced them."""

    model_config = ConfigDict(frozen=True)

    contract_name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler: dict[str, Any]


@cache
def load_artifact(name: str) -> ContractArtifact:
    """Load ``chain/artifacts/<name>.json`` from the installed package."""
    text = resources.files("nornir_coopchain.chain").joinpath(f"artifacts/{name}.json").read_text()
    return ContractArtifact.model_validate_json(text)
