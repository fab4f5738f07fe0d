// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// Test-only contract for the chain-layer tests (compiled by the command in Probe.json).
/// Its error has the same signature as ICoopChain's CoopChainNotMember(address).
contract Probe {
    error CoopChainNotMember(address account);

    event Pinged(uint256 indexed seq, address indexed sender, bytes32 note);

    uint256 public count;

    constructor(uint256 start) {
        count = start;
    }

    function ping(bytes32 note) external returns (uint256) {
        count += 1;
        emit Pinged(count, msg.sender, note);
        return count;
    }

    function denied() external view returns (uint256) {
        revert CoopChainNotMember(msg.sender);
    }

    function deny() external {
        count += 1;
        revert CoopChainNotMember(msg.sender);
    }

    function fail(string calldata reason) external pure {
        revert(reason);
    }
}
