"""What a proposer declares on chain, recomputed from the content by anyone who reads it.

The contract trusts the proposer's request: its ``affectedMask`` decides who must approve
(``affectedMustApprove``), its window and resource set are stored as given. (Its
``createdAt`` is the signing time, which the content's ``created_at`` precedes: not compared.)
A voter, ``coopchain show`` and ``coopchain audit`` recompute each of them from the content
(and each device's tenants from its diff and the inventory's ``coopchain.tenants_patterns``)
and name every field that differs: a voter rejects such a proposal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from nornir.core.inventory import Host

from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.models import MemberInfo, ProposalRequest
from nornir_coopchain.exceptions import ChangeRefused, ConfigError
from nornir_coopchain.gate.approved import ApprovedChange, fetch_change
from nornir_coopchain.model.diffs import touched_tenants
from nornir_coopchain.model.hashing import keccak, to_hex32

__all__ = [
    "TenantPatterns",
    "check_declared",
    "check_proposal_declared",
    "declared_mismatches",
    "inventory_tenant_patterns",
    "load_tenant_patterns",
]

TenantPatterns = Mapping[str, Mapping[str, Sequence[str]]]
"""Host → operator ID → regexes of that tenant's stanzas (``coopchain.tenants_patterns``)."""


def load_tenant_patterns(hosts: Iterable[tuple[str, Host]]) -> dict[str, dict[str, list[str]]]:
    """Each host's ``coopchain.tenants_patterns`` from ``(name, nornir Host)`` pairs, as
    :func:`~nornir_coopchain.gate.propose.prepare_change` uses them (hosts without any are
    left out)."""
    patterns: dict[str, dict[str, list[str]]] = {}
    for name, host in hosts:
        found = (host.get("coopchain") or {}).get("tenants_patterns")
        if found:
            patterns[name] = {str(op): list(regexes) for op, regexes in dict(found).items()}
    return patterns


def inventory_tenant_patterns(inventory: Path) -> dict[str, dict[str, list[str]]]:
    """The tenant patterns of every host of a SimpleInventory directory.

    Raises:
        ConfigError: an inventory file is missing.
    """
    from nornir.plugins.inventory.simple import SimpleInventory

    files = {name: inventory / f"{name}.yaml" for name in ("hosts", "groups", "defaults")}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise ConfigError("inventory file not found", source=", ".join(missing))
    loaded = SimpleInventory(
        host_file=str(files["hosts"]),
        group_file=str(files["groups"]),
        defaults_file=str(files["defaults"]),
    ).load()
    return load_tenant_patterns(loaded.hosts.items())


def _mask(bits: int) -> str:
    members = ", ".join(str(index) for index in range(32) if bits >> index & 1)
    return f"{bits:#b} ({f'members {members}' if members else 'no members'})"


def _tenants(names: Iterable[str]) -> str:
    return ", ".join(names) or "none"


def declared_mismatches(
    change: ApprovedChange,
    request: ProposalRequest,
    members: Sequence[MemberInfo],
    patterns: TenantPatterns | None = None,
) -> tuple[str, ...]:
    """Every proposer-supplied field that the content contradicts, as sentences naming both
    values (empty when all agree).

    Arguments:
        change: the proposal and its content, read from the chain.
        request: the signed request from the proposal's calldata
            (:meth:`~nornir_coopchain.chain.contract.CoopChain.fetch_request`).
        members: the contract's members (operator ID → index for the affected mask).
        patterns: tenant patterns by host; each device found here has its tenants
            recomputed from its diff. Devices not found keep their declared tenants.
    """
    info, content = change.proposal, change.content
    found: list[str] = []

    def differs(field: str, on_chain: object, recomputed: object) -> None:
        if on_chain != recomputed:
            found.append(f"{field} on chain is {on_chain}, the content says {recomputed}")

    differs("contentHash", info.content_hash, to_hex32(keccak(change.posted)))
    differs("resourceSet", info.resource_set, content.resource_set)
    differs("manifestRoot", info.manifest_root, content.manifest_root())
    differs("deviceCount", info.device_count, content.device_count)
    differs("windowStart", info.window_start, content.window.start)
    differs("windowEnd", info.window_end, content.window.end)

    tenants: set[str] = set()
    for device in content.devices:
        host_patterns = (patterns or {}).get(device.host)
        if host_patterns is None:
            tenants.update(device.tenants)
            continue
        touched = touched_tenants(device.diff, host_patterns)
        tenants.update(touched)
        if touched != device.tenants:
            found.append(
                f"{device.host}: the content declares tenants {_tenants(device.tenants)}, its "
                f"diff and the inventory's tenant patterns touch {_tenants(touched)}"
            )
    index = {member.operator_id: member.index for member in members}
    unknown = sorted(tenants - set(index))
    if unknown:
        found.append(f"tenants {_tenants(unknown)} are not members")
    expected = sum(1 << index[tenant] for tenant in tenants if tenant in index)
    if request.affected_mask != expected:
        found.append(
            f"affectedMask on chain is {_mask(request.affected_mask)}, but the change touches "
            f"tenants {_tenants(sorted(tenants))}: {_mask(expected)}"
        )
    return tuple(found)


def check_declared(
    coop: CoopChain, change: ApprovedChange, patterns: TenantPatterns | None = None
) -> tuple[str, ...]:
    """:func:`declared_mismatches` for a proposal, reading its request and the members.

    Raises:
        ChainError: the chain cannot be read.
    """
    request = coop.fetch_request(change.proposal_id)
    return declared_mismatches(change, request, coop.members(), patterns)


def check_proposal_declared(
    coop: CoopChain, proposal_id: int, patterns: TenantPatterns | None = None
) -> tuple[str, ...]:
    """:func:`check_declared` for a proposal number; content that does not check out against
    its on-chain hashes (or cannot be decoded) is reported as the one mismatch.

    Raises:
        ChainError: the proposal does not exist or the chain cannot be read.
    """
    try:
        change = fetch_change(coop, proposal_id)
    except (ChangeRefused, ConfigError) as exc:
        return (str(exc),)
    return check_declared(coop, change, patterns)
