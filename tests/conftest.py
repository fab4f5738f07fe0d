"""Shared fixtures.

Chain fixtures: ``anvil`` (one anvil per session), ``chain`` (a connected ChainClient on the
embedded chain and on anvil), ``free_gas_chain`` (anvil with zero gas price and base fee,
like a Besu QBFT consortium), ``stalled_anvil`` (anvil that never mines), ``probe_artifact``
and ``probe`` (a tiny test contract, see tests/contracts_fixture/Probe.sol).
``sample_site``: the sample inventory and templates in a scratch directory, made current.

anvil tests carry ``@pytest.mark.anvil``; without anvil they are skipped locally and fail
in CI (``CI=true``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from needs import needs_anvil

from nornir_coopchain import session as sessions
from nornir_coopchain.chain.accounts import dev_accounts
from nornir_coopchain.chain.artifacts import ContractArtifact
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.devchain import AnvilProcess, start_anvil

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from eth_account.signers.local import LocalAccount
    from web3.contract import Contract

FIXTURES = Path(__file__).parent / "contracts_fixture"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sample_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample inventory and templates in ``tmp_path`` (the current directory), with the
    SIMULATED devices' state under ``devices/`` and the operator's under ``state/``."""
    for name in ("inventory", "templates"):
        shutil.copytree(ROOT / name, tmp_path / name)
    defaults = tmp_path / "inventory" / "defaults.yaml"
    data = yaml.safe_load(defaults.read_text())
    data["connection_options"]["napalm"]["extras"]["optional_args"]["state_dir"] = "devices"
    data["connection_options"]["coopchain"]["extras"]["state_dir"] = "state"
    defaults.write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _start_anvil(extra_args: Sequence[str] = ()) -> AnvilProcess:
    needs_anvil()
    return start_anvil(extra_args=extra_args)


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilProcess]:
    """One anvil (automine, EIP-1559 fees) for the whole session."""
    with _start_anvil() as process:
        yield process


@pytest.fixture(scope="module")
def own_anvil() -> Iterator[AnvilProcess]:
    """A fresh anvil for one test module: its clock moves with local time (other modules
    move the session anvil's clock forward, which a change window check must not see)."""
    with _start_anvil() as process:
        yield process
    # A later module's anvil may get the same port, and its first contracts the same
    # addresses: the process-wide clients and sessions of this one (with their nonces) must
    # not serve it.
    sessions.forget_all()


@pytest.fixture(scope="session")
def free_gas_anvil() -> Iterator[AnvilProcess]:
    """anvil with zero gas price and base fee (stands in for Besu QBFT with free gas)."""
    with _start_anvil(["--gas-price", "0", "--block-base-fee-per-gas", "0"]) as process:
        yield process


@pytest.fixture(scope="session")
def stalled_anvil() -> Iterator[AnvilProcess]:
    """anvil that never mines (``--no-mining``)."""
    with _start_anvil(["--no-mining"]) as process:
        yield process


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain(request: pytest.FixtureRequest) -> Iterator[ChainClient]:
    """A connected client: a fresh embedded chain, or the session's anvil."""
    embedded = request.param == "embedded"
    url = "embedded://" if embedded else request.getfixturevalue("anvil").url
    with ChainClient.connect(url, receipt_timeout=10) as client:
        yield client


@pytest.fixture
def free_gas_chain(free_gas_anvil: AnvilProcess) -> Iterator[ChainClient]:
    """A client on the free-gas anvil."""
    with ChainClient.connect(free_gas_anvil.url, receipt_timeout=10) as client:
        yield client


@pytest.fixture
def accounts(chain: ChainClient) -> list[LocalAccount]:
    """The dev chain's funded accounts (well-known keys; dev chains only)."""
    return dev_accounts(chain, 5)


@pytest.fixture(scope="session")
def probe_artifact() -> ContractArtifact:
    """The compiled Probe test contract."""
    return ContractArtifact.model_validate_json((FIXTURES / "Probe.json").read_text())


@pytest.fixture
def probe(
    chain: ChainClient, accounts: list[LocalAccount], probe_artifact: ContractArtifact
) -> Contract:
    """A freshly deployed Probe contract (count starts at 0)."""
    address = chain.deploy(accounts[0], probe_artifact, 0)
    return chain.w3.eth.contract(address=address, abi=probe_artifact.abi)
