"""What the dashboard shows, read through the chain bindings, the gate's audit and the journal.

Every page and every ``/api/...`` answer is one of the models here, so HTML and JSON carry
the same data. Nothing secret is read: the proposal content is what the chain holds, the
evidence is the redacted evidence report (hashes and counts), and the journal's rendered
candidates are never opened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.events import LogCursor
from nornir_coopchain.chain.models import (
    ZERO_HASH,
    ApplyClaimed,
    ChainEvent,
    EmergencyDeclared,
    ProposalCanceled,
    ProposalCreated,
    ProposalInfo,
    VerdictReached,
    VerificationRecorded,
    VoteCast,
)
from nornir_coopchain.exceptions import ChangeRefused, ConfigError, CoopchainError
from nornir_coopchain.gate.approved import check_proposal, fetch_change
from nornir_coopchain.gate.audit import DeviceAudit, audit_change
from nornir_coopchain.journal import HostRecord, Journal
from nornir_coopchain.model.content import EvidenceReport, ProposalContent
from nornir_coopchain.model.diffs import touched_tenants
from nornir_coopchain.model.rules import AggregationRule, ProposalState, rule_label
from nornir_coopchain.model.times import iso

__all__ = [
    "Dashboard",
    "DeviceView",
    "EventBatch",
    "EventView",
    "ProposalPage",
    "ProposalRow",
]

TenantPatterns = Mapping[str, Mapping[str, Sequence[str]]]
"""host → operator ID → regexes of that tenant's stanzas (the inventory's tenants_patterns)."""


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class Window(_View):
    """A change window, as unix times and ISO 8601 with zone."""

    start: int
    end: int
    start_iso: str
    end_iso: str

    @classmethod
    def of(cls, start: int, end: int) -> Window:
        """The window from ``start`` to ``end``."""
        return cls(start=start, end=end, start_iso=iso(start), end_iso=iso(end))


class Votes(_View):
    """The units cast so far against the rule the proposal was created under (snapshotted on
    chain: it decides the verdict whatever governance changed since)."""

    approve: int
    reject: int
    abstain: int
    total: int
    rule: str
    """The proposal's rule: its name."""
    threshold: str
    """What the proposal's rule needs, in words (threshold, quorum, veto)."""
    threshold_bps: int
    quorum_bps: int
    current_rule: str | None = None
    """The resource set's rule now, when governance changed it since the proposal (else None)."""
    current_threshold: str | None = None
    """What the set's current rule needs, in words, when it changed (else None)."""


class ProposalRow(_View):
    """One line of the proposals list."""

    proposal_id: int
    title: str
    resource_set: str
    proposer: str
    proposer_operator: str
    window: Window
    state: str
    votes: Votes
    emergency: bool
    unratified: bool
    recorded: bool


class Hunk(_View):
    """One hunk of a device's diff and the tenants whose stanzas it touches."""

    lines: tuple[tuple[str, str], ...]
    """(kind, text): kind is ``add``, ``del``, ``hunk``, ``file`` or ``ctx``."""
    changed: bool
    """Whether the hunk adds or removes lines (a file header does not)."""
    tenants: tuple[str, ...] | None
    """None when this node's inventory has no tenant patterns for the host."""


class DeviceView(_View):
    """One device of a proposal: its diff, and what happened when it was applied."""

    host: str
    platform: str
    tenants: tuple[str, ...]
    candidate_hash: str
    hunks: tuple[Hunk, ...]
    outcome: str | None
    """``verified``, ``rolled back``, ``failed`` or ``pending``; None without a local journal."""
    reason: str | None
    compliant: bool | None
    missing_lines: int | None
    extra_lines: int | None
    audit: str | None
    """``pass`` or ``fail`` as ``coopchain audit`` says for this host; None if not recorded."""
    proof: bool
    """Whether this node holds the host's inclusion proof (downloadable)."""


class EventView(_View):
    """One contract event, for the vote timeline and the live feed."""

    kind: str
    proposal_id: int | None
    block_number: int
    log_index: int
    tx_hash: str
    time_iso: str | None
    summary: str


class SignedRequest(_View):
    """The request the proposer signed (claim 2: number, participant, content hash, timestamp,
    result, signature), with the rest of the signed fields."""

    number: int
    participant: str
    participant_operator: str
    content_hash: str
    timestamp: int
    timestamp_iso: str
    result: str
    signature: str
    manifest_root: str
    device_count: int
    nonce: int
    executor: str


class Audit(_View):
    """The evidence root recorded on chain and whether it audits, recomputed here."""

    evidence_root: str
    recorded: bool
    result: str
    evidence_root_ok: bool
    problems: tuple[str, ...]


