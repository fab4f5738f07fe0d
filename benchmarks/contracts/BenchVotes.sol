// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// BENCHMARK ONLY (benchmarks/gas.py): the peer an operator would otherwise deploy, an
// OpenZeppelin Governor with a votes token, and the naive per-device evidence store.

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {Governor} from "@openzeppelin/contracts/governance/Governor.sol";
import {GovernorSettings} from "@openzeppelin/contracts/governance/extensions/GovernorSettings.sol";
import {GovernorCountingSimple} from "@openzeppelin/contracts/governance/extensions/GovernorCountingSimple.sol";
import {GovernorVotes} from "@openzeppelin/contracts/governance/extensions/GovernorVotes.sol";
import {GovernorVotesQuorumFraction} from
    "@openzeppelin/contracts/governance/extensions/GovernorVotesQuorumFraction.sol";
import {IVotes} from "@openzeppelin/contracts/governance/utils/IVotes.sol";

/// @dev One vote per operator: each holder gets 1 token and delegates it to itself.
contract BenchVotesToken is ERC20, ERC20Permit, ERC20Votes {
    constructor(address[] memory holders) ERC20("Bench Votes", "BVOTE") ERC20Permit("Bench Votes") {
        for (uint256 i = 0; i < holders.length; ++i) {
            _mint(holders[i], 1e18);
        }
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}

/// @dev The OpenZeppelin Wizard's Governor: settings, simple counting, token votes, quorum.
contract BenchGovernor is
    Governor,
    GovernorSettings,
    GovernorCountingSimple,
    GovernorVotes,
    GovernorVotesQuorumFraction
{
    constructor(IVotes token)
        Governor("BenchGovernor")
        GovernorSettings(1, 50400, 0)
        GovernorVotes(token)
        GovernorVotesQuorumFraction(4)
    {}

    function proposalThreshold() public view override(Governor, GovernorSettings) returns (uint256) {
        return super.proposalThreshold();
    }
}

/// @dev The naive alternative to one evidence root: one stored entry per device.
contract PerDeviceEvidence {
    mapping(bytes32 device => bytes32 evidence) public evidenceOf;

    function store(bytes32[] calldata devices, bytes32[] calldata evidence) external {
        for (uint256 i = 0; i < devices.length; ++i) {
            evidenceOf[devices[i]] = evidence[i];
        }
    }
}
