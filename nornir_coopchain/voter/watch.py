"""A member's long-running voter: notified by chain events, it votes by its policy.

It reads the contract's events from a persisted cursor (``eth_getLogs``, no server-side
filters), so a restarted voter neither misses nor repeats a proposal (a batch cut short is
read again; a proposal already voted on is not voted on twice). For each proposal it may vote
on, it fetches the content from the chain (checked against the stored hash), recomputes what
the proposer declared (affected mask, window, ...; see :mod:`nornir_coopchain.gate.declared`)
and rejects a proposal that lies, else evaluates the policy and votes, or leaves the vote to
a human and says so. It tells people (through ``notify``) when their vote is needed, of
verdicts, recorded outcomes, failed verifications and unratified emergency changes. When the
chain cannot be reached, :meth:`PolicyVoter.watch` retries with a growing pause instead of
stopping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from nornir_coopchain._files import write_atomic
from nornir_coopchain.chain.events import LogCursor
from nornir_coopchain.chain.models import (
    ChainEvent,
    EmergencyDeclared,
    ProposalCreated,
    VerdictReached,
    VerificationRecorded,
)
from nornir_coopchain.exceptions import (
    ChainError,
    ChangeRefused,
    ConfigError,
    ContractError,
)
from nornir_coopchain.gate.approved import fetch_change
from nornir_coopchain.gate.declared import TenantPatterns, check_declared
from nornir_coopchain.model.rules import ProposalState, VoteType
from nornir_coopchain.notify import Notice, NoticeKind
from nornir_coopchain.session import CoopchainSession
from nornir_coopchain.voter.policy import Decision, VoterPolicy, decide

__all__ = ["PolicyVoter", "VoterAction"]

logger = logging.getLogger(__name__)


class VoterAction(BaseModel):
    """What the voter did about one proposal."""

    model_config = ConfigDict(frozen=True)

    proposal_id: int
    vote: VoteType | None  # None: left to a human (or nothing to do)
    rule: str | None
    reason: str
    tx_hash: str | None = None
    needs_human: bool = False
    """The policy left the vote to a person (not: nothing to do)."""


class _OpenProposals(BaseModel):
    """Proposals whose vote has not ended, kept beside the event cursor across restarts."""

    vote_end: dict[int, int] = {}
    emergency: set[int] = set()

    @classmethod
    def load(cls, path: Path | None) -> _OpenProposals:
        if path is None or not path.is_file():
            return cls()
        try:
            return cls.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            raise ConfigError(f"corrupted: {exc.errors()[0]['msg']}", source=str(path)) from exc


class PolicyVoter:
    """Votes on new proposals as ``session``'s member, by ``policy``.

    Arguments:
        session: the member's session.
        policy: its voting policy.
        state_file: where the event cursor persists (None: in memory, from ``start_block``).
        start_block: the first block to look at when there is no cursor yet.
        tenant_patterns: the inventory's tenant patterns by host, to recompute each device's
            tenants from its diff (None: the content's declared tenants are taken as given,
            and only the affected mask is checked against them).
        notify: called with each notice for people (vote needed, verdict, ...).
    """

    def __init__(
        self,
        session: CoopchainSession,
        policy: VoterPolicy,
        *,
        state_file: Path | None = None,
        start_block: int = 0,
        tenant_patterns: TenantPatterns | None = None,
        notify: Callable[[Notice], None] | None = None,
    ):
        self.session = session
        self.policy = policy
        self.tenant_patterns = tenant_patterns
        self.notify = notify
        coop = session.coop
        events = coop.contract.events
        kinds = (ProposalCreated, EmergencyDeclared, VerdictReached, VerificationRecorded)
        self._cursor = LogCursor(
            session.client,
            coop.address,
            state_file=state_file,
            start_block=start_block,
            confirmations=session.settings.confirmations,  # only proposals that are final
            topics=[[getattr(events, kind.__name__).topic for kind in kinds]],
        )
        self._notified: set[tuple[NoticeKind, int]] = set()
        self._pending: list[Notice] = []
        self._open_file = state_file.with_suffix(".open.json") if state_file else None
        self._open = _OpenProposals.load(self._open_file)

    def poll_once(self) -> list[VoterAction]:
        """Handle every proposal created since the last poll; notify of what people should
        know (verdicts, records, failed verifications, unratified emergency changes)."""
        actions: list[VoterAction] = []
        self._pending = []
        before = self._open.model_copy(deep=True)
        try:
            with self._cursor.batch() as logs:
                for event in self.session.coop.decode_logs(logs):
                    logger.debug("event %s at block %s", event.kind, event.block_number)
                    if isinstance(event, ProposalCreated):
                        self._open.vote_end[event.proposal_id] = event.vote_end
                        action = self._handle(event)
                        logger.info("proposal %s: %s", event.proposal_id, action.reason)
                        actions.append(action)
                        if action.needs_human:
                            self._tell("vote-needed", event.proposal_id, action.reason)
                    else:
                        self._observe(event)
                self._check_deadlines()
                if self._open_file is not None:  # saved with the cursor, neither ahead
                    write_atomic(self._open_file, self._open.model_dump_json().encode())
        except BaseException:
            self._open = before  # the batch is read again: so are its deadlines
            raise
        for notice in self._pending:  # once the batch is done (a batch read again repeats)
            if self.notify is not None and (notice.kind, notice.proposal_id) not in self._notified:
                self._notified.add((notice.kind, notice.proposal_id))
                logger.info("notice %s: %s", notice.kind, notice.text)
                self.notify(notice)
        return actions

    def _tell(self, kind: NoticeKind, pid: int, text: str, **details: object) -> None:
        """Queue a notice, sent once per kind and proposal after the batch."""
        notice = Notice(
            kind=kind,
            proposal_id=pid,
            contract=self.session.coop.address,
            operator=self.session.operator,
            text=text,
            details=details,
        )
        self._pending.append(notice)

    def _observe(self, event: ChainEvent) -> None:
        if isinstance(event, EmergencyDeclared):
            self._open.emergency.add(event.proposal_id)
        elif isinstance(event, VerdictReached):
            self._verdict(event.proposal_id, event.outcome)
        elif isinstance(event, VerificationRecorded):
            pid, outcome = event.proposal_id, event.outcome.name
            counts = f"{event.devices_ok} devices verified, {event.devices_failed} failed"
            self._tell("recorded", pid, f"proposal {pid}: recorded {outcome}; {counts}")
            if event.devices_failed or event.outcome is ProposalState.VerificationFailed:
                self._tell(
                    "verification-failed",
                    pid,
                    f"proposal {pid}: verification FAILED on {event.devices_failed} device(s)",
                    devices_failed=event.devices_failed,
                )

    def _verdict(self, pid: int, outcome: ProposalState) -> None:
        """A proposal's vote ended: tell its outcome (an unratified emergency change too)."""
        self._open.vote_end.pop(pid, None)
        emergency = pid in self._open.emergency
        self._open.emergency.discard(pid)
        if outcome is ProposalState.Canceled:
            return
        info = self.session.coop.proposal(pid)
        tally = f"{info.approve_units} approve, {info.reject_units} reject"
        text = f"proposal {pid} is {outcome.name} ({tally})"
        self._tell("verdict", pid, text, outcome=outcome.name)
        if emergency and outcome in (ProposalState.Rejected, ProposalState.Expired):
            self._tell(
                "unratified-emergency",
                pid,
                f"emergency change {pid} was NOT ratified by the co-owners (it stays applied: "
                "an alarm, not a revert)",
            )

    def _check_deadlines(self) -> None:
        """Proposals whose voting deadline passed without a VerdictReached event: the
        contract derives their verdict (e.g. Expired, or an emergency change unratified)."""
        now = self.session.client.now()
        for pid, vote_end in list(self._open.vote_end.items()):
            if now > vote_end:
                self._verdict(pid, self.session.coop.state(pid))

    def watch(
        self,
        *,
        interval: float = 2.0,
        max_polls: int | None = None,
        timeout: float | None = None,
        on_action: Callable[[VoterAction], None] | None = None,
        on_outage: Callable[[str, float], None] | None = None,
        max_backoff: float = 60.0,
    ) -> list[VoterAction]:
        """Poll until ``max_polls`` polls or ``timeout`` seconds (forever if both are None).

        A poll the chain fails (node unreachable, connection reset, a vote not mined in
        time) is tried again after a pause that doubles from ``interval`` (at least 0.5 s)
        up to ``max_backoff`` seconds; ``on_outage`` is called with the error and the pause.
        It counts as a poll. The cursor only moves past a batch handled whole, so nothing is
        missed (nor voted twice).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        actions: list[VoterAction] = []
        polls = 0
        backoff = max(interval, 0.5)
        while True:
            pause = interval
            try:
                for action in self.poll_once():
                    actions.append(action)
                    if on_action is not None:
                        on_action(action)
                backoff = max(interval, 0.5)
            except ChainError as exc:  # a ContractError is a refused vote, handled within
                pause, backoff = backoff, min(backoff * 2, max_backoff)
                logger.info("chain unreachable (%s); retrying in %g s", exc, pause)
                if on_outage is not None:
                    on_outage(str(exc), pause)
            polls += 1
            if max_polls is not None and polls >= max_polls:
                return actions
            if deadline is not None and time.monotonic() >= deadline:
                return actions
            time.sleep(pause)

    def _handle(self, event: ProposalCreated) -> VoterAction:
        pid = event.proposal_id
        member = self.session.member
        if not event.electorate_mask >> member.index & 1:
            return VoterAction(
                proposal_id=pid, vote=None, rule=None, reason="not in this proposal's electorate"
            )
        try:
            change = fetch_change(self.session.coop, pid)
        except (ChangeRefused, ConfigError) as exc:  # tampered or malformed content
            return self._cast(pid, VoteType.Reject, None, f"content does not check out: {exc}")
        info = change.proposal
        if info.state is not ProposalState.Active:
            return VoterAction(
                proposal_id=pid, vote=None, rule=None, reason=f"already {info.state.name}"
            )
        if info.voted_mask >> member.index & 1:
            return VoterAction(proposal_id=pid, vote=None, rule=None, reason="already voted")
        mismatches = check_declared(self.session.coop, change, self.tenant_patterns)
        if mismatches:
            reason = "the proposer's declaration contradicts the content: " + "; ".join(mismatches)
            return self._cast(pid, VoteType.Reject, None, reason)
        decision: Decision = decide(self.policy, change.content)
        if decision.vote is None:
            return VoterAction(
                proposal_id=pid,
                vote=None,
                rule=decision.rule,
                reason=decision.reason,
                needs_human=True,
            )
        return self._cast(pid, decision.vote, decision.rule, decision.reason)

    def _cast(self, pid: int, vote: VoteType, rule: str | None, reason: str) -> VoterAction:
        try:
            outcome = self.session.coop.cast_vote(self.session.account, pid, vote)
        except ContractError as exc:  # e.g. decided by the other votes in the meantime
            return VoterAction(proposal_id=pid, vote=None, rule=rule, reason=f"vote refused: {exc}")
        return VoterAction(
            proposal_id=pid, vote=vote, rule=rule, reason=reason, tx_hash=outcome.tx_hash
        )
