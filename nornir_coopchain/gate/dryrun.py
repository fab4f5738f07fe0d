"""The whole flow as a dry run, as ``napalm_configure(dry_run=True)``: nothing is sent.

:func:`dry_run_change` renders and diffs every host (load, compare, discard), builds the
proposal's content, sizes it, asks the node what ``propose`` would cost (``eth_estimateGas``
on the signed request: a request the contract would refuse raises its error here), and
works out who must approve under the resource set's rule and which tenants are affected.
No transaction is sent, no journal written, no device changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from nornir.core.task import MultiResult, Result
from pydantic import BaseModel, ConfigDict

from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.gate.content import build_content
from nornir_coopchain.gate.prepare import PreparedChange, prepare_change
from nornir_coopchain.gate.propose import affected_mask, build_request
from nornir_coopchain.gate.results import ChangeResult
from nornir_coopchain.gate.sizing import MAX_CONTENT_BYTES, check_proposal_size
from nornir_coopchain.model.content import ChangeWindow
from nornir_coopchain.model.rules import AggregationRule, Snapshot
from nornir_coopchain.plugins.connections.coopchain import coopchain_session

if TYPE_CHECKING:
    from nornir.core import Nornir

    from nornir_coopchain.chain.models import MemberInfo
    from nornir_coopchain.model.content import ProposalContent
    from nornir_coopchain.session import CoopchainSession

__all__ = ["DryRunReport", "dry_run_change", "session_resource_set"]


class DryRunReport(BaseModel):
    """What proposing the change would do, worked out without sending anything."""

    model_config = ConfigDict(frozen=True)

    resource_set: str
    window: ChangeWindow
    devices: tuple[str, ...]
    """The hosts whose running config would change (the proposal's manifest)."""
    content_bytes: int
    """The size of the ``content`` calldata (the compressed envelope)."""
    gas_estimate: int
    """The gas limit ``propose`` would be sent with (the node's estimate plus margin)."""
    rule: str
    """The resource set's aggregation rule, threshold and quorum."""
    electorate: tuple[str, ...]
    """The operators who vote on it (the proposer does not, under the two-person rule)."""
    must_approve: tuple[str, ...]
    """Affected operators whose approval the set requires (``affected_must_approve``)."""
    veto: tuple[str, ...]
    """Operators in the electorate whose rejection rejects."""
    tenants: tuple[str, ...]
    """The tenants (operators) whose configuration the change touches."""


def dry_run_change(
    nr: Nornir,
    session: CoopchainSession | None = None,
    *,
    title: str,
    window: ChangeWindow,
    description: str = "",
    resource_set: str | None = None,
    template: str | None = None,
    templates: Path = Path("templates"),
    replace: bool = True,
    emergency: bool = False,
    max_content_bytes: int = MAX_CONTENT_BYTES,
) -> ChangeResult:
    """Render, diff, size and price the change, and say who must approve; send nothing.

    ``session`` defaults to the hosts' (``coopchain_session``), ``resource_set`` to its
    settings'.

    Returns:
        A :class:`~nornir_coopchain.gate.results.ChangeResult` named ``coopchain dry run``:
        per host one Result with ``diff`` and ``changed`` (the diff is not empty) and the
        tenants it touches; ``report`` a :class:`DryRunReport`.

    Raises:
        ConfigError: bad input (a host that cannot render or diff, nothing to propose,
            tenants that are not members).
        ProposalTooLarge: the change does not fit one proposal.
        ContractError: the contract would refuse the request (e.g. InvalidWindow,
            NotEmergencyRole), as ``propose`` would.
    """
    session = session or coopchain_session(nr)
    resource_set = resource_set or session_resource_set(session)
    prepared = prepare_change(nr, template=template, templates=templates, replace=replace)
    content = build_content(
        prepared,
        resource_set=resource_set,
        title=title,
        description=description,
        window=window,
        created_at=session.client.now(),
        templates=templates,
    )
    posted = content.chain_bytes()
    check_proposal_size(session, posted, content.device_count, max_bytes=max_content_bytes)
    mask = affected_mask(session, content.tenants)
    members = session.coop.members()
    snapshot = Snapshot.take(
        session.coop.resource_set(resource_set),
        [member.weight for member in members],
        session.member.index,
        mask,
    )
    report = DryRunReport(
        resource_set=resource_set,
        window=content.window,
        devices=tuple(device.host for device in content.devices),
        content_bytes=len(posted),
        gas_estimate=_propose_gas(session, content, posted, emergency),
        rule=_rule(snapshot),
        electorate=_operators(members, snapshot.electorate_mask),
        must_approve=_operators(members, snapshot.required_mask),
        veto=_operators(members, snapshot.veto_mask),
        tenants=content.tenants,
    )
    return _result(nr, report, prepared)


def session_resource_set(session: CoopchainSession) -> str:
    """The resource set of the session's settings.

    Raises:
        ConfigError: the settings name none.
    """
    if session.settings.resource_set is None:
        raise ConfigError("no resource set: set resource_set in the coopchain settings")
    return session.settings.resource_set


def _propose_gas(
    session: CoopchainSession,
    content: ProposalContent,
    posted: bytes,
    emergency: bool,
) -> int:
    """The node's gas estimate of the signed ``propose`` (or ``declareEmergency``)."""
    coop = session.coop
    request = build_request(session, content, posted)
    signature = coop.sign_request(session.account, request, emergency=emergency)
    function = "declareEmergency" if emergency else "propose"
    data = coop.contract.encode_abi(function, args=[request.as_tuple(), signature, posted])
    tx: Any = {"from": session.account.address, "to": coop.address, "data": data}
    return session.client.estimate_gas(tx)


def _rule(snapshot: Snapshot) -> str:
    rule = snapshot.rule.name
    if snapshot.rule in (AggregationRule.Supermajority, AggregationRule.WeightedThreshold):
        rule += f", threshold {snapshot.threshold_bps} bps"
    return f"{rule}, quorum {snapshot.quorum_bps} bps of {snapshot.total_units} units"


def _operators(members: list[MemberInfo], mask: int) -> tuple[str, ...]:
    return tuple(member.operator_id for member in members if mask >> member.index & 1)


def _result(nr: Nornir, report: DryRunReport, prepared: PreparedChange) -> ChangeResult:
    result = ChangeResult("coopchain dry run", report)
    for device in prepared.devices:
        tenants = ", ".join(prepared.tenants.get(device.host, ())) or "none"
        step = Result(
            host=nr.inventory.hosts[device.host],
            name="coopchain dry run",
            result=f"tenants touched: {tenants}" if device.diff else "no change",
            diff=device.diff,
            changed=bool(device.diff),
        )
        result[device.host] = MultiResult(result.name)
        result[device.host].append(step)
    return result
