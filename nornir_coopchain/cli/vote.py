"""``coopchain vote``, ``sign-ballot``, ``submit-ballots`` and ``watch``."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

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
    err,
    out,
    outcome,
    spinner,
    stopped_by_signals,
    tally,
    tally_text,
    tenant_patterns,
)
from nornir_coopchain.exceptions import ChainConnectionError, ConfigError
from nornir_coopchain.notify import Notice, Notifier, deliver

if TYPE_CHECKING:
    from nornir_coopchain.chain.contract import CoopChain
    from nornir_coopchain.chain.models import SignedBallot
    from nornir_coopchain.model.rules import VoteType
    from nornir_coopchain.session import CoopchainSession
    from nornir_coopchain.settings import CoopchainSettings
    from nornir_coopchain.voter.watch import VoterAction

__all__ = ["app"]

app = typer.Typer()


class Support(str, Enum):
    """A vote's direction on the command line."""

    approve = "approve"
    reject = "reject"
    abstain = "abstain"

    @property
    def vote(self) -> VoteType:
        """The contract's vote type."""
        from nornir_coopchain.model.rules import VoteType

        return VoteType[self.value.capitalize()]


class WebhookStyle(str, Enum):
    """A webhook's payload form (see :mod:`nornir_coopchain.notify`)."""

    generic = "generic"
    slack = "slack"
    teams = "teams"


SupportArgument = Annotated[Support, typer.Argument(help="approve, reject or abstain.")]


def _tallies(coop: CoopChain, proposal_ids: set[int], as_json: bool) -> list[dict[str, Any]]:
    """Each proposal's state and tally now (printed unless ``as_json``)."""
    infos = [coop.proposal(pid) for pid in sorted(proposal_ids)]
    if not as_json:
        for info in infos:
            out.print(f"#{info.proposal_id}: {info.state.name}, {tally_text(info)}")
    return [
        {"proposal_id": info.proposal_id, "state": info.state.name, "tally": tally(info)}
        for info in infos
    ]


@app.command()
def vote(
    proposal_id: ProposalArgument,
    support: SupportArgument,
    inventory: InventoryOption = Path("inventory"),
    chain: ChainOption = None,
    contract: ContractOption = None,
    keystore: KeystoreOption = None,
    password: PasswordOption = None,
    dev_account: DevAccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Vote on a proposal as this operator."""
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
        _check_can_vote(session, proposal_id)
        with spinner(f"voting {support.value} on #{proposal_id}", not as_json):
            cast = session.coop.cast_vote(session.account, proposal_id, support.vote)
        if not as_json:
            out.print(f"{session.operator} voted {support.value}, tx {cast.tx_hash}")
        tallies = _tallies(session.coop, {proposal_id}, as_json)
    if as_json:
        emit({"vote": support.value, "tx_hash": cast.tx_hash, **tallies[0]})


def _check_can_vote(session: CoopchainSession, proposal_id: int) -> None:
    """Refuse a vote the contract would not count, saying why."""
    from nornir_coopchain.model.rules import ProposalState

    coop, address = session.coop, session.account.address
    member = next((m for m in coop.members() if m.account == address and m.weight), None)
    if member is None:
        raise ConfigError(
            f"{address} is not a member of contract {coop.address}", field="keystore/dev_account"
        )
    check_proposal(coop, proposal_id)
    info = coop.proposal(proposal_id)
    problem = None
    if info.state is not ProposalState.Active:
        problem = f"is {info.state.name}, no longer open for votes"
    elif not info.electorate_mask >> member.index & 1:
        problem = f"does not count {member.operator_id} among its voters"
    elif info.voted_mask >> member.index & 1:
        problem = f"already has {member.operator_id}'s vote"
    if problem is not None:
        raise ConfigError(f"proposal {proposal_id} {problem}", field="proposal_id")


@app.command("sign-ballot")
def sign_ballot(
    proposal_id: ProposalArgument,
    support: SupportArgument,
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the signed ballot.")],
    inventory: InventoryOption = Path("inventory"),
    chain: ChainOption = None,
    contract: ContractOption = None,
    keystore: KeystoreOption = None,
    password: PasswordOption = None,
    dev_account: DevAccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sign a ballot off chain (EIP-712) for anyone to submit later with submit-ballots."""
    with outcome(as_json):
        with OperatorSession(
            inventory,
            chain=chain,
            contract=contract,
            keystore=keystore,
            password=password,
            dev_account=dev_account,
        ) as session:
            _check_can_vote(session, proposal_id)
            ballot = session.coop.sign_ballot(session.account, proposal_id, support.vote)
        try:
            out_file.write_text(ballot.model_dump_json(indent=2) + "\n")
        except OSError as exc:
            raise ConfigError(f"cannot write: {exc.strerror}", source=str(out_file)) from exc
    if as_json:
        emit(
            {
                "out": str(out_file),
                "proposal_id": proposal_id,
                "voter": ballot.voter,
                "vote": support.value,
            }
        )
        return
    out.print(f"ballot {support.value} on #{proposal_id} by {ballot.voter} written to {out_file}")


def _load_ballot(path: Path) -> SignedBallot:
    from nornir_coopchain.chain.models import SignedBallot

    try:
        return SignedBallot.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=str(path)) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise ConfigError(first["msg"], source=str(path), field=field) from exc


