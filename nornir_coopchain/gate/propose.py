"""From one Nornir run to ONE signed proposal for the whole change."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from nornir.core import Nornir
from nornir.core.exceptions import NornirSubTaskError
from nornir.core.task import MultiResult, Result, Task
from pydantic import BaseModel, ConfigDict

from nornir_coopchain.chain.models import ProposalCreated
from nornir_coopchain.exceptions import ChangeRefused, ConfigError, ContractError, ProposalTooLarge
from nornir_coopchain.journal import ChangeJournal, Journal
from nornir_coopchain.model.content import ChangeWindow, DeviceChange, ProposalContent
from nornir_coopchain.model.diffs import touched_tenants
from nornir_coopchain.model.hashing import canonical_json, keccak, to_hex32
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.plugins.results import PreparedDevice, RenderedConfig
from nornir_coopchain.plugins.tasks.coopchain_prepare import coopchain_prepare
from nornir_coopchain.plugins.tasks.coopchain_render import coopchain_render
from nornir_coopchain.session import CoopchainSession

__all__ = [
    "MAX_CONTENT_BYTES",
    "TX_GAS_CAP",
    "PreparedChange",
    "ProposalHandle",
    "build_content",
    "check_proposal_size",
    "declare_emergency_change",
    "describe",
    "failed_hosts",
    "prepare_change",
    "propose_change",
    "propose_gas",
    "templates_commit",
    "templates_hash",
]


MAX_CONTENT_BYTES: Final = 512 * 1024
"""Default cap on a proposal's ``content`` calldata (the compressed envelope), whatever the
block gas limit: JSON-RPC carries a raw transaction hex-encoded (twice its size; anvil refuses
request bodies over ~2 MB) and nodes cap transaction sizes (geth's pool: 128 KiB). About
3,000 devices of the sample site's tenant turn-up (~160 bytes each compressed)."""

TX_GAS_CAP: Final = 2**24
"""The most gas one transaction may use since Osaka (EIP-7825), whatever the block's limit."""

_PROPOSE_ABI_OVERHEAD: Final = 4 + 11 * 32 + 2 * 32 + 32 + 3 * 32 + 32
"""Calldata of ``propose`` besides the content: selector, the request's 11 words, two
offsets, the signature's length and 65 bytes padded to 96, the content's length."""


class PreparedChange(BaseModel):
    """The dry run of a change on every host: diffs and the configs they were made from."""

    model_config = ConfigDict(frozen=True)

    devices: tuple[PreparedDevice, ...]
    candidates: dict[str, str]
    tenants: dict[str, tuple[str, ...]]
    """Each host's touched tenants: its ``coopchain.tenants_patterns`` matched on its diff."""
    inventory_hash: str
    templates: dict[str, str] = {}
    """Each host's rendered template, relative to the templates directory (pinned in the
    content)."""

    @property
    def changed_hosts(self) -> tuple[str, ...]:
        """Hosts whose diff is not empty."""
        return tuple(device.host for device in self.devices if device.diff)


@dataclass(frozen=True)
class ProposalHandle:
    """A proposal on chain and the local journal of its change."""

    proposal_id: int
    tx_hash: str | None
    journal: Journal
    resumed: bool


def _render_and_prepare(task: Task, template: str | None, templates: Path, replace: bool) -> Result:
    """Render, dry-run, and attribute the diff to tenants (here, where it overlaps the other
    hosts' device waits, rather than once per host in the main thread)."""
    rendered: RenderedConfig = task.run(coopchain_render, template=template, path=templates).result
    prepared: PreparedDevice = task.run(
        coopchain_prepare, config=rendered.config, replace=replace
    ).result
    patterns = (task.host.get("coopchain") or {}).get("tenants_patterns") or {}
    tenants = touched_tenants(prepared.diff, patterns) if prepared.diff else ()
    return Result(host=task.host, result=(rendered, prepared, tenants), diff=prepared.diff)


def failed_hosts(results: dict[str, MultiResult]) -> dict[str, BaseException | None]:
    """Each failed host with the exception that made it fail (the innermost, not Nornir's
    ``NornirSubTaskError`` wrapper), or None when a result failed without one."""
    failed: dict[str, BaseException | None] = {}
    for host, multi in results.items():
        if multi.failed:
            causes = [
                r.exception
                for r in multi
                if r.exception is not None and not isinstance(r.exception, NornirSubTaskError)
            ]
            failed[host] = causes[0] if causes else None
    return failed


def describe(error: BaseException | None) -> str:
    """``Type: message`` of a host's failure."""
    return f"{type(error).__name__}: {error}" if error is not None else "failed"


def _host_data(nr: Nornir, host: str) -> dict[str, Any]:
    return dict(nr.inventory.hosts[host].items())


def prepare_change(
    nr: Nornir,
    *,
    template: str | None = None,
    templates: Path = Path("templates"),
    replace: bool = True,
) -> PreparedChange:
    """Render every host's config, dry-run it (load, compare, discard) and find the tenants
    its diff touches (the host's ``coopchain.tenants_patterns``).

    Raises:
        ConfigError: a host failed to render or diff, or has a tenant pattern that is not a
            valid regex; it names each failed host. Nothing was proposed and no device was
            changed.
    """
    results = nr.run(
        task=_render_and_prepare,
        name="coopchain prepare",
        template=template,
        templates=templates,
        replace=replace,
        on_failed=True,
    )
    failed = failed_hosts(results)
    if failed:
        detail = "; ".join(f"{host}: {describe(error)}" for host, error in sorted(failed.items()))
        raise ConfigError(f"cannot prepare the change on {len(failed)} host(s): {detail}")
    devices, candidates, tenants, data, templates_used = [], {}, {}, {}, {}
    for host in sorted(results):
        rendered, prepared, touched = results[host][0].result
        devices.append(prepared)
        candidates[host] = rendered.config
        templates_used[host] = rendered.template
        tenants[host] = touched
        data[host] = _host_data(nr, host)
    inventory_hash = to_hex32(keccak(json.dumps(data, sort_keys=True, default=str).encode()))
    return PreparedChange(
        devices=tuple(devices),
        candidates=candidates,
        tenants=tenants,
        inventory_hash=inventory_hash,
        templates=templates_used,
    )


def templates_hash(templates: Path) -> str:
    """A hash of every file under the templates directory (paths and contents)."""
    files = sorted(path for path in templates.rglob("*") if path.is_file())
    listing = {
        str(path.relative_to(templates)): to_hex32(keccak(path.read_bytes())) for path in files
    }
    return to_hex32(keccak(canonical_json(listing)))


def templates_commit(templates: Path) -> str | None:
    """The git commit of the templates directory, or None when it is not in a git work tree
    or has uncommitted changes (then only :func:`templates_hash` pins it)."""
    git = ["git", "-C", str(templates)]
    try:
        head = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "."], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0 or dirty.returncode != 0 or dirty.stdout.strip():
        return None
    return head.stdout.strip()


