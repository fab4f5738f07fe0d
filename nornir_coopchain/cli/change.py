"""``coopchain propose``, ``status`` and ``show``: a change from the inventory to the chain."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table

from nornir_coopchain.cli._common import (
    EXIT_FAILED,
    EXIT_REFUSED,
    ChainOption,
    ContractOption,
    DevAccountOption,
    InventoryOption,
    JsonOption,
    KeystoreOption,
    OperatorSession,
    PasswordOption,
    ProposalArgument,
    TemplateOption,
    TemplatesOption,
    check_proposal,
    emit,
    err,
    host_progress,
    iso,
    out,
    outcome,
    reader,
    resolve_settings,
    site,
    span,
    spinner,
    tally,
    tally_text,
    tenant_patterns,
)
from nornir_coopchain.exceptions import ConfigError

if TYPE_CHECKING:
    from nornir.core.task import Result, Task

    from nornir_coopchain.chain.contract import CoopChain
    from nornir_coopchain.chain.models import ProposalInfo
    from nornir_coopchain.model.content import ChangeWindow, DeviceChange, ProposalContent
    from nornir_coopchain.model.rules import ResourceSetPolicy
    from nornir_coopchain.settings import CoopchainSettings

__all__ = ["app"]

app = typer.Typer()


def _window(start: str | None, minutes: int, now: int) -> ChangeWindow:
    """The change window from ``--start`` (ISO 8601 or ``+MINUTES``) and ``--duration``."""
    from nornir_coopchain.model.content import ChangeWindow

    try:
        if start is None:
            begin = now
        elif start.startswith("+"):
            begin = now + int(start[1:]) * 60
        else:
            moment = datetime.fromisoformat(start.removesuffix("Z").removesuffix("z"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            begin = int(moment.timestamp())
    except ValueError as exc:
        raise ConfigError(
            f"{start!r} is neither ISO 8601 (e.g. 2030-01-31T22:00) nor +MINUTES", field="--start"
        ) from exc
    return ChangeWindow(start=begin, end=begin + minutes * 60)


def _window_json(window_start: int, window_end: int) -> dict[str, Any]:
    return {
        "start": window_start,
        "end": window_end,
        "start_utc": iso(window_start),
        "end_utc": iso(window_end),
    }


def _device_json(device: DeviceChange) -> dict[str, Any]:
    return device.model_dump(mode="json", exclude={"diff_hash"})


def _show_diffs(devices: tuple[DeviceChange, ...]) -> None:
    """Each device's diff; through a pager ($PAGER) when longer than a terminal's screen."""
    lines = sum(device.diff.count("\n") + 2 for device in devices)
    long = out.is_terminal and lines > out.size.height
    with out.pager(styles=True) if long else nullcontext():
        for device in devices:
            tenants = ", ".join(device.tenants) or "none"
            out.print(Rule(f"{device.host} ({device.platform}), tenants touched: {tenants}"))
            out.print(Syntax(device.diff, "diff", background_color="default"))


def _confirm(question: str) -> None:
    """Ask on the terminal; no answer (no terminal, stdin closed) is bad input (exit 2) and
    "no" is a refusal (exit 3); either way nothing was sent."""
    try:
        agreed = typer.confirm(question, err=True)
    except typer.Abort as exc:
        raise ConfigError(
            "no answer to the confirmation (no terminal, or stdin closed): nothing was "
            "proposed; add --yes to propose without asking",
            field="--yes",
        ) from exc
    if not agreed:
        err.print("declined: nothing was proposed")
        raise typer.Exit(EXIT_REFUSED)


@app.command()
def propose(
    title: Annotated[str, typer.Option("--title", help="One-line summary of the change.")],
    description: Annotated[str, typer.Option(help="Why, impact, rollback plan (free text).")] = "",
    start: Annotated[
        str | None,
        typer.Option(
            help="Window start: ISO 8601 (UTC unless it has an offset) or +MINUTES from now "
            "(default: now)."
        ),
    ] = None,
    duration: Annotated[int, typer.Option(min=1, help="Window length in minutes.")] = 60,
    resource_set: Annotated[
        str | None, typer.Option(help="Resource set (default: the inventory's resource_set).")
    ] = None,
    hosts: Annotated[
        str | None, typer.Option("--hosts", help="Only these hosts, comma separated.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Propose without asking.")] = False,
    emergency: Annotated[
        bool,
        typer.Option(
            "--emergency",
            help="Break-glass: declare an emergency change (emergency role only; the window "
            "must be open) that `coopchain apply` applies before the vote; the co-owners must "
            "ratify it by the voting deadline, or `status` shows it UNRATIFIED.",
        ),
    ] = False,
    inventory: InventoryOption = Path("inventory"),
    templates: TemplatesOption = Path("templates"),
    template: TemplateOption = None,
    chain: ChainOption = None,
    contract: ContractOption = None,
    keystore: KeystoreOption = None,
    password: PasswordOption = None,
    dev_account: DevAccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Render and dry-run the change, show the diffs, then sign ONE proposal for it."""
    from nornir_coopchain.gate import (
        build_content,
        declare_emergency_change,
        prepare_change,
        propose_change,
    )
    from nornir_coopchain.gate.propose import check_proposal_size

    with outcome(as_json):
        if as_json and not yes:
            raise ConfigError(
                "--json never asks for confirmation: add --yes to propose", field="--yes"
            )
        signing = OperatorSession(
            inventory,
            chain=chain,
            contract=contract,
            keystore=keystore,
            password=password,
            dev_account=dev_account,
        )
        names = [name.strip() for name in (hosts or "").split(",") if name.strip()]
        target = resource_set or signing.settings.resource_set
        if target is None:
            raise ConfigError("no resource set: pass --resource-set", field="resource_set")
        with signing as session, site(inventory, session.settings, names) as nr:
            with host_progress(nr, not as_json) as tracked:
                prepared = prepare_change(tracked, template=template, templates=templates)
            now = session.client.now()
            window = _window(start, duration, now)
            if emergency and window.start > now:
                raise ConfigError(
                    "an emergency change is applied at once: its window must already be open",
                    field="--start",
                )
            content = build_content(
                prepared,
                resource_set=target,
                title=title,
                description=description,
                window=window,
                created_at=now,
                templates=templates,
            )
            # Refused before the diffs: a change too big to propose is not shown either.
            check_proposal_size(session, content.chain_bytes(), content.device_count)
            if not as_json:
                _show_diffs(content.devices)
            if not yes:
                what = "Declare this EMERGENCY change" if emergency else "Propose this change"
                _confirm(f"{what} of {content.device_count} device(s) on {target}?")
            submit = declare_emergency_change if emergency else propose_change
            with spinner("signing and sending the proposal", not as_json):
                handle = submit(session, content, prepared.candidates)
                on_chain = session.coop.proposal(handle.proposal_id)
                ratify_by = on_chain.vote_end
            if handle.resumed:  # what the chain holds, not this run's fresh render
                content = handle.journal.content()
    if as_json:
        emit(
            {
                "proposal_id": handle.proposal_id,
                "tx_hash": handle.tx_hash,
                "resumed": handle.resumed,
                "content_hash": on_chain.content_hash,
                "resource_set": target,
                "window": _window_json(on_chain.window_start, on_chain.window_end),
                "devices": [_device_json(device) for device in content.devices],
                "emergency": emergency,
                **({"ratify_by": ratify_by, "ratify_by_utc": iso(ratify_by)} if emergency else {}),
            }
        )
        return
    again = " (already proposed: resumed from the journal)" if handle.resumed else ""
    pid = handle.proposal_id
    if emergency:
        out.print(f"declared EMERGENCY [bold]#{pid}[/bold]{again}, tx {handle.tx_hash}")
        out.print(f"apply it now with: coopchain apply {pid}")
        out.print(
            f"co-owners must ratify it by {iso(ratify_by)} (coopchain vote {pid} approve|reject);"
            " otherwise `coopchain status` shows it UNRATIFIED"
        )
        return
    out.print(f"proposed [bold]#{pid}[/bold]{again}, tx {handle.tx_hash}")
    out.print(f"co-owners vote with: coopchain vote {pid} approve|reject|abstain")


