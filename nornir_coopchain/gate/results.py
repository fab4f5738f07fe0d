"""The gated change the Nornir way: an ``AggregatedResult`` that ``print_result`` shows.

Each host of the run gets the steps of the change as Results, in order: ``coopchain diff``
(the approved diff), ``coopchain approval`` (the verdict and its tally), and, once applied,
``coopchain push``, ``coopchain read-back`` and ``coopchain evidence`` (its leaf and the
on-chain record). A verdict other than Approved fails every host's approval step and a
device that was not pushed or does not comply fails its own, so ``result.failed`` (and
``raise_on_error()``) stops a playbook as for any Nornir task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nornir.core.task import AggregatedResult, MultiResult, Result

from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.model.times import iso

if TYPE_CHECKING:
    from nornir.core import Nornir
    from nornir.core.inventory import Host
    from pydantic import BaseModel

    from nornir_coopchain.chain.models import ProposalInfo
    from nornir_coopchain.gate.outcome import ChangeOutcome, DeviceOutcome
    from nornir_coopchain.model.content import DeviceChange, EvidenceReport, ProposalContent

__all__ = ["ChangeResult", "change_result"]


class ChangeResult(AggregatedResult):
    """Per host, the steps of one gated change (see the module's docstring).

    Attributes:
        report: the change's report (e.g. a ``GatedChangeReport``): proposal, verdict and
            outcome as typed data.
    """

    def __init__(self, name: str, report: BaseModel) -> None:
        super().__init__(name)
        self.report = report


def change_result(
    nr: Nornir,
    report: BaseModel,
    content: ProposalContent,
    info: ProposalInfo,
    outcome: ChangeOutcome | None,
    evidence: EvidenceReport | None,
) -> ChangeResult:
    """The Nornir result of a proposed (and perhaps applied) change.

    Arguments:
        nr: the Nornir the change ran on (every host gets a result).
        report: kept as :attr:`ChangeResult.report`.
        content: the proposal's content (its diffs).
        info: the proposal as the chain holds it now.
        outcome: what applying it did, None when it was not applied.
        evidence: the evidence report recorded, if applied.
    """
    result = ChangeResult(f"coopchain change #{info.proposal_id}", report)
    devices = {device.host: device for device in content.devices}
    leaves = {leaf.host: leaf for leaf in evidence.devices} if evidence else {}
    done = {device.host: device for device in outcome.devices} if outcome else {}
    for name, host in nr.inventory.hosts.items():
        steps = MultiResult(result.name)
        device = devices.get(name)
        if device is None:
            steps.append(Result(host=host, name="coopchain diff", result="no change proposed"))
            result[name] = steps
            continue
        steps.append(_diff(host, device))
        steps.append(_approval(host, info))
        applied = done.get(name)
        if outcome is not None and applied is not None:
            steps.extend(_applied(host, applied))
            leaf = leaves.get(name)
            if leaf is not None:
                text = (
                    f"leaf compliant={leaf.compliant}, read-back {leaf.readback_hash}; recorded "
                    f"{outcome.state.name} in {outcome.record_tx} (evidence root "
                    f"{outcome.evidence_root})"
                )
                steps.append(Result(host=host, name="coopchain evidence", result=text))
        result[name] = steps
    return result


def _diff(host: Host, device: DeviceChange) -> Result:
    tenants = ", ".join(device.tenants) or "none"
    text = f"{device.platform}: candidate {device.candidate_hash}; tenants touched: {tenants}"
    return Result(
        host=host, name="coopchain diff", result=text, diff=device.diff, changed=bool(device.diff)
    )


def _approval(host: Host, info: ProposalInfo) -> Result:
    tally = (
        f"{info.approve_units} approve, {info.reject_units} reject, {info.abstain_units} "
        f"abstain of {info.total_units} units"
    )
    if info.emergency and info.state is ProposalState.Active:
        text = (
            f"proposal {info.proposal_id}: emergency change, applied before the vote; to be "
            f"ratified by {iso(info.vote_end)} ({tally})"
        )
        return Result(host=host, name="coopchain approval", result=text)
    approved = info.state in (
        ProposalState.Approved,
        ProposalState.Verified,
        ProposalState.VerificationFailed,
    )
    text = f"proposal {info.proposal_id} {info.state.name}: {tally}"
    return Result(host=host, name="coopchain approval", result=text, failed=not approved)


def _applied(host: Host, device: DeviceOutcome) -> list[Result]:
    if not device.applied:
        text = f"not pushed: {device.error or 'not verified'}"
        return [Result(host=host, name="coopchain push", result=text, failed=True)]
    push = Result(host=host, name="coopchain push", result="the approved config", changed=True)
    if device.verified:
        text = "the running config complies with the approved config"
    else:
        text = (
            f"does not comply: {len(device.missing)} lines missing, {len(device.extra)} extra"
            + ("; rolled back" if device.rolled_back else "")
            + (f" ({device.error})" if device.error else "")
        )
    readback = Result(
        host=host,
        name="coopchain read-back",
        result=text,
        changed=device.rolled_back,
        failed=not device.verified,
    )
    return [push, readback]
