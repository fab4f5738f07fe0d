"""``coopchain apply`` and ``audit``: push an approved change, and check its record."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from nornir_coopchain.cli._common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    ChainOption,
    ContractOption,
    DevAccountOption,
    InventoryOption,
    JsonOption,
    KeystoreOption,
    OperatorSession,
    PasswordOption,
    ProposalArgument,
    TemplatesOption,
    check_proposal,
    emit,
    err,
    host_progress,
    out,
    outcome,
    reader,
    resolve_settings,
    site,
    spinner,
    stopped_by_signals,
    tenant_patterns,
)
from nornir_coopchain.exceptions import ConfigError

if TYPE_CHECKING:
    from nornir_coopchain.gate import DeviceOutcome

__all__ = ["app"]

app = typer.Typer()


def _status(device: DeviceOutcome) -> str:
    if device.verified:
        return "verified"
    if device.rollback_error:
        return "rollback incomplete"
    if device.rolled_back:
        return "rolled back"
    return "error" if device.error else "failed"


def _detail(device: DeviceOutcome) -> str:
    if device.error:
        return device.error
    parts = [f"missing: {', '.join(device.missing)}"] if device.missing else []
    parts += [f"extra: {', '.join(device.extra)}"] if device.extra else []
    parts += [f"rollback: {device.rollback_error}"] if device.rollback_error else []
    return "; ".join(parts)


@app.command()
def apply(
    proposal_id: ProposalArgument,
    revert_in: Annotated[
        int,
        typer.Option(
            min=0, help="Commit-confirm: devices revert after N seconds unless verified (0: off)."
        ),
    ] = 300,
    wait: Annotated[
        float,
        typer.Option(min=0, help="First wait up to S seconds for the verdict (0: do not wait)."),
    ] = 0,
    take_over: Annotated[
        str | None,
        typer.Option(
            metavar="RUN_ID",
            help="Take the apply over from the run holding the claim on chain (the run ID "
            "its refusal names), when that run is gone for good with its state directory.",
        ),
    ] = None,
    inventory: InventoryOption = Path("inventory"),
    templates: TemplatesOption = Path("templates"),
    chain: ChainOption = None,
    contract: ContractOption = None,
    keystore: KeystoreOption = None,
    password: PasswordOption = None,
    dev_account: DevAccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Push an approved change inside its window, verify every device, record ONE verification.

    A declared emergency change (`propose --emergency`) is pushed before the vote. The run
    claims the change on chain first: another run of it (another state directory or
    machine) is refused, and the same command again resumes.

    Exit 1 if a device failed verification, 3 if the change is refused (nothing touched) or
    was recorded by another run, 4 if the chain is lost (the message names the devices
    pushed), 130 if interrupted by Ctrl-C (the message names the devices pushed and how to
    resume).
    """
    from nornir_coopchain.gate import apply_change, wait_for_verdict
    from nornir_coopchain.gate.push import ApplyInterrupted, resume_hint

    def say(line: str) -> None:
        if not as_json:
            err.print(line)

    with outcome(as_json):
        operator = OperatorSession(
            inventory,
            chain=chain,
            contract=contract,
            keystore=keystore,
            password=password,
            dev_account=dev_account,
        )
        with operator as session, site(inventory, operator.settings) as nr:
            if wait:  # waits for a node that has not seen the proposal yet, too
                with spinner(f"waiting for the verdict on #{proposal_id}", not as_json):
                    wait_for_verdict(session, proposal_id, timeout=wait, progress=say)
            check_proposal(session.coop, proposal_id)
            try:
                with stopped_by_signals(), host_progress(nr, not as_json) as tracked:
                    result = apply_change(
                        tracked,
                        session,
                        proposal_id,
                        templates=templates,
                        revert_in=revert_in or None,
                        take_over=take_over,
                    )
            except ApplyInterrupted as stop:
                _interrupted(str(stop), stop.pushed, as_json)
            except KeyboardInterrupt:
                message = f"interrupted before any device was pushed. {resume_hint(proposal_id)}"
                _interrupted(message, (), as_json)
    if as_json:
        emit(
            {
                **result.model_dump(mode="json"),
                "state": result.state.name,
                "devices": [
                    {**device.model_dump(mode="json"), "status": _status(device)}
                    for device in result.devices
                ],
            }
        )
    else:
        table = Table("host", "status", "detail", title=f"apply #{proposal_id}")
        for device in result.devices:
            colour = "green" if device.verified else "red"
            status = f"[{colour}]{_status(device)}[/{colour}]"
            table.add_row(device.host, status, escape(_detail(device)))
        out.print(table)
        resumed = " (resumed: already recorded)" if result.resumed else ""
        state = result.state.name
        if result.emergency and result.state.name == "Active":
            state = "before the vote ([yellow]emergency: to be ratified by the co-owners[/yellow])"
        out.print(
            f"{result.devices_ok} verified, {result.devices_failed} failed; recorded "
            f"{state}{resumed}, tx {result.record_tx}"
        )
    if result.devices_failed:
        raise typer.Exit(EXIT_FAILED)


