"""The deployment file: members, resource sets and their preset aggregation rules.

Example (``deployment.yaml``)::

    members:
      - {operator: OPERATOR-A, address: "0x…", weight: 40}
      - {operator: OPERATOR-B, address: "0x…", weight: 35}
    resource_sets:
      governance:                    # the set whose proposals govern the contract itself
        rule: unanimous
        voting_period: 1d
        max_window: 7d
      TOWER-017:
        rule: supermajority
        threshold_bps: 6667
        quorum_bps: 5000
        members: all                 # or a list of operator IDs
        veto: [OPERATOR-A]           # e.g. the tower owner
        voting_period: 1h
        max_window: 4h
        record_grace: 30m
        proposer_votes: false        # two-person rule (default)
        affected_must_approve: true
        emergency: [OPERATOR-A]      # may declare a break-glass change: applied before the
                                     # vote, ratified by this rule by the voting deadline
        max_lead: 30d                # how far ahead a window may open (default 30d)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from nornir_coopchain.chain.models import Address
from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.model.rules import DEFAULT_MAX_LEAD, AggregationRule, ResourceSetPolicy

__all__ = [
    "GOVERNANCE_NAME",
    "DeploymentSpec",
    "MemberSpec",
    "ResourceSetSpec",
    "parse_duration",
]

GOVERNANCE_NAME = "coopchain.governance"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_RULES = {
    "unanimous": AggregationRule.Unanimous,
    "simple_majority": AggregationRule.SimpleMajority,
    "supermajority": AggregationRule.Supermajority,
    "weighted_threshold": AggregationRule.WeightedThreshold,
}


def parse_duration(value: object) -> int:
    """Seconds from an int or a string such as ``90``, ``30m``, ``4h``, ``1d``, ``2w``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or e.g. '30m', '4h', '1d'")
    if isinstance(value, int):
        return value
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(f"{value!r} is not a duration (use seconds or e.g. '30m', '4h', '1d')")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


Duration = Annotated[int, BeforeValidator(parse_duration), Field(ge=0, lt=2**32)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MemberSpec(_Spec):
    """One operator: its participant ID, its account and its voting weight."""

    operator: str = Field(min_length=1, max_length=32, pattern=r"^[\x20-\x7e]+$")
    address: Address
    weight: int = Field(default=1, ge=1, le=65535)


class ResourceSetSpec(_Spec):
    """One resource set (a site, a tower, a group of shared devices) and its rule."""

    rule: Literal["unanimous", "simple_majority", "supermajority", "weighted_threshold"]
    threshold_bps: int | None = Field(default=None, ge=1, le=10000)
    quorum_bps: int = Field(default=0, ge=0, le=10000)
    members: Literal["all"] | list[str] = "all"
    veto: list[str] = Field(default_factory=list)
    voting_period: Duration
    max_window: Duration
    record_grace: Duration = 0
    proposer_votes: bool = False
    affected_must_approve: bool = False
    emergency: list[str] = Field(default_factory=list)
    max_lead: Duration = DEFAULT_MAX_LEAD

    @model_validator(mode="after")
    def _threshold_matches_rule(self) -> ResourceSetSpec:
        needs = self.rule in ("supermajority", "weighted_threshold")
        if needs and self.threshold_bps is None:
            raise ValueError(f"threshold_bps is required for rule {self.rule}")
        if not needs and self.threshold_bps is not None:
            raise ValueError(f"threshold_bps has no meaning for rule {self.rule}")
        if self.voting_period == 0 or self.max_window == 0 or self.max_lead == 0:
            raise ValueError("voting_period, max_window and max_lead must be longer than 0")
        return self


class DeploymentSpec(_Spec):
    """Everything the contract is deployed with."""

    members: list[MemberSpec] = Field(min_length=1, max_length=32)
    resource_sets: dict[str, ResourceSetSpec]

    @model_validator(mode="after")
    def _consistent(self) -> DeploymentSpec:
        operators = [member.operator for member in self.members]
        addresses = [member.address for member in self.members]
        for label, values in (("operator", operators), ("address", addresses)):
            duplicates = sorted({value for value in values if values.count(value) > 1})
            if duplicates:
                raise ValueError(f"duplicate member {label}: {', '.join(duplicates)}")
        if "governance" not in self.resource_sets:
            raise ValueError("resource_sets needs a 'governance' entry (members govern themselves)")
        for name, spec in self.resource_sets.items():
            if len(name) > 32 or not name.isascii():
                raise ValueError(f"resource set name {name!r} must be at most 32 ASCII characters")
            named = ([] if spec.members == "all" else spec.members) + spec.veto + spec.emergency
            unknown = sorted(set(named) - set(operators))
            if unknown:
                raise ValueError(f"resource_sets.{name}: unknown operators {', '.join(unknown)}")
            if spec.members != "all" and set(spec.veto) - set(spec.members):
                raise ValueError(f"resource_sets.{name}.veto: veto holders must be members")
            if spec.members != "all" and set(spec.emergency) - set(spec.members):
                raise ValueError(
                    f"resource_sets.{name}.emergency: emergency role holders must be members"
                )
            if name == "governance" and spec.emergency:
                raise ValueError("resource_sets.governance.emergency: no break-glass on governance")
        return self

    @classmethod
    def load(cls, path: Path) -> DeploymentSpec:
        """Read and validate a deployment YAML file.

        Raises:
            ConfigError: naming the file and the field that is wrong.
        """
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", source=str(path)) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"not valid YAML: {exc}", source=str(path)) from exc
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or None
            raise ConfigError(first["msg"], source=str(path), field=field) from exc

    def operator_index(self, operator: str) -> int:
        """The member index (deployment order) of an operator ID."""
        return [member.operator for member in self.members].index(operator)

    def _mask(self, operators: list[str]) -> int:
        return sum(1 << self.operator_index(operator) for operator in set(operators))

    def policies(self) -> dict[str, ResourceSetPolicy]:
        """Each resource set's on-chain policy, keyed by its on-chain name."""
        everyone = (1 << len(self.members)) - 1
        result: dict[str, ResourceSetPolicy] = {}
        for name, spec in self.resource_sets.items():
            eligible = everyone if spec.members == "all" else self._mask(spec.members)
            result[GOVERNANCE_NAME if name == "governance" else name] = ResourceSetPolicy(
                rule=_RULES[spec.rule],
                threshold_bps=spec.threshold_bps or 0,
                quorum_bps=spec.quorum_bps,
                eligible_mask=eligible,
                veto_mask=self._mask(spec.veto),
                voting_period=spec.voting_period,
                max_window=spec.max_window,
                record_grace=spec.record_grace,
                proposer_votes=spec.proposer_votes,
                affected_must_approve=spec.affected_must_approve,
                emergency_mask=self._mask(spec.emergency),
                max_lead=spec.max_lead,
            )
        return result