class ProposalPage(_View):
    """Everything about one proposal."""

    row: ProposalRow
    description: str
    content_problem: str | None
    deadline: Window
    request: SignedRequest
    timeline: tuple[EventView, ...]
    verdict: str | None
    devices: tuple[DeviceView, ...]
    audit: Audit


class EventBatch(_View):
    """Events from ``from_block`` on, and where the next poll starts."""

    from_block: int
    next_block: int
    events: tuple[EventView, ...]


def rule_text(
    rule: AggregationRule, threshold_bps: int, quorum_bps: int, veto_mask: int
) -> tuple[str, str]:
    """The rule's name and what it needs, in words."""
    pct = f"{threshold_bps / 100:g}%"
    needs = {
        AggregationRule.Unanimous: "every voter approves or abstains, none rejects",
        AggregationRule.SimpleMajority: "more approve than reject",
        AggregationRule.Supermajority: f"approve ≥ {pct} of approve + reject",
        AggregationRule.WeightedThreshold: f"approve ≥ {pct} of all units",
    }[rule]
    if quorum_bps:
        needs += f"; quorum {quorum_bps / 100:g}% of units cast"
    if veto_mask:
        needs += "; any veto holder's reject rejects"
    return rule.name, needs


def _hunks(diff: str, patterns: Mapping[str, Sequence[str]] | None) -> tuple[Hunk, ...]:
    """Split a diff at its ``@@`` headers and attribute each part to tenants."""
    parts: list[list[str]] = [[]]
    for line in diff.splitlines():
        if line.startswith("@@") and parts[-1]:
            parts.append([])
        parts[-1].append(line)
    hunks = []
    for part in parts:
        if not part:
            continue
        lines = tuple((_kind(line), line) for line in part)
        changed = any(kind in ("add", "del") for kind, _ in lines)
        known = patterns is not None and changed
        tenants = touched_tenants("\n".join(part), patterns or {}) if known else None
        hunks.append(Hunk(lines=lines, changed=changed, tenants=tenants))
    return tuple(hunks)


def _kind(line: str) -> str:
    if line.startswith("@@"):
        return "hunk"
    if line.startswith(("+++ ", "--- ")):
        return "file"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    return "ctx"


def _outcome(host: HostRecord | None) -> tuple[str, str | None]:
    """A host's applied outcome from its journal record, and the reason when it failed."""
    if host is None:
        return "pending", None
    verified = host.verified
    if verified is not None and verified.rolled_back:
        return "rolled back", host.error or "read-back did not match: rolled back"
    if verified is not None and verified.evidence.compliant:
        return "verified", None
    if verified is not None:
        return "failed", host.error or "read-back does not match the approved candidate"
    if host.error:
        return "failed", host.error
    return ("applied" if host.applied else "pending"), None


