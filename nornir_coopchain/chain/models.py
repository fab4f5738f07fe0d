"""Typed models for everything the CoopChain contract takes and returns.

Nothing above the chain layer sees raw web3 dicts or tuples: calls return these models and
events are decoded into them. Hashes are ``0x``-prefixed 32-byte hex strings; resource set
and operator IDs are the readable names behind their ``bytes32`` encodings.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from eth_utils.address import is_address, to_checksum_address
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from nornir_coopchain.model.content import resource_set_id, resource_set_name
from nornir_coopchain.model.rules import AggregationRule, ProposalState, VoteType, rule_label

__all__ = [
    "Address",
    "ApplyClaimed",
    "BallotMessage",
    "BallotSkipped",
    "ChainEvent",
    "EmergencyDeclared",
    "GovernanceExecuted",
    "Hex32",
    "KeyRotationMessage",
    "MemberAdded",
    "MemberInfo",
    "MemberKeyRotated",
    "MemberWeightChanged",
    "ProposalCanceled",
    "ProposalCreated",
    "ProposalInfo",
    "ProposalRequest",
    "ResourceSetConfigured",
    "SignedBallot",
    "VerdictReached",
    "VerificationRecorded",
    "VoteCast",
    "bytes32_hex",
    "new_run_id",
]

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ZERO_HASH = "0x" + "00" * 32
_APPROVED_STATES = (
    ProposalState.Approved,
    ProposalState.Expired,
    ProposalState.Verified,
    ProposalState.VerificationFailed,
    ProposalState.Executed,
)


def _checksum(value: str) -> str:
    if not is_address(value):
        raise ValueError(f"not an address: {value!r}")
    return str(to_checksum_address(value))


def _hex32(value: str) -> str:
    text = value.lower()
    if not (text.startswith("0x") and len(text) == 66):
        raise ValueError(f"not a 0x-prefixed 32-byte hex string: {value!r}")
    int(text, 16)
    return text


Address = Annotated[str, AfterValidator(_checksum)]
Hex32 = Annotated[str, AfterValidator(_hex32)]


def bytes32_hex(value: bytes) -> str:
    """``0x``-hex of a 32-byte value as web3 returns it."""
    return "0x" + bytes(value).rjust(32, b"\0").hex()


def new_run_id() -> str:
    """A fresh random run ID for ``claimApply`` (``0x``-prefixed 32-byte hex; a zero draw,
    odds 2^-256, would be refused on chain)."""
    return "0x" + secrets.token_hex(32)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MemberInfo(_Frozen):
    """A consortium member as stored on chain; weight 0 means removed."""

    index: int = Field(ge=0, le=31)
    account: Address
    operator_id: str
    weight: int = Field(ge=0, le=65535)


class ProposalRequest(_Frozen):
    """What a proposer signs (EIP-712 ``Proposal``) and anyone may relay."""

    resource_set: str
    proposer: Address
    content_hash: Hex32
    manifest_root: Hex32
    device_count: int = Field(ge=0, lt=2**32)
    affected_mask: int = Field(default=0, ge=0, lt=2**32)
    window_start: int = Field(ge=0, lt=2**48)
    window_end: int = Field(ge=0, lt=2**48)
    created_at: int = Field(ge=0, lt=2**48)
    executor: Address = ZERO_ADDRESS
    nonce: int = Field(ge=0, lt=2**64)

    def eip712_message(self) -> dict[str, Any]:
        """The request as the EIP-712 ``Proposal`` message."""
        return {
            "resourceSet": resource_set_id(self.resource_set),
            "proposer": self.proposer,
            "contentHash": bytes.fromhex(self.content_hash[2:]),
            "manifestRoot": bytes.fromhex(self.manifest_root[2:]),
            "deviceCount": self.device_count,
            "affectedMask": self.affected_mask,
            "windowStart": self.window_start,
            "windowEnd": self.window_end,
            "createdAt": self.created_at,
            "executor": self.executor,
            "nonce": self.nonce,
        }

    def as_tuple(self) -> tuple[Any, ...]:
        """The request as the ABI tuple ``ProposalRequest``."""
        return tuple(self.eip712_message().values())

    @classmethod
    def from_abi(cls, values: Sequence[Any]) -> ProposalRequest:
        """Build from the ABI tuple ``ProposalRequest`` (as decoded from calldata)."""
        fields = dict(zip(cls.model_fields, values, strict=True))
        for name in ("content_hash", "manifest_root"):
            fields[name] = bytes32_hex(fields[name])
        return cls(**{**fields, "resource_set": resource_set_name(fields["resource_set"])})


class BallotMessage(_Frozen):
    """The signed part of a ballot: one vote of one voter on one proposal."""

    proposal_id: int = Field(ge=1)
    voter: Address
    support: VoteType


class KeyRotationMessage(_Frozen):
    """What a new key signs (EIP-712 ``KeyRotation``) to consent to serve a member."""

    member: int = Field(ge=0, le=31)
    old_account: Address
    new_account: Address


class SignedBallot(BallotMessage):
    """A ballot with its signature; anyone may submit it."""

    signature: str = Field(pattern=r"^0x([0-9a-fA-F]{2})+$")

    def as_tuple(self) -> tuple[Any, ...]:
        """The ballot as the ABI tuple ``Ballot``."""
        return (self.proposal_id, self.voter, int(self.support), bytes.fromhex(self.signature[2:]))


class ProposalInfo(_Frozen):
    """A proposal's on-chain summary with its derived state."""

    proposal_id: int
    state: ProposalState
    resource_set: str
    proposer_index: int
    executor: Address
    content_hash: Hex32
    manifest_root: Hex32
    device_count: int
    electorate_mask: int
    veto_mask: int
    required_mask: int
    voted_mask: int
    approve_units: int
    reject_units: int
    abstain_units: int
    total_units: int
    created_at: int
    vote_end: int
    window_start: int
    window_end: int
    record_deadline: int
    evidence_root: Hex32
    emergency: bool = False
    """Declared with ``declareEmergency`` (break-glass): may be applied and recorded before
    the vote, and must be ratified by the normal rule by ``vote_end``."""
    apply_run: Hex32 = ZERO_HASH
    """The run ID that holds the apply claim (``claimApply``); zero until a run claimed it."""
    rule: AggregationRule
    """The resource set's aggregation rule when the proposal was created: the one that decides
    its verdict, whatever governance changed since (``CoopChain.resource_set`` is the set's
    current policy)."""
    threshold_bps: int = Field(ge=0, le=10_000)
    """The threshold snapshotted with ``rule`` (Supermajority, WeightedThreshold)."""
    quorum_bps: int = Field(ge=0, le=10_000)
    """The participation quorum snapshotted with ``rule``."""

    @property
    def rule_label(self) -> str:
        """The rule that decides this proposal in one line (``Supermajority 6667 bps``)."""
        return rule_label(self.rule, self.threshold_bps, self.quorum_bps)

    @property
    def recorded(self) -> bool:
        """Whether a verification is recorded (an emergency proposal may be while Active)."""
        return self.evidence_root != ZERO_HASH

    @property
    def unratified(self) -> bool:
        """An emergency change the co-owners did not ratify: rejected, or its deadline passed
        without approval (the contract derives Rejected then). An alarm, never a revert."""
        return self.emergency and self.state is ProposalState.Rejected

    @property
    def ratified(self) -> bool:
        """An emergency change the co-owners approved under the normal rule."""
        return self.emergency and self.state in _APPROVED_STATES

    @classmethod
    def from_abi(cls, proposal_id: int, view: tuple[Any, ...]) -> ProposalInfo:
        """Build from the ``ProposalView`` tuple ``proposal(id)`` returns."""
        (
            state,
            resource_set,
            proposer_index,
            executor,
            content_hash,
            manifest_root,
            device_count,
            electorate_mask,
            veto_mask,
            required_mask,
            voted_mask,
            approve_units,
            reject_units,
            abstain_units,
            total_units,
            created_at,
            vote_end,
            window_start,
            window_end,
            record_deadline,
            evidence_root,
            emergency,
            apply_run,
            rule,
            threshold_bps,
            quorum_bps,
        ) = view
        return cls(
            proposal_id=proposal_id,
            state=ProposalState(state),
            resource_set=resource_set_name(resource_set),
            proposer_index=proposer_index,
            executor=executor,
            content_hash=bytes32_hex(content_hash),
            manifest_root=bytes32_hex(manifest_root),
            device_count=device_count,
            electorate_mask=electorate_mask,
            veto_mask=veto_mask,
            required_mask=required_mask,
            voted_mask=voted_mask,
            approve_units=approve_units,
            reject_units=reject_units,
            abstain_units=abstain_units,
            total_units=total_units,
            created_at=created_at,
            vote_end=vote_end,
            window_start=window_start,
            window_end=window_end,
            record_deadline=record_deadline,
            evidence_root=bytes32_hex(evidence_root),
            emergency=emergency,
            apply_run=bytes32_hex(apply_run),
            rule=AggregationRule(rule),
            threshold_bps=threshold_bps,
            quorum_bps=quorum_bps,
        )


