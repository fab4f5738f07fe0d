"""Typed bindings of the CoopChain contract: every call returns a model, every event is decoded.

Write methods send through :class:`~nornir_coopchain.chain.client.ChainClient` (local
signing, the shared nonce manager, receipt checks, custom errors raised as
:mod:`nornir_coopchain.chain.errors` exceptions) and return a :class:`TxOutcome` with the
decoded events of their receipt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from pydantic import BaseModel, ConfigDict, TypeAdapter
from web3.contract import Contract
from web3.types import BlockIdentifier, LogReceipt, TxReceipt

from nornir_coopchain.chain.artifacts import load_artifact
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.deployment import GOVERNANCE_NAME, DeploymentSpec
from nornir_coopchain.chain.eip712 import (
    sign_ballot,
    sign_emergency_proposal,
    sign_key_rotation,
    sign_proposal,
)
from nornir_coopchain.chain.models import (
    ZERO_ADDRESS,
    ZERO_HASH,
    BallotMessage,
    ChainEvent,
    EmergencyDeclared,
    KeyRotationMessage,
    MemberInfo,
    ProposalCreated,
    ProposalInfo,
    ProposalRequest,
    SignedBallot,
    bytes32_hex,
)
from nornir_coopchain.chain.rpc_errors import node_errors
from nornir_coopchain.exceptions import ChainError, ConfigError
from nornir_coopchain.model.content import operator_id, resource_set_id, resource_set_name
from nornir_coopchain.model.hashing import from_hex32, keccak
from nornir_coopchain.model.rules import AggregationRule, ProposalState, ResourceSetPolicy, VoteType

__all__ = ["CoopChain", "TxOutcome"]

_EVENT_ADAPTER: TypeAdapter[ChainEvent] = TypeAdapter(ChainEvent)
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_NAME_FIELDS = {"resource_set", "operator_id"}


class TxOutcome(BaseModel):
    """A mined transaction and the contract events it emitted."""

    model_config = ConfigDict(frozen=True)

    tx_hash: str
    block_number: int
    gas_used: int
    events: list[ChainEvent]

    def first(self, kind: type[Any]) -> Any:
        """The first event of a model class, or ``None``."""
        return next((event for event in self.events if isinstance(event, kind)), None)


def _policy_tuple(policy: ResourceSetPolicy) -> tuple[Any, ...]:
    return (
        int(policy.rule),
        policy.threshold_bps,
        policy.quorum_bps,
        policy.eligible_mask,
        policy.veto_mask,
        policy.voting_period,
        policy.max_window,
        policy.record_grace,
        policy.proposer_votes,
        policy.affected_must_approve,
        policy.emergency_mask,
        policy.max_lead,
    )


def _policy_from_tuple(values: Sequence[Any] | Mapping[str, Any]) -> ResourceSetPolicy:
    if isinstance(values, Mapping):  # events decode structs to dicts keyed by field name
        values = list(values.values())
    return ResourceSetPolicy(
        rule=AggregationRule(values[0]),
        threshold_bps=values[1],
        quorum_bps=values[2],
        eligible_mask=values[3],
        veto_mask=values[4],
        voting_period=values[5],
        max_window=values[6],
        record_grace=values[7],
        proposer_votes=values[8],
        affected_must_approve=values[9],
        emergency_mask=values[10],
        max_lead=values[11],
    )


def _bytes32(value: str, field: str) -> bytes:
    """The 32 bytes of a ``0x``-prefixed 64-digit hex argument (ConfigError naming ``field``)."""
    try:
        return from_hex32(value)
    except ConfigError as exc:
        raise ConfigError(str(exc), field=field) from exc


def _event_value(field: str, value: Any) -> Any:
    if field == "config":
        return _policy_from_tuple(value)
    if isinstance(value, bytes):
        return resource_set_name(value) if field in _NAME_FIELDS else bytes32_hex(value)
    return value


class CoopChain:
    """One deployed CoopChain contract, reached through one :class:`ChainClient`."""

    LOG_RANGE = 1000

    def __init__(self, client: ChainClient, address: str):
        self.client = client
        self.address: ChecksumAddress = to_checksum_address(address)
        artifact = load_artifact("CoopChain")
        self.contract: Contract = client.w3.eth.contract(address=self.address, abi=artifact.abi)
        self._events = {
            entry["name"]: self.contract.events[entry["name"]]
            for entry in artifact.abi
            if entry.get("type") == "event"
        }

    # ------------------------------------------------------------ deployment

    @classmethod
    def deploy(cls, client: ChainClient, account: LocalAccount, spec: DeploymentSpec) -> CoopChain:
        """Deploy with the members and resource sets of a deployment file."""
        members = [(member.address, member.operator, member.weight) for member in spec.members]
        return cls.deploy_with(client, account, members, spec.policies())

    @classmethod
    def deploy_with(
        cls,
        client: ChainClient,
        account: LocalAccount,
        members: Sequence[tuple[str, str, int]],
        policies: Mapping[str, ResourceSetPolicy],
    ) -> CoopChain:
        """Deploy with members ``(account, operator ID, weight)`` in index order and policies
        by resource set name (which must include ``coopchain.governance``)."""
        rows = [(account_, operator_id(operator), weight) for account_, operator, weight in members]
        set_ids = [resource_set_id(name) for name in policies]
        configs = [_policy_tuple(policy) for policy in policies.values()]
        address = client.deploy(account, load_artifact("CoopChain"), rows, set_ids, configs)
        return cls(client, address)

    # ------------------------------------------------------------ reads

    def members(self) -> list[MemberInfo]:
        """Every member by index (removed members have weight 0)."""
        rows = self.client.call(self.contract.functions.members())
        return [
            MemberInfo(
                index=index,
                account=account,
                operator_id=resource_set_name(operator),
                weight=weight,
            )
            for index, (account, operator, weight) in enumerate(rows)
        ]

    def member_index(self, account: str) -> int:
        """The member index of an account (raises NotMember)."""
        return int(self.client.call(self.contract.functions.memberIndex(account)))

    def resource_set(self, name: str) -> ResourceSetPolicy:
        """A resource set's policy (raises UnknownResourceSet)."""
        values = self.client.call(self.contract.functions.resourceSet(resource_set_id(name)))
        return _policy_from_tuple(values)

    def proposal(self, proposal_id: int, *, block: BlockIdentifier = "latest") -> ProposalInfo:
        """A proposal's stored summary with its derived state (at ``block``).

        Raises:
            ChainError: there is no such proposal (at that block).
        """
        info = self.find_proposal(proposal_id, block=block)
        if info is None:
            raise ChainError(f"no proposal {proposal_id} on contract {self.address}")
        return info

    def find_proposal(
        self, proposal_id: int, *, block: BlockIdentifier = "latest"
    ) -> ProposalInfo | None:
        """A proposal's stored summary at ``block``, or ``None`` when it does not exist there
        (the contract reports state NONE: not created yet at that block, e.g. on a node whose
        head lags the one the proposal was sent to, or never)."""
        view = self.client.call(self.contract.functions.proposal(proposal_id), block=block)
        if view[0] == ProposalState.NONE:
            return None
        return ProposalInfo.from_abi(proposal_id, view)

    def state(self, proposal_id: int) -> ProposalState:
        """A proposal's derived state now."""
        return ProposalState(self.client.call(self.contract.functions.state(proposal_id)))

    def proposal_count(self) -> int:
        """How many proposals exist (the newest proposal ID)."""
        return int(self.client.call(self.contract.functions.proposalCount()))

    def proposal_nonce(self, proposer: str) -> int:
        """The nonce the proposer's next request must carry."""
        return int(self.client.call(self.contract.functions.proposalNonce(proposer)))

    # ------------------------------------------------------------ proposals

    def build_request(
        self,
        proposer: str,
        resource_set: str,
        content: bytes,
        *,
        manifest_root: str,
        device_count: int,
        window_start: int,
        window_end: int,
        affected_mask: int = 0,
        executor: str | None = None,
        created_at: int | None = None,
    ) -> ProposalRequest:
        """A request for ``content`` with the proposer's current nonce and the chain's time."""
        return ProposalRequest(
            resource_set=resource_set,
            proposer=proposer,
            content_hash=bytes32_hex(keccak(content)),
            manifest_root=manifest_root,
            device_count=device_count,
            affected_mask=affected_mask,
            window_start=window_start,
            window_end=window_end,
            created_at=self.client.now() if created_at is None else created_at,
            executor=executor or ZERO_ADDRESS,
            nonce=self.proposal_nonce(proposer),
        )

    def sign_request(
        self, account: LocalAccount, request: ProposalRequest, *, emergency: bool = False
    ) -> bytes:
        """The proposer's EIP-712 signature over a request for this contract and chain
        (``emergency``: as an ``EmergencyProposal``, for :meth:`declare_emergency`)."""
        if emergency:
            return sign_emergency_proposal(account, self.client.chain_id, self.address, request)
        return sign_proposal(account, self.client.chain_id, self.address, request)

    def propose(
        self, sender: LocalAccount, request: ProposalRequest, signature: bytes, content: bytes
    ) -> ProposalCreated:
        """Relay a signed request (``sender`` pays; it need not be the proposer)."""
        fn = self.contract.functions.propose(request.as_tuple(), signature, content)
        created = self._send(sender, fn).first(ProposalCreated)
        if created is None:
            raise ChainError("propose mined without a ProposalCreated event")
        return cast("ProposalCreated", created)

    def declare_emergency(
        self, sender: LocalAccount, request: ProposalRequest, signature: bytes, content: bytes
    ) -> ProposalCreated:
        """Relay a request signed with ``sign_request(..., emergency=True)`` as an emergency
        change (break-glass): the proposer holds the set's emergency role and the window is
        open. The proposal may be applied and recorded before the vote and must be ratified
        by the normal rule by its ``vote_end`` (the EmergencyDeclared event's ``ratify_by``).
        """
        fn = self.contract.functions.declareEmergency(request.as_tuple(), signature, content)
        outcome = self._send(sender, fn)
        created = outcome.first(ProposalCreated)
        if created is None or outcome.first(EmergencyDeclared) is None:
            raise ChainError("declareEmergency mined without ProposalCreated and EmergencyDeclared")
        return cast("ProposalCreated", created)

    def fetch_content(self, proposal_id: int) -> bytes:
        """The proposal's content bytes, taken from the ``propose`` calldata on chain.

        Raises:
            ChainError: when the proposal is unknown or the calldata does not hash to the
                content hash stored on chain.
        """
        created, arguments = self._propose_arguments(proposal_id)
        content = bytes(arguments["content"])
        if bytes32_hex(keccak(content)) != created.content_hash:
            raise ChainError(f"proposal {proposal_id}: calldata does not match its content hash")
        return content

    def fetch_request(self, proposal_id: int) -> ProposalRequest:
        """The signed request the proposal was created from, taken from its calldata: what
        the proposer declared, including the ``affectedMask`` the contract does not keep.

        Raises:
            ChainError: when the proposal is unknown.
        """
        return self.signed_request(proposal_id)[0]

    def signed_request(self, proposal_id: int) -> tuple[ProposalRequest, str]:
        """The request the proposer signed and its signature (``0x…``), from the calldata of
        ``propose`` or ``declareEmergency``.

        Raises:
            ChainError: when the proposal is unknown.
        """
        _, arguments = self._propose_arguments(proposal_id)
        values = arguments["request"]
        request = ProposalRequest.from_abi(
            list(values.values()) if isinstance(values, Mapping) else values
        )
        return request, "0x" + bytes(arguments["signature"]).hex()

    def _propose_arguments(self, proposal_id: int) -> tuple[ProposalCreated, dict[str, Any]]:
        created = self.proposal_created(proposal_id)
        with node_errors(self.client.url, f"read proposal {proposal_id}'s transaction"):
            tx = self.client.w3.eth.get_transaction(created.tx_hash)  # type: ignore[arg-type]
        _, arguments = self.contract.decode_function_input(tx["input"])
        return created, dict(arguments)

    def proposal_created(self, proposal_id: int) -> ProposalCreated:
        """The ProposalCreated event of a proposal (raises ChainError if there is none)."""
        topics = [self.contract.events.ProposalCreated.topic, "0x" + f"{proposal_id:064x}"]
        for created in self.events(0, topics=topics):
            if isinstance(created, ProposalCreated):
                return created
        raise ChainError(f"no proposal {proposal_id} on contract {self.address}")

    # ------------------------------------------------------------ votes and verdicts

    def cast_vote(self, account: LocalAccount, proposal_id: int, support: VoteType) -> TxOutcome:
        """Vote directly as the member whose key ``account`` is."""
        return self._send(account, self.contract.functions.castVote(proposal_id, int(support)))

    def sign_ballot(
        self, account: LocalAccount, proposal_id: int, support: VoteType
    ) -> SignedBallot:
        """A ballot signed off chain that anyone may submit later."""
        message = BallotMessage(proposal_id=proposal_id, voter=account.address, support=support)
        signature = sign_ballot(account, self.client.chain_id, self.address, message)
        return SignedBallot(**message.model_dump(), signature="0x" + signature.hex())

    def cast_votes(self, sender: LocalAccount, ballots: Iterable[SignedBallot]) -> TxOutcome:
        """Submit signed ballots in ONE transaction."""
        batch = [ballot.as_tuple() for ballot in ballots]
        return self._send(sender, self.contract.functions.castVotes(batch))

    def finalize(self, sender: LocalAccount, proposal_id: int) -> TxOutcome:
        """Broadcast the verdict after the deadline (anyone may)."""
        return self._send(sender, self.contract.functions.finalize(proposal_id))

    def record_verification(
        self,
        account: LocalAccount,
        proposal_id: int,
        evidence_root: str,
        devices_ok: int,
        devices_failed: int,
    ) -> TxOutcome:
        """Record the verification of an applied change (proposer or executor)."""
        fn = self.contract.functions.recordVerification(
            proposal_id, bytes.fromhex(evidence_root[2:]), devices_ok, devices_failed
        )
        return self._send(account, fn)

    def claim_apply(
        self, account: LocalAccount, proposal_id: int, run_id: str, previous: str = ZERO_HASH
    ) -> TxOutcome:
        """Claim the apply of a proposal for the run ``run_id`` before pushing any device
        (proposer or executor, inside the change window): a compare-and-swap of the
        proposal's ``apply_run`` from ``previous`` (zero for the first claim; the current
        claim to take over an abandoned run). Claiming again with the current run ID is a
        no-op (no event); the outcome carries an :class:`ApplyClaimed` event otherwise.

        Raises:
            ConfigError: ``run_id`` or ``previous`` is not ``0x`` + 64 hex digits.
            nornir_coopchain.chain.errors.ApplyClaimed: another run holds the claim
                (``current_run``); no device may be pushed by this run.
            nornir_coopchain.chain.errors.OutsideChangeWindow: the chain's time is outside
                [window_start, window_end].
            nornir_coopchain.chain.errors.InvalidRunId: ``run_id`` is zero.
        """
        fn = self.contract.functions.claimApply(
            proposal_id, _bytes32(run_id, "run_id"), _bytes32(previous, "previous")
        )
        return self._send(account, fn)

    def cancel(self, account: LocalAccount, proposal_id: int) -> TxOutcome:
        """Withdraw a proposal (proposer only)."""
        return self._send(account, self.contract.functions.cancel(proposal_id))

    # ------------------------------------------------------------ governance

    def governance_content(self, calls: Sequence[bytes]) -> bytes:
        """The content of a governance proposal: ``abi.encode(bytes[] calls)``."""
        return abi_encode(["bytes[]"], [list(calls)])

    def decode_governance_content(self, content: bytes) -> list[bytes]:
        """The calls of a governance proposal's content."""
        (calls,) = abi_decode(["bytes[]"], content)
        return [bytes(call) for call in calls]

    def add_member_call(self, account: str, operator: str, weight: int) -> bytes:
        """Calldata of ``addMember`` for a governance proposal."""
        return self._calldata("addMember", account, operator_id(operator), weight)

    def set_member_weight_call(self, index: int, weight: int) -> bytes:
        """Calldata of ``setMemberWeight`` (0 removes) for a governance proposal."""
        return self._calldata("setMemberWeight", index, weight)

    def configure_resource_set_call(self, name: str, policy: ResourceSetPolicy) -> bytes:
        """Calldata of ``configureResourceSet`` for a governance proposal."""
        return self._calldata("configureResourceSet", resource_set_id(name), _policy_tuple(policy))

    def execute_governance(
        self, sender: LocalAccount, proposal_id: int, content: bytes
    ) -> TxOutcome:
        """Execute an approved governance proposal's calls."""
        return self._send(sender, self.contract.functions.executeGovernance(proposal_id, content))

    def sign_key_rotation(
        self, signer: LocalAccount, old_account: str, new_account: str | None = None
    ) -> bytes:
        """The new key's consent to serve the member whose key ``old_account`` is now.

        ``signer`` holds the new key (``new_account`` defaults to its address); for a contract
        wallet as the new key, ``new_account`` is the wallet and ``signer`` a key it accepts.
        """
        rotation = KeyRotationMessage(
            member=self.member_index(old_account),
            old_account=old_account,
            new_account=new_account or signer.address,
        )
        return sign_key_rotation(signer, self.client.chain_id, self.address, rotation)

    def rotate_key(self, account: LocalAccount, new_account: str, signature: bytes) -> TxOutcome:
        """Move the calling member to a new key; ``signature`` is the new key's consent
        (:meth:`sign_key_rotation`). A key that ever served a member is refused."""
        return self._send(account, self.contract.functions.rotateKey(new_account, signature))

    @property
    def governance_set(self) -> str:
        """The name of the governance resource set."""
        return GOVERNANCE_NAME

    # ------------------------------------------------------------ events

    def decode_logs(self, logs: Iterable[LogReceipt]) -> list[ChainEvent]:
        """Decode this contract's logs into event models (other logs are ignored)."""
        decoded: list[ChainEvent] = []
        for log in logs:
            if to_checksum_address(log["address"]) != self.address or not log["topics"]:
                continue
            for name, event in self._events.items():
                if event.topic != bytes32_hex(log["topics"][0]):
                    continue
                data = event.process_log(log)
                fields = {
                    _CAMEL.sub("_", key).lower(): value for key, value in data["args"].items()
                }
                decoded.append(
                    _EVENT_ADAPTER.validate_python(
                        {
                            "kind": name,
                            "block_number": data["blockNumber"],
                            "tx_hash": bytes32_hex(data["transactionHash"]),
                            "log_index": data["logIndex"],
                            **{key: _event_value(key, value) for key, value in fields.items()},
                        }
                    )
                )
                break
        return decoded

    def events(
        self, from_block: int, to_block: int | None = None, *, topics: list[Any] | None = None
    ) -> list[ChainEvent]:
        """This contract's events in an inclusive block range, in order.

        The range is read in chunks of :attr:`LOG_RANGE` blocks, which nodes such as Besu
        (1,000 by default) accept.
        """
        last = self.client.block_number() if to_block is None else to_block
        decoded: list[ChainEvent] = []
        for start in range(from_block, last + 1, self.LOG_RANGE):
            end = min(start + self.LOG_RANGE - 1, last)
            decoded += self.decode_logs(self.client.get_logs(self.address, start, end, topics))
        return decoded

    # ------------------------------------------------------------ internals

    def _calldata(self, function: str, *args: Any) -> bytes:
        encoded = self.contract.encode_abi(function, args=list(args))
        return bytes.fromhex(str(encoded)[2:])

    def _send(self, account: LocalAccount, fn: Any) -> TxOutcome:
        receipt: TxReceipt = self.client.transact(account, fn)
        return TxOutcome(
            tx_hash=bytes32_hex(receipt["transactionHash"]),
            block_number=receipt["blockNumber"],
            gas_used=receipt["gasUsed"],
            events=self.decode_logs(receipt["logs"]),
        )
