"""decode_revert: revert data to typed exceptions, and the naming of the exception classes.

The ABI coverage of CONTRACT_ERRORS (one class per Solidity error) is checked in
tests/test_artifacts.py.
"""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from nornir_coopchain.chain import errors
from nornir_coopchain.exceptions import ContractError, TransactionReverted
from nornir_coopchain.model.rules import ProposalState

ACCOUNT = "0x52908400098527886e0f7030069857d2e4169ee7"  # EIP-55 test vector, all lower case
CHECKSUMMED = "0x52908400098527886E0F7030069857D2E4169EE7"


def _revert(signature: str, types: list[str], values: list[object]) -> bytes:
    return function_signature_to_4byte_selector(signature) + encode(types, values)


def test_address_arguments_are_checksummed() -> None:
    data = _revert("CoopChainNotMember(address)", ["address"], [ACCOUNT])
    exc = errors.decode_revert(data, tx_hash="0x01")
    assert isinstance(exc, errors.NotMember)
    assert exc.args_by_name == {"account": CHECKSUMMED}
    assert exc.args_by_name["account"] == to_checksum_address(ACCOUNT)
    assert str(exc) == f"{CHECKSUMMED} is not a member's current key (tx 0x01)"
    assert exc.tx_hash == "0x01"


def test_other_arguments_are_kept_as_decoded() -> None:
    data = _revert(
        "CoopChainInvalidNonce(address,uint64,uint64)",
        ["address", "uint64", "uint64"],
        [ACCOUNT, 3, 2],
    )
    exc = errors.decode_revert(data)
    assert isinstance(exc, errors.InvalidNonce)
    assert exc.args_by_name == {"proposer": CHECKSUMMED, "expected": 3, "given": 2}
    assert str(exc) == (
        f"the request carries proposal nonce 2, but {CHECKSUMMED}'s current one is 3"
    )

    resource_set = b"\x01" * 32
    data = _revert(
        "CoopChainInvalidResourceSet(bytes32,string)", ["bytes32", "string"], [resource_set, "q"]
    )
    exc = errors.decode_revert(data)
    assert isinstance(exc, errors.InvalidResourceSet)
    assert exc.args_by_name == {"resourceSet": resource_set, "field": "q"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "reverted without a reason"),
        (_revert("Error(string)", ["string"], ["no"]), "reverted: no"),
        (_revert("Panic(uint256)", ["uint256"], [0x11]), "panicked with code 0x11"),
        (bytes.fromhex("deadbeef"), "reverted with unknown data 0xdeadbeef"),
    ],
)
def test_other_reverts_stay_plain(data: bytes | None, message: str) -> None:
    exc = errors.decode_revert(data)
    assert type(exc) is TransactionReverted
    assert str(exc) == message


def test_error_classes_are_named_after_the_contract() -> None:
    names = [cls.error_name for cls in errors.CONTRACT_ERRORS]
    assert len(errors.CONTRACT_ERRORS) > 0
    assert len(names) == len(set(names))
    for cls in errors.CONTRACT_ERRORS:
        assert issubclass(cls, ContractError)
        assert cls.error_name.startswith("CoopChain"), cls
        assert cls.error_name == f"CoopChain{cls.__name__}", cls
        assert cls.__name__ in errors.__all__


def _bitmap(*states: ProposalState) -> bytes:
    return sum(1 << state for state in states).to_bytes(32, "big")


NOON = 1_796_472_000  # 2026-12-05T12:00:00Z


@pytest.mark.parametrize(
    ("signature", "types", "values", "message"),
    [
        (
            "CoopChainUnexpectedProposalState(uint256,uint8,bytes32)",
            ["uint256", "uint8", "bytes32"],
            [7, ProposalState.VerificationFailed, _bitmap(ProposalState.Approved)],
            "proposal 7 is VerificationFailed; this needs it Approved",
        ),
        (
            "CoopChainUnexpectedProposalState(uint256,uint8,bytes32)",
            ["uint256", "uint8", "bytes32"],
            [9, ProposalState.NONE, _bitmap(ProposalState.Approved, ProposalState.Rejected)],
            "there is no proposal 9 (this needs one that is Rejected or Approved)",
        ),
        (
            "CoopChainOutsideWindow(uint256,uint48,uint48,uint48)",
            ["uint256", "uint48", "uint48", "uint48"],
            [3, NOON, NOON + 3600, NOON + 7200],
            "the chain's time 2026-12-05T14:00:00+00:00 is outside proposal 3's window, "
            "2026-12-05T12:00:00+00:00 to 2026-12-05T13:00:00+00:00",
        ),
        (
            "CoopChainInvalidWindow(uint48,uint48,uint32)",
            ["uint48", "uint48", "uint32"],
            [NOON, NOON + 86_400, 4 * 3600],
            "the change window 2026-12-05T12:00:00+00:00 to 2026-12-06T12:00:00+00:00 is "
            "empty, already over, longer than the 4h the resource set allows, or (for an "
            "emergency) not open yet",
        ),
        (
            "CoopChainVotingClosed(uint256,uint48)",
            ["uint256", "uint48"],
            [4, NOON],
            "voting on proposal 4 closed at 2026-12-05T12:00:00+00:00",
        ),
        (
            "CoopChainWindowTooFarAhead(uint48,uint48)",
            ["uint48", "uint48"],
            [NOON + 10 * 365 * 86_400, NOON],
            "the change window opens at 2036-12-02T12:00:00+00:00, later than the resource "
            "set allows (at the latest 2026-12-05T12:00:00+00:00)",
        ),
        (
            "CoopChainInvalidAffectedMask(uint32,uint32)",
            ["uint32", "uint32"],
            [0b1001, 0b0011],
            "the affected members 0, 3 are not all in the resource set (it has members 0, 1)",
        ),
        (
            "CoopChainGovernanceCallFailed(uint256,uint256,bytes)",
            ["uint256", "uint256", "bytes"],
            [
                5,
                1,
                _revert(
                    "CoopChainInvalidResourceSet(bytes32,string)",
                    ["bytes32", "string"],
                    [b"SITE".ljust(32, b"\0"), "maxLead"],
                ),
            ],
            "call 1 of governance proposal 5 failed: resource set 'SITE': its maxLead is invalid",
        ),
    ],
)
def test_errors_read_as_sentences_with_state_names_and_iso_times(
    signature: str, types: list[str], values: list[object], message: str
) -> None:
    exc = errors.decode_revert(_revert(signature, types, values))
    assert isinstance(exc, ContractError)
    assert str(exc) == message


def test_every_contract_error_has_its_own_sentence() -> None:
    for cls in errors.CONTRACT_ERRORS:
        assert cls.describe is not ContractError.describe, cls
