"""One Python exception per custom error of the CoopChain contract, and revert decoding.

Every class here derives from :class:`~nornir_coopchain.exceptions.ContractError`; its
``args_by_name`` holds the Solidity error's arguments by their ABI names. Argument types come
from the compiled ABI, so the classes cannot drift from the contract (a test checks that
each ABI error has exactly one class here). ``address`` arguments are checksummed.

Each class's message is a sentence (:meth:`describe`): proposal states by name, never as
bitmaps; times in ISO 8601 UTC, never as unix seconds; durations as ``4h``; members by index.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from eth_abi.abi import decode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from nornir_coopchain.chain.artifacts import load_artifact
from nornir_coopchain.exceptions import ConfigError, ContractError, TransactionReverted
from nornir_coopchain.model.content import resource_set_name
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.model.times import iso

__all__ = [
    "CONTRACT_ERRORS",
    "AlreadyRecorded",
    "AlreadyVoted",
    "ApplyClaimed",
    "ContentHashMismatch",
    "DeviceCountMismatch",
    "EmergencyNotCancelable",
    "GovernanceCallFailed",
    "GovernanceNotRecordable",
    "InvalidAffectedMask",
    "InvalidMember",
    "InvalidNonce",
    "InvalidResourceSet",
    "InvalidRunId",
    "InvalidSignature",
    "InvalidSupport",
    "InvalidTimestamp",
    "InvalidWindow",
    "MalleableSignature",
    "NotEligible",
    "NotEmergencyRole",
    "NotGovernanceProposal",
    "NotMember",
    "NotProposer",
    "NotProposerOrExecutor",
    "OnlyGovernance",
    "OutsideChangeWindow",
    "OutsideWindow",
    "UnexpectedProposalState",
    "UnknownResourceSet",
    "VotingClosed",
    "WindowTooFarAhead",
    "decode_revert",
]


def _duration(total: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if total and total % size == 0:
            return f"{total // size}{unit}"
    return f"{total}s"


def _state(value: int) -> str:
    return ProposalState(value).name


def _states(bitmap: bytes) -> str:
    bits = int.from_bytes(bitmap, "big")
    names = [state.name for state in ProposalState if bits >> state & 1]
    return " or ".join(names) or "no state"


def _name(value: bytes) -> str:
    """A bytes32 resource set or operator ID as its name (quoted), else as hex."""
    try:
        return repr(resource_set_name(value))
    except ConfigError:
        return "0x" + bytes(value).hex()


def _members(mask: int) -> str:
    indexes = [str(index) for index in range(32) if mask >> index & 1]
    return "members " + ", ".join(indexes) if indexes else "no members"


class _Sentence(ContractError):
    """A contract error whose message reads as a sentence (see :meth:`describe`)."""

    def __getitem__(self, name: str) -> Any:
        return self.args_by_name[name]


class NotMember(_Sentence):
    """Raised when the caller or signer is not a member."""

    error_name = "CoopChainNotMember"

    def describe(self) -> str:
        return f"{self['account']} is not a member's current key"


class NotEligible(_Sentence):
    """Raised when the member may not vote on this proposal (not in its snapshotted electorate)."""

    error_name = "CoopChainNotEligible"

    def describe(self) -> str:
        return (
            f"{self['voter']} may not vote on proposal {self['proposalId']}: its member is not "
            "in the proposal's electorate"
        )


class AlreadyVoted(_Sentence):
    """Raised when the member already voted on this proposal."""

    error_name = "CoopChainAlreadyVoted"

    def describe(self) -> str:
        return f"the member of {self['voter']} already voted on proposal {self['proposalId']}"


class UnexpectedProposalState(_Sentence):
    """Raised when the proposal is not in one of the expected states.

    ``expectedStates`` is a bitmap over ProposalState; the message names the states.
    """

    error_name = "CoopChainUnexpectedProposalState"

    def describe(self) -> str:
        pid, wanted = self["proposalId"], _states(self["expectedStates"])
        if self["current"] == ProposalState.NONE:
            return f"there is no proposal {pid} (this needs one that is {wanted})"
        return f"proposal {pid} is {_state(self['current'])}; this needs it {wanted}"


class VotingClosed(_Sentence):
    """Raised when the voting deadline has passed."""

    error_name = "CoopChainVotingClosed"

    def describe(self) -> str:
        return f"voting on proposal {self['proposalId']} closed at {iso(self['voteEnd'])}"


class InvalidSignature(_Sentence):
    """Raised when a signature does not recover to (or is not accepted by) the expected signer."""

    error_name = "CoopChainInvalidSignature"

    def describe(self) -> str:
        return (
            f"the signature is not {self['expectedSigner']}'s (it does not recover to that "
            "address, and no wallet there accepts it)"
        )


class MalleableSignature(_Sentence):
    """Raised when an ECDSA signature with s in the upper half of the curve order (malleable)."""

    error_name = "CoopChainMalleableSignature"

    def describe(self) -> str:
        return "the signature is malleable (its s lies in the upper half of the curve order)"


class InvalidNonce(_Sentence):
    """Raised when the proposal nonce is not the proposer's current one."""

    error_name = "CoopChainInvalidNonce"

    def describe(self) -> str:
        return (
            f"the request carries proposal nonce {self['given']}, but {self['proposer']}'s "
            f"current one is {self['expected']}"
        )


