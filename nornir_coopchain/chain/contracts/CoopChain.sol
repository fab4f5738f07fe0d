// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

import {ICoopChain} from "./ICoopChain.sol";

/**
 * @title CoopChain
 * @dev Implementation of {ICoopChain}; the rules are stated in `docs/contract.md`.
 *
 * Storage is laid out for cheap votes. A proposal takes seven slots at creation:
 *
 * - `box` (the only slot a vote writes): voted mask, the three tallies, the stored status,
 *   the read-only fields a vote needs (deadline, rule, threshold, proposer, weights epoch) and a
 *   flags byte (emergency; recorded and failed, for an emergency recorded while Active). The
 *   status is non-zero from creation, so even the first vote is a non-zero to non-zero write.
 * - `snapshot`: electorate, veto and required masks, total units, quorum, device count,
 *   record grace and creation time; read by votes, never written after creation.
 * - `schedule`: executor and change window.
 * - `resourceSet`, `contentHash`, `manifestRoot` and `evidenceRoot`. The evidence slot is
 *   primed with a non-zero placeholder at creation so that a record is a non-zero to
 *   non-zero write; it reads as zero until a verification is recorded.
 *
 * An eighth slot, `applyRun`, is written by the first {claimApply} only (the run ID is random
 * 256-bit data: nothing packs with it, and a zero slot is "not claimed", so no flag is kept).
 *
 * Member weights live in 32 x uint16 words (two slots) per "weights epoch"; every weight change
 * writes a new epoch and a proposal keeps the epoch of its creation, so in-flight proposals are
 * never affected. The state of a proposal is derived (see {state}) from the stored status, the
 * deadline and the tally: `Expired` and the verdict after the deadline are never stored.
 *
 * Break-glass: an emergency proposal ({declareEmergency}) carries the emergency flag from
 * creation. A record while it is still Active leaves the status Active and sets the recorded
 * (and failed) flags; the approving verdict then stores Verified / VerificationFailed instead of
 * Approved. A rejecting verdict stores Rejected: "unratified" is derived (emergency and
 * Rejected), never stored twice.
 *
 * Signatures are EIP-712 in the domain {name: "CoopChain", version: "1", chainId, verifyingContract}.
 * The domain separator is cached as in OpenZeppelin's `EIP712` (rebuilt if the chain ID or the
 * address differ); that contract itself is not inherited because its ShortStrings errors would
 * enter this contract's ABI, whose errors must all be `CoopChain*` errors.
 *
 * A vote is checked in this order: support (a VoteType), member (current key), proposal Active,
 * deadline, electorate, already voted. A ballot's signature is checked after its support and
 * before the rest; in a batch, a ballot whose member already voted is skipped (BallotSkipped)
 * right after the member check, whatever the proposal's state.
 *
 * Keys: an account that ever was a member's key never serves a member again (AccountRecord's
 * `retired`), and a rotation carries the new key's EIP-712 `KeyRotation` signature, so a member
 * cannot take over another member's old (or current) key and its ballots.
 */