def _ratification(info: ProposalInfo) -> str | None:
    """An emergency change's ratification: pending, ratified or unratified (else None)."""
    if not info.emergency:
        return None
    if info.unratified:
        return "unratified"
    return "ratified" if info.ratified else "pending"


def _policies(coop: CoopChain, infos: list[ProposalInfo]) -> dict[str, ResourceSetPolicy]:
    """The current policy of each resource set the proposals belong to."""
    return {name: coop.resource_set(name) for name in sorted({i.resource_set for i in infos})}


def _current_label(policy: ResourceSetPolicy) -> str:
    from nornir_coopchain.model.rules import rule_label

    return rule_label(policy.rule, policy.threshold_bps, policy.quorum_bps)


def _rule_json(info: ProposalInfo, now: ResourceSetPolicy) -> dict[str, Any]:
    """The rule the proposal was created under (it decides the verdict) and its set's current
    one, which governance may have changed since."""
    current = _current_label(now)
    return {
        "rule": {
            "name": info.rule.name,
            "threshold_bps": info.threshold_bps,
            "quorum_bps": info.quorum_bps,
            "label": info.rule_label,
        },
        "current_rule": {
            "name": now.rule.name,
            "threshold_bps": now.threshold_bps,
            "quorum_bps": now.quorum_bps,
            "label": current,
        },
        "rule_changed": current != info.rule_label,
    }


