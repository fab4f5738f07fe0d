// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @title ICoopChain
 * @dev Interface of the consortium change contract: operators (members) that jointly own
 * shared equipment (resource sets) propose configuration changes, vote on them under a
 * preset aggregation rule, and record the verification of an applied change as evidence.
 *
 * Member identity is its index (0..31); its account (key) may rotate. Weights and the
 * electorate are snapshotted when a proposal is created. Storage keeps hashes only; the
 * full proposal content travels in the `propose` (or `declareEmergency`) calldata.
 *
 * Break-glass: a member holding a resource set's emergency role may declare an emergency
 * change (`declareEmergency`), which is flagged as such on chain at once and may be applied
 * and recorded while it is still being voted on. It is ratified by the normal vote under
 * the normal rule by its voting deadline; a rejected (or timed-out) emergency proposal stays
 * Rejected with its record: unratified, an alarm, never an automatic revert.
 *
 * Applying: before it pushes any device, a run (one `coopchain apply` of the proposer or the
 * executor, named by a random run ID) claims the proposal with `claimApply`, a compare-and-swap
 * on the proposal's `applyRun`: a second run (another state directory, another machine) is
 * refused before it touches a device, as Governor marks a proposal executed before its calls.
 */
interface ICoopChain {
    /// @dev The life cycle of a proposal. `Expired` and the verdict after the deadline are derived.
    enum ProposalState {
        None, // no such proposal
        Active, // voting open (an emergency proposal may already be recorded)
        Rejected, // verdict: did not pass (an emergency proposal: unratified)
        Approved, // verdict: passed; may be applied inside its window
        Canceled, // withdrawn by its proposer before a record
        Expired, // approved, but no record by window end + grace
        Verified, // applied and verified on every device (an emergency proposal: once ratified)
        VerificationFailed, // applied, at least one device failed verification (emergency: once ratified)
        Executed // governance proposal whose calls were executed
    }

    /// @dev The preset aggregation rule of a resource set.
    enum AggregationRule {
        Unanimous, // every eligible voter votes, none rejects, at least one approves
        SimpleMajority, // approvals > rejections (abstentions neutral), quorum met
        Supermajority, // approvals >= thresholdBps of approvals + rejections, quorum met
        WeightedThreshold // approving weight >= thresholdBps of the electorate's total weight
    }

    /// @dev A vote's direction.
    enum VoteType {
        Approve,
        Reject,
        Abstain
    }

    /// @dev A member of the consortium (the patent's participant).
    struct Member {
        address account; // the key that speaks for the member now
        bytes32 operatorId; // participant ID, e.g. bytes32("OPERATOR-A")
        uint16 weight; // voting weight (0 = removed)
    }

    /// @dev A group of shared equipment and the rule its co-owners agreed on.
    struct ResourceSetConfig {
        AggregationRule rule;
        uint16 thresholdBps; // Supermajority / WeightedThreshold threshold (1..10000)
        uint16 quorumBps; // participation quorum in units of the rule (0..10000)
        uint32 eligibleMask; // bit i set: member i may vote
        uint32 vetoMask; // bit i set: a rejection by member i rejects the proposal
        uint32 votingPeriod; // seconds from creation to the voting deadline
        uint32 maxWindow; // longest change window allowed, in seconds
        uint32 recordGrace; // seconds after window end in which a record is still accepted
        bool proposerVotes; // false (two-person rule): the proposer is not in the electorate
        bool affectedMustApprove; // every member in a proposal's affectedMask must approve
        uint32 emergencyMask; // bit i set: member i may declare an emergency change (subset of eligibleMask)
        uint32 maxLead; // how far ahead of the proposal's block a window may open, in seconds (> 0)
    }

    /// @dev What a proposer signs (EIP-712 `Proposal`) and anyone may relay.
    struct ProposalRequest {
        bytes32 resourceSet;
        address proposer;
        bytes32 contentHash; // keccak256 of the canonical content passed as calldata
        bytes32 manifestRoot; // Merkle root of the per-device entries
        uint32 deviceCount;
        uint32 affectedMask; // members whose tenancy the change touches
        uint48 windowStart;
        uint48 windowEnd;
        uint48 createdAt; // proposer's timestamp; not in the future
        address executor; // may record the verification besides the proposer (0 = none)
        uint64 nonce; // the proposer's proposal nonce (see proposalNonce)
    }

    /// @dev A vote signed off chain (EIP-712 `Ballot(uint256 proposalId,address voter,uint8 support)`).
    /// `support` is a VoteType; it is taken as uint256 so that any other value gets a named error.
    struct Ballot {
        uint256 proposalId;
        address voter;
        uint256 support;
        bytes signature; // 65-byte ECDSA, or anything the voter's EIP-1271 wallet accepts
    }

