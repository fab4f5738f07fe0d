"""An approved change as the chain holds it: the proposal's summary and its checked content.

What the ``coopchain_apply`` and ``coopchain_verify`` tasks check a host against; reading and
checking it from the chain is :func:`nornir_coopchain.gate.approved.fetch_change`.
"""

from __future__ import annotations

import time
from functools import cached_property

from pydantic import BaseModel, ConfigDict

from nornir_coopchain.chain.models import ProposalInfo
from nornir_coopchain.exceptions import ChangeRefused
from nornir_coopchain.model.content import DeviceChange, ProposalContent
from nornir_coopchain.model.times import iso

__all__ = ["ApprovedChange"]


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
                    f"proposal {self.proposal_id}: change window opens at {iso(start)}, "
                    f"{clock} time is {iso(now)}"
                )
            if now > end:
                raise ChangeRefused(
                    f"proposal {self.proposal_id}: change window closed at {iso(end)}, "
                    f"{clock} time is {iso(now)}"
                )
