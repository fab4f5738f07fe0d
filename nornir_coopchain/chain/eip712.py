"""EIP-712 typed data of the CoopChain contract: signed proposal requests and ballots.

An emergency declaration (break-glass) signs the same request fields under another type
name, ``EmergencyProposal``: an ordinary signed request cannot be relayed as an emergency one.

The domain binds every signature to one chain ID and one contract address, so a signature
cannot be replayed on another chain or another deployment.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address

from nornir_coopchain.chain.models import BallotMessage, KeyRotationMessage, ProposalRequest
from nornir_coopchain.model.hashing import keccak

__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "ballot_digest",
    "emergency_proposal_digest",
    "key_rotation_digest",
    "proposal_digest",
    "recover_ballot_signer",
    "sign_ballot",
    "sign_emergency_proposal",
    "sign_key_rotation",
    "sign_proposal",
]

DOMAIN_NAME = "CoopChain"
DOMAIN_VERSION = "1"

_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_PROPOSAL_TYPE = [
    {"name": "resourceSet", "type": "bytes32"},
    {"name": "proposer", "type": "address"},
    {"name": "contentHash", "type": "bytes32"},
    {"name": "manifestRoot", "type": "bytes32"},
    {"name": "deviceCount", "type": "uint32"},
    {"name": "affectedMask", "type": "uint32"},
    {"name": "windowStart", "type": "uint48"},
    {"name": "windowEnd", "type": "uint48"},
    {"name": "createdAt", "type": "uint48"},
    {"name": "executor", "type": "address"},
    {"name": "nonce", "type": "uint64"},
]
_KEY_ROTATION_TYPE = [
    {"name": "member", "type": "uint8"},
    {"name": "oldAccount", "type": "address"},
    {"name": "newAccount", "type": "address"},
]
_BALLOT_TYPE = [
    {"name": "proposalId", "type": "uint256"},
    {"name": "voter", "type": "address"},
    {"name": "support", "type": "uint8"},
]


def _domain(chain_id: int, contract: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(contract),
    }


def _proposal_message(
    chain_id: int, contract: str, request: ProposalRequest, *, emergency: bool = False
) -> dict[str, Any]:
    primary = "EmergencyProposal" if emergency else "Proposal"
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, primary: _PROPOSAL_TYPE},
        "primaryType": primary,
        "domain": _domain(chain_id, contract),
        "message": request.eip712_message(),
    }


def _ballot_message(chain_id: int, contract: str, ballot: BallotMessage) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, "Ballot": _BALLOT_TYPE},
        "primaryType": "Ballot",
        "domain": _domain(chain_id, contract),
        "message": {
            "proposalId": ballot.proposal_id,
            "voter": ballot.voter,
            "support": int(ballot.support),
        },
    }


def _key_rotation_message(
    chain_id: int, contract: str, rotation: KeyRotationMessage
) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, "KeyRotation": _KEY_ROTATION_TYPE},
        "primaryType": "KeyRotation",
        "domain": _domain(chain_id, contract),
        "message": {
            "member": rotation.member,
            "oldAccount": rotation.old_account,
            "newAccount": rotation.new_account,
        },
    }


def _digest(message: dict[str, Any]) -> bytes:
    signable = encode_typed_data(full_message=message)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def proposal_digest(chain_id: int, contract: str, request: ProposalRequest) -> bytes:
    """The EIP-712 digest the proposer signs (what the contract recovers against)."""
    return _digest(_proposal_message(chain_id, contract, request))


def emergency_proposal_digest(chain_id: int, contract: str, request: ProposalRequest) -> bytes:
    """The EIP-712 digest a proposer signs to declare an emergency (``EmergencyProposal``)."""
    return _digest(_proposal_message(chain_id, contract, request, emergency=True))


def ballot_digest(chain_id: int, contract: str, ballot: BallotMessage) -> bytes:
    """The EIP-712 digest a voter signs for one ballot."""
    return _digest(_ballot_message(chain_id, contract, ballot))


def key_rotation_digest(chain_id: int, contract: str, rotation: KeyRotationMessage) -> bytes:
    """The EIP-712 digest the new key signs to consent to a rotation (``KeyRotation``)."""
    return _digest(_key_rotation_message(chain_id, contract, rotation))


def sign_key_rotation(
    account: LocalAccount, chain_id: int, contract: str, rotation: KeyRotationMessage
) -> bytes:
    """Sign a rotation as the new key (or, for a contract wallet, as a key the wallet accepts
    through EIP-1271); returns the 65-byte signature (r, s, v)."""
    message = _key_rotation_message(chain_id, contract, rotation)
    return bytes(account.sign_typed_data(full_message=message).signature)


def sign_proposal(
    account: LocalAccount, chain_id: int, contract: str, request: ProposalRequest
) -> bytes:
    """Sign a proposal request as its proposer; returns the 65-byte signature (r, s, v)."""
    signed = account.sign_typed_data(full_message=_proposal_message(chain_id, contract, request))
    return bytes(signed.signature)


def sign_emergency_proposal(
    account: LocalAccount, chain_id: int, contract: str, request: ProposalRequest
) -> bytes:
    """Sign a request as an emergency declaration (``EmergencyProposal``); 65 bytes (r, s, v)."""
    message = _proposal_message(chain_id, contract, request, emergency=True)
    return bytes(account.sign_typed_data(full_message=message).signature)


def sign_ballot(
    account: LocalAccount, chain_id: int, contract: str, ballot: BallotMessage
) -> bytes:
    """Sign a ballot as its voter; returns the 65-byte signature (r, s, v)."""
    signed = account.sign_typed_data(full_message=_ballot_message(chain_id, contract, ballot))
    return bytes(signed.signature)


def recover_ballot_signer(
    chain_id: int, contract: str, ballot: BallotMessage, signature: bytes
) -> ChecksumAddress:
    """The address that signed a ballot (for checking offline ballots before submitting)."""
    signable = encode_typed_data(full_message=_ballot_message(chain_id, contract, ballot))
    return to_checksum_address(Account.recover_message(signable, signature=signature))