class _Event(_Frozen):
    """Where an event was emitted."""

    block_number: int
    tx_hash: Hex32
    log_index: int


class MemberAdded(_Event):
    """A member was added (at deployment or by governance)."""

    kind: Literal["MemberAdded"] = "MemberAdded"
    index: int
    account: Address
    operator_id: str
    weight: int


class MemberWeightChanged(_Event):
    """A member's weight changed (0 = removed)."""

    kind: Literal["MemberWeightChanged"] = "MemberWeightChanged"
    index: int
    old_weight: int
    new_weight: int


class MemberKeyRotated(_Event):
    """A member moved to a new key."""

    kind: Literal["MemberKeyRotated"] = "MemberKeyRotated"
    index: int
    old_account: Address
    new_account: Address


class ResourceSetConfigured(_Event):
    """A resource set was created or reconfigured."""

    kind: Literal["ResourceSetConfigured"] = "ResourceSetConfigured"
    resource_set: str
    config: tuple[Any, ...]


class ProposalCreated(_Event):
    """A proposal was created; its content is the calldata of ``tx_hash``."""

    kind: Literal["ProposalCreated"] = "ProposalCreated"
    proposal_id: int
    resource_set: str
    proposer: Address
    operator_id: str
    content_hash: Hex32
    manifest_root: Hex32
    device_count: int
    window_start: int
    window_end: int
    vote_end: int
    electorate_mask: int


