"""The reference model of the contract's vote aggregation (see ``docs/contract.md``).

Pure integer arithmetic, the same as the Solidity contract's: tests check the contract
against it, and the CLI uses it to explain a tally. The flow mirrors the contract:
``snapshot = Snapshot.take(policy, weights, proposer, affected)``, then
``tally = snapshot.tally().cast(i, VoteType.Approve)...``, then :func:`early_verdict`
after every vote and :func:`final_verdict` after the deadline.

Enum member names are the Solidity names, except ``ProposalState.NONE`` (``None`` is a
Python keyword).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from nornir_coopchain.exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "BPS",
    "DEFAULT_MAX_LEAD",
    "MAX_MEMBERS",
    "AggregationRule",
    "ProposalState",
    "ResourceSetPolicy",
    "Snapshot",
    "Tally",
    "VoteOutcome",
    "VoteType",
    "early_verdict",
    "final_verdict",
    "passes",
    "rule_label",
    "shortfalls",
    "vote_outcome",
    "window_error",
]

BPS = 10_000
"""Basis points in one whole."""
MAX_MEMBERS = 32
"""Members are indexed 0..31 (bits of a ``uint32`` mask)."""
DEFAULT_MAX_LEAD = 30 * 86_400
"""How far ahead a change window may open when a resource set does not say: 30 days."""


class ProposalState(IntEnum):
    """A proposal's life-cycle state (Solidity ``ICoopChain.ProposalState``)."""

    NONE = 0
    Active = 1
    Rejected = 2
    Approved = 3
    Canceled = 4
    Expired = 5
    Verified = 6
    VerificationFailed = 7
    Executed = 8


class AggregationRule(IntEnum):
    """A resource set's preset aggregation rule (Solidity ``ICoopChain.AggregationRule``)."""

    Unanimous = 0
    SimpleMajority = 1
    Supermajority = 2
    WeightedThreshold = 3


class VoteType(IntEnum):
    """A vote's direction (Solidity ``ICoopChain.VoteType``)."""

    Approve = 0
    Reject = 1
    Abstain = 2


Uint16 = Annotated[int, Field(strict=True, ge=0, lt=2**16)]
Uint32 = Annotated[int, Field(strict=True, ge=0, lt=2**32)]


class ResourceSetPolicy(BaseModel):
    """A resource set's configuration (Solidity ``ResourceSetConfig``), validated as the
    contract's ``configureResourceSet`` validates it; invalid values raise pydantic's
    ``ValidationError`` naming the Solidity field. :meth:`check_members` adds the check that
    needs the member table.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    rule: AggregationRule
    """The aggregation rule."""
    threshold_bps: Uint16 = 0
    """Supermajority / WeightedThreshold threshold, 1..10000 for those rules."""
    quorum_bps: Uint16 = Field(default=0, le=BPS)
    """Participation quorum in basis points of the electorate's units, 0..10000."""
    eligible_mask: Uint32
    """Bit i set: member i may vote; non-empty."""
    veto_mask: Uint32 = 0
    """Bit i set: a rejection by member i rejects; a subset of ``eligible_mask``."""
    voting_period: Uint32 = Field(gt=0)
    """Seconds from creation to the voting deadline; positive."""
    max_window: Uint32 = Field(gt=0)
    """The longest change window allowed, in seconds; positive."""
    record_grace: Uint32 = 0
    """Seconds after the window's end in which a verification record is still accepted."""
    proposer_votes: StrictBool = False
    """False (two-person rule): the proposer is not in its proposal's electorate."""
    affected_must_approve: StrictBool = False
    """Every eligible member named in a proposal's affected mask must approve it."""
    emergency_mask: Uint32 = 0
    """Bit i set: member i holds the emergency role (may declare a break-glass change that is
    applied before the vote and ratified by this rule); a subset of ``eligible_mask``. The
    contract refuses it on the governance set."""
    max_lead: Uint32 = Field(default=DEFAULT_MAX_LEAD, gt=0)
    """How far ahead of the proposal's block its window may open, in seconds; positive."""

    @model_validator(mode="after")
    def _check(self) -> ResourceSetPolicy:
        if self.eligible_mask == 0:
            raise ValueError("eligibleMask is empty")
        if self.veto_mask & ~self.eligible_mask:
            raise ValueError("vetoMask names members outside eligibleMask")
        if self.emergency_mask & ~self.eligible_mask:
            raise ValueError("emergencyMask names members outside eligibleMask")
        needs_threshold = self.rule in (
            AggregationRule.Supermajority,
            AggregationRule.WeightedThreshold,
        )
        if needs_threshold and not 1 <= self.threshold_bps <= BPS:
            raise ValueError(f"thresholdBps must be 1..{BPS} for {self.rule.name}")
        return self

    def check_members(self, member_count: int) -> None:
        """Check that ``eligible_mask`` names only existing members (indices below the count).

        Raises:
            ConfigError: when it names a member index that does not exist.
        """
        if self.eligible_mask >> member_count:
            raise ConfigError(
                f"names members beyond the {member_count} that exist", field="eligibleMask"
            )