class ContentHashMismatch(_Sentence):
    """Raised when keccak256(content) differs from the request's contentHash."""

    error_name = "CoopChainContentHashMismatch"

    def describe(self) -> str:
        expected, actual = ("0x" + bytes(self[key]).hex() for key in ("expected", "actual"))
        return f"the content hashes to {actual}, not to the declared {expected}"


class InvalidWindow(_Sentence):
    """Raised when the change window is empty, past, or longer than the resource set allows."""

    error_name = "CoopChainInvalidWindow"

    def describe(self) -> str:
        return (
            f"the change window {iso(self['windowStart'])} to {iso(self['windowEnd'])} "
            f"is empty, already over, longer than the {_duration(self['maxWindow'])} the "
            "resource set allows, or (for an emergency) not open yet"
        )


class InvalidTimestamp(_Sentence):
    """Raised when createdAt lies in the future."""

    error_name = "CoopChainInvalidTimestamp"

    def describe(self) -> str:
        return (
            f"the request was created at {iso(self['createdAt'])}, after the chain's time "
            f"{iso(self['blockTimestamp'])}"
        )


class UnknownResourceSet(_Sentence):
    """Raised when no resource set with this ID."""

    error_name = "CoopChainUnknownResourceSet"

    def describe(self) -> str:
        return f"there is no resource set {_name(self['resourceSet'])}"


class InvalidResourceSet(_Sentence):
    """Raised when a resource set configuration is inconsistent (field names the problem)."""

    error_name = "CoopChainInvalidResourceSet"

    def describe(self) -> str:
        return f"resource set {_name(self['resourceSet'])}: its {self['field']} is invalid"


_MEMBER_FIELDS = {
    "account": "the account is zero, a member's key, or a key a member used before",
    "weight": "a member's weight must be at least 1",
    "members": "there are 32 members already",
    "operatorId": "the operator ID is taken",
    "index": "there is no member with that index",
}


class InvalidMember(_Sentence):
    """Raised when a member entry is invalid.

    (Zero account, an account that is or ever was a member's key, duplicate operator ID, zero
    weight, too many members.)
    """

    error_name = "CoopChainInvalidMember"

    def describe(self) -> str:
        field = self["field"]
        return (
            f"member {_name(self['operatorId'])} ({self['account']}): "
            f"{_MEMBER_FIELDS.get(field, f'its {field} is invalid')}"
        )


class NotProposerOrExecutor(_Sentence):
    """Raised when the caller is neither the proposer nor its named executor."""

    error_name = "CoopChainNotProposerOrExecutor"

    def describe(self) -> str:
        return (
            f"{self['caller']} may not apply or record proposal {self['proposalId']}: only its "
            "proposer or the executor it names may"
        )


class NotProposer(_Sentence):
    """Raised when the caller is not the proposer."""

    error_name = "CoopChainNotProposer"

    def describe(self) -> str:
        return f"{self['caller']} is not the proposer of proposal {self['proposalId']}"