    /// @dev A proposal's on-chain summary (hashes and packed fields only). `rule`, `thresholdBps`
    /// and `quorumBps` are the resource set's when the proposal was created: they decide its verdict
    /// whatever `configureResourceSet` changed since (see `resourceSet` for the set's current ones).
    struct ProposalView {
        ProposalState state;
        bytes32 resourceSet;
        uint8 proposerIndex;
        address executor;
        bytes32 contentHash;
        bytes32 manifestRoot;
        uint32 deviceCount;
        uint32 electorateMask;
        uint32 vetoMask;
        uint32 requiredMask;
        uint32 votedMask;
        uint32 approveUnits;
        uint32 rejectUnits;
        uint32 abstainUnits;
        uint32 totalUnits;
        uint48 createdAt;
        uint48 voteEnd;
        uint48 windowStart;
        uint48 windowEnd;
        uint48 recordDeadline;
        bytes32 evidenceRoot; // zero until a verification is recorded
        bool emergency; // declared with declareEmergency (break-glass)
        bytes32 applyRun; // the run that claimed the apply (claimApply); zero until claimed
        AggregationRule rule; // the aggregation rule snapshotted at creation (decides the verdict)
        uint16 thresholdBps; // the threshold snapshotted at creation (Supermajority / WeightedThreshold)
        uint16 quorumBps; // the participation quorum snapshotted at creation
    }

    // ---------------------------------------------------------------- errors

    /// @dev The caller or signer is not a member.
    error CoopChainNotMember(address account);
    /// @dev The member may not vote on this proposal (not in its snapshotted electorate).
    error CoopChainNotEligible(uint256 proposalId, address voter);
    /// @dev The member already voted on this proposal.
    error CoopChainAlreadyVoted(uint256 proposalId, address voter);
    /// @dev The proposal is not in one of the expected states (a bitmap over ProposalState).
    error CoopChainUnexpectedProposalState(uint256 proposalId, ProposalState current, bytes32 expectedStates);
    /// @dev The voting deadline has passed.
    error CoopChainVotingClosed(uint256 proposalId, uint48 voteEnd);
    /// @dev A signature does not recover to (or is not accepted by) the expected signer.
    error CoopChainInvalidSignature(address expectedSigner);
    /// @dev An ECDSA signature with s in the upper half of the curve order (malleable).
    error CoopChainMalleableSignature(bytes32 s);
    /// @dev The proposal nonce is not the proposer's current one.
    error CoopChainInvalidNonce(address proposer, uint64 expected, uint64 given);
    /// @dev keccak256(content) differs from the request's contentHash.
    error CoopChainContentHashMismatch(bytes32 expected, bytes32 actual);
    /// @dev The change window is empty, in the past, or longer than the resource set allows.
    error CoopChainInvalidWindow(uint48 windowStart, uint48 windowEnd, uint32 maxWindow);
    /// @dev createdAt lies in the future.
    error CoopChainInvalidTimestamp(uint48 createdAt, uint48 blockTimestamp);
    /// @dev No resource set with this ID.
    error CoopChainUnknownResourceSet(bytes32 resourceSet);
    /// @dev A resource set configuration is inconsistent (field names the problem).
    error CoopChainInvalidResourceSet(bytes32 resourceSet, string field);
    /// @dev A member entry is invalid (zero account, an account that is or ever was a member's key,
    /// duplicate operator ID, zero weight, too many members).
    error CoopChainInvalidMember(address account, bytes32 operatorId, string field);
    /// @dev The caller is neither the proposer nor its named executor.
    error CoopChainNotProposerOrExecutor(uint256 proposalId, address caller);
    /// @dev The caller is not the proposer.
    error CoopChainNotProposer(uint256 proposalId, address caller);
    /// @dev Now is outside [windowStart, windowEnd + recordGrace].
    error CoopChainOutsideWindow(uint256 proposalId, uint48 windowStart, uint48 recordDeadline, uint48 blockTimestamp);
    /// @dev The device counts of a verification record do not add up to the proposal's.
    error CoopChainDeviceCountMismatch(uint256 proposalId, uint32 expected, uint32 given);
    /// @dev A function only the contract itself may call (through an executed governance proposal).
    error CoopChainOnlyGovernance(address caller);
    /// @dev A governance call made by an executed proposal reverted.
    error CoopChainGovernanceCallFailed(uint256 proposalId, uint256 index, bytes reason);
    /// @dev The proposal does not belong to the governance resource set.
    error CoopChainNotGovernanceProposal(uint256 proposalId);
    /// @dev The affected-members mask names non-members or members outside the resource set.
    error CoopChainInvalidAffectedMask(uint32 affectedMask, uint32 eligibleMask);
    /// @dev The proposer does not hold the resource set's emergency role.
    error CoopChainNotEmergencyRole(address proposer);
    /// @dev A verification of this (emergency) proposal is already recorded.
    error CoopChainAlreadyRecorded(uint256 proposalId);
    /// @dev An emergency proposal cannot be withdrawn: only its ratification vote decides it.
    error CoopChainEmergencyNotCancelable(uint256 proposalId);
    /// @dev The change window opens later than the resource set's maxLead after the proposal's block.
    error CoopChainWindowTooFarAhead(uint48 windowStart, uint48 latestStart);
    /// @dev A governance proposal is executed (executeGovernance), never recorded as verified.
    error CoopChainGovernanceNotRecordable(uint256 proposalId);
    /// @dev A vote's support is not a VoteType (0 Approve, 1 Reject, 2 Abstain).
    error CoopChainInvalidSupport(uint256 support);
    /// @dev A claim's run ID is zero (zero means "no run" in `applyRun`).
    error CoopChainInvalidRunId(bytes32 runId);
    /// @dev Now is outside the change window [windowStart, windowEnd]: no device may be pushed
    /// (the record grace does not apply).
    error CoopChainOutsideChangeWindow(uint256 proposalId, uint48 windowStart, uint48 windowEnd, uint48 blockTimestamp);
    /// @dev Another run holds the apply claim of this proposal (`currentRun`; zero when there is no
    /// claim to take over): the caller must not push any device.
    error CoopChainApplyClaimed(uint256 proposalId, bytes32 currentRun);