def build_content(
    prepared: PreparedChange,
    *,
    resource_set: str,
    title: str,
    window: ChangeWindow,
    created_at: int,
    description: str = "",
    templates: Path | None = None,
    only_changed: bool = True,
) -> ProposalContent:
    """The canonical content of ONE proposal covering every (changed) device.

    Raises:
        ConfigError: no device would change.
    """
    devices = [
        DeviceChange(
            host=device.host,
            platform=device.platform,
            base_config_hash=device.base_config_hash,
            candidate_hash=device.candidate_hash,
            diff=device.diff,
            diff_hash=device.diff_hash,
            tenants=prepared.tenants.get(device.host, ()),
            replace=device.replace,
            template=prepared.templates.get(device.host),
        )
        for device in prepared.devices
        if device.diff or not only_changed
    ]
    if not devices:
        raise ConfigError("nothing to propose: no device's running config differs")
    return ProposalContent(
        resource_set=resource_set,
        title=title,
        description=description,
        window=window,
        devices=tuple(devices),
        templates_hash=templates_hash(templates) if templates is not None else None,
        templates_commit=templates_commit(templates) if templates is not None else None,
        inventory_hash=prepared.inventory_hash,
        created_at=created_at,
    )


def affected_mask(session: CoopchainSession, tenants: Iterable[str]) -> int:
    """The member bit mask of the operators whose tenancy the change touches."""
    index = {member.operator_id: member.index for member in session.coop.members()}
    unknown = sorted(set(tenants) - set(index))
    if unknown:
        raise ConfigError(f"tenants that are not members: {', '.join(unknown)}", field="tenants")
    return sum(1 << index[tenant] for tenant in set(tenants))