class EmergencyDeclared(_Event):
    """A proposal was declared an emergency change (break-glass); ratify by ``ratify_by``."""

    kind: Literal["EmergencyDeclared"] = "EmergencyDeclared"
    proposal_id: int
    ratify_by: int


class VoteCast(_Event):
    """A member voted, directly or by ballot.

    ``voter`` is the member's key at the time of the vote; the member index follows from the
    MemberAdded and MemberKeyRotated events (or ``CoopChain.member_index`` while the key is
    current).
    """

    kind: Literal["VoteCast"] = "VoteCast"
    proposal_id: int
    voter: Address
    support: VoteType
    units: int


class BallotSkipped(_Event):
    """A ballot of a ``castVotes`` batch was skipped: its member's vote was already counted."""

    kind: Literal["BallotSkipped"] = "BallotSkipped"
    proposal_id: int
    voter: Address


class VerdictReached(_Event):
    """The verdict broadcast to all members."""

    kind: Literal["VerdictReached"] = "VerdictReached"
    proposal_id: int
    outcome: ProposalState
    approve_units: int
    reject_units: int
    abstain_units: int


class VerificationRecorded(_Event):
    """The verification of an applied change, recorded as evidence."""

    kind: Literal["VerificationRecorded"] = "VerificationRecorded"
    proposal_id: int
    recorder: Address
    outcome: ProposalState
    evidence_root: Hex32
    devices_ok: int
    devices_failed: int


class ApplyClaimed(_Event):
    """A run claimed the apply of a proposal (``claimApply``) before pushing any device.

    ``previous_run`` is the claim it replaced: zero for the first claim, else the run it took
    over (an abandoned one).
    """

    kind: Literal["ApplyClaimed"] = "ApplyClaimed"
    proposal_id: int
    claimer: Address
    run_id: Hex32
    previous_run: Hex32


class ProposalCanceled(_Event):
    """The proposer withdrew the proposal."""

    kind: Literal["ProposalCanceled"] = "ProposalCanceled"
    proposal_id: int


class GovernanceExecuted(_Event):
    """A governance proposal's calls were executed."""

    kind: Literal["GovernanceExecuted"] = "GovernanceExecuted"
    proposal_id: int
    calls: int


ChainEvent = Annotated[
    MemberAdded
    | MemberWeightChanged
    | MemberKeyRotated
    | ResourceSetConfigured
    | ProposalCreated
    | EmergencyDeclared
    | VoteCast
    | BallotSkipped
    | VerdictReached
    | VerificationRecorded
    | ApplyClaimed
    | ProposalCanceled
    | GovernanceExecuted,
    Field(discriminator="kind"),
]
