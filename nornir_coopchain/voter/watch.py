"""A member's long-running voter: notified by chain events, it votes by its policy.

It reads ProposalCreated events from a persisted cursor (``eth_getLogs``, no server-side
filters), so a restarted voter neither misses nor repeats a proposal. For each proposal it
may vote on, it fetches the content from the chain (checked against the stored hash),
recomputes what the proposer declared (affected mask, window, ...; see
:mod:`nornir_coopchain.gate.declared`) and rejects a proposal that lies, else evaluates the
policy and votes, or leaves the vote to a human and says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from nornir_coopchain.chain.events import LogCursor
from nornir_coopchain.chain.models import ProposalCreated
from nornir_coopchain.exceptions import (
    ChainError,
    ChangeRefused,
    ConfigError,
    ContractError,
)
from nornir_coopchain.gate.approved import fetch_change
from nornir_coopchain.gate.declared import TenantPatterns, check_declared
from nornir_coopchain.model.rules import ProposalState, VoteType
from nornir_coopchain.session import CoopchainSession
from nornir_coopchain.voter.policy import Decision, VoterPolicy, decide

__all__ = ["PolicyVoter", "VoterAction"]


class VoterAction(BaseModel):
    """What the voter did about one proposal."""

    model_config = ConfigDict(frozen=True)

    proposal_id: int
    vote: VoteType | None  # None: left to a human (or nothing to do)
    rule: str | None
    reason: str
    tx_hash: str | None = None


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
    """

    def __init__(
        self,
        session: CoopchainSession,
        policy: VoterPolicy,
        *,
        state_file: Path | None = None,
        start_block: int = 0,
        tenant_patterns: TenantPatterns | None = None,
    ):
        self.session = session
        self.policy = policy
        self.tenant_patterns = tenant_patterns
        coop = session.coop
        self._cursor = LogCursor(
            session.client,
            coop.address,
            state_file=state_file,
            start_block=start_block,
            confirmations=session.settings.confirmations,  # only proposals that are final
            topics=[coop.contract.events.ProposalCreated.topic],
        )

    def poll_once(self) -> list[VoterAction]:
        """Handle every proposal created since the last poll."""
        actions: list[VoterAction] = []
        with self._cursor.batch() as logs:
            for event in self.session.coop.decode_logs(logs):
                if isinstance(event, ProposalCreated):
                    actions.append(self._handle(event))
        return actions

    def watch(
        self,
        *,
        interval: float = 2.0,
        max_polls: int | None = None,
        timeout: float | None = None,
        on_action: Callable[[VoterAction], None] | None = None,
        on_error: Callable[[ChainError], None] | None = None,
    ) -> list[VoterAction]:
        """Poll until ``max_polls`` polls or ``timeout`` seconds (forever if both are None).

        A poll the chain fails (node unreachable, connection reset, a vote not mined in
        time) is tried again at the next one, after ``on_error`` is told; the cursor only
        moves past a batch handled whole, so nothing is missed (nor voted twice).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        actions: list[VoterAction] = []
        polls = 0
        while True:
            try:
                handled = self.poll_once()
            except ChainError as exc:  # a ContractError is a refused vote, handled within
                handled = []
                if on_error is not None:
                    on_error(exc)
            for action in handled:
                actions.append(action)
                if on_action is not None:
                    on_action(action)
            polls += 1
            if max_polls is not None and polls >= max_polls:
                return actions
            if deadline is not None and time.monotonic() >= deadline:
                return actions
            time.sleep(interval)

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
                proposal_id=pid, vote=None, rule=decision.rule, reason=decision.reason
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