class OutsideWindow(_Sentence):
    """Raised when now is outside [windowStart, windowEnd + recordGrace].

    (``executeGovernance``: outside [windowStart, windowEnd]; ``recordDeadline`` is then the
    window's end.)
    """

    error_name = "CoopChainOutsideWindow"

    def describe(self) -> str:
        return (
            f"the chain's time {iso(self['blockTimestamp'])} is outside proposal "
            f"{self['proposalId']}'s window, {iso(self['windowStart'])} to "
            f"{iso(self['recordDeadline'])}"
        )


class DeviceCountMismatch(_Sentence):
    """Raised when the device counts of a verification record do not add up to the proposal's."""

    error_name = "CoopChainDeviceCountMismatch"

    def describe(self) -> str:
        return (
            f"proposal {self['proposalId']} covers {self['expected']} devices, but the record "
            f"counts {self['given']}"
        )


class OnlyGovernance(_Sentence):
    """Raised when a function only the contract itself may call is called from outside.

    Such functions run only through an executed governance proposal.
    """

    error_name = "CoopChainOnlyGovernance"

    def describe(self) -> str:
        return f"{self['caller']} may not call this: only an executed governance proposal may"


class GovernanceCallFailed(_Sentence):
    """Raised when a governance call made by an executed proposal reverted."""

    error_name = "CoopChainGovernanceCallFailed"

    def describe(self) -> str:
        reason = decode_revert(bytes(self["reason"]))
        return f"call {self['index']} of governance proposal {self['proposalId']} failed: {reason}"


class NotGovernanceProposal(_Sentence):
    """Raised when the proposal does not belong to the governance resource set."""

    error_name = "CoopChainNotGovernanceProposal"

    def describe(self) -> str:
        return f"proposal {self['proposalId']} is not a governance proposal"


class InvalidAffectedMask(_Sentence):
    """Raised when the affected-members mask names members outside the resource set."""

    error_name = "CoopChainInvalidAffectedMask"

    def describe(self) -> str:
        return (
            f"the affected {_members(self['affectedMask'])} are not all in the resource set "
            f"(it has {_members(self['eligibleMask'])})"
        )


class NotEmergencyRole(_Sentence):
    """Raised when the proposer does not hold the resource set's emergency role."""

    error_name = "CoopChainNotEmergencyRole"

    def describe(self) -> str:
        return f"{self['proposer']} does not hold the resource set's emergency role"


class AlreadyRecorded(_Sentence):
    """Raised when a verification of this (emergency) proposal is already recorded."""

    error_name = "CoopChainAlreadyRecorded"

    def describe(self) -> str:
        return f"a verification of proposal {self['proposalId']} is already recorded"


class EmergencyNotCancelable(_Sentence):
    """Raised when the proposer tries to withdraw an emergency proposal.

    Only its ratification vote decides it; a cancel would hide the unratified alarm.
    """

    error_name = "CoopChainEmergencyNotCancelable"

    def describe(self) -> str:
        return (
            f"emergency proposal {self['proposalId']} cannot be withdrawn: only its "
            "ratification vote decides it"
        )


class WindowTooFarAhead(_Sentence):
    """Raised when the change window opens later than the resource set's ``maxLead`` allows."""

    error_name = "CoopChainWindowTooFarAhead"

    def describe(self) -> str:
        return (
            f"the change window opens at {iso(self['windowStart'])}, later than the "
            f"resource set allows (at the latest {iso(self['latestStart'])})"
        )


class GovernanceNotRecordable(_Sentence):
    """Raised when a verification is recorded for a governance proposal (it is executed)."""

    error_name = "CoopChainGovernanceNotRecordable"

    def describe(self) -> str:
        return (
            f"proposal {self['proposalId']} is a governance proposal: it is executed, "
            "never recorded as verified"
        )


class InvalidSupport(_Sentence):
    """Raised when a vote's support is not a VoteType (0 Approve, 1 Reject, 2 Abstain)."""

    error_name = "CoopChainInvalidSupport"

    def describe(self) -> str:
        return f"{self['support']} is not a vote (0 approve, 1 reject, 2 abstain)"


class InvalidRunId(_Sentence):
    """Raised when an apply claim carries the zero run ID (zero means "no run")."""

    error_name = "CoopChainInvalidRunId"

    def describe(self) -> str:
        return "the run ID is zero: an apply claim needs a random, non-zero run ID"