def _check_signature(coop: CoopChain, path: Path, ballot: SignedBallot) -> None:
    from eth_keys.exceptions import BadSignature

    from nornir_coopchain.chain.eip712 import recover_ballot_signer
    from nornir_coopchain.chain.models import BallotMessage

    signature = bytes.fromhex(ballot.signature[2:])
    message = BallotMessage(
        proposal_id=ballot.proposal_id, voter=ballot.voter, support=ballot.support
    )
    try:
        if len(signature) != 65:
            raise ValueError(f"{len(signature)} bytes, not 65")
        found = recover_ballot_signer(coop.client.chain_id, coop.address, message, signature)
    except (ValueError, BadSignature) as exc:
        raise ConfigError(
            f"not a valid signature: {exc}", source=str(path), field="signature"
        ) from exc
    if found != ballot.voter:
        raise ConfigError(
            f"signed by {found}, not by its voter {ballot.voter} (altered, or for another "
            f"chain or contract than {coop.address} on chain {coop.client.chain_id})",
            source=str(path),
            field="signature",
        )


@app.command("submit-ballots")
def submit_ballots(
    files: Annotated[list[Path], typer.Argument(help="Signed ballot JSON files.")],
    inventory: InventoryOption = Path("inventory"),
    chain: ChainOption = None,
    contract: ContractOption = None,
    keystore: KeystoreOption = None,
    password: PasswordOption = None,
    dev_account: DevAccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check signed ballots off chain, then submit them all in ONE transaction (any sender)."""
    with outcome(as_json):
        ballots = {path: _load_ballot(path) for path in files}
        seen: dict[tuple[int, str], Path] = {}
        for path, ballot in ballots.items():
            first = seen.setdefault((ballot.proposal_id, ballot.voter), path)
            if first != path:
                raise ConfigError(
                    f"a second ballot of {ballot.voter} on #{ballot.proposal_id} (see {first})",
                    source=str(path),
                )
        with OperatorSession(
            inventory,
            chain=chain,
            contract=contract,
            keystore=keystore,
            password=password,
            dev_account=dev_account,
        ) as session:
            for path, ballot in ballots.items():
                check_proposal(session.coop, ballot.proposal_id)
                _check_signature(session.coop, path, ballot)
            with spinner(f"submitting {len(ballots)} ballot(s)", not as_json):
                cast = session.coop.cast_votes(session.account, ballots.values())
            if not as_json:
                out.print(f"{len(ballots)} ballot(s) submitted in one transaction: {cast.tx_hash}")
            pids = {ballot.proposal_id for ballot in ballots.values()}
            tallies = _tallies(session.coop, pids, as_json)
    if as_json:
        emit({"tx_hash": cast.tx_hash, "ballots": len(ballots), "proposals": tallies})


def _action_json(action: VoterAction) -> dict[str, Any]:
    vote = action.vote.name if action.vote is not None else None
    return {**action.model_dump(mode="json"), "vote": vote}


def _action_line(action: VoterAction) -> str:
    if action.vote is not None:
        pid, tx = action.proposal_id, action.tx_hash
        return f"#{pid}: voted {action.vote.name} (tx {tx}): {action.reason}"
    if action.needs_human:
        return f"#{action.proposal_id}: left to a human (your vote is needed): {action.reason}"
    return f"#{action.proposal_id}: nothing to do: {action.reason}"


def _notifiers(
    webhooks: list[str], style: WebhookStyle, mail_to: list[str], smtp: str | None, sender: str
) -> list[Notifier]:
    from nornir_coopchain.notify import EmailNotifier, WebhookNotifier

    notifiers: list[Notifier] = [WebhookNotifier(url, style.value) for url in webhooks]
    if mail_to:
        if smtp is None:
            raise ConfigError("--notify-email needs --smtp HOST:PORT", field="--smtp")
        host, _, port = smtp.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"{smtp!r} is not HOST:PORT", field="--smtp")
        notifiers.append(EmailNotifier(host, int(port), sender=sender, to=mail_to))
    return notifiers


def _when_reachable(
    settings: CoopchainSettings, outage: Callable[[str, float], None], timeout: float | None
) -> None:
    """Wait until the chain answers and the key's member record reads, pausing longer each
    time (from 0.5 s up to a minute); give up after ``timeout`` seconds (never if None).

    Raises:
        ChainConnectionError: still unreachable at the timeout.
    """
    from nornir_coopchain.session import open_session

    give_up = None if timeout is None else time.monotonic() + timeout
    pause = 0.5
    while True:
        try:
            open_session(settings).member  # noqa: B018 - reads the member record
            return
        except ChainConnectionError as exc:
            if give_up is not None and time.monotonic() + pause >= give_up:
                raise
            outage(str(exc), pause)
            time.sleep(pause)
            pause = min(pause * 2, 60.0)


@app.command()
def watch(
    policy: Annotated[Path, typer.Option("--policy", help="This operator's voting policy YAML.")],
    interval: Annotated[float, typer.Option(min=0, help="Seconds between polls.")] = 2.0,
    max_polls: Annotated[
        int | None, typer.Option(min=1, help="Stop after N polls (default: run until Ctrl-C).")
    ] = None,
    timeout: Annotated[float | None, typer.Option(min=0, help="Stop after S seconds.")] = None,
    json_lines: Annotated[
        bool,
        typer.Option(
            "--json-lines", help="Print one JSON object per line as things happen (for logs)."
        ),
    ] = False,
    webhook: Annotated[
        list[str] | None,
        typer.Option("--notify-webhook", help="POST each notice as JSON to this URL (repeatable)."),
    ] = None,
    webhook_format: Annotated[
        WebhookStyle, typer.Option("--webhook-format", help="The webhooks' payload form.")
    ] = WebhookStyle.generic,
    mail_to: Annotated[
        list[str] | None,
        typer.Option("--notify-email", help="Mail each notice to this address (repeatable)."),
    ] = None,
    smtp: Annotated[
        str | None, typer.Option("--smtp", help="SMTP server HOST:PORT for --notify-email.")
    ] = None,
    mail_from: Annotated[
        str, typer.Option("--mail-from", help="From address of the notices.")
    ] = "coopchain@localhost",
    inventory: InventoryOption = Path("inventory"),
    chain: ChainOption = None,
    contract: ContractOption = None,
    keystore: KeystoreOption = None,
    password: PasswordOption = None,
    dev_account: DevAccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Vote on each new proposal by a policy, or leave it to a human and say why.

    The event cursor persists under the state directory: a restart neither misses nor
    repeats a proposal. A chain not up yet (unless --max-polls), gone away or failing a poll
    is retried with a growing pause (up to a minute). Notices (your vote is needed, verdict,
    recorded outcome, failed verification, unratified emergency change) go to
    --notify-webhook and --notify-email.
    """
    from nornir_coopchain.voter.policy import VoterPolicy
    from nornir_coopchain.voter.watch import PolicyVoter

    actions: list[VoterAction] = []
    quiet = as_json or json_lines

    def line(payload: dict[str, Any]) -> None:
        if json_lines:
            emit(payload)

    def report(action: VoterAction) -> None:
        actions.append(action)
        line({"event": "action", **_action_json(action)})
        if not quiet:
            out.print(_action_line(action))

    def notice(item: Notice) -> None:
        line({"event": "notice", **item.model_dump(mode="json")})
        if not quiet:
            out.print(f"notice {item.kind}: {item.text}")
        deliver(notifiers, item)

    def outage(error: str, pause: float) -> None:
        line({"event": "outage", "error": error, "retry_in": pause})
        if not quiet:
            err.print(f"[yellow]chain unreachable[/yellow] ({error}); retrying in {pause:g} s")

    interrupted, operator = False, None
    with outcome(as_json):
        if as_json and json_lines:
            raise ConfigError("give either --json or --json-lines", field="--json-lines")
        notifiers = _notifiers(webhook or [], webhook_format, mail_to or [], smtp, mail_from)
        rules = VoterPolicy.load(policy)
        signing = OperatorSession(
            inventory,
            chain=chain,
            contract=contract,
            keystore=keystore,
            password=password,
            dev_account=dev_account,
        )
        settings = signing.settings
        try:
            with stopped_by_signals():  # Ctrl-C or kill ends the watch with its summary
                if max_polls is None:  # a service: wait for a chain that is not up yet
                    _when_reachable(settings, outage, timeout)
                with signing as session:
                    operator = session.operator
                    if rules.operator != operator:
                        raise ConfigError(
                            f"the policy is {rules.operator}'s, but the key is {operator}'s",
                            source=str(policy),
                            field="operator",
                        )
                    address = session.coop.address
                    cursor = settings.state_dir / "watch" / f"{address}-{operator}.json"
                    patterns = tenant_patterns(inventory)  # to recompute the affected tenants
                    voter = PolicyVoter(
                        session,
                        rules,
                        state_file=cursor,
                        tenant_patterns=patterns,
                        notify=notice,
                    )
                    if not as_json:
                        err.print(f"watching {address} as {operator} (Ctrl-C stops)")
                    voter.watch(
                        interval=interval,
                        max_polls=max_polls,
                        timeout=timeout,
                        on_action=report,
                        on_outage=outage,
                    )
        except KeyboardInterrupt:
            interrupted = True
    if as_json:
        emit(
            {
                "operator": operator,
                "contract": settings.contract,
                "interrupted": interrupted,
                "actions": [_action_json(action) for action in actions],
            }
        )
    elif json_lines:
        emit({"event": "stopped", "interrupted": interrupted, "actions": len(actions)})
    elif not actions:
        out.print("no new proposals")
