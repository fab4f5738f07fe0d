"""Sign and submit ONE proposal for a whole change, journalled so that a rerun resumes.

The steps before it live in their own modules (re-exported here):
:mod:`~nornir_coopchain.gate.prepare` (render and dry-run), :mod:`~nornir_coopchain.gate.content`
(the proposal's content) and :mod:`~nornir_coopchain.gate.sizing` (gas and size).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nornir_coopchain.chain.models import ProposalCreated, ProposalRequest
from nornir_coopchain.exceptions import ChangeRefused, ConfigError, ContractError
from nornir_coopchain.gate.content import build_content, templates_commit, templates_hash
from nornir_coopchain.gate.prepare import (
    PreparedChange,
    describe,
    failed_hosts,
    inventory_hash,
    prepare_change,
)
from nornir_coopchain.gate.sizing import (
    MAX_CONTENT_BYTES,
    TX_GAS_CAP,
    check_proposal_size,
    propose_gas,
)
from nornir_coopchain.journal import ChangeJournal, Journal
from nornir_coopchain.model.content import ProposalContent
from nornir_coopchain.model.hashing import keccak, to_hex32
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.session import CoopchainSession

__all__ = [
    "MAX_CONTENT_BYTES",
    "TX_GAS_CAP",
    "PreparedChange",
    "ProposalHandle",
    "affected_mask",
    "build_content",
    "build_request",
    "check_proposal_size",
    "declare_emergency_change",
    "describe",
    "failed_hosts",
    "inventory_hash",
    "prepare_change",
    "propose_change",
    "propose_gas",
    "templates_commit",
    "templates_hash",
]


@dataclass(frozen=True)
class ProposalHandle:
    """A proposal on chain and the local journal of its change."""

    proposal_id: int
    tx_hash: str | None
    journal: Journal
    resumed: bool


def affected_mask(session: CoopchainSession, tenants: Iterable[str]) -> int:
    """The member bit mask of the operators whose tenancy the change touches."""
    index = {member.operator_id: member.index for member in session.coop.members()}
    unknown = sorted(set(tenants) - set(index))
    if unknown:
        raise ConfigError(f"tenants that are not members: {', '.join(unknown)}", field="tenants")
    return sum(1 << index[tenant] for tenant in set(tenants))


def build_request(
    session: CoopchainSession,
    content: ProposalContent,
    posted: bytes,
    *,
    executor: str | None = None,
) -> ProposalRequest:
    """The request ``propose`` (or ``declareEmergency``) signs for ``content`` posted as
    ``posted``: its manifest, window and the members whose tenancy it touches."""
    return session.coop.build_request(
        session.account.address,
        content.resource_set,
        posted,
        manifest_root=content.manifest_root(),
        device_count=content.device_count,
        window_start=content.window.start,
        window_end=content.window.end,
        affected_mask=affected_mask(session, content.tenants),
        executor=executor,
    )


def _find_on_chain(
    session: CoopchainSession, content_hash: str, from_block: int
) -> ProposalCreated | None:
    coop = session.coop
    proposer_topic = "0x" + session.account.address[2:].lower().rjust(64, "0")
    topics = [coop.contract.events.ProposalCreated.topic, None, None, proposer_topic]
    for event in coop.events(from_block, topics=topics):
        if isinstance(event, ProposalCreated) and event.content_hash == content_hash:
            return event
    return None


_ENDED = (
    ProposalState.Rejected,
    ProposalState.Canceled,
    ProposalState.Expired,
    ProposalState.Verified,
    ProposalState.VerificationFailed,
    ProposalState.Executed,
)


def _pending_same_change(session: CoopchainSession, content: ProposalContent) -> Journal | None:
    """An unfinished journal of the same change (same resource set and manifest): a rerun of
    a killed playbook renders a new window and timestamp, but it is the same change."""
    coop = session.coop
    for journal, record in Journal.all(
        session.settings.journal_dir(), chain_id=session.client.chain_id, contract=coop.address
    ):
        if record.phase in ("recorded", "closed"):
            continue
        stored = journal.content()
        if (stored.resource_set, stored.manifest_root()) != (
            content.resource_set,
            content.manifest_root(),
        ):
            continue
        state = coop.state(record.proposal_id) if record.proposal_id is not None else None
        if state in _ENDED:
            journal.closed(state.name)
            continue
        return journal
    return None


def propose_change(
    session: CoopchainSession,
    content: ProposalContent,
    candidates: dict[str, str],
    *,
    executor: str | None = None,
    max_content_bytes: int = MAX_CONTENT_BYTES,
) -> ProposalHandle:
    """Sign and submit ONE proposal for the change, journalled so a rerun resumes.

    The content goes on chain as its compressed envelope (:meth:`ProposalContent.chain_bytes`).
    A rerun after a kill never proposes twice: an unfinished journal of the same change
    (same resource set and manifest root) is resumed with its stored content; its proposal
    ID is reused, or, if the kill came after sending, matched to the ProposalCreated event.

    Arguments:
        session: the proposer's session.
        content: the change.
        candidates: the rendered config of each host (kept in the journal).
        executor: another account allowed to record the verification, if any.
        max_content_bytes: the cap on the content's calldata size (see
            :func:`check_proposal_size`).

    Raises:
        ProposalTooLarge: the content does not fit the chain; nothing was sent or journalled.
    """
    return _submit(
        session,
        content,
        candidates,
        executor=executor,
        emergency=False,
        max_content_bytes=max_content_bytes,
    )


def declare_emergency_change(
    session: CoopchainSession,
    content: ProposalContent,
    candidates: dict[str, str],
    *,
    executor: str | None = None,
    max_content_bytes: int = MAX_CONTENT_BYTES,
) -> ProposalHandle:
    """Declare ONE emergency change (break-glass), journalled like :func:`propose_change`.

    The session's operator must hold the resource set's emergency role and the content's
    window must already be open. The proposal is flagged emergency on chain at once; it may
    be applied and recorded (:func:`apply_change`) before the vote, and must be ratified by
    the normal rule by its voting deadline, or it shows as unratified (an alarm, never an
    automatic revert).

    Raises:
        ChangeRefused: an unfinished ORDINARY proposal of the same change exists (cancel it
            first; an emergency declaration is never resumed from an ordinary proposal).
        NotEmergencyRole: the operator does not hold the emergency role (contract error).
        InvalidWindow: the window is not open yet (or otherwise invalid; contract error).
        ProposalTooLarge: the content does not fit the chain; nothing was sent or journalled.
    """
    return _submit(
        session,
        content,
        candidates,
        executor=executor,
        emergency=True,
        max_content_bytes=max_content_bytes,
    )


def _resumable(session: CoopchainSession, proposal_id: int, emergency: bool) -> int:
    """The proposal to resume; an emergency declaration refuses an ordinary proposal."""
    if emergency and not session.coop.proposal(proposal_id).emergency:
        raise ChangeRefused(
            f"proposal {proposal_id} of the same change is pending as an ordinary proposal: "
            f"cancel it (`coopchain cancel {proposal_id}`) before declaring the change an "
            "emergency"
        )
    return proposal_id


def _submit(
    session: CoopchainSession,
    content: ProposalContent,
    candidates: dict[str, str],
    *,
    executor: str | None,
    emergency: bool,
    max_content_bytes: int,
) -> ProposalHandle:
    client, coop = session.client, session.coop
    root = session.settings.journal_dir()
    pending = _pending_same_change(session, content)
    if pending is None:
        posted = content.chain_bytes()
        # Before the journal: a change too big for the chain leaves nothing to resume.
        check_proposal_size(session, posted, content.device_count, max_bytes=max_content_bytes)
        journal = Journal.create(
            root,
            content,
            candidates,
            ChangeJournal(
                content_hash=to_hex32(keccak(posted)),
                chain_id=client.chain_id,
                contract=coop.address,
                proposer=session.account.address,
            ),
            posted=posted,
        )
    else:  # resume with the very bytes first meant to be posted
        journal, posted = pending, pending.posted()
        content = ProposalContent.from_chain_bytes(posted)
    record = journal.read()
    if record.proposal_id is not None:
        return ProposalHandle(
            proposal_id=_resumable(session, record.proposal_id, emergency),
            tx_hash=record.propose_tx,
            journal=journal,
            resumed=True,
        )
    if record.propose_from_block is not None:
        found = _find_on_chain(session, record.content_hash, record.propose_from_block)
        if found is not None:
            _resumable(session, found.proposal_id, emergency)
            journal.proposed(found.proposal_id, found.tx_hash)
            return ProposalHandle(
                proposal_id=found.proposal_id, tx_hash=found.tx_hash, journal=journal, resumed=True
            )
    if pending is not None:  # checked above for a new journal
        check_proposal_size(session, posted, content.device_count, max_bytes=max_content_bytes)
    request = build_request(session, content, posted, executor=executor)
    journal.sending(client.block_number())
    signature = coop.sign_request(session.account, request, emergency=emergency)
    submit = coop.declare_emergency if emergency else coop.propose
    try:
        created = submit(session.account, request, signature, posted)
    except ContractError:  # refused: no proposal exists, so nothing is left to resume
        journal.discard()
        raise
    journal.proposed(created.proposal_id, created.tx_hash)
    return ProposalHandle(
        proposal_id=created.proposal_id, tx_hash=created.tx_hash, journal=journal, resumed=False
    )