class Dashboard:
    """Reads one contract for the dashboard, with the operator's journal and inventory.

    Arguments:
        connect: returns the contract; called again after it raised (the node was down).
        journal_root: ``<state_dir>/changes`` of this operator.
        tenant_patterns: per host, the inventory's tenant patterns (for per-hunk tenants).
    """

    def __init__(
        self,
        connect: Callable[[], CoopChain],
        journal_root: Path,
        tenant_patterns: TenantPatterns | None = None,
    ):
        self._connect = connect
        self._coop: CoopChain | None = None
        self._lock = threading.Lock()
        self.journal_root = journal_root
        self.tenant_patterns = dict(tenant_patterns or {})
        self._content: dict[int, ProposalContent | str] = {}
        self._created: dict[int, ProposalCreated] = {}
        self._times: dict[int, int] = {}

    @property
    def coop(self) -> CoopChain:
        """The contract (connecting on first use)."""
        with self._lock:
            if self._coop is None:
                self._coop = self._connect()
            return self._coop

    # ------------------------------------------------------------ proposals

    def proposals(
        self, *, state: str | None = None, resource_set: str | None = None
    ) -> list[ProposalRow]:
        """Every proposal, newest first, optionally only in one state and resource set."""
        rows = []
        for proposal_id in range(self.coop.proposal_count(), 0, -1):
            info = self.coop.proposal(proposal_id)
            if state and info.state.name != state:
                continue
            if resource_set and info.resource_set != resource_set:
                continue
            rows.append(self._row(info))
        return rows

    def resource_sets(self) -> list[str]:
        """The resource sets that have proposals."""
        created = (self._created_event(pid) for pid in range(1, self.coop.proposal_count() + 1))
        return sorted({event.resource_set for event in created})

    def _created_event(self, proposal_id: int) -> ProposalCreated:
        if proposal_id not in self._created:
            self._created[proposal_id] = self.coop.proposal_created(proposal_id)
        return self._created[proposal_id]

    def _content_of(self, proposal_id: int) -> ProposalContent | str:
        """The checked content, or why there is none (a governance proposal, a mismatch)."""
        if proposal_id not in self._content:
            info = self.coop.proposal(proposal_id)
            if info.resource_set == self.coop.governance_set:
                self._content[proposal_id] = "a governance proposal: its content is calls"
            else:
                try:
                    self._content[proposal_id] = fetch_change(self.coop, proposal_id).content
                except (ChangeRefused, ConfigError) as exc:
                    self._content[proposal_id] = str(exc)
        return self._content[proposal_id]

    def _votes(self, info: ProposalInfo) -> Votes:
        """The tally against the proposal's snapshotted rule (and its veto holders), with the
        set's current rule when governance changed it since."""
        rule, threshold = rule_text(info.rule, info.threshold_bps, info.quorum_bps, info.veto_mask)
        now = self.coop.resource_set(info.resource_set)
        changed = rule_label(now.rule, now.threshold_bps, now.quorum_bps) != info.rule_label
        current = rule_text(now.rule, now.threshold_bps, now.quorum_bps, now.veto_mask)
        return Votes(
            approve=info.approve_units,
            reject=info.reject_units,
            abstain=info.abstain_units,
            total=info.total_units,
            rule=rule,
            threshold=threshold,
            threshold_bps=info.threshold_bps,
            quorum_bps=info.quorum_bps,
            current_rule=current[0] if changed else None,
            current_threshold=current[1] if changed else None,
        )

    def _row(self, info: ProposalInfo) -> ProposalRow:
        created = self._created_event(info.proposal_id)
        content = self._content_of(info.proposal_id)
        title = content.title if isinstance(content, ProposalContent) else f"({content})"
        return ProposalRow(
            proposal_id=info.proposal_id,
            title=title,
            resource_set=info.resource_set,
            proposer=created.proposer,
            proposer_operator=created.operator_id,
            window=Window.of(info.window_start, info.window_end),
            state=info.state.name,
            votes=self._votes(info),
            emergency=info.emergency,
            unratified=info.unratified,
            recorded=info.recorded,
        )

    def proposal(self, proposal_id: int) -> ProposalPage:
        """One proposal: content, signed request, votes, outcome and the recomputed audit.

        Raises:
            ConfigError: no such proposal.
            ChainError: the chain cannot be read.
        """
        check_proposal(self.coop, proposal_id)
        info = self.coop.proposal(proposal_id)
        row = self._row(info)
        content = self._content_of(proposal_id)
        request, signature = self.coop.signed_request(proposal_id)
        timeline = tuple(self._event_view(event) for event in self._proposal_events(proposal_id))
        verdicts = [event for event in timeline if event.kind == "VerdictReached"]
        audit = audit_change(self.coop, proposal_id, self.journal_root)
        journal = Journal.find(
            self.journal_root,
            chain_id=self.coop.client.chain_id,
            contract=self.coop.address,
            proposal_id=proposal_id,
        )
        devices: tuple[DeviceView, ...] = ()
        if isinstance(content, ProposalContent):
            devices = self._devices(content, journal, audit.devices)
        return ProposalPage(
            row=row,
            description=content.description if isinstance(content, ProposalContent) else "",
            content_problem=None if isinstance(content, ProposalContent) else content,
            deadline=Window.of(info.created_at, info.vote_end),
            request=SignedRequest(
                number=proposal_id,
                participant=request.proposer,
                participant_operator=row.proposer_operator,
                content_hash=request.content_hash,
                timestamp=request.created_at,
                timestamp_iso=iso(request.created_at),
                result=info.state.name,
                signature=signature,
                manifest_root=request.manifest_root,
                device_count=request.device_count,
                nonce=request.nonce,
                executor=request.executor,
            ),
            timeline=timeline,
            verdict=verdicts[-1].summary if verdicts else None,
            devices=devices,
            audit=Audit(
                evidence_root=info.evidence_root,
                recorded=info.recorded,
                result=audit.result,
                evidence_root_ok=audit.evidence_root_ok,
                problems=audit.problems,
            ),
        )

    def _devices(
        self, content: ProposalContent, journal: Journal | None, audits: Sequence[DeviceAudit]
    ) -> tuple[DeviceView, ...]:
        record = journal.read() if journal is not None else None
        report: EvidenceReport | None = journal.evidence() if journal is not None else None
        evidence = {leaf.host: leaf for leaf in report.devices} if report else {}
        passed = {audit.host: audit.passed for audit in audits}
        views = []
        for device in content.devices:
            outcome: str | None = None
            reason: str | None = None
            if record is not None:
                outcome, reason = _outcome(record.hosts.get(device.host))
            leaf = evidence.get(device.host)
            views.append(
                DeviceView(
                    host=device.host,
                    platform=device.platform,
                    tenants=device.tenants,
                    candidate_hash=device.candidate_hash,
                    hunks=_hunks(device.diff, self.tenant_patterns.get(device.host)),
                    outcome=outcome,
                    reason=reason,
                    compliant=leaf.compliant if leaf else None,
                    missing_lines=leaf.missing_lines if leaf else None,
                    extra_lines=leaf.extra_lines if leaf else None,
                    audit=("pass" if passed[device.host] else "fail")
                    if leaf and device.host in passed
                    else None,
                    proof=leaf is not None,
                )
            )
        return tuple(views)

    def proof(self, proposal_id: int, host: str) -> bytes:
        """One host's evidence and inclusion proof, as ``coopchain audit --proof`` reads it.

        Raises:
            ConfigError: no such proposal, no evidence kept here, or the host is not in it.
        """
        check_proposal(self.coop, proposal_id)
        journal = Journal.find(
            self.journal_root,
            chain_id=self.coop.client.chain_id,
            contract=self.coop.address,
            proposal_id=proposal_id,
        )
        report = journal.evidence() if journal is not None else None
        if report is None:
            raise ConfigError(f"this node keeps no evidence for proposal {proposal_id}")
        if host not in {leaf.host for leaf in report.devices}:
            raise ConfigError(f"no evidence for host {host!r} in proposal {proposal_id}")
        return report.proof_for(host).canonical_bytes()

    # ------------------------------------------------------------ events

    def _proposal_events(self, proposal_id: int) -> list[ChainEvent]:
        topics = [None, "0x" + f"{proposal_id:064x}"]
        first = self._created_event(proposal_id).block_number
        return [
            event
            for event in self.coop.events(first, topics=topics)
            if getattr(event, "proposal_id", None) == proposal_id
        ]

    def _time(self, block: int) -> int:
        if block not in self._times:
            self._times[block] = self.coop.client.block_timestamp(block)
        return self._times[block]

    def _operator(self, account: str) -> str:
        try:
            return self.coop.members()[self.coop.member_index(account)].operator_id
        except CoopchainError:
            return account

    def _event_view(self, event: ChainEvent) -> EventView:
        summary: str = event.kind
        if isinstance(event, ProposalCreated):
            summary = f"proposed by {event.operator_id} ({event.device_count} devices)"
        elif isinstance(event, EmergencyDeclared):
            summary = f"declared an EMERGENCY change; ratify by {iso(event.ratify_by)}"
        elif isinstance(event, VoteCast):
            units = "unit" if event.units == 1 else "units"
            summary = (
                f"{self._operator(event.voter)} voted {event.support.name} ({event.units} {units})"
            )
        elif isinstance(event, VerdictReached):
            summary = (
                f"verdict {event.outcome.name}: {event.approve_units} approve, "
                f"{event.reject_units} reject, {event.abstain_units} abstain"
            )
        elif isinstance(event, VerificationRecorded):
            summary = (
                f"verification recorded ({event.outcome.name}): {event.devices_ok} ok, "
                f"{event.devices_failed} failed, evidence root {event.evidence_root}"
            )
        elif isinstance(event, ApplyClaimed):
            taken = "" if event.previous_run == ZERO_HASH else f", taking over {event.previous_run}"
            summary = (
                f"{self._operator(event.claimer)} claimed the apply for run {event.run_id}{taken}"
            )
        elif isinstance(event, ProposalCanceled):
            summary = "canceled by the proposer"
        return EventView(
            kind=event.kind,
            proposal_id=getattr(event, "proposal_id", None),
            block_number=event.block_number,
            log_index=event.log_index,
            tx_hash=event.tx_hash,
            time_iso=iso(self._time(event.block_number)),
            summary=summary,
        )

    def head(self) -> int:
        """The latest block number (a live page polls from the next one)."""
        return self.coop.client.block_number()

    def events_since(self, from_block: int) -> EventBatch:
        """The contract's events from ``from_block`` up to the head, read with a log cursor."""
        cursor = LogCursor(self.coop.client, self.coop.address, start_block=from_block)
        events: list[EventView] = []
        for _ in range(100):  # bounded: each round consumes at least one block range
            with cursor.batch() as logs:
                events += [self._event_view(event) for event in self.coop.decode_logs(logs)]
            if cursor.caught_up:
                break
        return EventBatch(from_block=from_block, next_block=cursor.next_block, events=tuple(events))


STATES = tuple(state.name for state in ProposalState if state.name != "NONE")
"""The states a proposal can be listed by."""
