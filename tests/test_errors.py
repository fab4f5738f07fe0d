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
    assert str(exc) == f"CoopChainNotMember(account='{CHECKSUMMED}') (tx 0x01)"
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
    assert str(exc) == f"CoopChainInvalidNonce(proposer='{CHECKSUMMED}', expected=3, given=2)"

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
