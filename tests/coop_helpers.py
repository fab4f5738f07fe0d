"""Helpers shared by the contract tests: deploy a CoopChain and make proposals on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from eth_account.signers.local import LocalAccount

from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.models import ProposalCreated, ProposalRequest
from nornir_coopchain.model.rules import AggregationRule, ResourceSetPolicy

GOVERNANCE = "coopchain.governance"
SITE = "TOWER-017"
VOTING_PERIOD = 3600
MAX_WINDOW = 86400
GRACE = 600
NO_MANIFEST = "0x" + "00" * 32


def policy(
    rule: AggregationRule = AggregationRule.Unanimous, **fields: object
) -> ResourceSetPolicy:
    """A resource set policy with test defaults (everyone of 5 members eligible)."""
    values: dict[str, object] = {
        "rule": rule,
        "eligible_mask": 0b11111,
        "voting_period": VOTING_PERIOD,
        "max_window": MAX_WINDOW,
        "record_grace": GRACE,
    }
    values.update(fields)
    return ResourceSetPolicy.model_validate(values)


def deploy(
    chain: object,
    accounts: Sequence[LocalAccount],
    policies: Mapping[str, ResourceSetPolicy],
    weights: Sequence[int] | None = None,
) -> CoopChain:
    """Deploy with ``accounts`` as members OP-0, OP-1, … (weight 1 unless given)."""
    weights = weights or [1] * len(accounts)
    members = [
        (account.address, f"OP-{index}", weight)
        for index, (account, weight) in enumerate(zip(accounts, weights, strict=True))
    ]
    all_policies = {GOVERNANCE: policy(eligible_mask=(1 << len(accounts)) - 1)}
    all_policies.update(policies)
    return CoopChain.deploy_with(chain, accounts[0], members, all_policies)  # type: ignore[arg-type]


def request_for(
    coop: CoopChain,
    proposer: LocalAccount,
    *,
    resource_set: str = SITE,
    content: bytes = b'{"change":"test"}',
    window: tuple[int, int] | None = None,
    device_count: int = 2,
    affected_mask: int = 0,
    executor: str | None = None,
) -> ProposalRequest:
    """A request whose window opens now and lasts an hour, unless given."""
    now = coop.client.now()
    start, end = window or (now, now + 3600)
    return coop.build_request(
        proposer.address,
        resource_set,
        content,
        manifest_root=NO_MANIFEST,
        device_count=device_count,
        window_start=start,
        window_end=end,
        affected_mask=affected_mask,
        executor=executor,
    )


def propose(
    coop: CoopChain,
    proposer: LocalAccount,
    *,
    relayer: LocalAccount | None = None,
    content: bytes = b'{"change":"test"}',
    **fields: object,
) -> ProposalCreated:
    """Sign a request as ``proposer`` and relay it (by ``relayer`` or the proposer)."""
    request = request_for(coop, proposer, content=content, **fields)  # type: ignore[arg-type]
    signature = coop.sign_request(proposer, request)
    return coop.propose(relayer or proposer, request, signature, content)