contract CoopChain is ICoopChain {
    /// @inheritdoc ICoopChain
    bytes32 public constant GOVERNANCE_SET = bytes32("coopchain.governance");

    /// @dev EIP-712 type hash of the new key's consent to a rotation.
    bytes32 private constant _KEY_ROTATION_TYPEHASH =
        keccak256("KeyRotation(uint8 member,address oldAccount,address newAccount)");

    /// @dev EIP-712 type hash of a signed vote.
    bytes32 private constant _BALLOT_TYPEHASH = keccak256("Ballot(uint256 proposalId,address voter,uint8 support)");

    /// @dev EIP-712 type hash of a signed {ProposalRequest}.
    bytes32 private constant _PROPOSAL_TYPEHASH = keccak256(
        "Proposal(bytes32 resourceSet,address proposer,bytes32 contentHash,bytes32 manifestRoot,uint32 deviceCount,"
        "uint32 affectedMask,uint48 windowStart,uint48 windowEnd,uint48 createdAt,address executor,uint64 nonce)"
    );

    /// @dev EIP-712 type hash of a {ProposalRequest} signed as an emergency declaration: a signed
    /// ordinary request can never be relayed as an emergency one (nor the other way round).
    bytes32 private constant _EMERGENCY_PROPOSAL_TYPEHASH = keccak256(
        "EmergencyProposal(bytes32 resourceSet,address proposer,bytes32 contentHash,bytes32 manifestRoot,"
        "uint32 deviceCount,uint32 affectedMask,uint48 windowStart,uint48 windowEnd,uint48 createdAt,"
        "address executor,uint64 nonce)"
    );

    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _HASHED_NAME = keccak256("CoopChain");
    bytes32 private constant _HASHED_VERSION = keccak256("1");

    uint256 private constant _MAX_MEMBERS = 32;
    uint256 private constant _BPS = 10_000;

    /// @dev secp256k1n / 2: a larger ECDSA s is malleable (EIP-2).
    uint256 private constant _HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// @dev Placeholder of a proposal's evidence slot until a verification is recorded.
    bytes32 private constant _NO_EVIDENCE = bytes32(uint256(1));

    /// @dev Bits of {BallotBox-flags}: declared with {declareEmergency}; a verification recorded
    /// while Active; that verification had failed devices; a governance proposal (never recorded).
    uint8 private constant _FLAG_EMERGENCY = 1;
    uint8 private constant _FLAG_RECORDED = 2;
    uint8 private constant _FLAG_FAILED = 4;
    uint8 private constant _FLAG_GOVERNANCE = 8;

    /// @dev What the contract knows about an account: its member index + 1 (0 = not a member),
    /// its proposal nonce (kept when the account stops being a member's key), and whether it was
    /// a member's key once (rotated away from: it never serves a member again).
    struct AccountRecord {
        uint8 memberSlot;
        uint64 proposalNonce;
        bool retired;
    }

    /// @dev A member's identity; its weight lives in the weights epochs.
    struct MemberRecord {
        address account;
        bytes32 operatorId;
    }

    /// @dev Slot 1 of a proposal: everything a vote reads and writes (256 bits).
    struct BallotBox {
        uint32 votedMask;
        uint32 approveUnits;
        uint32 rejectUnits;
        uint32 abstainUnits;
        ProposalState status; // stored status: never None once created, never Expired
        uint48 voteEnd;
        AggregationRule rule;
        uint16 thresholdBps;
        uint8 proposerIndex;
        uint32 weightsEpoch;
        uint8 flags; // _FLAG_EMERGENCY | _FLAG_RECORDED | _FLAG_FAILED | _FLAG_GOVERNANCE
    }

    /// @dev Slot 2 of a proposal: the electorate snapshot and record parameters (256 bits).
    struct Snapshot {
        uint32 electorateMask;
        uint32 vetoMask;
        uint32 requiredMask;
        uint32 totalUnits;
        uint16 quorumBps;
        uint32 deviceCount;
        uint32 recordGrace;
        uint48 createdAt;
    }

    /// @dev Slot 3 of a proposal: who may record besides the proposer, and the change window.
    struct Schedule {
        address executor;
        uint48 windowStart;
        uint48 windowEnd;
    }

    struct ProposalCore {
        BallotBox box;
        Snapshot snapshot;
        Schedule schedule;
        bytes32 resourceSet;
        bytes32 contentHash;
        bytes32 manifestRoot;
        bytes32 evidenceRoot;
        bytes32 applyRun; // zero until claimed (claimApply)
    }

    mapping(address account => AccountRecord) private _accounts;
    mapping(uint256 memberIndex => MemberRecord) private _members;
    mapping(uint256 weightsEpoch => uint256[2] packedWeights) private _weights;
    mapping(bytes32 resourceSetId => ResourceSetConfig) private _resourceSets;
    mapping(uint256 proposalId => ProposalCore) private _proposals;

    bytes32 private immutable _cachedDomainSeparator;
    uint256 private immutable _cachedChainId;
    address private immutable _cachedThis;

    uint64 private _proposalCount;
    uint32 private _weightsEpoch;
    uint8 private _memberCount;

    /// @dev Restricts a function to calls the contract makes on itself from {executeGovernance}.
    modifier onlyGovernance() {
        if (msg.sender != address(this)) revert CoopChainOnlyGovernance(msg.sender);
        _;
    }

    /**
     * @dev Sets the initial members (indexes in array order) and resource sets, which must
     * include {GOVERNANCE_SET}. Reverts with the same errors as {addMember} and
     * {configureResourceSet}; with `CoopChainInvalidResourceSet(0, "length")` if the two
     * resource-set arrays differ in length.
     */
    constructor(
        Member[] memory initialMembers,
        bytes32[] memory resourceSetIds,
        ResourceSetConfig[] memory resourceSetConfigs
    ) {
        _cachedChainId = block.chainid;
        _cachedThis = address(this);
        _cachedDomainSeparator = _buildDomainSeparator();

        uint256[2] memory weights;
        for (uint256 i = 0; i < initialMembers.length; ++i) {
            Member memory member = initialMembers[i];
            uint256 index = _registerMember(member.account, member.operatorId, member.weight);
            weights[index >> 4] |= uint256(member.weight) << ((index & 15) << 4);
        }
        _weights[0] = weights;

        if (resourceSetIds.length != resourceSetConfigs.length) {
            revert CoopChainInvalidResourceSet(bytes32(0), "length");
        }
        for (uint256 i = 0; i < resourceSetIds.length; ++i) {
            _configureResourceSet(resourceSetIds[i], resourceSetConfigs[i]);
        }
        if (_resourceSets[GOVERNANCE_SET].eligibleMask == 0) revert CoopChainUnknownResourceSet(GOVERNANCE_SET);
    }

    // ------------------------------------------------------------------ proposals

    /// @inheritdoc ICoopChain
    /// @dev Check order: proposer is a member with non-zero weight (else CoopChainNotMember),
    /// signature, nonce, content hash, resource set, createdAt, window, affected mask.
    function propose(ProposalRequest calldata request, bytes calldata signature, bytes calldata content)
        external
        returns (uint256 proposalId)
    {
        return _propose(request, signature, content, false);
    }

    /// @inheritdoc ICoopChain
    /// @dev Check order: as {propose} (with the `EmergencyProposal` type hash), then the emergency
    /// role (CoopChainNotEmergencyRole) and an open window (CoopChainInvalidWindow when
    /// windowStart is in the future). Emits ProposalCreated, then EmergencyDeclared.
    function declareEmergency(ProposalRequest calldata request, bytes calldata signature, bytes calldata content)
        external
        returns (uint256 proposalId)
    {
        return _propose(request, signature, content, true);
    }

    /// @dev {propose} and {declareEmergency}.
    function _propose(
        ProposalRequest calldata request,
        bytes calldata signature,
        bytes calldata content,
        bool emergency
    ) internal returns (uint256 proposalId) {
        address proposer = request.proposer;
        AccountRecord memory account = _accounts[proposer];
        uint32 epoch = _weightsEpoch;
        uint256[2] memory weights = _weights[epoch];
        // A removed member (weight 0) keeps its index but may no longer propose.
        if (account.memberSlot == 0 || _weightOf(weights, account.memberSlot - 1) == 0) {
            revert CoopChainNotMember(proposer);
        }
        bytes32 typeHash = emergency ? _EMERGENCY_PROPOSAL_TYPEHASH : _PROPOSAL_TYPEHASH;
        _checkSignature(proposer, _hashTypedDataV4(keccak256(abi.encode(typeHash, request))), signature);
        if (request.nonce != account.proposalNonce) {
            revert CoopChainInvalidNonce(proposer, account.proposalNonce, request.nonce);
        }
        bytes32 contentHash = keccak256(content);
        if (contentHash != request.contentHash) revert CoopChainContentHashMismatch(request.contentHash, contentHash);
        ResourceSetConfig memory config = _resourceSets[request.resourceSet];
        _validateRequest(request, config);
        if (emergency) {
            if (config.emergencyMask & (uint256(1) << (account.memberSlot - 1)) == 0) {
                revert CoopChainNotEmergencyRole(proposer);
            }
            if (request.windowStart > block.timestamp) {
                revert CoopChainInvalidWindow(request.windowStart, request.windowEnd, config.maxWindow);
            }
        }

        _accounts[proposer].proposalNonce = account.proposalNonce + 1;
        proposalId = ++_proposalCount;
        _createProposal(proposalId, request, config, weights, account.memberSlot - 1, epoch, emergency);
    }

    /// @inheritdoc ICoopChain
    /// @dev Returns the verdict (Approved or Rejected), emitting VerdictReached only if it was still
    /// pending (Active after the deadline); later calls just return it. Reverts with
    /// CoopChainUnexpectedProposalState (expected: Approved | Rejected) when there is no verdict:
    /// unknown proposal, voting still open, or canceled (whether a verdict preceded the cancel is not kept).
    function finalize(uint256 proposalId) external returns (ProposalState outcome) {
        ProposalCore storage p = _proposals[proposalId];
        ProposalState status = p.box.status;
        if (status == ProposalState.Active && block.timestamp > p.box.voteEnd) {
            _settle(proposalId, p);
            status = p.box.status;
        }
        if (status == ProposalState.Rejected) return ProposalState.Rejected;
        if (
            status == ProposalState.Approved || status == ProposalState.Verified
                || status == ProposalState.VerificationFailed || status == ProposalState.Executed
        ) return ProposalState.Approved;
        // No verdict: unknown proposal, voting still open, or canceled before a verdict.
        revert CoopChainUnexpectedProposalState(
            proposalId, _state(proposalId, p.box), _bit(ProposalState.Approved) | _bit(ProposalState.Rejected)
        );
    }

    /// @inheritdoc ICoopChain
    /// @dev Check order: those of {_checkApplier} (state, already recorded, governance, caller),
    /// window, device counts. `given` in CoopChainDeviceCountMismatch saturates at 2^32 - 1.
    /// Recorded while Active, an emergency proposal stays Active (the outcome is kept in its flags).
    function recordVerification(uint256 proposalId, bytes32 evidenceRoot, uint32 devicesOk, uint32 devicesFailed)
        external
        returns (ProposalState outcome)
    {
        ProposalCore storage p = _proposals[proposalId];
        Schedule memory schedule = p.schedule;
        bool beforeVerdict = _checkApplier(proposalId, p, schedule.executor);
        Snapshot storage snapshot = p.snapshot;
        // The upper bound holds whenever the state is Approved (later it is Expired); an Active
        // emergency proposal checks it here.
        if (
            block.timestamp < schedule.windowStart
                || (beforeVerdict && block.timestamp > _recordDeadline(schedule.windowEnd, snapshot.recordGrace))
        ) {
            revert CoopChainOutsideWindow(
                proposalId,
                schedule.windowStart,
                _recordDeadline(schedule.windowEnd, snapshot.recordGrace),
                uint48(block.timestamp)
            );
        }
        uint256 given = uint256(devicesOk) + devicesFailed;
        uint32 deviceCount = snapshot.deviceCount;
        if (given != deviceCount) {
            revert CoopChainDeviceCountMismatch(
                proposalId, deviceCount, given > type(uint32).max ? type(uint32).max : uint32(given)
            );
        }

        outcome = devicesFailed == 0 ? ProposalState.Verified : ProposalState.VerificationFailed;
        if (beforeVerdict) {
            p.box.flags |= devicesFailed == 0 ? _FLAG_RECORDED : _FLAG_RECORDED | _FLAG_FAILED;
        } else {
            p.box.status = outcome;
        }
        p.evidenceRoot = evidenceRoot;
        emit VerificationRecorded(proposalId, msg.sender, outcome, evidenceRoot, devicesOk, devicesFailed);
    }

    /// @inheritdoc ICoopChain
    /// @dev Check order: those of {_checkApplier} (state, already recorded, governance, caller), run
    /// ID non-zero (CoopChainInvalidRunId), change window (CoopChainOutsideChangeWindow), then the
    /// compare-and-swap: the current claim equal to `runId` returns without a write or an event;
    /// else a current claim other than `previousRun` reverts with CoopChainApplyClaimed(id, current).
    function claimApply(uint256 proposalId, bytes32 runId, bytes32 previousRun) external {
        ProposalCore storage p = _proposals[proposalId];
        Schedule memory schedule = p.schedule;
        _checkApplier(proposalId, p, schedule.executor);
        if (runId == 0) revert CoopChainInvalidRunId(runId);
        if (block.timestamp < schedule.windowStart || block.timestamp > schedule.windowEnd) {
            revert CoopChainOutsideChangeWindow(
                proposalId, schedule.windowStart, schedule.windowEnd, uint48(block.timestamp)
            );
        }
        bytes32 current = p.applyRun;
        if (current == runId) return; // the same run resumed
        if (current != previousRun) revert CoopChainApplyClaimed(proposalId, current);

        p.applyRun = runId;
        emit ApplyClaimed(proposalId, msg.sender, runId, previousRun);
    }

    /// @inheritdoc ICoopChain
    /// @dev Check order: state (Active or Approved), caller (the proposer's current key), not an
    /// emergency proposal (its ratification vote must decide it: a cancel would hide the alarm).
    function cancel(uint256 proposalId) external {
        ProposalCore storage p = _proposals[proposalId];
        _requireState(
            proposalId, _settle(proposalId, p), _bit(ProposalState.Active) | _bit(ProposalState.Approved)
        );
        if (msg.sender != _members[p.box.proposerIndex].account) revert CoopChainNotProposer(proposalId, msg.sender);
        if (p.box.flags & _FLAG_EMERGENCY != 0) revert CoopChainEmergencyNotCancelable(proposalId);

        p.box.status = ProposalState.Canceled;
        emit ProposalCanceled(proposalId);
    }

    /// @inheritdoc ICoopChain
    /// @dev Anyone may call it. The window is [windowStart, windowEnd] (the record grace does not
    /// apply); outside it the call reverts with `CoopChainOutsideWindow(id, windowStart, windowEnd, now)`.
    function executeGovernance(uint256 proposalId, bytes calldata content) external {
        ProposalCore storage p = _proposals[proposalId];
        _requireState(proposalId, _settle(proposalId, p), _bit(ProposalState.Approved));
        if (p.resourceSet != GOVERNANCE_SET) revert CoopChainNotGovernanceProposal(proposalId);
        Schedule memory schedule = p.schedule;
        if (block.timestamp < schedule.windowStart || block.timestamp > schedule.windowEnd) {
            revert CoopChainOutsideWindow(
                proposalId, schedule.windowStart, schedule.windowEnd, uint48(block.timestamp)
            );
        }
        bytes32 contentHash = keccak256(content);
        if (contentHash != p.contentHash) revert CoopChainContentHashMismatch(p.contentHash, contentHash);

        p.box.status = ProposalState.Executed;
        bytes[] memory calls = abi.decode(content, (bytes[]));
        for (uint256 i = 0; i < calls.length; ++i) {
            (bool success, bytes memory reason) = address(this).call(calls[i]);
            if (!success) revert CoopChainGovernanceCallFailed(proposalId, i, reason);
        }
        emit GovernanceExecuted(proposalId, calls.length);
    }

    // ------------------------------------------------------------------ votes

    /// @inheritdoc ICoopChain
    function castVote(uint256 proposalId, uint256 support) external {
        VoteType vote = _voteType(support);
        ProposalCore storage p = _proposals[proposalId];
        BallotBox memory box = p.box;
        _castVote(proposalId, box, p.snapshot, msg.sender, vote, false);
        _storeBox(p, box);
    }

    /// @inheritdoc ICoopChain
    /// @dev The whole batch reverts if one ballot is invalid; a ballot whose member's vote is
    /// already counted is not invalid but skipped (BallotSkipped), so that a ballot front-run
    /// into the chain cannot sink the rest. Consecutive ballots on the same proposal share one
    /// read and one write of its ballot box.
    function castVotes(Ballot[] calldata ballots) external {
        bytes32 domainSeparator = _domainSeparatorV4();
        uint256 cachedId; // proposal IDs start at 1
        ProposalCore storage p = _proposals[0];
        BallotBox memory box;
        Snapshot memory snap;
        for (uint256 i = 0; i < ballots.length; ++i) {
            Ballot calldata ballot = ballots[i];
            uint256 proposalId = ballot.proposalId;
            address voter = ballot.voter;
            VoteType support = _voteType(ballot.support);
            _checkSignature(voter, _ballotDigest(domainSeparator, proposalId, voter, support), ballot.signature);
            if (proposalId != cachedId) {
                if (cachedId != 0) _storeBox(p, box);
                cachedId = proposalId;
                p = _proposals[proposalId];
                box = p.box;
                snap = p.snapshot;
            }
            _castVote(proposalId, box, snap, voter, support, true);
        }
        if (cachedId != 0) _storeBox(p, box);
    }

    // ------------------------------------------------------------------ members and resource sets

    /// @inheritdoc ICoopChain
    /// @dev Any member (also one with weight 0) may rotate. Check order: caller a member
    /// (CoopChainNotMember); `newAccount` non-zero, not a member's key and never one before, else
    /// `CoopChainInvalidMember(newAccount, operatorId, "account")`; the new key's signature over
    /// `KeyRotation(member, msg.sender, newAccount)` (CoopChainInvalidSignature(newAccount);
    /// EIP-1271 for a contract wallet). The old key is retired for good; its proposal nonce stays.
    function rotateKey(address newAccount, bytes calldata signature) external {
        uint8 memberSlot = _accounts[msg.sender].memberSlot;
        if (memberSlot == 0) revert CoopChainNotMember(msg.sender);
        uint256 index = memberSlot - 1;
        AccountRecord memory target = _accounts[newAccount];
        if (newAccount == address(0) || target.memberSlot != 0 || target.retired) {
            revert CoopChainInvalidMember(newAccount, _members[index].operatorId, "account");
        }
        bytes32 structHash = keccak256(abi.encode(_KEY_ROTATION_TYPEHASH, index, msg.sender, newAccount));
        _checkSignature(newAccount, _hashTypedDataV4(structHash), signature);

        _accounts[msg.sender].memberSlot = 0;
        _accounts[msg.sender].retired = true;
        _accounts[newAccount].memberSlot = memberSlot;
        _members[index].account = newAccount;
        emit MemberKeyRotated(uint8(index), msg.sender, newAccount);
    }

    /// @inheritdoc ICoopChain
    function addMember(address account, bytes32 operatorId, uint16 weight) external onlyGovernance {
        uint256 index = _registerMember(account, operatorId, weight);
        _writeWeight(index, weight);
    }

    /// @inheritdoc ICoopChain
    /// @dev Reverts with `CoopChainInvalidMember(0, 0, "index")` for an unknown index.
    function setMemberWeight(uint8 index, uint16 weight) external onlyGovernance {
        if (index >= _memberCount) revert CoopChainInvalidMember(address(0), bytes32(0), "index");
        uint16 oldWeight = _writeWeight(index, weight);
        emit MemberWeightChanged(index, oldWeight, weight);
    }

    /// @inheritdoc ICoopChain
    function configureResourceSet(bytes32 resourceSetId, ResourceSetConfig calldata config)
        external
        onlyGovernance
    {
        _configureResourceSet(resourceSetId, config);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ICoopChain
    function state(uint256 proposalId) external view returns (ProposalState) {
        return _state(proposalId, _proposals[proposalId].box);
    }

    /// @inheritdoc ICoopChain
    /// @dev The rule, threshold and quorum come from the ballot box and the snapshot, the slots the
    /// verdict is computed from (nothing is stored twice); all zero for an unknown proposal.
    function proposal(uint256 proposalId) external view returns (ProposalView memory summary) {
        ProposalCore storage p = _proposals[proposalId];
        BallotBox memory box = p.box;
        Snapshot memory snapshot = p.snapshot;
        Schedule memory schedule = p.schedule;
        summary.state = _state(proposalId, box);
        summary.resourceSet = p.resourceSet;
        summary.proposerIndex = box.proposerIndex;
        summary.executor = schedule.executor;
        summary.contentHash = p.contentHash;
        summary.manifestRoot = p.manifestRoot;
        summary.deviceCount = snapshot.deviceCount;
        summary.electorateMask = snapshot.electorateMask;
        summary.vetoMask = snapshot.vetoMask;
        summary.requiredMask = snapshot.requiredMask;
        summary.votedMask = box.votedMask;
        summary.approveUnits = box.approveUnits;
        summary.rejectUnits = box.rejectUnits;
        summary.abstainUnits = box.abstainUnits;
        summary.totalUnits = snapshot.totalUnits;
        summary.createdAt = snapshot.createdAt;
        summary.voteEnd = box.voteEnd;
        summary.windowStart = schedule.windowStart;
        summary.windowEnd = schedule.windowEnd;
        summary.recordDeadline =
            box.status == ProposalState.None ? 0 : _recordDeadline(schedule.windowEnd, snapshot.recordGrace);
        // The evidence slot holds a placeholder until a record.
        if (
            box.status == ProposalState.Verified || box.status == ProposalState.VerificationFailed
                || box.flags & _FLAG_RECORDED != 0
        ) {
            summary.evidenceRoot = p.evidenceRoot;
        }
        summary.emergency = box.flags & _FLAG_EMERGENCY != 0;
        summary.applyRun = p.applyRun;
        summary.rule = box.rule;
        summary.thresholdBps = box.thresholdBps;
        summary.quorumBps = snapshot.quorumBps;
    }

    /// @inheritdoc ICoopChain
    function proposalCount() external view returns (uint256) {
        return _proposalCount;
    }

    /// @inheritdoc ICoopChain
    function members() external view returns (Member[] memory all) {
        uint256 count = _memberCount;
        uint256[2] memory weights = _weights[_weightsEpoch];
        all = new Member[](count);
        for (uint256 i = 0; i < count; ++i) {
            MemberRecord storage member = _members[i];
            all[i] = Member({account: member.account, operatorId: member.operatorId, weight: _weightOf(weights, i)});
        }
    }

    /// @inheritdoc ICoopChain
    function memberIndex(address account) external view returns (uint8) {
        return uint8(_memberIndexOf(account));
    }

    /// @inheritdoc ICoopChain
    function resourceSet(bytes32 resourceSetId) external view returns (ResourceSetConfig memory config) {
        config = _resourceSets[resourceSetId];
        if (config.eligibleMask == 0) revert CoopChainUnknownResourceSet(resourceSetId);
    }

    /// @inheritdoc ICoopChain
    function proposalNonce(address proposer) external view returns (uint64) {
        return _accounts[proposer].proposalNonce;
    }

    // ------------------------------------------------------------------ internal: votes

    /// @dev The VoteType of a `support` argument; reverts with CoopChainInvalidSupport otherwise.
    function _voteType(uint256 support) internal pure returns (VoteType) {
        if (support > uint256(type(VoteType).max)) revert CoopChainInvalidSupport(support);
        return VoteType(support);
    }

    /**
     * @dev Counts one vote of `voter` into `box` (in memory; the caller writes it back) and
     * decides the proposal early when the rules allow. `skipCounted` (batches): a member whose
     * vote is already counted is skipped with BallotSkipped instead of reverting.
     */
    function _castVote(
        uint256 proposalId,
        BallotBox memory box,
        Snapshot memory snap,
        address voter,
        VoteType support,
        bool skipCounted
    ) internal {
        uint256 memberSlot = _accounts[voter].memberSlot;
        if (memberSlot == 0) revert CoopChainNotMember(voter);
        uint256 index;
        uint256 voterBit;
        unchecked {
            index = memberSlot - 1;
            voterBit = uint256(1) << index;
        }
        if (skipCounted && box.votedMask & voterBit != 0) {
            emit BallotSkipped(proposalId, voter);
            return;
        }
        if (box.status != ProposalState.Active) {
            revert CoopChainUnexpectedProposalState(proposalId, _state(proposalId, box), _bit(ProposalState.Active));
        }
        if (block.timestamp > box.voteEnd) revert CoopChainVotingClosed(proposalId, box.voteEnd);
        if (snap.electorateMask & voterBit == 0) revert CoopChainNotEligible(proposalId, voter);
        if (box.votedMask & voterBit != 0) revert CoopChainAlreadyVoted(proposalId, voter);

        uint32 units = _countVote(box, index, voterBit, support);
        emit VoteCast(proposalId, voter, support, units);
        _decide(proposalId, box, snap, voterBit, support);
    }

    /**
     * @dev Writes a ballot box back with ONE store of the whole slot (no read): the shifts are
     * {BallotBox}'s storage layout, fields packed from the lowest bits in declaration order.
     * (`p.box = box` lets the optimizer split the write into field-wise read-modify-writes.)
     */
    function _storeBox(ProposalCore storage p, BallotBox memory box) private {
        uint256 word = uint256(box.votedMask) | uint256(box.approveUnits) << 32 | uint256(box.rejectUnits) << 64
            | uint256(box.abstainUnits) << 96 | uint256(box.status) << 128 | uint256(box.voteEnd) << 136
            | uint256(box.rule) << 184 | uint256(box.thresholdBps) << 192 | uint256(box.proposerIndex) << 208
            | uint256(box.weightsEpoch) << 216 | uint256(box.flags) << 248;
        assembly ("memory-safe") {
            sstore(p.slot, word)
        }
    }

    /// @dev Adds the vote to the tally and returns the units it counts for.
    function _countVote(BallotBox memory box, uint256 index, uint256 voterBit, VoteType support)
        internal
        view
        returns (uint32 units)
    {
        units = box.rule == AggregationRule.WeightedThreshold ? _weightAt(box.weightsEpoch, index) : 1;
        // Tallies never exceed totalUnits (at most 32 x 65535), so they cannot overflow.
        unchecked {
            box.votedMask |= uint32(voterBit);
            if (support == VoteType.Approve) box.approveUnits += units;
            else if (support == VoteType.Reject) box.rejectUnits += units;
            else box.abstainUnits += units;
        }
    }

    /// @dev Sets and broadcasts the verdict if the last vote made the outcome certain.
    function _decide(
        uint256 proposalId,
        BallotBox memory box,
        Snapshot memory snap,
        uint256 voterBit,
        VoteType support
    ) internal {
        ProposalState verdict = _earlyVerdict(box, snap, voterBit, support);
        if (verdict == ProposalState.Active) return;
        box.status = verdict == ProposalState.Approved ? _approvedStatus(box.flags) : verdict;
        emit VerdictReached(proposalId, verdict, box.approveUnits, box.rejectUnits, box.abstainUnits);
    }

    /**
     * @dev The verdict after a vote, or Active if still open. Approved when the proposal passes
     * even if every remaining voter rejects; Rejected when it fails even if they all approve.
     *
     * A veto rejection or a required member's non-approval rejects at once, so while a proposal
     * is Active no veto holder has rejected and every required member that voted approved. The
     * quorum can always be met by the remaining voters (quorumBps <= 10000), so only the rule can
     * fail "even if every remaining voter approves".
     */
    function _earlyVerdict(BallotBox memory box, Snapshot memory snap, uint256 voterBit, VoteType support)
        internal
        pure
        returns (ProposalState)
    {
        if (
            support != VoteType.Approve
                && (snap.requiredMask & voterBit != 0 || (support == VoteType.Reject && snap.vetoMask & voterBit != 0))
        ) return ProposalState.Rejected;

        uint256 approve = box.approveUnits;
        uint256 reject = box.rejectUnits;
        uint256 abstain = box.abstainUnits;
        uint256 total = snap.totalUnits;
        // Units are at most 32 x 65535 and basis points at most 10000: no overflow.
        unchecked {
            uint256 cast = approve + reject + abstain;
            (bool holdsIfAllReject, bool holdsIfAllApprove) =
                _ruleHolds(box.rule, box.thresholdBps, approve, reject, abstain, total - cast, total);
            if (
                holdsIfAllReject && (snap.vetoMask | snap.requiredMask) & ~uint256(box.votedMask) == 0
                    && cast * _BPS >= uint256(snap.quorumBps) * total
            ) return ProposalState.Approved;
            if (!holdsIfAllApprove) return ProposalState.Rejected;
        }
        return ProposalState.Active;
    }

    /// @dev `passes(A, R, S)` of the rules, for an Active proposal (see {_earlyVerdict} for why the
    /// veto condition holds and a voted required member approved).
    function _passes(BallotBox memory box, Snapshot memory snap) internal pure returns (bool) {
        uint256 total = snap.totalUnits;
        unchecked {
            uint256 cast = uint256(box.approveUnits) + box.rejectUnits + box.abstainUnits;
            if (total == 0 || snap.requiredMask & ~uint256(box.votedMask) != 0) return false;
            if (cast * _BPS < uint256(snap.quorumBps) * total) return false;
        }
        (bool holds,) =
            _ruleHolds(box.rule, box.thresholdBps, box.approveUnits, box.rejectUnits, box.abstainUnits, 0, total);
        return holds;
    }

    /**
     * @dev Whether an aggregation rule holds (A, R, S, T of the rules) with the `remaining` units
     * not yet cast all counted as rejections (`ifAllReject`: A, R + remaining) and all counted as
     * approvals (`ifAllApprove`: A + remaining, R). With `remaining` = 0 both are the rule on the
     * votes cast. Both bounds come from one pass over the rule: a vote needs both.
     */
    function _ruleHolds(
        AggregationRule rule,
        uint256 thresholdBps,
        uint256 approve,
        uint256 reject,
        uint256 abstain,
        uint256 remaining,
        uint256 total
    ) internal pure returns (bool ifAllReject, bool ifAllApprove) {
        unchecked {
            uint256 approveMax = approve + remaining;
            uint256 rejectMax = reject + remaining;
            if (rule == AggregationRule.Unanimous) {
                return (
                    rejectMax == 0 && approve != 0 && approve + abstain == total,
                    reject == 0 && approveMax != 0 && approveMax + abstain == total
                );
            }
            if (rule == AggregationRule.SimpleMajority) return (approve > rejectMax, approveMax > reject);
            if (rule == AggregationRule.Supermajority) {
                return (
                    approve != 0 && approve * _BPS >= thresholdBps * (approve + rejectMax),
                    approveMax != 0 && approveMax * _BPS >= thresholdBps * (approveMax + reject)
                );
            }
            return (approve * _BPS >= thresholdBps * total, approveMax * _BPS >= thresholdBps * total);
        }
    }

    /// @dev EIP-712 digest of a ballot, hashed in scratch memory (no allocation per ballot).
    function _ballotDigest(bytes32 domainSeparator, uint256 proposalId, address voter, VoteType support)
        internal
        pure
        returns (bytes32 digest)
    {
        bytes32 typeHash = _BALLOT_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            mstore(add(ptr, 0x20), proposalId)
            mstore(add(ptr, 0x40), voter)
            mstore(add(ptr, 0x60), support)
            let structHash := keccak256(ptr, 0x80)
            mstore(ptr, hex"1901")
            mstore(add(ptr, 0x02), domainSeparator)
            mstore(add(ptr, 0x22), structHash)
            digest := keccak256(ptr, 0x42)
        }
    }

    /// @dev The EIP-712 digest of a struct hash in this contract's domain.
    function _hashTypedDataV4(bytes32 structHash) internal view returns (bytes32) {
        return MessageHashUtils.toTypedDataHash(_domainSeparatorV4(), structHash);
    }

    /// @dev The domain separator: cached, unless the chain ID or the address changed.
    function _domainSeparatorV4() internal view returns (bytes32) {
        if (address(this) == _cachedThis && block.chainid == _cachedChainId) return _cachedDomainSeparator;
        return _buildDomainSeparator();
    }

    /// @dev The EIP-712 domain separator for the current chain ID and address.
    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(_DOMAIN_TYPEHASH, _HASHED_NAME, _HASHED_VERSION, block.chainid, address(this)));
    }

    /**
     * @dev Reverts unless `signature` by `signer` over `digest` is valid. A 65-byte low-s ECDSA
     * signature of the signer's key is accepted at once; otherwise a signer with code is asked
     * through EIP-1271 (OpenZeppelin's SignatureChecker), and one without code gets
     * `CoopChainMalleableSignature(s)` for a high s, else `CoopChainInvalidSignature`.
     */
    function _checkSignature(address signer, bytes32 digest, bytes calldata signature) internal view {
        if (signature.length == 65) {
            bool valid;
            bytes32 s;
            assembly ("memory-safe") {
                s := calldataload(add(signature.offset, 0x20))
                // ecrecover in scratch space; 0x40 (free memory pointer) and 0x60 are restored.
                let freeMemoryPointer := mload(0x40)
                mstore(0x00, digest)
                mstore(0x20, byte(0, calldataload(add(signature.offset, 0x40))))
                mstore(0x40, calldataload(signature.offset))
                mstore(0x60, s)
                let success := staticcall(gas(), 0x01, 0x00, 0x80, 0x00, 0x20)
                // no output (invalid signature) leaves the digest at 0x00, never equal to `signer`
                valid := and(success, and(eq(returndatasize(), 0x20), eq(mload(0x00), signer)))
                mstore(0x40, freeMemoryPointer)
                mstore(0x60, 0)
            }
            if (uint256(s) <= _HALF_CURVE_ORDER) {
                if (valid) return;
            } else if (signer.code.length == 0) {
                revert CoopChainMalleableSignature(s);
            }
        }
        bool accepted =
            signer.code.length != 0 && SignatureChecker.isValidERC1271SignatureNowCalldata(signer, digest, signature);
        if (!accepted) revert CoopChainInvalidSignature(signer);
    }

    // ------------------------------------------------------------------ internal: proposals

    /**
     * @dev The checks {recordVerification} and {claimApply} share, in this order (settling a
     * pending verdict first): state Approved (Expired after windowEnd + recordGrace), or Active
     * for an emergency proposal not yet recorded (else CoopChainUnexpectedProposalState, expecting
     * Approved, or CoopChainAlreadyRecorded); not a governance proposal
     * (CoopChainGovernanceNotRecordable: it is executed instead); the caller is the proposer's
     * current key or `executor` (CoopChainNotProposerOrExecutor). Returns whether the proposal is
     * before its verdict (an emergency proposal still Active). The caller reads the schedule
     * (one memory copy, shared with its window check).
     */
    function _checkApplier(uint256 proposalId, ProposalCore storage p, address executor)
        internal
        returns (bool beforeVerdict)
    {
        ProposalState current = _settle(proposalId, p);
        uint8 flags = p.box.flags;
        if (current != ProposalState.Approved) {
            // Break-glass: an emergency proposal may be applied and recorded before its ratification.
            if (current != ProposalState.Active || flags & _FLAG_EMERGENCY == 0) {
                revert CoopChainUnexpectedProposalState(proposalId, current, _bit(ProposalState.Approved));
            }
            if (flags & _FLAG_RECORDED != 0) revert CoopChainAlreadyRecorded(proposalId);
            beforeVerdict = true;
        }
        if (flags & _FLAG_GOVERNANCE != 0) revert CoopChainGovernanceNotRecordable(proposalId);
        if (msg.sender != executor && msg.sender != _members[p.box.proposerIndex].account) {
            revert CoopChainNotProposerOrExecutor(proposalId, msg.sender);
        }
    }

    /// @dev The resource set, timestamp, window (length, end, lead) and affected-mask checks of {propose}.
    function _validateRequest(ProposalRequest calldata request, ResourceSetConfig memory config) internal view {
        if (config.eligibleMask == 0) revert CoopChainUnknownResourceSet(request.resourceSet);
        if (request.createdAt > block.timestamp) {
            revert CoopChainInvalidTimestamp(request.createdAt, uint48(block.timestamp));
        }
        uint48 windowStart = request.windowStart;
        uint48 windowEnd = request.windowEnd;
        if (windowStart >= windowEnd || windowEnd <= block.timestamp || windowEnd - windowStart > config.maxWindow) {
            revert CoopChainInvalidWindow(windowStart, windowEnd, config.maxWindow);
        }
        uint256 latestStart = block.timestamp + config.maxLead;
        if (windowStart > latestStart) revert CoopChainWindowTooFarAhead(windowStart, uint48(latestStart));
        if (request.affectedMask & ~config.eligibleMask != 0) {
            revert CoopChainInvalidAffectedMask(request.affectedMask, config.eligibleMask);
        }
    }

    /// @dev Snapshots the electorate and stores a new Active proposal.
    function _createProposal(
        uint256 proposalId,
        ProposalRequest calldata request,
        ResourceSetConfig memory config,
        uint256[2] memory weights,
        uint256 proposerIndex,
        uint32 epoch,
        bool emergency
    ) internal {
        Snapshot memory snap = _snapshot(request, config, weights, proposerIndex);
        uint48 voteEnd = uint48(block.timestamp + config.votingPeriod);

        ProposalCore storage p = _proposals[proposalId];
        _storeBox(
            p,
            BallotBox({
                votedMask: 0,
                approveUnits: 0,
                rejectUnits: 0,
                abstainUnits: 0,
                status: ProposalState.Active,
                voteEnd: voteEnd,
                rule: config.rule,
                thresholdBps: config.thresholdBps,
                proposerIndex: uint8(proposerIndex),
                weightsEpoch: epoch,
                flags: (emergency ? _FLAG_EMERGENCY : 0) | (request.resourceSet == GOVERNANCE_SET ? _FLAG_GOVERNANCE : 0)
            })
        );
        p.snapshot = snap;
        p.schedule =
            Schedule({executor: request.executor, windowStart: request.windowStart, windowEnd: request.windowEnd});
        p.resourceSet = request.resourceSet;
        p.contentHash = request.contentHash;
        p.manifestRoot = request.manifestRoot;
        p.evidenceRoot = _NO_EVIDENCE;

        _emitProposalCreated(proposalId, request, _members[proposerIndex].operatorId, voteEnd, snap.electorateMask);
        if (emergency) emit EmergencyDeclared(proposalId, voteEnd);
    }

    /// @dev Emits ProposalCreated (its own frame keeps the eleven event fields off the caller's stack).
    function _emitProposalCreated(
        uint256 proposalId,
        ProposalRequest calldata request,
        bytes32 operatorId,
        uint48 voteEnd,
        uint32 electorateMask
    ) private {
        emit ProposalCreated(
            proposalId,
            request.resourceSet,
            request.proposer,
            operatorId,
            request.contentHash,
            request.manifestRoot,
            request.deviceCount,
            request.windowStart,
            request.windowEnd,
            voteEnd,
            electorateMask
        );
    }

    /// @dev The electorate, units, veto and required masks of a new proposal.
    function _snapshot(
        ProposalRequest calldata request,
        ResourceSetConfig memory config,
        uint256[2] memory weights,
        uint256 proposerIndex
    ) internal view returns (Snapshot memory snap) {
        uint256 electorate = config.eligibleMask;
        if (!config.proposerVotes) electorate &= ~(uint256(1) << proposerIndex);
        bool weighted = config.rule == AggregationRule.WeightedThreshold;
        uint256 total;
        uint256 count = _memberCount;
        for (uint256 i = 0; i < count; ++i) {
            if (electorate & (uint256(1) << i) == 0) continue;
            uint256 weight = _weightOf(weights, i);
            if (weight == 0) electorate &= ~(uint256(1) << i);
            else total += weighted ? weight : 1;
        }
        snap.electorateMask = uint32(electorate);
        snap.vetoMask = uint32(config.vetoMask & electorate);
        snap.requiredMask = config.affectedMustApprove ? uint32(request.affectedMask & electorate) : 0;
        snap.totalUnits = uint32(total);
        snap.quorumBps = config.quorumBps;
        snap.deviceCount = request.deviceCount;
        snap.recordGrace = config.recordGrace;
        snap.createdAt = request.createdAt;
    }

    /// @dev Stores and broadcasts the verdict of an Active proposal whose deadline passed, then
    /// returns the derived state (also for proposals that need no settling).
    function _settle(uint256 proposalId, ProposalCore storage p) internal returns (ProposalState) {
        BallotBox memory box = p.box;
        if (box.status == ProposalState.Active && block.timestamp > box.voteEnd) {
            ProposalState verdict = _passes(box, p.snapshot) ? ProposalState.Approved : ProposalState.Rejected;
            ProposalState status = verdict == ProposalState.Approved ? _approvedStatus(box.flags) : verdict;
            p.box.status = status;
            box.status = status;
            emit VerdictReached(proposalId, verdict, box.approveUnits, box.rejectUnits, box.abstainUnits);
        }
        return _state(proposalId, box);
    }

    /// @dev The derived state of a proposal from its (possibly not yet written back) ballot box.
    function _state(uint256 proposalId, BallotBox memory box) internal view returns (ProposalState current) {
        current = box.status;
        if (current == ProposalState.Active && block.timestamp > box.voteEnd) {
            current =
                _passes(box, _proposals[proposalId].snapshot) ? _approvedStatus(box.flags) : ProposalState.Rejected;
        }
        if (current == ProposalState.Approved) {
            ProposalCore storage p = _proposals[proposalId];
            if (block.timestamp > _recordDeadline(p.schedule.windowEnd, p.snapshot.recordGrace)) {
                current = ProposalState.Expired;
            }
        }
    }

    /// @dev The status an approving verdict stores: Approved, or for an emergency proposal recorded
    /// before its ratification, the outcome of that record.
    function _approvedStatus(uint8 flags) internal pure returns (ProposalState) {
        if (flags & _FLAG_RECORDED == 0) return ProposalState.Approved;
        return flags & _FLAG_FAILED == 0 ? ProposalState.Verified : ProposalState.VerificationFailed;
    }

    /// @dev windowEnd + recordGrace, saturated at the largest uint48.
    function _recordDeadline(uint48 windowEnd, uint32 recordGrace) internal pure returns (uint48) {
        uint256 deadline = uint256(windowEnd) + recordGrace;
        return deadline > type(uint48).max ? type(uint48).max : uint48(deadline);
    }

    /// @dev Reverts with CoopChainUnexpectedProposalState unless `current` is in `expectedStates`.
    function _requireState(uint256 proposalId, ProposalState current, bytes32 expectedStates) internal pure {
        if (_bit(current) & expectedStates == 0) {
            revert CoopChainUnexpectedProposalState(proposalId, current, expectedStates);
        }
    }

    /// @dev The bit of a state in an `expectedStates` bitmap (as in OpenZeppelin's Governor).
    function _bit(ProposalState proposalState) internal pure returns (bytes32) {
        return bytes32(uint256(1) << uint8(proposalState));
    }

    // ------------------------------------------------------------------ internal: members

    /// @dev The member index of an account's current key; reverts with CoopChainNotMember.
    function _memberIndexOf(address account) internal view returns (uint256) {
        uint256 memberSlot = _accounts[account].memberSlot;
        if (memberSlot == 0) revert CoopChainNotMember(account);
        return memberSlot - 1;
    }

    /**
     * @dev Validates and registers a new member's identity (its weight is written by the
     * caller) and emits MemberAdded. Field names of CoopChainInvalidMember: "account" (zero, a
     * member's key, or a key a member rotated away from), "weight" (zero), "members" (32 already), "operatorId" (taken).
     */
    function _registerMember(address account, bytes32 operatorId, uint16 weight) internal returns (uint256 index) {
        AccountRecord memory record = _accounts[account];
        if (account == address(0) || record.memberSlot != 0 || record.retired) {
            revert CoopChainInvalidMember(account, operatorId, "account");
        }
        if (weight == 0) revert CoopChainInvalidMember(account, operatorId, "weight");
        index = _memberCount;
        if (index == _MAX_MEMBERS) revert CoopChainInvalidMember(account, operatorId, "members");
        for (uint256 i = 0; i < index; ++i) {
            if (_members[i].operatorId == operatorId) revert CoopChainInvalidMember(account, operatorId, "operatorId");
        }

        _memberCount = uint8(index + 1);
        _accounts[account].memberSlot = uint8(index + 1);
        _members[index] = MemberRecord({account: account, operatorId: operatorId});
        emit MemberAdded(uint8(index), account, operatorId, weight);
    }

    /// @dev Writes a new weights epoch in which member `index` has `weight`; returns the old weight.
    function _writeWeight(uint256 index, uint16 weight) internal returns (uint16 oldWeight) {
        uint32 epoch = _weightsEpoch;
        uint256[2] memory weights = _weights[epoch];
        uint256 shift = (index & 15) << 4;
        oldWeight = uint16(weights[index >> 4] >> shift);
        weights[index >> 4] = (weights[index >> 4] & ~(uint256(0xffff) << shift)) | (uint256(weight) << shift);
        _weightsEpoch = epoch + 1;
        _weights[epoch + 1] = weights;
    }

    /// @dev A member's weight in a packed pair of weight words.
    function _weightOf(uint256[2] memory weights, uint256 index) internal pure returns (uint16) {
        return uint16(weights[index >> 4] >> ((index & 15) << 4));
    }

    /// @dev A member's weight in a stored weights epoch (one slot read).
    function _weightAt(uint32 epoch, uint256 index) internal view returns (uint16) {
        return uint16(_weights[epoch][index >> 4] >> ((index & 15) << 4));
    }

    // ------------------------------------------------------------------ internal: resource sets

    /// @dev Validates and stores a resource set configuration; emits ResourceSetConfigured.
    function _configureResourceSet(bytes32 resourceSetId, ResourceSetConfig memory config) internal {
        uint256 existing = (uint256(1) << _memberCount) - 1;
        if (config.eligibleMask == 0 || config.eligibleMask & ~existing != 0) {
            revert CoopChainInvalidResourceSet(resourceSetId, "eligibleMask");
        }
        if (config.vetoMask & ~config.eligibleMask != 0) revert CoopChainInvalidResourceSet(resourceSetId, "vetoMask");
        // The contract's own governance has no devices to break glass on.
        if (
            config.emergencyMask & ~config.eligibleMask != 0
                || (config.emergencyMask != 0 && resourceSetId == GOVERNANCE_SET)
        ) {
            revert CoopChainInvalidResourceSet(resourceSetId, "emergencyMask");
        }
        if (
            (config.rule == AggregationRule.Supermajority || config.rule == AggregationRule.WeightedThreshold)
                && (config.thresholdBps == 0 || config.thresholdBps > _BPS)
        ) revert CoopChainInvalidResourceSet(resourceSetId, "thresholdBps");
        if (config.quorumBps > _BPS) revert CoopChainInvalidResourceSet(resourceSetId, "quorumBps");
        if (config.votingPeriod == 0) revert CoopChainInvalidResourceSet(resourceSetId, "votingPeriod");
        if (config.maxWindow == 0) revert CoopChainInvalidResourceSet(resourceSetId, "maxWindow");
        if (config.maxLead == 0) revert CoopChainInvalidResourceSet(resourceSetId, "maxLead");

        _resourceSets[resourceSetId] = config;
        emit ResourceSetConfigured(resourceSetId, config);
    }
}
