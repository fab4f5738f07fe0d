"""The `coopchain` command.

Exit codes: 0 success; 1 the outcome was a failure (e.g. an audit that fails); 2 bad input
(a file, field or host is wrong); 3 refused by the contract; 4 the chain could not be used.
Only :class:`~nornir_coopchain.exceptions.CoopchainError` is caught; anything else is a bug
and shows its traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from nornir_coopchain import __version__
from nornir_coopchain.exceptions import ConfigError, ContractError, CoopchainError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from nornir_coopchain.chain.client import ChainClient

__all__ = ["EXIT_BAD_INPUT", "EXIT_CHAIN", "EXIT_FAILED", "EXIT_REFUSED", "app"]

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3
EXIT_CHAIN = 4

# Nornir logs every failed task with its traceback; the CLI reports failures itself.
logging.getLogger("nornir").addHandler(logging.NullHandler())
logging.getLogger("nornir").propagate = False

app = typer.Typer(
    help="Co-owner approval on a blockchain for changes to shared network equipment.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
chain_app = typer.Typer(help="Deploy and inspect the CoopChain contract.", no_args_is_help=True)
app.add_typer(chain_app, name="chain")

console = Console()
errors = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object for machines.")]
UrlOption = Annotated[
    str, typer.Option("--chain", help="Chain URL: embedded://, http(s)://… or ws(s)://…")
]


@contextmanager
def _outcome() -> Iterator[None]:
    """Turn our errors into a red one-line message and an exit code by outcome."""
    try:
        yield
    except CoopchainError as exc:
        errors.print(f"[red]{type(exc).__name__}[/red]: {exc}", highlight=False)
        if isinstance(exc, ConfigError):
            raise typer.Exit(EXIT_BAD_INPUT) from exc
        if isinstance(exc, ContractError):
            raise typer.Exit(EXIT_REFUSED) from exc
        raise typer.Exit(EXIT_CHAIN) from exc


def _progress(enabled: bool) -> Callable[[str], None]:
    if not enabled:
        return lambda _line: None
    return lambda line: console.print(f"[cyan]•[/cyan] {line}", highlight=False)


@app.command()
def version() -> None:
    """Print the version."""
    console.print(__version__)


@app.command()
def demo(
    as_json: JsonOption = False,
    url: UrlOption = "embedded://",
    inventory: Annotated[Path, typer.Option(help="Sample inventory directory.")] = Path(
        "inventory"
    ),
    templates: Annotated[Path, typer.Option(help="Templates directory.")] = Path("templates"),
) -> None:
    """Three operators govern changes to a shared tower site (embedded chain, SIMULATED devices)."""
    from nornir_coopchain.demo import run_demo

    with _outcome():
        report = run_demo(
            inventory=inventory, templates=templates, url=url, progress=_progress(not as_json)
        )
    if as_json:
        print(report.model_dump_json())
    else:
        table = Table(title="coopchain demo", show_header=False)
        for key, value in report.model_dump(exclude={"votes", "rejected_proposal"}).items():
            table.add_row(key, str(value))
        rejected = report.rejected_proposal
        table.add_row(
            "rejected_proposal",
            f"#{rejected.proposal_id} {rejected.verdict}, devices touched: "
            f"{rejected.devices_touched}",
        )
        console.print(table)
    if report.audit != "pass" or report.rejected_proposal.devices_touched:
        raise typer.Exit(EXIT_FAILED)


@chain_app.command("check-deployment")
def check_deployment(
    path: Annotated[Path, typer.Argument(help="Deployment YAML file.")],
    as_json: JsonOption = False,
) -> None:
    """Validate a deployment file and show the on-chain policies it would create."""
    from nornir_coopchain.chain.deployment import DeploymentSpec

    with _outcome():
        spec = DeploymentSpec.load(path)
    policies = {name: policy.model_dump(mode="json") for name, policy in spec.policies().items()}
    if as_json:
        print(json.dumps({"members": len(spec.members), "resource_sets": policies}))
        return
    table = Table(title=str(path))
    table.add_column("resource set")
    table.add_column("policy")
    for name, policy in policies.items():
        table.add_row(name, json.dumps(policy))
    console.print(table)


KeystoreOption = Annotated[
    Path | None, typer.Option("--keystore", help="Encrypted keystore V3 file of the sender.")
]
PasswordOption = Annotated[
    str, typer.Option("--password", help="Keystore password source: env:NAME, file:PATH, prompt.")
]
DevAccountOption = Annotated[
    int | None,
    typer.Option(
        "--dev-account",
        help="DEV CHAINS ONLY: use the embedded chain's or anvil's publicly known key N.",
    ),
]
ContractOption = Annotated[str, typer.Option("--contract", help="Address of the contract.")]


def _sender(
    client: ChainClient, keystore: Path | None, password: str, dev_account: int | None
) -> LocalAccount:
    from nornir_coopchain.chain.accounts import PasswordSource, dev_accounts, load_keystore

    if keystore is not None and dev_account is not None:
        raise ConfigError("give either --keystore or --dev-account, not both")
    if keystore is not None:
        return load_keystore(keystore, PasswordSource.parse(password))
    if dev_account is not None:
        return dev_accounts(client, dev_account + 1)[dev_account]
    raise ConfigError("a sender is needed: --keystore FILE (or --dev-account N on a dev chain)")


@chain_app.command("deploy")
def chain_deploy(
    path: Annotated[Path, typer.Argument(help="Deployment YAML file.")],
    url: UrlOption = "embedded://",
    keystore: KeystoreOption = None,
    password: PasswordOption = "prompt",
    dev_account: DevAccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deploy the contract with the members and resource sets of a deployment file."""
    from nornir_coopchain.chain.client import ChainClient
    from nornir_coopchain.chain.contract import CoopChain
    from nornir_coopchain.chain.deployment import DeploymentSpec

    with _outcome():
        spec = DeploymentSpec.load(path)
        with ChainClient.connect(url) as client:
            coop = CoopChain.deploy(client, _sender(client, keystore, password, dev_account), spec)
            members = coop.members()
            chain_id = client.chain_id
    if as_json:
        print(json.dumps({"contract": coop.address, "chain_id": chain_id, "members": len(members)}))
    else:
        console.print(f"deployed CoopChain at [bold]{coop.address}[/bold] on chain {chain_id}")


