"""One Python exception per custom error of the CoopChain contract, and revert decoding.

Every class here derives from :class:`~nornir_coopchain.exceptions.ContractError`; its
``args_by_name`` holds the Solidity error's arguments by their ABI names. Argument types come
from the compiled ABI, so the classes cannot drift from the contract (a test checks that
each ABI error has exactly one class here). ``address`` arguments are checksummed.
"""

from __future__ import annotations

from functools import cache

from eth_abi.abi import decode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from nornir_coopchain.chain.artifacts import load_artifact
from nornir_coopchain.exceptions import ContractError, TransactionReverted

__all__ = [
    "CONTRACT_ERRORS",
    "AlreadyRecorded",
    "AlreadyVoted",
    "ContentHashMismatch",
    "DeviceCountMismatch",
    "EmergencyNotCancelable",
    "GovernanceCallFailed",
    "InvalidAffectedMask",
    "InvalidMember",
    "InvalidNonce",
    "InvalidResourceSet",
    "InvalidSignature",
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
    "OutsideWindow",
    "UnexpectedProposalState",
    "UnknownResourceSet",
    "VotingClosed",
    "decode_revert",
]


class NotMember(ContractError):
    """Raised when the caller or signer is not a member."""

    error_name = "CoopChainNotMember"


class NotEligible(ContractError):
    """Raised when the member may not vote on this proposal (not in its snapshotted electorate)."""

    error_name = "CoopChainNotEligible"


class AlreadyVoted(ContractError):
    """Raised when the member already voted on this proposal."""

    error_name = "CoopChainAlreadyVoted"


class UnexpectedProposalState(ContractError):
    """Raised when the proposal is not in one of the expected states.

    ``expectedStates`` is a bitmap over ProposalState.
    """

    error_name = "CoopChainUnexpectedProposalState"


class VotingClosed(ContractError):
    """Raised when the voting deadline has passed."""

    error_name = "CoopChainVotingClosed"


class InvalidSignature(ContractError):
    """Raised when a signature does not recover to (or is not accepted by) the expected signer."""

    error_name = "CoopChainInvalidSignature"


class MalleableSignature(ContractError):
    """Raised when an ECDSA signature with s in the upper half of the curve order (malleable)."""

    error_name = "CoopChainMalleableSignature"


class InvalidNonce(ContractError):
    """Raised when the proposal nonce is not the proposer's current one."""

    error_name = "CoopChainInvalidNonce"


class ContentHashMismatch(ContractError):
    """Raised when keccak256(content) differs from the request's contentHash."""

    error_name = "CoopChainContentHashMismatch"


class InvalidWindow(ContractError):
    """Raised when the change window is empty, past, or longer than the resource set allows."""

    error_name = "CoopChainInvalidWindow"


class InvalidTimestamp(ContractError):
    """Raised when createdAt lies in the future."""

    error_name = "CoopChainInvalidTimestamp"


class UnknownResourceSet(ContractError):
    """Raised when no resource set with this ID."""

    error_name = "CoopChainUnknownResourceSet"


class InvalidResourceSet(ContractError):
    """Raised when a resource set configuration is inconsistent (field names the problem)."""

    error_name = "CoopChainInvalidResourceSet"


class InvalidMember(ContractError):
    """Raised when a member entry is invalid.

    (Zero account, duplicate account or operator ID, zero weight, too many members.)
    """

    error_name = "CoopChainInvalidMember"


class NotProposerOrExecutor(ContractError):
    """Raised when the caller is neither the proposer nor its named executor."""

    error_name = "CoopChainNotProposerOrExecutor"


class NotProposer(ContractError):
    """Raised when the caller is not the proposer."""

    error_name = "CoopChainNotProposer"


class OutsideWindow(ContractError):
    """Raised when now is outside [windowStart, windowEnd + recordGrace]."""

    error_name = "CoopChainOutsideWindow"


class DeviceCountMismatch(ContractError):
    """Raised when the device counts of a verification record do not add up to the proposal's."""

    error_name = "CoopChainDeviceCountMismatch"


class OnlyGovernance(ContractError):
    """Raised when a function only the contract itself may call is called from outside.

    Such functions run only through an executed governance proposal.
    """

    error_name = "CoopChainOnlyGovernance"


class GovernanceCallFailed(ContractError):
    """Raised when a governance call made by an executed proposal reverted."""

    error_name = "CoopChainGovernanceCallFailed"


class NotGovernanceProposal(ContractError):
    """Raised when the proposal does not belong to the governance resource set."""

    error_name = "CoopChainNotGovernanceProposal"


class InvalidAffectedMask(ContractError):
    """Raised when the affected-members mask names members outside the resource set."""

    error_name = "CoopChainInvalidAffectedMask"


class NotEmergencyRole(ContractError):
    """Raised when the proposer does not hold the resource set's emergency role."""

    error_name = "CoopChainNotEmergencyRole"


class AlreadyRecorded(ContractError):
    """Raised when a verification of this (emergency) proposal is already recorded."""

    error_name = "CoopChainAlreadyRecorded"


class EmergencyNotCancelable(ContractError):
    """Raised when the proposer tries to withdraw an emergency proposal.

    Only its ratification vote decides it; a cancel would hide the unratified alarm.
    """

    error_name = "CoopChainEmergencyNotCancelable"


CONTRACT_ERRORS: tuple[type[ContractError], ...] = tuple(
    cls for cls in ContractError.__subclasses__() if cls.__module__ == __name__
)

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
