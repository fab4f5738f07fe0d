"""What the ``coopchain_*`` tasks put in ``Result.result``: one typed model per task."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from nornir_coopchain.model.content import DeviceEvidence

__all__ = ["AppliedDevice", "PreparedDevice", "RenderedConfig", "VerifiedDevice"]


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RenderedConfig(_Result):
    """``coopchain_render``: the configuration rendered for one host."""

    host: str
    platform: str  # the template platform (e.g. "frr", "eos")
    template: str  # template path relative to the templates directory
    config: str
    config_hash: str  # hash_text(config)


class PreparedDevice(_Result):
    """``coopchain_prepare``: the dry-run diff of a candidate against the running config."""

    host: str
    platform: str
    base_config_hash: str  # hash_text of the running config the diff was made against
    candidate_hash: str  # hash_text of the candidate
    diff: str  # the driver's compare_config output
    diff_hash: str
    replace: bool


class AppliedDevice(_Result):
    """``coopchain_apply``: what was pushed, and how."""

    host: str
    proposal_id: int
    candidate_hash: str
    already_applied: bool  # the running config already matched: nothing pushed (resume)
    commit_confirm: bool  # committed with revert_in, waiting for verify to confirm


class VerifiedDevice(_Result):
    """``coopchain_verify``: read-back, compliance and the evidence leaf."""

    host: str
    proposal_id: int
    evidence: DeviceEvidence
    missing: tuple[str, ...]
    extra: tuple[str, ...]
    rolled_back: bool  # restored, proven by the driver (FRR: the read-back complies)
    rollback_error: str | None = None  # a rollback that failed or left residual lines