def _rule_text(info: ProposalInfo, now: ResourceSetPolicy) -> str:
    """``decided under Supermajority 6667 bps``; with the set's rule now if it changed since."""
    current = _current_label(now)
    if current == info.rule_label:
        return f"decided under {info.rule_label}"
    return (
        f"decided under {info.rule_label} (the set's rule when proposed); "
        f"the set's rule is now {current}"
    )


def _summary(info: ProposalInfo, now: ResourceSetPolicy) -> dict[str, Any]:
    return {
        "proposal_id": info.proposal_id,
        "resource_set": info.resource_set,
        "state": info.state.name,
        "tally": tally(info),
        **_rule_json(info, now),
        "window": _window_json(info.window_start, info.window_end),
        "emergency": info.emergency,
        "ratification": _ratification(info),
        "unratified": info.unratified,
        "recorded": info.recorded,
    }


def _state_text(info: ProposalInfo) -> str:
    """The state, with the break-glass alarm (red) or ratification of an emergency change."""
    ratification = _ratification(info)
    if ratification is None:
        return info.state.name
    if ratification == "unratified":
        applied = "applied and recorded" if info.recorded else "declared"
        return (
            f"{info.state.name} [bold red]UNRATIFIED EMERGENCY[/bold red] "
            f"[red]({applied}, not ratified by the co-owners)[/red]"
        )
    if ratification == "ratified":
        return f"{info.state.name} (emergency, ratified)"
    recorded = ", applied and recorded" if info.recorded else ""
    deadline = iso(info.vote_end)
    return f"{info.state.name} [yellow](emergency{recorded}; ratify by {deadline})[/yellow]"


def _operators(coop: CoopChain, mask: int) -> list[str]:
    return [member.operator_id for member in coop.members() if mask >> member.index & 1]


