// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/**
 * @title MockERC1271Wallet
 * @dev Test-only contract wallet: accepts a hash (EIP-1271) that its owner EOA signed, unless
 * switched to refuse, and lets the owner make calls from the wallet's address.
 */
contract MockERC1271Wallet is IERC1271 {
    /// @dev The caller is not the owner.
    error MockWalletNotOwner(address caller);

    /// @notice The EOA whose signatures the wallet accepts.
    address public immutable owner;

    /// @notice Whether the wallet currently rejects every signature.
    bool public refuse;

    constructor(address owner_) {
        owner = owner_;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert MockWalletNotOwner(msg.sender);
        _;
    }

    /// @notice Make the wallet reject (true) or check (false) signatures.
    function setRefuse(bool refuse_) external onlyOwner {
        refuse = refuse_;
    }

    /// @notice Call `target` with `data` from the wallet; bubbles up a revert.
    function execute(address target, bytes calldata data) external onlyOwner returns (bytes memory result) {
        bool success;
        (success, result) = target.call(data);
        if (!success) {
            assembly ("memory-safe") {
                revert(add(result, 0x20), mload(result))
            }
        }
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(hash, signature);
        if (!refuse && err == ECDSA.RecoverError.NoError && signer == owner) return IERC1271.isValidSignature.selector;
        return 0xffffffff;
    }
}
