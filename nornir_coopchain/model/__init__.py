"""The pure change model: canonical content, hashes, Merkle trees and the voting rules.

Imports neither web3, napalm nor nornir, so both sides of a vote compute the same bytes
and verdicts from it, and it can be tested alone.

- :mod:`.hashing`: keccak-256, hex helpers, canonical JSON.
- :mod:`.merkle`: OpenZeppelin StandardMerkleTree-compatible trees and proofs.
- :mod:`.content`: proposal content and verification evidence (pydantic models).
- :mod:`.rules`: the reference model of the contract's snapshot, tally and verdicts.
"""

from __future__ import annotations

from nornir_coopchain.model.content import (
    EVIDENCE_LEAF_TYPES,
    GOVERNANCE_SET_NAME,
    MANIFEST_LEAF_TYPES,
    ChangeWindow,
    DeviceChange,
    DeviceEvidence,
    EvidenceReport,
    ProposalContent,
    hash_text,
    operator_id,
    operator_name,
    resource_set_id,
    resource_set_name,
)
from nornir_coopchain.model.hashing import canonical_json, from_hex32, keccak, to_hex32
from nornir_coopchain.model.merkle import MerkleTree, verify
from nornir_coopchain.model.rules import (
    AggregationRule,
    ProposalState,
    ResourceSetPolicy,
    Snapshot,
    Tally,
    VoteType,
    early_verdict,
    final_verdict,
    passes,
    shortfalls,
)

__all__ = [
    "EVIDENCE_LEAF_TYPES",
    "GOVERNANCE_SET_NAME",
    "MANIFEST_LEAF_TYPES",
    "AggregationRule",
    "ChangeWindow",
    "DeviceChange",
    "DeviceEvidence",
    "EvidenceReport",
    "MerkleTree",
    "ProposalContent",
    "ProposalState",
    "ResourceSetPolicy",
    "Snapshot",
    "Tally",
    "VoteType",
    "canonical_json",
    "early_verdict",
    "final_verdict",
    "from_hex32",
    "hash_text",
    "keccak",
    "operator_id",
    "operator_name",
    "passes",
    "resource_set_id",
    "resource_set_name",
    "shortfalls",
    "to_hex32",
    "verify",
]

# Compliance of read-backs and what a diff touches.
from nornir_coopchain.model.compliance import (
    ComplianceReport,
    check_compliance,
    evidence_for,
    normalise,
)
from nornir_coopchain.model.diffs import (
    ChangedLine,
    changed_lines,
    touched_stanzas,
    touched_tenants,
)

__all__ += [
    "ChangedLine",
    "ComplianceReport",
    "changed_lines",
    "check_compliance",
    "evidence_for",
    "normalise",
    "touched_stanzas",
    "touched_tenants",
]