@app.command()
def status(
    proposal_id: Annotated[
        int | None, typer.Argument(help="Proposal number (default: list all).", min=1)
    ] = None,
    inventory: InventoryOption = Path("inventory"),
    chain: ChainOption = None,
    contract: ContractOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every proposal's state and tally, or one proposal's electorate, votes and deadline
    (and every field its proposer declared that its content contradicts)."""
    from nornir_coopchain.gate.declared import check_proposal_declared

    with outcome(as_json):
        settings = resolve_settings(inventory, chain=chain, contract=contract)
        with reader(settings) as coop:
            if proposal_id is None:
                infos = [coop.proposal(pid) for pid in range(1, coop.proposal_count() + 1)]
                policies = _policies(coop, infos)
            else:
                check_proposal(coop, proposal_id)
                info = coop.proposal(proposal_id)
                policy = coop.resource_set(info.resource_set)
                patterns = tenant_patterns(inventory)
                declared = check_proposal_declared(coop, proposal_id, patterns)
                detail = {
                    **_summary(info, policy),
                    "electorate": _operators(coop, info.electorate_mask),
                    "voted": _operators(coop, info.voted_mask),
                    "veto": _operators(coop, info.veto_mask),
                    "deadline": info.vote_end,
                    "deadline_utc": iso(info.vote_end),
                    "devices": info.device_count,
                    "content_hash": info.content_hash,
                    "evidence_root": info.evidence_root,
                    "apply_run": info.apply_run,
                    "declared_mismatches": list(declared),
                }
    if proposal_id is None:
        if as_json:
            summaries = [_summary(i, policies[i.resource_set]) for i in infos]
            emit({"contract": settings.contract, "proposals": summaries})
            return
        table = Table("ID", "resource set", "state", "votes y/n/a", "rule", "window")
        changed = False
        for item in infos:
            units = tally(item)
            votes = f"{units['approve']}/{units['reject']}/{units['abstain']} of {units['total']}"
            window = span(item.window_start, item.window_end)
            state = _state_text(item)
            rule = item.rule_label
            if _current_label(policies[item.resource_set]) != rule:
                changed = True
                rule += " [yellow]*[/yellow]"
            table.add_row(str(item.proposal_id), item.resource_set, state, votes, rule, window)
        out.print(table)
        if changed:
            out.print(
                "[yellow]*[/yellow] the rule the proposal was created under (it decides the "
                "verdict); governance has changed the set's rule since: `coopchain status ID` "
                "shows both"
            )
        return
    if as_json:
        emit(detail)
        return
    table = Table(title=f"proposal #{proposal_id}", show_header=False)
    table.add_row("state", _state_text(info))
    table.add_row("resource set", info.resource_set)
    table.add_row("tally", tally_text(info))
    table.add_row("rule", _rule_text(info, policy))
    for key in ("electorate", "voted", "veto"):
        table.add_row(key, ", ".join(detail[key]) or "-")
    table.add_row("voting deadline", detail["deadline_utc"])
    table.add_row("window", span(info.window_start, info.window_end))
    table.add_row("devices", str(info.device_count))
    if int(info.apply_run, 16):
        table.add_row("apply claimed by", f"run {info.apply_run}")
    for mismatch in detail["declared_mismatches"]:
        table.add_row("[red]MISMATCH[/red]", f"[red]{escape(mismatch)}[/red]")
    out.print(table)


def _rerender(
    inventory: Path, templates: Path, content: ProposalContent, settings: CoopchainSettings
) -> dict[str, dict[str, Any]]:
    """Re-render each host of the proposal locally; does its hash match the approved one?"""
    from nornir_coopchain.gate.propose import describe, failed_hosts

    pinned = {device.host: device.template for device in content.devices}
    with site(inventory, settings, list(pinned)) as nr:
        results = nr.run(task=_render_pinned, pinned=pinned, path=templates, on_failed=True)
    failed = failed_hosts(results)
    checks: dict[str, dict[str, Any]] = {}
    for device in content.devices:
        if device.host in failed:
            checks[device.host] = {"match": False, "error": describe(failed[device.host])}
            continue
        rendered = results[device.host][0].result
        checks[device.host] = {
            "match": rendered.config_hash == device.candidate_hash,
            "candidate_hash": rendered.config_hash,
        }
    return checks


def _render_pinned(task: Task, pinned: dict[str, str | None], path: Path) -> Result:
    """Render the host's template as the proposal pinned it (the host's own if it pinned none)."""
    from nornir.core.task import Result

    from nornir_coopchain.plugins.tasks import coopchain_render

    rendered = task.run(coopchain_render, template=pinned[task.host.name], path=path).result
    return Result(host=task.host, result=rendered)


@app.command()
def show(
    proposal_id: ProposalArgument,
    rerender: Annotated[
        bool,
        typer.Option(
            "--rerender", help="Re-render locally and say per host if the candidate hash matches."
        ),
    ] = False,
    inventory: InventoryOption = Path("inventory"),
    templates: TemplatesOption = Path("templates"),
    chain: ChainOption = None,
    contract: ContractOption = None,
    as_json: JsonOption = False,
) -> None:
    """A proposal's content from the chain, checked against its hash and manifest root, and
    what its proposer declared against the content (exit 1 on a mismatch)."""
    from nornir_coopchain.gate import fetch_change
    from nornir_coopchain.gate.declared import check_declared

    with outcome(as_json):
        settings = resolve_settings(inventory, chain=chain, contract=contract)
        with reader(settings) as coop:
            check_proposal(coop, proposal_id)
            change = fetch_change(coop, proposal_id)
            declared = check_declared(coop, change, tenant_patterns(inventory))
            policy = coop.resource_set(change.proposal.resource_set)
        content, info = change.content, change.proposal
        checks = _rerender(inventory, templates, content, settings) if rerender else {}
    mismatch = bool(declared) or any(not check["match"] for check in checks.values())
    if as_json:
        devices = [
            {**_device_json(device), **({"rerender": checks[device.host]} if checks else {})}
            for device in content.devices
        ]
        emit(
            {
                "proposal_id": proposal_id,
                "state": info.state.name,
                "content_ok": True,
                "content_hash": info.content_hash,
                "manifest_root": info.manifest_root,
                "resource_set": content.resource_set,
                **_rule_json(info, policy),
                "title": content.title,
                "description": content.description,
                "window": _window_json(content.window.start, content.window.end),
                "templates_hash": content.templates_hash,
                "inventory_hash": content.inventory_hash,
                "declared_mismatches": list(declared),
                "devices": devices,
            }
        )
    else:
        out.print(f"[bold]#{proposal_id}[/bold] {content.title} ({info.state.name})")
        if content.description:
            out.print(content.description)
        out.print(
            f"{content.resource_set}, window {span(content.window.start, content.window.end)}; "
            "content matches its on-chain hash and manifest root"
        )
        out.print(_rule_text(info, policy))
        for item in declared:
            out.print(f"[red]MISMATCH[/red]: {escape(item)}")
        _show_diffs(content.devices)
        for host, check in checks.items():
            verdict = "matches" if check["match"] else check.get("error", "DIFFERS")
            out.print(f"re-render of {host}: {verdict}")
    if mismatch:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def cancel(
    proposal_id: ProposalArgument,
    inventory: InventoryOption = Path("inventory"),
    chain: ChainOption = None,
    contract: ContractOption = None,
    keystore: KeystoreOption = None,
    password: PasswordOption = None,
    dev_account: DevAccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Withdraw your own proposal while it is Active or Approved (not yet pushed).

    Exit 3 if it may not be canceled (not yours, already decided or pushed, an emergency).
    """
    from nornir_coopchain.gate import cancel_change

    with (
        outcome(as_json),
        OperatorSession(
            inventory,
            chain=chain,
            contract=contract,
            keystore=keystore,
            password=password,
            dev_account=dev_account,
        ) as session,
    ):
        check_proposal(session.coop, proposal_id)
        with spinner(f"canceling #{proposal_id}", not as_json):
            tx_hash = cancel_change(session, proposal_id)
    if as_json:
        emit({"proposal_id": proposal_id, "state": "Canceled", "tx_hash": tx_hash})
        return
    out.print(f"canceled [bold]#{proposal_id}[/bold], tx {tx_hash}")
