"""Audit a change from chain data and journal files: manifest, evidence, per device."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.exceptions import ChangeRefused
from nornir_coopchain.gate.approved import fetch_change
from nornir_coopchain.gate.declared import TenantPatterns, check_declared
from nornir_coopchain.journal import Journal
from nornir_coopchain.model.content import EvidenceProof, EvidenceReport
from nornir_coopchain.model.rules import ProposalState

__all__ = ["AuditReport", "DeviceAudit", "audit_change", "audit_proof"]


class DeviceAudit(BaseModel):
    """One device's audit: in the approved manifest, evidence proven, compliant."""

    model_config = ConfigDict(frozen=True)

    host: str
    in_manifest: bool
    evidence_proven: bool
    compliant: bool

    @property
    def passed(self) -> bool:
        """All three checks hold."""
        return self.in_manifest and self.evidence_proven and self.compliant


class AuditReport(BaseModel):
    """The audit of one proposal."""

    model_config = ConfigDict(frozen=True)

    proposal_id: int
    state: ProposalState
    content_ok: bool
    evidence_root_ok: bool
    devices: tuple[DeviceAudit, ...]
    problems: tuple[str, ...]
    recorded: bool = True
    """False: no verification was ever recorded (never applied), so there is nothing to audit."""

    @property
    def result(self) -> str:
        """``pass`` when the record matches the evidence and every device verified;
        ``not applied`` when the content checks out (also against what its proposer declared)
        and no verification was recorded."""
        if self.content_ok and not self.recorded and not self.problems:
            return "not applied"
        ok = self.content_ok and self.evidence_root_ok and not self.problems
        return "pass" if ok and all(device.passed for device in self.devices) else "fail"


def audit_change(
    coop: CoopChain,
    proposal_id: int,
    journal_root: Path,
    *,
    hosts: tuple[str, ...] = (),
    tenant_patterns: TenantPatterns | None = None,
) -> AuditReport:
    """Recompute the manifest and evidence roots and check them against the chain.

    The content comes from the chain (calldata, checked against its stored hash); the
    evidence comes from the journal in ``journal_root`` and must hash to the recorded root.

    Arguments:
        coop: the contract.
        proposal_id: the proposal number.
        journal_root: ``<state_dir>/changes`` holding the change's evidence file.
        hosts: audit only these hosts (all when empty).
        tenant_patterns: the inventory's tenant patterns by host, to recompute the affected
            tenants (see :func:`~nornir_coopchain.gate.declared.declared_mismatches`).
    """
    problems: list[str] = []
    try:
        change = fetch_change(coop, proposal_id)
    except ChangeRefused as exc:
        info = coop.proposal(proposal_id)
        return AuditReport(
            proposal_id=proposal_id,
            state=info.state,
            content_ok=False,
            evidence_root_ok=False,
            devices=(),
            problems=(str(exc),),
        )
    info = change.proposal
    problems.extend(
        f"declared: {mismatch}" for mismatch in check_declared(coop, change, tenant_patterns)
    )
    recorded = info.state in (ProposalState.Verified, ProposalState.VerificationFailed)
    if not (recorded or info.recorded):  # an emergency change may be recorded while Active
        return AuditReport(
            proposal_id=proposal_id,
            state=info.state,
            content_ok=True,
            evidence_root_ok=False,
            devices=(),
            problems=tuple(problems),
            recorded=False,
        )
    journal = Journal.find(
        journal_root, chain_id=coop.client.chain_id, contract=coop.address, proposal_id=proposal_id
    )
    report: EvidenceReport | None = journal.evidence() if journal is not None else None
    if report is None:
        problems.append(f"no evidence file for proposal {proposal_id} under {journal_root}")
    root_ok = report is not None and report.evidence_root() == info.evidence_root
    if report is not None and not root_ok:
        problems.append("the evidence file does not hash to the recorded evidence root")
    leaves = {leaf.host for leaf in report.devices} if report else set()
    audits = []
    for device in change.content.devices:
        if hosts and device.host not in hosts:
            continue
        try:
            change.entry(device.host)
            in_manifest = True
        except ChangeRefused:
            in_manifest = False
        proven = compliant = False
        if report is not None and device.host in leaves:
            proof = report.proof_for(device.host)
            compliant = proof.evidence.compliant
            proven = proof.verify(info.evidence_root) and (
                proof.evidence.candidate_hash == device.candidate_hash
            )
        audits.append(
            DeviceAudit(
                host=device.host,
                in_manifest=in_manifest,
                evidence_proven=proven,
                compliant=compliant,
            )
        )
    return AuditReport(
        proposal_id=proposal_id,
        state=info.state,
        content_ok=True,
        evidence_root_ok=root_ok,
        devices=tuple(audits),
        problems=tuple(problems),
    )


def audit_proof(coop: CoopChain, proposal_id: int, proof: EvidenceProof) -> DeviceAudit:
    """Audit one device from its proof file alone (no other device's configs or evidence).

    The proof must include the entry under the recorded evidence root, and the entry's
    candidate hash must be the one the co-owners approved for that host.
    """
    change = fetch_change(coop, proposal_id)
    host = proof.evidence.host
    try:
        approved = change.entry(host)
    except ChangeRefused:
        return DeviceAudit(host=host, in_manifest=False, evidence_proven=False, compliant=False)
    return DeviceAudit(
        host=host,
        in_manifest=True,
        evidence_proven=proof.verify(change.proposal.evidence_root)
        and proof.evidence.candidate_hash == approved.candidate_hash,
        compliant=proof.evidence.compliant,
    )
