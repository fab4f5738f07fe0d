"""``coopchain chain up|deploy|check-deployment`` and ``coopchain members``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from nornir_coopchain.cli._common import (
    EXIT_CHAIN,
    ChainOption,
    ContractOption,
    DevAccountOption,
    InventoryOption,
    JsonOption,
    KeystoreOption,
    PasswordOption,
    emit,
    err,
    out,
    outcome,
    reader,
    resolve_settings,
    stopped_by_signals,
)
from nornir_coopchain.cli._defaults import set_extras
from nornir_coopchain.exceptions import ConfigError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from nornir_coopchain.chain.client import ChainClient
    from nornir_coopchain.chain.devchain import AnvilProcess
    from nornir_coopchain.settings import CoopchainSettings

__all__ = ["app", "chain_app"]

app = typer.Typer()
chain_app = typer.Typer(
    help="Run a dev chain, deploy and check the contract.", no_args_is_help=True
)

DeploymentArgument = Annotated[
    Path | None,
    typer.Argument(help="Deployment YAML file (default: <inventory>/deployment.yaml)."),
]


def _deployer(settings: CoopchainSettings, client: ChainClient) -> LocalAccount:
    from nornir_coopchain.chain.accounts import PasswordSource, dev_accounts, load_keystore

    if settings.keystore is not None:
        return load_keystore(settings.keystore, PasswordSource.parse(settings.password))
    if settings.dev_account is not None:
        return dev_accounts(client, settings.dev_account + 1)[settings.dev_account]
    raise ConfigError(
        "a sender is needed: set keystore (`coopchain init`) or pass --keystore "
        "(or --dev-account N on a dev chain)",
        field="keystore",
    )


def _announce(anvil: AnvilProcess, state: Path, as_json: bool) -> None:
    """Print where anvil listens and its DEV accounts."""
    from nornir_coopchain.chain.accounts import dev_accounts
    from nornir_coopchain.chain.client import ChainClient

    with outcome(as_json), ChainClient.connect(anvil.url) as client:
        chain_id = client.chain_id
        accounts = [account.address for account in dev_accounts(client, 10)]
    if as_json:
        emit(
            {
                "url": anvil.url,
                "ws_url": anvil.ws_url,
                "chain_id": chain_id,
                "state": str(state),
                "dev_accounts": accounts,
                "dev_keys": "publicly known (anvil's default mnemonic): dev chains only",
            }
        )
        return
    out.print(f"anvil on [bold]{anvil.url}[/bold] (chain {chain_id}), state {state}")
    out.print("DEV accounts (publicly known keys, dev chains only; --dev-account N):")
    for index, address in enumerate(accounts):
        out.print(f"  {index}: {address}")
    err.print("Ctrl-C stops it")


@chain_app.command("up")
def chain_up(
    port: Annotated[
        int, typer.Option(envvar="COOPCHAIN_CHAIN_PORT", help="Port on 127.0.0.1.")
    ] = 8545,
    state: Annotated[
        Path, typer.Option(help="Chain state file: loaded at start, saved on exit.")
    ] = Path(".coopchain/anvil-state.json"),
    block_time: Annotated[
        int | None, typer.Option(help="Mine every N seconds (default: on each transaction).")
    ] = None,
    free_gas: Annotated[
        bool, typer.Option("--free-gas", help="Zero gas price and base fee (like Besu QBFT).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """DEV CHAIN: run anvil in the foreground on 127.0.0.1 for other terminals; Ctrl-C stops it.

    Its accounts are anvil's publicly known dev keys: never use them on a real network.
    anvil is taken from $COOPCHAIN_ANVIL, else PATH, else tools/node_modules/.bin of the
    checkout holding the current directory.
    """
    from nornir_coopchain.chain.devchain import start_anvil

    args = ["--state", str(state)]
    if block_time is not None:
        args += ["--block-time", str(block_time)]
    if free_gas:
        args += ["--gas-price", "0", "--block-base-fee-per-gas", "0"]
    with outcome(as_json):
        state.parent.mkdir(parents=True, exist_ok=True)
        anvil = start_anvil(port=port, extra_args=args)
    with anvil:
        try:
            with stopped_by_signals():  # anvil saves its state when it is stopped
                _announce(anvil, state, as_json)
                code = anvil.process.wait()
        except KeyboardInterrupt:
            err.print(f"stopping anvil; state saved to {state}")
            return
    err.print(f"[red]anvil exited with code {code}[/red]: {anvil.output()[-2000:]}")
    raise typer.Exit(EXIT_CHAIN)


@chain_app.command("deploy")
def chain_deploy(
    path: DeploymentArgument = None,
    write_inventory: Annotated[
        bool,
        typer.Option(
            "--write-inventory",
            help="Store the address (and --chain, if given) in <inventory>/defaults.yaml.",
        ),
    ] = False,
    inventory: InventoryOption = Path("inventory"),
    chain: ChainOption = None,
    keystore: KeystoreOption = None,
    password: PasswordOption = None,
    dev_account: DevAccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deploy the contract with the members and resource sets of a deployment file."""
    from nornir_coopchain.chain.contract import CoopChain
    from nornir_coopchain.chain.deployment import DeploymentSpec
    from nornir_coopchain.session import chain_client, close_all

    with outcome(as_json):
        settings = resolve_settings(
            inventory, chain=chain, keystore=keystore, password=password, dev_account=dev_account
        )
        spec = DeploymentSpec.load(path or inventory / "deployment.yaml")
        try:
            client = chain_client(settings)
            coop = CoopChain.deploy(client, _deployer(settings, client), spec)
            members, chain_id = coop.members(), client.chain_id
        finally:
            close_all()
        if write_inventory:
            updates: dict[str, str] = {"contract": coop.address}
            if chain is not None:
                updates["chain_url"] = chain
            set_extras(inventory / "defaults.yaml", updates)
    if as_json:
        emit(
            {
                "contract": coop.address,
                "chain_id": chain_id,
                "members": len(members),
                "inventory_written": write_inventory,
            }
        )
        return
    out.print(f"deployed CoopChain at [bold]{coop.address}[/bold] on chain {chain_id}")
    if write_inventory:
        out.print(f"contract address written to {inventory / 'defaults.yaml'}")