def propose_gas(content: bytes) -> int:
    """The gas a ``propose`` (or ``declareEmergency``) transaction carrying ``content`` needs
    at least: the calldata (21,000 + 16 gas per non-zero and 4 per zero byte) plus copying and
    hashing the content in memory (memory expansion grows with its square), or the EIP-7623
    calldata floor (Prague: 21,000 + 40 gas per non-zero and 10 per zero byte) when higher.
    The rest of the call's execution (signature check, storage) is not counted.

    Arguments:
        content: the ``content`` calldata (:meth:`ProposalContent.chain_bytes`).

    Returns:
        A lower bound of the transaction's gas.
    """
    words = (len(content) + 31) // 32
    nonzero = len(content) - content.count(0)
    zeros = words * 32 - nonzero + _PROPOSE_ABI_OVERHEAD  # padding, and the overhead: at least
    calldata = 21_000 + 16 * nonzero + 4 * zeros
    in_memory = 3 * words + words * words // 512 + 3 * words + 6 * words  # expand, copy, hash
    floor = 21_000 + 10 * (zeros + 4 * nonzero)
    return max(calldata + in_memory, floor)


def check_proposal_size(
    session: CoopchainSession,
    content: bytes,
    device_count: int,
    *,
    max_bytes: int = MAX_CONTENT_BYTES,
) -> None:
    """Refuse content the chain cannot take in one ``propose``, before anything is sent.

    Arguments:
        session: the proposer's session (the latest block's gas limit is read).
        content: the ``content`` calldata (:meth:`ProposalContent.chain_bytes`).
        device_count: the proposal's number of devices (for the message).
        max_bytes: the cap on the content's size in bytes.

    Raises:
        ProposalTooLarge: :func:`propose_gas` exceeds the latest block's gas limit or
            :data:`TX_GAS_CAP` (EIP-7825, enforced from Osaka on), or the content exceeds
            ``max_bytes``; it names the figures and says to split the change.
        ChainConnectionError: the latest block cannot be read.
    """
    block_gas_limit = session.client.block_gas_limit()
    gas_limit = min(block_gas_limit, TX_GAS_CAP)
    gas = propose_gas(content)
    if gas > gas_limit or len(content) > max_bytes:
        raise ProposalTooLarge(
            size_bytes=len(content),
            device_count=device_count,
            gas_needed=gas,
            gas_limit=gas_limit,
            block_gas_limit=block_gas_limit,
            max_bytes=max_bytes,
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
        if record.proposal_id is not None and coop.state(record.proposal_id) in _ENDED:
            journal.save(record.model_copy(update={"phase": "closed"}))
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
            journal.save(
                record.model_copy(
                    update={
                        "proposal_id": found.proposal_id,
                        "propose_tx": found.tx_hash,
                        "phase": "proposed",
                    }
                )
            )
            return ProposalHandle(
                proposal_id=found.proposal_id, tx_hash=found.tx_hash, journal=journal, resumed=True
            )
    if pending is not None:  # checked above for a new journal
        check_proposal_size(session, posted, content.device_count, max_bytes=max_content_bytes)
    request = coop.build_request(
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
    journal.save(record.model_copy(update={"propose_from_block": client.block_number()}))
    signature = coop.sign_request(session.account, request, emergency=emergency)
    submit = coop.declare_emergency if emergency else coop.propose
    try:
        created = submit(session.account, request, signature, posted)
    except ContractError:  # refused: no proposal exists, so nothing is left to resume
        journal.discard()
        raise
    journal.save(
        journal.read().model_copy(
            update={
                "proposal_id": created.proposal_id,
                "propose_tx": created.tx_hash,
                "phase": "proposed",
            }
        )
    )
    return ProposalHandle(
        proposal_id=created.proposal_id, tx_hash=created.tx_hash, journal=journal, resumed=False
    )