def _interrupted(message: str, pushed: tuple[str, ...], as_json: bool) -> None:
    """Say what an interrupted apply did and how to resume; exit 130 (as Ctrl-C does)."""
    err.print(f"[red]Interrupted[/red]: {escape(message)}", soft_wrap=True)
    if as_json:
        error = {"type": "Interrupted", "message": message, "exit_code": EXIT_INTERRUPTED}
        emit({"error": {**error, "pushed": list(pushed)}})
    raise typer.Exit(EXIT_INTERRUPTED)


@app.command()
def audit(
    proposal_id: ProposalArgument,
    host: Annotated[
        list[str] | None, typer.Option("--host", help="Audit only this host (repeatable).")
    ] = None,
    proof: Annotated[
        list[Path] | None,
        typer.Option(
            "--proof",
            help="Audit one device from its proof file alone (proofs/<host>.json handed over by "
            "the proposer), without the journal or any other device's evidence. Repeatable.",
        ),
    ] = None,
    inventory: InventoryOption = Path("inventory"),
    chain: ChainOption = None,
    contract: ContractOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check a change's record: manifest, evidence root and each device, from chain and journal.

    Exit 1 if the audit fails; a proposal never applied is reported as such (result
    "not applied", exit 0).
    """
    from nornir_coopchain.gate import audit_change

    if proof:
        _audit_proofs(proposal_id, proof, inventory, chain, contract, as_json)
        return
    hosts = tuple(host or ())
    with outcome(as_json):
        settings = resolve_settings(inventory, chain=chain, contract=contract)
        with reader(settings) as coop:
            check_proposal(coop, proposal_id)
            patterns = tenant_patterns(inventory)
            report = audit_change(
                coop, proposal_id, settings.journal_dir(), hosts=hosts, tenant_patterns=patterns
            )
        unknown = sorted(set(hosts) - {device.host for device in report.devices})
        if unknown and report.content_ok:
            raise ConfigError(
                f"not in proposal {proposal_id}: {', '.join(unknown)}", field="--host"
            )
    if as_json:
        emit(
            {
                **report.model_dump(mode="json"),
                "state": report.state.name,
                "result": report.result,
                "devices": [
                    {**device.model_dump(mode="json"), "passed": device.passed}
                    for device in report.devices
                ],
            }
        )
    else:
        table = Table("host", "in manifest", "evidence proven", "compliant", "result")
        for device in report.devices:
            marks = [
                "yes" if check else "[red]no[/red]"
                for check in (device.in_manifest, device.evidence_proven, device.compliant)
            ]
            verdict = "[green]pass[/green]" if device.passed else "[red]fail[/red]"
            table.add_row(device.host, *marks, verdict)
        if report.devices:
            out.print(table)
        for problem in report.problems:
            out.print(f"[red]problem[/red]: {escape(problem)}")
        if not report.recorded:
            out.print(
                f"#{proposal_id} was never applied ({report.state.name}): no verification is "
                "recorded, so there is nothing to audit; its content matches its on-chain hash"
            )
        else:
            out.print(f"audit of #{proposal_id} ({report.state.name}): {report.result}")
    if report.result == "fail":
        raise typer.Exit(EXIT_FAILED)


def _audit_proofs(
    proposal_id: int,
    files: list[Path],
    inventory: Path,
    chain: str | None,
    contract: str | None,
    as_json: bool,
) -> None:
    """Tenant-private audit: each proof file against the on-chain evidence root."""
    from pydantic import ValidationError

    from nornir_coopchain.gate import audit_proof
    from nornir_coopchain.model.content import EvidenceProof

    with outcome(as_json):
        proofs = []
        for file in files:
            try:
                proofs.append(EvidenceProof.from_bytes(file.read_bytes()))
            except OSError as exc:
                raise ConfigError(f"cannot read: {exc.strerror}", source=str(file)) from exc
            except ValidationError as exc:
                raise ConfigError(exc.errors()[0]["msg"], source=str(file)) from exc
        settings = resolve_settings(inventory, chain=chain, contract=contract)
        with reader(settings) as coop:
            check_proposal(coop, proposal_id)
            audits = [audit_proof(coop, proposal_id, item) for item in proofs]
    passed = all(device.passed for device in audits)
    if as_json:
        emit(
            {
                "proposal_id": proposal_id,
                "result": "pass" if passed else "fail",
                "devices": [
                    {**device.model_dump(mode="json"), "passed": device.passed} for device in audits
                ],
            }
        )
    else:
        for device in audits:
            verdict = "[green]pass[/green]" if device.passed else "[red]fail[/red]"
            out.print(f"{device.host}: {verdict} (proof against the on-chain evidence root)")
    if not passed:
        raise typer.Exit(EXIT_FAILED)