@dataclass(frozen=True)
class Snapshot:
    """What a proposal freezes at creation: electorate, units, veto and required members.

    Attributes:
        rule: the aggregation rule.
        threshold_bps: the rule's threshold.
        quorum_bps: the participation quorum.
        electorate_mask: bit i set: member i may vote on this proposal.
        units: what each member's vote counts for, by member index (0 outside the electorate).
        total_units: the sum of ``units`` (T).
        veto_mask: electorate members whose rejection rejects.
        required_mask: electorate members who must approve.
        proposer_index: the proposer's member index.
    """

    rule: AggregationRule
    threshold_bps: int
    quorum_bps: int
    electorate_mask: int
    units: tuple[int, ...]
    total_units: int
    veto_mask: int
    required_mask: int
    proposer_index: int

    @classmethod
    def take(
        cls,
        policy: ResourceSetPolicy,
        weights: Sequence[int],
        proposer_index: int,
        affected_mask: int = 0,
    ) -> Snapshot:
        """Snapshot a new proposal exactly as the contract does.

        Arguments:
            policy: the resource set's configuration at creation.
            weights: every member's weight by member index (0 = removed).
            proposer_index: the proposer's member index.
            affected_mask: the request's ``affectedMask``.

        Returns:
            The snapshot.

        Raises:
            ConfigError: for more than 32 members, a weight outside 0..65535, a proposer
                index that is not a member, an eligible mask naming non-members, or an
                affected mask outside the eligible mask (the contract refuses these).
        """
        if len(weights) > MAX_MEMBERS:
            raise ConfigError(f"at most {MAX_MEMBERS} members", field="weights")
        if any(not 0 <= weight < 2**16 for weight in weights):
            raise ConfigError("weights must be 0..65535", field="weights")
        if not 0 <= proposer_index < len(weights):
            raise ConfigError(f"no member {proposer_index}", field="proposer_index")
        policy.check_members(len(weights))
        if affected_mask & ~policy.eligible_mask:
            raise ConfigError("affectedMask names members outside eligibleMask")
        electorate = 0
        for index, weight in enumerate(weights):
            eligible = policy.eligible_mask >> index & 1
            if eligible and weight > 0 and (policy.proposer_votes or index != proposer_index):
                electorate |= 1 << index
        weighted = policy.rule == AggregationRule.WeightedThreshold
        units = tuple(
            (weight if weighted else 1) if electorate >> index & 1 else 0
            for index, weight in enumerate(weights)
        )
        return cls(
            rule=policy.rule,
            threshold_bps=policy.threshold_bps,
            quorum_bps=policy.quorum_bps,
            electorate_mask=electorate,
            units=units,
            total_units=sum(units),
            veto_mask=policy.veto_mask & electorate,
            required_mask=affected_mask & electorate if policy.affected_must_approve else 0,
            proposer_index=proposer_index,
        )

    def voters(self) -> tuple[int, ...]:
        """The electorate's member indices, ascending."""
        return tuple(i for i in range(len(self.units)) if self.electorate_mask >> i & 1)

    def tally(self) -> Tally:
        """An empty tally for this snapshot."""
        return Tally(snapshot=self)