@chain_app.command("fund")
def chain_fund(
    address: Annotated[str, typer.Argument(help="The account to fund (0x…).")],
    eth: Annotated[float, typer.Option("--eth", min=0, help="How much ether to send.")] = 10.0,
    inventory: InventoryOption = Path("inventory"),
    chain: ChainOption = None,
    dev_account: Annotated[
        int,
        typer.Option(
            "--dev-account",
            help="DEV CHAINS ONLY: send from anvil's publicly known dev key N.",
        ),
    ] = 0,
    as_json: JsonOption = False,
) -> None:
    """DEV CHAIN: send ether from a dev account to an account (e.g. a new keystore's) so it can
    pay for its transactions."""
    from nornir_coopchain.session import chain_client, close_all

    with outcome(as_json):
        if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
            raise ConfigError(f"{address!r} is not an account address", field="address")
        settings = resolve_settings(inventory, chain=chain, dev_account=dev_account)
        try:
            client = chain_client(settings)
            sender = _deployer(settings, client)
            wei = int(eth * 10**18)
            tx_hash = client.send_transaction(sender, {"to": address, "value": wei})
            client.wait_for_receipt(tx_hash)
            balance = client.w3.eth.get_balance(address)  # type: ignore[arg-type]
        finally:
            close_all()
    if as_json:
        emit(
            {
                "address": address,
                "tx_hash": "0x" + tx_hash.hex().removeprefix("0x"),
                "balance_wei": balance,
            }
        )
        return
    ether = balance / 10**18
    out.print(
        f"sent {eth:g} ETH to {address} from DEV account {dev_account}; balance {ether:g} ETH"
    )


@chain_app.command("check-deployment")
def check_deployment(
    path: DeploymentArgument = None,
    inventory: InventoryOption = Path("inventory"),
    as_json: JsonOption = False,
) -> None:
    """Validate a deployment file and show the on-chain policies it would create."""
    from nornir_coopchain.chain.deployment import DeploymentSpec

    with outcome(as_json):
        spec = DeploymentSpec.load(path or inventory / "deployment.yaml")
    policies = {name: policy.model_dump(mode="json") for name, policy in spec.policies().items()}
    if as_json:
        emit({"members": len(spec.members), "resource_sets": policies})
        return
    table = Table("resource set", "policy")
    for name, policy in policies.items():
        table.add_row(name, json.dumps(policy))
    out.print(table)


@app.command()
def members(
    inventory: InventoryOption = Path("inventory"),
    chain: ChainOption = None,
    contract: ContractOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the members of the deployed contract."""
    with outcome(as_json):
        settings = resolve_settings(inventory, chain=chain, contract=contract)
        with reader(settings) as coop:
            rows = coop.members()
    if as_json:
        emit({"contract": settings.contract, "members": [row.model_dump() for row in rows]})
        return
    table = Table("index", "operator", "account", "weight")
    for row in rows:
        table.add_row(str(row.index), row.operator_id, row.account, str(row.weight))
    out.print(table)
