"""``coopchain member add|execute``: join the consortium through governance."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
import yaml

from nornir_coopchain.cli._common import (
    ChainOption,
    ContractOption,
    DevAccountOption,
    InventoryOption,
    JsonOption,
    KeystoreOption,
    OperatorSession,
    PasswordOption,
    ProposalArgument,
    check_proposal,
    emit,
    out,
    outcome,
    spinner,
)
from nornir_coopchain.exceptions import ConfigError

__all__ = ["member_app", "record_member"]

member_app = typer.Typer(
    help="Membership through governance: propose a new member, execute the approved change.",
    no_args_is_help=True,
)

_ITEM = re.compile(r"^(?P<indent> +)- ")


def _appended(lines: list[str], entry: str) -> str | None:
    """The text with ``- entry`` after the last item of the top-level ``members:`` list."""
    if "members:" not in lines:
        return None
    start = lines.index("members:")
    last, indent = None, None
    for index in range(start + 1, len(lines)):
        line = lines[index]
        if line.strip() and not line.startswith((" ", "#")):
            break  # the next top-level key
        item = _ITEM.match(line)
        if item is not None:
            indent = indent or item["indent"]
        if line.strip() and not line.lstrip().startswith("#"):
            last = index
    if last is None or indent is None:
        return None
    return "\n".join([*lines[: last + 1], f"{indent}- {entry}", *lines[last + 1 :]]) + "\n"


def _members(text: str) -> object:
    try:
        return yaml.safe_load(text)["members"]
    except (yaml.YAMLError, TypeError, KeyError):
        return None


def record_member(path: Path, operator: str, address: str, weight: int) -> bool:
    """Add a member to a deployment file's ``members:`` list, keeping its comments.

    Returns:
        False if the operator is listed already (nothing written).

    Raises:
        ConfigError: the file cannot be read, written or validated afterwards.
    """
    from nornir_coopchain.chain.deployment import DeploymentSpec

    spec = DeploymentSpec.load(path)
    if any(member.operator == operator for member in spec.members):
        return False
    text = path.read_text()
    data = yaml.safe_load(text)
    wanted = [*data["members"], {"operator": operator, "address": address, "weight": weight}]
    edited = _appended(
        text.splitlines(), f'{{operator: {operator}, address: "{address}", weight: {weight}}}'
    )
    if edited is not None and _members(edited) == wanted:
        text = edited
    else:  # not a block list of the sample's form: rewrite as plain YAML (comments lost)
        data["members"] = wanted
        text = "---\n" + yaml.safe_dump(data, sort_keys=False)
    try:
        path.write_text(text)
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror}", source=str(path)) from exc
    DeploymentSpec.load(path)
    return True


@member_app.command("add")
def add(
    address: Annotated[str, typer.Argument(help="The new member's account (0x…).")],
    operator: Annotated[str, typer.Option("--operator", help="Its operator ID, e.g. OPERATOR-D.")],
    weight: Annotated[int, typer.Option(min=1, max=65535, help="Its voting weight.")] = 1,
    inventory: InventoryOption = Path("inventory"),
    chain: ChainOption = None,
    contract: ContractOption = None,
    keystore: KeystoreOption = None,
    password: PasswordOption = None,
    dev_account: DevAccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """As a member: propose on the governance set that ADDRESS joins as OPERATOR.

    The other members approve it (`coopchain vote N approve`); then anyone runs
    `coopchain member execute N`.
    """
    from nornir_coopchain.gate.members import propose_member

    with outcome(as_json):
        if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
            raise ConfigError(f"{address!r} is not an account address", field="address")
        with OperatorSession(
            inventory,
            chain=chain,
            contract=contract,
            keystore=keystore,
            password=password,
            dev_account=dev_account,
        ) as session:
            with spinner(f"proposing {operator} as a member", not as_json):
                created = propose_member(session, address, operator, weight)
            proposer = session.operator
    pid = created.proposal_id
    if as_json:
        emit({"proposal_id": pid, "tx_hash": created.tx_hash, "operator": operator})
        return
    out.print(f"{proposer} proposed governance [bold]#{pid}[/bold]: {operator} joins as {address}")
    out.print(f"the other members approve: coopchain vote {pid} approve; then:")
    out.print(f"coopchain member execute {pid}")


@member_app.command("execute")
def execute(
    proposal_id: ProposalArgument,
    deployment: Annotated[
        Path | None,
        typer.Option(help="Deployment file to add the new members to (default: the inventory's)."),
    ] = None,
    inventory: InventoryOption = Path("inventory"),
    chain: ChainOption = None,
    contract: ContractOption = None,
    keystore: KeystoreOption = None,
    password: PasswordOption = None,
    dev_account: DevAccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Execute an approved governance proposal; members it adds go into the deployment file."""
    from nornir_coopchain.gate.members import execute_governance_change

    path = deployment or inventory / "deployment.yaml"
    with outcome(as_json):
        with OperatorSession(
            inventory,
            chain=chain,
            contract=contract,
            keystore=keystore,
            password=password,
            dev_account=dev_account,
        ) as session:
            check_proposal(session.coop, proposal_id)
            with spinner(f"executing governance #{proposal_id}", not as_json):
                added = execute_governance_change(session, proposal_id)
        written = [
            event.operator_id
            for event in added
            if record_member(path, event.operator_id, event.account, event.weight)
        ]
    if as_json:
        emit(
            {
                "proposal_id": proposal_id,
                "state": "Executed",
                "added": [event.model_dump(mode="json") for event in added],
                "deployment_updated": written,
            }
        )
        return
    out.print(f"executed governance [bold]#{proposal_id}[/bold]")
    for event in added:
        out.print(f"member {event.index}: {event.operator_id} {event.account}")
    if written:
        out.print(f"{path}: added {', '.join(written)}")