class OutsideChangeWindow(_Sentence):
    """Raised when an apply is claimed outside the change window [windowStart, windowEnd].

    Devices are pushed only inside the window (the record grace does not apply to them).
    """

    error_name = "CoopChainOutsideChangeWindow"

    def describe(self) -> str:
        return (
            f"the chain's time {iso(self['blockTimestamp'])} is outside proposal "
            f"{self['proposalId']}'s change window, {iso(self['windowStart'])} to "
            f"{iso(self['windowEnd'])}: no device may be pushed now"
        )


class ApplyClaimed(_Sentence):
    """Raised when another run (another state directory or machine) holds the apply claim of
    the proposal: this run touched no device.

    Attributes:
        proposal_id: the proposal number.
        current_run: the run ID holding the claim (``0x…``, 32 bytes); zero when a take-over
            named a previous run but nobody holds the claim.
    """

    error_name = "CoopChainApplyClaimed"

    @property
    def proposal_id(self) -> int:
        """The proposal number."""
        return int(self["proposalId"])

    @property
    def current_run(self) -> str:
        """The run ID holding the claim (``0x``-prefixed 32-byte hex)."""
        return "0x" + bytes(self["currentRun"]).hex()

    def describe(self) -> str:
        if not any(bytes(self["currentRun"])):
            return (
                f"proposal {self['proposalId']} is not claimed by any run, so there is no run to "
                "take over: claim it without a previous run; no device was touched"
            )
        return (
            f"proposal {self['proposalId']} is being applied by another run ({self.current_run}): "
            "no device was touched"
        )


CONTRACT_ERRORS: tuple[type[ContractError], ...] = tuple(_Sentence.__subclasses__())

_ERROR_STRING = function_signature_to_4byte_selector("Error(string)")
_PANIC = function_signature_to_4byte_selector("Panic(uint256)")


def _abi_type(component: dict[str, object]) -> str:
    return str(component["type"])


@cache
def _selectors() -> dict[bytes, tuple[type[ContractError], tuple[str, ...], tuple[str, ...]]]:
    by_name = {cls.error_name: cls for cls in CONTRACT_ERRORS}
    table: dict[bytes, tuple[type[ContractError], tuple[str, ...], tuple[str, ...]]] = {}
    for entry in load_artifact("CoopChain").abi:
        if entry.get("type") != "error":
            continue
        inputs = entry.get("inputs", [])
        types = tuple(_abi_type(item) for item in inputs)
        names = tuple(str(item["name"]) for item in inputs)
        signature = f"{entry['name']}({','.join(types)})"
        table[function_signature_to_4byte_selector(signature)] = (
            by_name[str(entry["name"])],
            types,
            names,
        )
    return table


def decode_revert(data: bytes | None, *, tx_hash: str | None = None) -> TransactionReverted:
    """Turn revert data into the matching exception (not raised, returned).

    Arguments:
        data: the revert data returned by the node (selector + ABI-encoded arguments).
        tx_hash: the transaction that reverted, if any, for the message.

    Returns:
        An instance of the matching :class:`ContractError` subclass (``address`` arguments
        in checksum form), or a plain :class:`TransactionReverted` for ``Error(string)``,
        ``Panic`` and unknown data.
    """
    if not data:
        return TransactionReverted("reverted without a reason", tx_hash=tx_hash)
    selector, payload = bytes(data[:4]), bytes(data[4:])
    known = _selectors().get(selector)
    if known is not None:
        cls, types, names = known
        values = [
            to_checksum_address(value) if abi_type == "address" else value
            for abi_type, value in zip(types, decode(list(types), payload), strict=True)
        ]
        return cls(dict(zip(names, values, strict=True)), tx_hash=tx_hash)
    if selector == _ERROR_STRING:
        (reason,) = decode(["string"], payload)
        return TransactionReverted(f"reverted: {reason}", tx_hash=tx_hash)
    if selector == _PANIC:
        (code,) = decode(["uint256"], payload)
        return TransactionReverted(f"panicked with code {code:#x}", tx_hash=tx_hash)
    return TransactionReverted(f"reverted with unknown data 0x{bytes(data).hex()}", tx_hash=tx_hash)