@dataclass(frozen=True)
class Tally:
    """The votes cast on one proposal; immutable, :meth:`cast` returns a new tally.

    Attributes:
        snapshot: the proposal's snapshot.
        approve: approving units cast (A).
        reject: rejecting units cast (R).
        abstain: abstaining units cast (S).
        voted_mask: bit i set: member i voted.
        choices: (member index, vote) pairs in the order cast.
    """

    snapshot: Snapshot
    approve: int = 0
    reject: int = 0
    abstain: int = 0
    voted_mask: int = 0
    choices: tuple[tuple[int, VoteType], ...] = ()

    @property
    def cast_units(self) -> int:
        """A + R + S."""
        return self.approve + self.reject + self.abstain

    @property
    def remaining_units(self) -> int:
        """M = T - (A + R + S), the units not yet cast."""
        return self.snapshot.total_units - self.cast_units

    def mask(self, vote: VoteType) -> int:
        """The members that cast ``vote``, as a bit mask."""
        result = 0
        for index, choice in self.choices:
            if choice == vote:
                result |= 1 << index
        return result

    def choice(self, member_index: int) -> VoteType | None:
        """Member ``member_index``'s vote, or None if it has not voted."""
        return next((vote for index, vote in self.choices if index == member_index), None)

    def cast(self, member_index: int, vote: VoteType) -> Tally:
        """Add one vote (the model does not know the deadline or the proposal's state).

        Arguments:
            member_index: the voter's member index.
            vote: its vote.

        Returns:
            The new tally.

        Raises:
            ConfigError: when the member is not in the electorate or already voted
                (the contract's ``CoopChainNotEligible`` / ``CoopChainAlreadyVoted``).
        """
        if not 0 <= member_index < len(self.snapshot.units) or not (
            self.snapshot.electorate_mask >> member_index & 1
        ):
            raise ConfigError(f"member {member_index} is not in the electorate")
        if self.voted_mask >> member_index & 1:
            raise ConfigError(f"member {member_index} already voted")
        units = self.snapshot.units[member_index]
        vote = VoteType(vote)
        return replace(
            self,
            approve=self.approve + (units if vote is VoteType.Approve else 0),
            reject=self.reject + (units if vote is VoteType.Reject else 0),
            abstain=self.abstain + (units if vote is VoteType.Abstain else 0),
            voted_mask=self.voted_mask | 1 << member_index,
            choices=(*self.choices, (member_index, vote)),
        )


def _rule_holds(snapshot: Snapshot, a: int, r: int, s: int) -> bool:
    """Rule condition 4 of ``passes`` for A, R, S (T from the snapshot)."""
    t, threshold = snapshot.total_units, snapshot.threshold_bps
    if snapshot.rule == AggregationRule.Unanimous:
        return a + s == t and r == 0 and a > 0
    if snapshot.rule == AggregationRule.SimpleMajority:
        return a > r
    if snapshot.rule == AggregationRule.Supermajority:
        return a > 0 and a * BPS >= threshold * (a + r)
    return a * BPS >= threshold * t


def _quorum_met(snapshot: Snapshot, participating: int) -> bool:
    return participating * BPS >= snapshot.quorum_bps * snapshot.total_units


def _check_pair(snapshot: Snapshot, tally: Tally) -> None:
    if tally.snapshot != snapshot:
        raise ValueError("the tally belongs to another snapshot")


def shortfalls(snapshot: Snapshot, tally: Tally) -> tuple[str, ...]:
    """Explain why the votes cast so far do not pass (empty when they pass).

    Arguments:
        snapshot: the proposal's snapshot.
        tally: its votes, from ``snapshot.tally()``.

    Returns:
        One sentence per failed condition of ``passes`` (docs/contract.md, Aggregation).

    Raises:
        ValueError: when the tally was not made from this snapshot.
    """
    _check_pair(snapshot, tally)
    t = snapshot.total_units
    if t == 0:
        return ("the electorate is empty",)
    reasons = []
    vetoed = snapshot.veto_mask & tally.mask(VoteType.Reject)
    if vetoed:
        reasons.append(f"vetoed by members {_indices(vetoed)}")
    not_approved = snapshot.required_mask & ~tally.mask(VoteType.Approve)
    if not_approved:
        reasons.append(f"required members {_indices(not_approved)} did not approve")
    if not _quorum_met(snapshot, tally.cast_units):
        reasons.append(
            f"quorum not met: {tally.cast_units} of {t} units cast, "
            f"{snapshot.quorum_bps} bps required"
        )
    if not _rule_holds(snapshot, tally.approve, tally.reject, tally.abstain):
        reasons.append(
            f"{snapshot.rule.name} not met: approve {tally.approve}, reject {tally.reject}, "
            f"abstain {tally.abstain} of {t} units (threshold {snapshot.threshold_bps} bps)"
        )
    return tuple(reasons)


def passes(snapshot: Snapshot, tally: Tally) -> bool:
    """Whether the votes cast pass (``passes(A, R, S)`` of docs/contract.md).

    Raises:
        ValueError: when the tally was not made from this snapshot.
    """
    return not shortfalls(snapshot, tally)