    // ---------------------------------------------------------------- events

    /// @dev A member was added (at deployment or by governance).
    event MemberAdded(uint8 indexed index, address indexed account, bytes32 operatorId, uint16 weight);
    /// @dev A member's weight changed (0 = removed). New proposals use the new weight.
    event MemberWeightChanged(uint8 indexed index, uint16 oldWeight, uint16 newWeight);
    /// @dev A member moved to a new key.
    event MemberKeyRotated(uint8 indexed index, address indexed oldAccount, address indexed newAccount);
    /// @dev A resource set was created or reconfigured. New proposals use the new config.
    event ResourceSetConfigured(bytes32 indexed resourceSet, ResourceSetConfig config);
    /// @dev A proposal was created; its full content is the `content` calldata of this transaction.
    event ProposalCreated(
        uint256 indexed proposalId,
        bytes32 indexed resourceSet,
        address indexed proposer,
        bytes32 operatorId,
        bytes32 contentHash,
        bytes32 manifestRoot,
        uint32 deviceCount,
        uint48 windowStart,
        uint48 windowEnd,
        uint48 voteEnd,
        uint32 electorateMask
    );
    /// @dev A proposal was declared an emergency change (emitted with its ProposalCreated): it may be
    /// applied and recorded before the vote, and must be ratified by the normal rule by `ratifyBy`
    /// (its voting deadline).
    event EmergencyDeclared(uint256 indexed proposalId, uint48 ratifyBy);
    /// @dev A ballot in a castVotes batch was skipped: its member's vote on the proposal is already
    /// counted (e.g. the same ballot was submitted before). The rest of the batch is counted.
    event BallotSkipped(uint256 indexed proposalId, address indexed voter);
    /// @dev A member voted (directly or by ballot); `units` is what the vote counts for. The member is
    /// the one whose key `voter` was at the time (see MemberAdded and MemberKeyRotated).
    event VoteCast(uint256 indexed proposalId, address indexed voter, VoteType support, uint32 units);
    /// @dev The verdict, broadcast to all members: outcome is Approved or Rejected, with the tally.
    event VerdictReached(
        uint256 indexed proposalId, ProposalState outcome, uint32 approveUnits, uint32 rejectUnits, uint32 abstainUnits
    );
    /// @dev The verification of an applied change, recorded as evidence. `outcome` is the
    /// verification's (Verified or VerificationFailed); an emergency proposal recorded while
    /// still Active takes it as its state only once ratified.
    event VerificationRecorded(
        uint256 indexed proposalId,
        address indexed recorder,
        ProposalState outcome,
        bytes32 evidenceRoot,
        uint32 devicesOk,
        uint32 devicesFailed
    );
    /// @dev A run claimed the apply of a proposal before pushing any device. `previousRun` is the
    /// claim it replaced: zero for the first claim, else a take-over of an abandoned run.
    event ApplyClaimed(uint256 indexed proposalId, address indexed claimer, bytes32 runId, bytes32 previousRun);
    /// @dev The proposer withdrew the proposal.
    event ProposalCanceled(uint256 indexed proposalId);
    /// @dev A governance proposal's calls were executed.
    event GovernanceExecuted(uint256 indexed proposalId, uint256 calls);

    // ---------------------------------------------------------------- functions

