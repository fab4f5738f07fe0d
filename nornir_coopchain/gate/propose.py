"""From one Nornir run to ONE signed proposal for the whole change."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nornir.core import Nornir
from nornir.core.exceptions import NornirSubTaskError
from nornir.core.task import MultiResult, Result, Task
from pydantic import BaseModel, ConfigDict

from nornir_coopchain.chain.models import ProposalCreated
from nornir_coopchain.exceptions import ChangeRefused, ConfigError
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
    "PreparedChange",
    "ProposalHandle",
    "build_content",
    "declare_emergency_change",
    "describe",
    "failed_hosts",
    "prepare_change",
    "propose_change",
    "templates_commit",
    "templates_hash",
]


class PreparedChange(BaseModel):
    """The dry run of a change on every host: diffs and the configs they were made from."""

    model_config = ConfigDict(frozen=True)

    devices: tuple[PreparedDevice, ...]
    candidates: dict[str, str]
    tenants_patterns: dict[str, dict[str, list[str]]]
    inventory_hash: str

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
    rendered: RenderedConfig = task.run(coopchain_render, template=template, path=templates).result
    prepared: PreparedDevice = task.run(
        coopchain_prepare, config=rendered.config, replace=replace
    ).result
    return Result(host=task.host, result=(rendered, prepared), diff=prepared.diff)


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
    """Render every host's config and dry-run it (load, compare, discard).

    Raises:
        ConfigError: a host failed to render or diff; it names each failed host. Nothing was
            proposed and no device was changed.
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
    devices, candidates, patterns, data = [], {}, {}, {}
    for host in sorted(results):
        rendered, prepared = results[host][0].result
        devices.append(prepared)
        candidates[host] = rendered.config
        inventory = _host_data(nr, host)
        coop_data = inventory.get("coopchain") or {}
        patterns[host] = dict(coop_data.get("tenants_patterns") or {})
        data[host] = inventory
    inventory_hash = to_hex32(keccak(json.dumps(data, sort_keys=True, default=str).encode()))
    return PreparedChange(
        devices=tuple(devices),
        candidates=candidates,
        tenants_patterns=patterns,
        inventory_hash=inventory_hash,
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
            tenants=touched_tenants(device.diff, prepared.tenants_patterns.get(device.host, {})),
            replace=device.replace,
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
) -> ProposalHandle:
    """Sign and submit ONE proposal for the change, journalled so a rerun resumes.

    A rerun after a kill never proposes twice: an unfinished journal of the same change
    (same resource set and manifest root) is resumed with its stored content; its proposal
    ID is reused, or, if the kill came after sending, matched to the ProposalCreated event.
    """
    return _submit(session, content, candidates, executor=executor, emergency=False)


def declare_emergency_change(
    session: CoopchainSession,
    content: ProposalContent,
    candidates: dict[str, str],
    *,
    executor: str | None = None,
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
    """
    return _submit(session, content, candidates, executor=executor, emergency=True)


def _resumable(session: CoopchainSession, proposal_id: int, emergency: bool) -> int:
    """The proposal to resume; an emergency declaration refuses an ordinary proposal."""
    if emergency and not session.coop.proposal(proposal_id).emergency:
        raise ChangeRefused(
            f"proposal {proposal_id} of the same change is pending as an ordinary proposal: "
            "cancel it before declaring the change an emergency"
        )
    return proposal_id


def _submit(
    session: CoopchainSession,
    content: ProposalContent,
    candidates: dict[str, str],
    *,
    executor: str | None,
    emergency: bool,
) -> ProposalHandle:
    client, coop = session.client, session.coop
    root = session.settings.journal_dir()
    pending = _pending_same_change(session, content)
    if pending is not None:
        content = pending.content()
    journal = pending or Journal.create(
        root,
        content,
        candidates,
        ChangeJournal(
            content_hash=content.content_hash(),
            chain_id=client.chain_id,
            contract=coop.address,
            proposer=session.account.address,
        ),
    )
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
    raw = content.canonical_bytes()
    request = coop.build_request(
        session.account.address,
        content.resource_set,
        raw,
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
    created = submit(session.account, request, signature, raw)
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
