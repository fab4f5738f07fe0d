"""An approved change as the chain holds it: the proposal's summary and its checked content."""

from __future__ import annotations

import time
from functools import cached_property

from pydantic import BaseModel, ConfigDict

from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.models import ProposalInfo
from nornir_coopchain.exceptions import ChangeRefused
from nornir_coopchain.model.content import DeviceChange, ProposalContent
from nornir_coopchain.model.hashing import keccak, to_hex32
from nornir_coopchain.model.rules import ProposalState

__all__ = ["ApprovedChange", "fetch_change"]


class ApprovedChange(BaseModel):
    """A proposal and its content, read from the chain and checked against the stored hashes."""

    model_config = ConfigDict(frozen=True)

    proposal: ProposalInfo
    content: ProposalContent
    posted: bytes
    """The content bytes as posted: their keccak-256 is the proposal's on-chain content hash."""

    @property
    def proposal_id(self) -> int:
        """The proposal number."""
        return self.proposal.proposal_id

    def entry(self, host: str) -> DeviceChange:
        """This host's approved entry, proven against the on-chain manifest root.

        The content's own Merkle tree must have the on-chain root (checked once), which
        proves every entry of the content at once.

        Raises:
            ChangeRefused: the host is not in the approved manifest, or the content's tree
                does not have the on-chain root.
        """
        device = self._by_host.get(host)
        if device is None:
            raise ChangeRefused(f"not in the manifest of proposal {self.proposal_id}", host=host)
        if not self._proven:
            raise ChangeRefused("its entry does not prove against the manifest root", host=host)
        return device

    @cached_property
    def _by_host(self) -> dict[str, DeviceChange]:
        return {device.host: device for device in self.content.devices}

    @cached_property
    def _proven(self) -> bool:
        return self.content.manifest_root() == self.proposal.manifest_root.lower()

    def check_window(self, chain_now: int, local_now: float | None = None) -> None:
        """Refuse unless both chain time and local time are inside the change window.

        Raises:
            ChangeRefused: naming which clock is outside the window.
        """
        start, end = self.proposal.window_start, self.proposal.window_end
        local = time.time() if local_now is None else local_now
        for clock, now in (("chain", chain_now), ("local", local)):
            if now < start:
                raise ChangeRefused(
                    f"proposal {self.proposal_id}: change window opens at {start}, "
                    f"{clock} time is {int(now)}"
                )
            if now > end:
                raise ChangeRefused(
                    f"proposal {self.proposal_id}: change window closed at {end}, "
                    f"{clock} time is {int(now)}"
                )


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
