"""Reading an approved change from the chain and checking it against the stored hashes."""

from __future__ import annotations

from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.exceptions import ChangeRefused, ConfigError
from nornir_coopchain.model.content import ProposalContent
from nornir_coopchain.model.hashing import keccak, to_hex32
from nornir_coopchain.model.rules import ProposalState
from nornir_coopchain.plugins.approved import ApprovedChange

__all__ = ["ApprovedChange", "fetch_change"]


def fetch_change(
    coop: CoopChain,
    proposal_id: int,
    *,
    states: tuple[ProposalState, ...] = (),
    emergency_active: bool = False,
) -> ApprovedChange:
    """Read a proposal and its content from the chain and check them.

    Arguments:
        coop: the contract.
        proposal_id: the proposal number.
        states: the states the proposal must be in (any state if empty).
        emergency_active: also accept an emergency proposal (break-glass) that is still
            Active, i.e. not yet ratified; an ordinary Active proposal is still refused.

    Raises:
        ChangeRefused: the proposal is in another state, or its content does not match the
            content hash or manifest root stored on chain (tampered).
        ConfigError: the posted content cannot be decoded (unknown envelope version, corrupt
            stream, over the size cap, not canonical JSON).
        ChainError: the proposal does not exist or the chain cannot be read.
    """
    # The state a push rests on is read confirmations deep: a verdict not yet final is not one.
    info = coop.proposal(proposal_id, block=coop.client.confirmed_block() if states else "latest")
    early = emergency_active and info.emergency and info.state is ProposalState.Active
    if states and info.state not in states and not early:
        wanted = " or ".join(state.name for state in states)
        raise ChangeRefused(f"proposal {proposal_id} is {info.state.name}, not {wanted}")
    raw = coop.fetch_content(proposal_id)  # the hash binds the posted bytes, not a re-encoding
    if to_hex32(keccak(raw)) != info.content_hash.lower():
        raise ChangeRefused(f"proposal {proposal_id}: content does not match its on-chain hash")
    content = ProposalContent.from_chain_bytes(raw)
    if content.manifest_root() != info.manifest_root or content.device_count != info.device_count:
        raise ChangeRefused(f"proposal {proposal_id}: content does not match its manifest root")
    return ApprovedChange(proposal=info, content=content, posted=raw)


def check_proposal(coop: CoopChain, proposal_id: int) -> None:
    """Refuse a proposal number the contract never issued (its view would be all zeros).

    Raises:
        ConfigError: naming the number and how many proposals exist.
    """
    count = coop.proposal_count()
    if not 1 <= proposal_id <= count:
        raise ConfigError(
            f"no proposal {proposal_id} on contract {coop.address} (proposals: 1 to {count})",
            field="proposal_id",
        )