    /// @notice Create a proposal from a request signed by its proposer (EIP-712 `Proposal`).
    /// @param request the signed request
    /// @param signature the proposer's signature over `request`
    /// @param content the canonical proposal content; keccak256(content) must equal request.contentHash
    /// @return proposalId the sequential proposal number
    function propose(ProposalRequest calldata request, bytes calldata signature, bytes calldata content)
        external
        returns (uint256 proposalId);

    /// @notice Declare an emergency change (break-glass) from a request signed by its proposer
    /// (EIP-712 `EmergencyProposal`, the same fields as `Proposal`). The checks and the snapshot
    /// are those of `propose`; in addition the proposer holds the resource set's emergency role
    /// and the change window is already open. The proposal is flagged emergency, may be recorded
    /// while still Active, and must be ratified by the normal vote by its voting deadline.
    /// @return proposalId the sequential proposal number
    function declareEmergency(ProposalRequest calldata request, bytes calldata signature, bytes calldata content)
        external
        returns (uint256 proposalId);

    /// @notice Vote directly as the calling member; `support` is a VoteType (taken as uint256
    /// so that any other value gets CoopChainInvalidSupport).
    function castVote(uint256 proposalId, uint256 support) external;

    /// @notice Submit signed ballots (any number, any proposals) in one transaction. A ballot
    /// whose member's vote is already counted is skipped (BallotSkipped); any other invalid
    /// ballot reverts the batch with its named error.
    function castVotes(Ballot[] calldata ballots) external;

    /// @notice Broadcast the verdict of a proposal whose voting period ended without early finality.
    function finalize(uint256 proposalId) external returns (ProposalState outcome);

    /// @notice Record the verification of an applied change (proposer or executor, approved,
    /// inside the window plus grace, once; never a governance proposal). An emergency proposal may also be recorded while
    /// still Active (voting goes on; it becomes Verified / VerificationFailed once ratified).
    function recordVerification(uint256 proposalId, bytes32 evidenceRoot, uint32 devicesOk, uint32 devicesFailed)
        external
        returns (ProposalState outcome);

    /// @notice Claim the apply of a proposal for the run `runId` before pushing any device: a
    /// compare-and-swap of the proposal's `applyRun` from `previousRun` (zero for the first claim;
    /// the current claim to take over an abandoned run) to `runId`. The caller, the states and
    /// the checks are those of {recordVerification}, but the block time must be inside the change
    /// window itself, [windowStart, windowEnd]. Claiming again with the current `runId` changes
    /// nothing (a resumed run); any other claim than from the current one reverts with
    /// CoopChainApplyClaimed. A record does not need a claim.
    function claimApply(uint256 proposalId, bytes32 runId, bytes32 previousRun) external;

    /// @notice Withdraw a proposal that is still Active or Approved (proposer only; never an emergency one).
    function cancel(uint256 proposalId) external;

    /// @notice Execute an approved governance proposal: `content` must hash to its contentHash
    /// and ABI-decode to `bytes[]` calls made on this contract.
    function executeGovernance(uint256 proposalId, bytes calldata content) external;

    /// @notice Move the caller's membership to a new key. `signature` is the new key's EIP-712
    /// `KeyRotation(uint8 member,address oldAccount,address newAccount)` signature (proof that
    /// the member holds it). An account that is or ever was a member's key is refused.
    function rotateKey(address newAccount, bytes calldata signature) external;

    /// @notice Add a member (governance only).
    function addMember(address account, bytes32 operatorId, uint16 weight) external;

    /// @notice Change a member's weight; 0 removes it from new proposals (governance only).
    function setMemberWeight(uint8 index, uint16 weight) external;

    /// @notice Create or reconfigure a resource set (governance only).
    function configureResourceSet(bytes32 resourceSet, ResourceSetConfig calldata config) external;

    /// @notice The derived state of a proposal.
    function state(uint256 proposalId) external view returns (ProposalState);

    /// @notice A proposal's stored summary, with its derived state.
    function proposal(uint256 proposalId) external view returns (ProposalView memory);

    /// @notice The number of proposals created so far (the last proposal ID).
    function proposalCount() external view returns (uint256);

    /// @notice All members, indexed by member index.
    function members() external view returns (Member[] memory);

    /// @notice The member index of an account; reverts with CoopChainNotMember if none.
    function memberIndex(address account) external view returns (uint8);

    /// @notice A resource set's configuration; reverts with CoopChainUnknownResourceSet if none.
    function resourceSet(bytes32 resourceSet) external view returns (ResourceSetConfig memory);

    /// @notice The nonce the proposer's next ProposalRequest must carry.
    function proposalNonce(address proposer) external view returns (uint64);

    /// @notice The ID of the resource set whose proposals govern the contract itself.
    function GOVERNANCE_SET() external view returns (bytes32);
}