def early_verdict(snapshot: Snapshot, tally: Tally) -> ProposalState | None:
    """The verdict the contract reaches at once after a vote, if the outcome is settled.

    Approved iff the proposal passes even if every remaining voter rejects (and even if
    none votes); Rejected iff it fails even if every remaining voter approves. An empty
    electorate is Rejected at once.

    Arguments:
        snapshot: the proposal's snapshot.
        tally: its votes so far.

    Returns:
        ``ProposalState.Approved``, ``ProposalState.Rejected`` or None (voting goes on).

    Raises:
        ValueError: when the tally was not made from this snapshot.
    """
    _check_pair(snapshot, tally)
    a, r, s, m = tally.approve, tally.reject, tally.abstain, tally.remaining_units
    if snapshot.total_units == 0:
        return ProposalState.Rejected
    approved = tally.mask(VoteType.Approve)
    rejected = tally.mask(VoteType.Reject)
    if (
        not snapshot.veto_mask & ~tally.voted_mask
        and not snapshot.veto_mask & rejected
        and snapshot.required_mask & ~approved == 0
        and _quorum_met(snapshot, a + r + s)
        and _rule_holds(snapshot, a, r + m, s)
    ):
        return ProposalState.Approved
    if (
        snapshot.veto_mask & rejected
        or snapshot.required_mask & (rejected | tally.mask(VoteType.Abstain))
        or not _quorum_met(snapshot, a + r + s + m)
        or not _rule_holds(snapshot, a + m, r, s)
    ):
        return ProposalState.Rejected
    return None


def final_verdict(snapshot: Snapshot, tally: Tally) -> ProposalState:
    """The verdict after the voting deadline: ``passes`` on what was cast.

    Returns:
        ``ProposalState.Approved`` or ``ProposalState.Rejected``.

    Raises:
        ValueError: when the tally was not made from this snapshot.
    """
    return ProposalState.Approved if passes(snapshot, tally) else ProposalState.Rejected


VoteOutcome = Literal[
    "counted", "skipped", "UnexpectedProposalState", "NotEligible", "AlreadyVoted"
]
"""What the contract does with one vote: counts it, skips it (a batched ballot whose member
already voted), or reverts with the named ``CoopChain*`` error."""


def vote_outcome(
    tally: Tally, state: ProposalState, member_index: int, *, batched: bool = False
) -> VoteOutcome:
    """What the contract does with a vote by an existing member, in its check order (the
    deadline aside): a batched ballot (``castVotes``) whose member's vote is already counted
    is skipped whatever the state; otherwise the proposal must be Active, the member in the
    electorate and not have voted.
    """
    voted = bool(tally.voted_mask >> member_index & 1)
    if batched and voted:
        return "skipped"
    if state is not ProposalState.Active:
        return "UnexpectedProposalState"
    if not tally.snapshot.electorate_mask >> member_index & 1:
        return "NotEligible"
    return "AlreadyVoted" if voted else "counted"


def window_error(
    policy: ResourceSetPolicy, now: int, start: int, end: int
) -> Literal["InvalidWindow", "WindowTooFarAhead"] | None:
    """The contract's window check of an ordinary proposal made at block time ``now``: the
    window is non-empty, not over, at most ``max_window`` long (else ``InvalidWindow``), and
    opens at most ``max_lead`` after ``now`` (else ``WindowTooFarAhead``); None if it passes.
    """
    if start >= end or end <= now or end - start > policy.max_window:
        return "InvalidWindow"
    if start > now + policy.max_lead:
        return "WindowTooFarAhead"
    return None


def rule_label(rule: AggregationRule, threshold_bps: int, quorum_bps: int) -> str:
    """A rule in one line, e.g. ``Supermajority 6667 bps, quorum 5000 bps``: the threshold
    only for the rules that have one, the quorum only when there is one. Two policies (or a
    proposal's snapshot and its set's current policy) decide alike when their labels match.
    """
    label = rule.name
    if rule in (AggregationRule.Supermajority, AggregationRule.WeightedThreshold):
        label += f" {threshold_bps} bps"
    return f"{label}, quorum {quorum_bps} bps" if quorum_bps else label


def _indices(mask: int) -> str:
    return ", ".join(str(i) for i in range(MAX_MEMBERS) if mask >> i & 1)