@chain_app.command("members")
def chain_members(contract: ContractOption, url: UrlOption, as_json: JsonOption = False) -> None:
    """List the members of a deployed contract."""
    from nornir_coopchain.chain.client import ChainClient
    from nornir_coopchain.chain.contract import CoopChain

    with _outcome(), ChainClient.connect(url) as client:
        members = CoopChain(client, contract).members()
    if as_json:
        print(json.dumps([member.model_dump() for member in members]))
        return
    table = Table("index", "operator", "account", "weight")
    for member in members:
        table.add_row(str(member.index), member.operator_id, member.account, str(member.weight))
    console.print(table)


@chain_app.command("status")
def chain_status(
    proposal_id: Annotated[int, typer.Argument(help="Proposal number.")],
    contract: ContractOption,
    url: UrlOption,
    as_json: JsonOption = False,
) -> None:
    """Show a proposal's state and tally."""
    from nornir_coopchain.chain.client import ChainClient
    from nornir_coopchain.chain.contract import CoopChain

    with _outcome(), ChainClient.connect(url) as client:
        info = CoopChain(client, contract).proposal(proposal_id)
    if as_json:
        print(info.model_dump_json())
        return
    table = Table(title=f"proposal #{proposal_id}", show_header=False)
    for key, value in info.model_dump(mode="json").items():
        table.add_row(key, str(value))
    console.print(table)
