"""A member's voting policy: YAML rules a voter evaluates against each new proposal.

::

    operator: OPERATOR-B              # whose vote this is
    my_stanzas:                       # regexes (re.search) for this tenant's stanzas
      - '^interface eth0\\.102'
      - 'neighbor 10\\.17\\.2\\.'
    rules:                            # first match decides
      - name: night-window-only
        reject_unless_window_within: {start: "22:00", end: "06:00", timezone: UTC}
      - name: hands-off-my-stanzas
        reject_if_touches_my_stanzas: true
      - name: small-changes
        approve_if: {max_devices: 10, resource_sets: [TOWER-017]}
    default: defer                    # approve | reject | abstain | defer

A rule is ``name`` plus exactly one kind key:

=================================== =====================================================
kind key                            matches when
=================================== =====================================================
``reject_unless_window_within: H``  the change window is not wholly inside daily hours H
``defer_unless_window_within: H``   (same, but leaves the vote to a human)
``reject_if_touches_my_stanzas``    a changed line, or one of its stanza headers, matches
``defer_if_touches_my_stanzas``     ``my_stanzas``, or a device lists ``operator`` as tenant
``approve_if_untouched``            no device is touched as above, and every changed
                                    line's stanza is known (so "untouched" is proven)
``<action>_if: C``                  every condition of C holds
``<action>_unless: C``              some condition of C fails
=================================== =====================================================

``<action>`` is ``approve``, ``reject``, ``abstain`` or ``defer``; conditions ``C`` are
``max_devices``, ``resource_sets``, ``platforms`` (every device's), ``window_within`` (daily
hours) and ``touches_my_stanzas`` (true/false). Daily hours ``H`` are ``{start, end,
timezone}`` in ``HH:MM`` (``end`` may be ``24:00``); ``end`` before ``start`` crosses midnight.
A change window spanning several days must lie inside one allowed period, so it is within
the hours on every day it spans. ``defer`` casts no vote: it leaves the proposal to a human
and says so. :func:`decide` reads no clock: the window is in the proposal.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.model.content import ChangeWindow, Name32, NonEmpty, ProposalContent
from nornir_coopchain.model.diffs import ChangedLine, changed_lines, matching_pattern
from nornir_coopchain.model.rules import VoteType

__all__ = [
    "Action",
    "Conditions",
    "ConditionsRule",
    "DailyHours",
    "Decision",
    "Rule",
    "TouchesRule",
    "UntouchedRule",
    "VoterPolicy",
    "WindowRule",
    "decide",
]

Action = Literal["approve", "reject", "abstain", "defer"]
_VOTES: Final[dict[str, VoteType | None]] = {
    "approve": VoteType.Approve,
    "reject": VoteType.Reject,
    "abstain": VoteType.Abstain,
    "defer": None,
}
_VERBS: Final = {
    "approve": "approves",
    "reject": "rejects",
    "abstain": "abstains",
    "defer": "defers to a human (no vote cast)",
}
_MODEL_CONFIG = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"{pattern!r} is not a valid regex: {error}") from error
    return pattern


def _hhmm(value: object) -> object:
    """YAML 1.1 reads an unquoted ``22:00`` as the integer 1320 (base 60): take it back."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1440:
        return f"{value // 60:02d}:{value % 60:02d}"
    return value


def _check_hhmm(value: str) -> str:
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d|24:00", value):
        raise ValueError(f"{value!r} is not a time of day HH:MM (00:00 to 23:59, or 24:00)")
    return value


Regex = Annotated[str, Field(strict=True), AfterValidator(_check_regex)]
HHMM = Annotated[str, BeforeValidator(_hhmm), Field(strict=True), AfterValidator(_check_hhmm)]


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class DailyHours(BaseModel):
    """Allowed hours of every day, ``start`` to ``end`` local time (crossing midnight if
    ``end`` is earlier)."""

    model_config = _MODEL_CONFIG

    start: HHMM
    """First allowed minute, ``HH:MM``."""
    end: HHMM
    """End of the allowed hours, ``HH:MM`` or ``24:00``; before ``start``: the next day."""
    timezone: NonEmpty = "UTC"
    """An IANA time-zone name, e.g. ``UTC`` or ``Europe/Paris``."""

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, name: str) -> str:
        _zone(name)
        return name

    @model_validator(mode="after")
    def _check_span(self) -> DailyHours:
        if self.start == self.end:
            raise ValueError(f"start equals end ({self.start}): for all day use 00:00-24:00")
        if self.start == "24:00":
            raise ValueError("start 24:00 is not a time of day: use 00:00")
        return self

    def __str__(self) -> str:
        return f"{self.start}-{self.end} {self.timezone}"

    def contains(self, window: ChangeWindow) -> bool:
        """Tell whether the whole window (``start`` to ``end`` inclusive) is inside one
        allowed period, hence inside the allowed hours on every day it spans."""
        start, end = _minutes(self.start), _minutes(self.end)
        if end - start == 1440:
            return True
        if end <= start:
            end += 1440
        zone = _zone(self.timezone)
        first = datetime.fromtimestamp(window.start, zone).date() - timedelta(days=1)
        last = datetime.fromtimestamp(window.end, zone).date()
        if (last - first).days > 3:  # an allowed period is shorter than a day
            return False
        day = first
        while day <= last:
            opens = _local(day, start, zone)
            closes = _local(day, end, zone)
            if opens <= window.start and window.end <= closes:
                return True
            day += timedelta(days=1)
        return False

    def describe(self, window: ChangeWindow) -> str:
        """A sentence saying whether ``window`` is within these hours."""
        zone = _zone(self.timezone)
        shown = " to ".join(
            datetime.fromtimestamp(moment, zone).strftime("%Y-%m-%d %H:%M")
            for moment in (window.start, window.end)
        )
        verdict = "lies within" if self.contains(window) else "is not within"
        return f"the change window {shown} ({self.timezone}) {verdict} the daily hours {self}"


def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error


def _local(day: date, minutes: int, zone: tzinfo) -> int:
    """Unix time of ``minutes`` past local midnight of ``day`` (wall-clock arithmetic)."""
    moment = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=minutes)
    return int(moment.timestamp())


@dataclass(frozen=True)
class _Touch:
    host: str
    line: ChangedLine | None = None
    pattern: str | None = None

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.host} lists this operator among the change's tenants"
        if self.pattern is None:
            return f"{self.host} changes '{self.line}', whose stanza the diff does not show"
        return f"{self.host} changes '{self.line}' (my stanza pattern {self.pattern!r})"


@dataclass(frozen=True)
class _Touches:
    """Where a proposal touches a tenant: proven hits, and lines of unknown stanza."""

    hits: tuple[_Touch, ...]
    unknown: tuple[_Touch, ...]
    devices: int

    def hit_sentence(self) -> str:
        more = f" (and {len(self.hits) - 1} more)" if len(self.hits) > 1 else ""
        return f"{self.hits[0]}{more}"

    def untouched_sentence(self) -> str:
        return f"no changed line on the {self.devices} device(s) touches my stanzas"


def _touches(policy: VoterPolicy, content: ProposalContent) -> _Touches:
    hits: list[_Touch] = []
    unknown: list[_Touch] = []
    for device in content.devices:
        for line in changed_lines(device.diff):
            pattern = matching_pattern(line, policy.my_stanzas)
            if pattern is not None:
                hits.append(_Touch(device.host, line, pattern))
            elif line.stanza is None:
                unknown.append(_Touch(device.host, line))
        if policy.operator in device.tenants:
            hits.append(_Touch(device.host))
    return _Touches(tuple(hits), tuple(unknown), len(content.devices))


class Conditions(BaseModel):
    """Facts about a proposal; a rule ``<action>_if`` needs all, ``<action>_unless`` one
    failing. At least one must be given."""

    model_config = _MODEL_CONFIG

    max_devices: Annotated[int, Field(strict=True, ge=1)] | None = None
    """At most this many devices."""
    resource_sets: tuple[Name32, ...] | None = None
    """The proposal's resource set is one of these."""
    platforms: tuple[NonEmpty, ...] | None = None
    """Every device's platform is one of these."""
    window_within: DailyHours | None = None
    """The change window lies within these daily hours."""
    touches_my_stanzas: StrictBool | None = None
    """True: the change touches my stanzas; false: it provably does not."""

    @model_validator(mode="after")
    def _check_some(self) -> Conditions:
        if all(value is None for value in self.__dict__.values()):
            raise ValueError("give at least one condition")
        return self

    def facts(self, policy: VoterPolicy, content: ProposalContent) -> Iterator[tuple[bool, str]]:
        """Each given condition: whether it holds, and a phrase saying so."""
        if self.max_devices is not None:
            count, most = content.device_count, self.max_devices
            relation = "at most" if count <= most else "more than"
            yield count <= most, f"{count} device(s), {relation} the {most} allowed"
        if self.resource_sets is not None:
            found = content.resource_set in self.resource_sets
            yield (
                found,
                (
                    f"resource set {content.resource_set} is {'' if found else 'not '}"
                    f"one of {', '.join(self.resource_sets)}"
                ),
            )
        if self.platforms is not None:
            odd = [d for d in content.devices if d.platform not in self.platforms]
            allowed = ", ".join(self.platforms)
            yield (
                not odd,
                (
                    f"{odd[0].host} runs {odd[0].platform}, not one of {allowed}"
                    if odd
                    else f"every device runs one of {allowed}"
                ),
            )
        if self.window_within is not None:
            inside = self.window_within.contains(content.window)
            yield inside, self.window_within.describe(content.window)
        if self.touches_my_stanzas is not None:
            touches = _touches(policy, content)
            if touches.hits:
                yield self.touches_my_stanzas, touches.hit_sentence()
            elif touches.unknown:
                yield False, str(touches.unknown[0])
            else:
                yield not self.touches_my_stanzas, touches.untouched_sentence()


class _Rule(BaseModel):
    model_config = _MODEL_CONFIG

    name: NonEmpty
    """The rule's name, quoted in every decision it makes."""

    def _set(self) -> tuple[str, Any]:
        """The one kind key given, and its value."""
        given = [(key, value) for key, value in self if key != "name" and value is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(self._kinds())}")
        return given[0]

    @classmethod
    def _kinds(cls) -> tuple[str, ...]:
        return tuple(key for key in cls.model_fields if key != "name")

    @model_validator(mode="after")
    def _check_one(self) -> _Rule:
        self._set()
        return self

    def evaluate(self, policy: VoterPolicy, content: ProposalContent) -> tuple[str, str] | None:
        """The action and the reason, when this rule matches; None otherwise."""
        raise NotImplementedError


class WindowRule(_Rule):
    """Reject (or defer) unless the change window lies inside the daily hours."""

    reject_unless_window_within: DailyHours | None = None
    defer_unless_window_within: DailyHours | None = None

    def evaluate(self, policy: VoterPolicy, content: ProposalContent) -> tuple[str, str] | None:
        key, hours = self._set()
        if hours.contains(content.window):
            return None
        return key.split("_", 1)[0], hours.describe(content.window)


class TouchesRule(_Rule):
    """Reject (or defer) when the change touches the member's stanzas."""

    reject_if_touches_my_stanzas: Literal[True] | None = None
    defer_if_touches_my_stanzas: Literal[True] | None = None

    def evaluate(self, policy: VoterPolicy, content: ProposalContent) -> tuple[str, str] | None:
        key, _ = self._set()
        touches = _touches(policy, content)
        return (key.split("_", 1)[0], touches.hit_sentence()) if touches.hits else None


class UntouchedRule(_Rule):
    """Approve when no line of the member's stanzas changes (provably)."""

    approve_if_untouched: Literal[True] | None = None

    def evaluate(self, policy: VoterPolicy, content: ProposalContent) -> tuple[str, str] | None:
        touches = _touches(policy, content)
        if touches.hits or touches.unknown:
            return None
        return "approve", touches.untouched_sentence()


class ConditionsRule(_Rule):
    """``<action>_if`` (all conditions hold) or ``<action>_unless`` (one fails)."""

    approve_if: Conditions | None = None
    reject_if: Conditions | None = None
    abstain_if: Conditions | None = None
    defer_if: Conditions | None = None
    approve_unless: Conditions | None = None
    reject_unless: Conditions | None = None
    abstain_unless: Conditions | None = None
    defer_unless: Conditions | None = None

    def evaluate(self, policy: VoterPolicy, content: ProposalContent) -> tuple[str, str] | None:
        key, conditions = self._set()
        action, mode = key.split("_", 1)
        facts = list(conditions.facts(policy, content))
        if mode == "if":
            matched, shown = all(held for held, _ in facts), facts
        else:
            shown = [(held, phrase) for held, phrase in facts if not held]
            matched = bool(shown)
        return (action, "; ".join(phrase for _, phrase in shown)) if matched else None


_RULE_KINDS: Final = {
    kind: model
    for model in (WindowRule, TouchesRule, UntouchedRule, ConditionsRule)
    for kind in model._kinds()
}


def _kind_tag(value: object) -> str | None:
    if isinstance(value, _Rule):
        return type(value).__name__
    if isinstance(value, dict):
        kinds = [key for key, given in value.items() if key in _RULE_KINDS and given is not None]
        return _RULE_KINDS[kinds[0]].__name__ if len(kinds) == 1 else None
    return None


def _check_kind(value: object) -> object:
    if isinstance(value, _Rule):
        return value
    if not isinstance(value, dict):
        raise PydanticCustomError("rule_type", "a rule is a mapping with name and one kind key")
    kinds = [key for key, given in value.items() if key in _RULE_KINDS and given is not None]
    if len(kinds) == 1:
        return value
    unknown = [str(key) for key in value if key != "name" and key not in _RULE_KINDS]
    if kinds:
        message = "a rule has one kind, not {kinds}"
    elif unknown:
        message = "unknown rule kind '{key}'; expected one of {expected}"
    else:
        message = "a rule needs one kind key with a value, one of {expected}"
    context = {
        "key": unknown[0] if unknown and not kinds else "",
        "kinds": ", ".join(kinds),
        "expected": ", ".join(_RULE_KINDS),
    }
    raise PydanticCustomError("rule_kind", message, context)


Rule = Annotated[
    Annotated[WindowRule, Tag("WindowRule")]
    | Annotated[TouchesRule, Tag("TouchesRule")]
    | Annotated[UntouchedRule, Tag("UntouchedRule")]
    | Annotated[ConditionsRule, Tag("ConditionsRule")],
    Discriminator(_kind_tag),
    BeforeValidator(_check_kind),
]
"""One rule: :class:`WindowRule`, :class:`TouchesRule`, :class:`UntouchedRule` or
:class:`ConditionsRule`, told apart by its kind key."""


class Decision(BaseModel):
    """What a policy decides about one proposal."""

    model_config = _MODEL_CONFIG

    vote: VoteType | None
    """The vote to cast; None: defer, leave it to a human."""
    rule: str | None
    """The name of the rule that decided; None: the policy's default."""
    reason: str
    """A sentence naming the rule and what it found (host, line, window...)."""


class VoterPolicy(BaseModel):
    """A member's voting policy (see the module docstring for the YAML form)."""

    model_config = _MODEL_CONFIG

    operator: Name32
    """The operator (member) ID whose vote this is, e.g. ``OPERATOR-B``."""
    my_stanzas: tuple[Regex, ...] = ()
    """Regexes (``re.search``) for this tenant's stanzas and lines on shared devices."""
    rules: tuple[Rule, ...] = ()
    """The rules, in order: the first that matches decides."""
    default: Action = "defer"
    """The decision when no rule matches."""

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: tuple[_Rule, ...]) -> tuple[_Rule, ...]:
        names = [rule.name for rule in rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate rule names: {', '.join(duplicates)}")
        return rules

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "<policy>") -> VoterPolicy:
        """Parse a policy from YAML text.

        Arguments:
            text: the YAML.
            source: where it came from, for error messages.

        Returns:
            The policy.

        Raises:
            ConfigError: when the YAML is invalid or a field is wrong (``field`` names it,
                dotted, e.g. ``rules.0.reject_unless_window_within.start``).
        """
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"invalid YAML: {error}", source=source) from error
        if not isinstance(data, dict):
            raise ConfigError("a policy is a YAML mapping", source=source)
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            first = error.errors()[0]
            parts = [str(part) for part in first["loc"] if part not in _TAGS]
            key = (first.get("ctx") or {}).get("key") if first["type"] == "rule_kind" else None
            if key:
                parts.append(str(key))
            message = first["msg"].removeprefix("Value error, ")
            raise ConfigError(message, source=source, field=".".join(parts) or None) from error

    @classmethod
    def load(cls, path: str | Path) -> VoterPolicy:
        """Read a policy file.

        Arguments:
            path: the YAML file.

        Returns:
            The policy.

        Raises:
            ConfigError: when the file cannot be read, is not valid YAML, or a field is
                wrong (``source`` is the file, ``field`` the dotted field).
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot read the policy: {error}", source=str(path)) from error
        return cls.from_yaml(text, source=str(path))


_TAGS: Final = frozenset(model.__name__ for model in _RULE_KINDS.values())


def decide(policy: VoterPolicy, content: ProposalContent) -> Decision:
    """Decide a member's vote on a proposal: the first matching rule, else the default.

    Deterministic: reads no clock (the change window is part of ``content``).

    Arguments:
        policy: the member's policy.
        content: the proposal's content.

    Returns:
        The decision; ``vote`` None means defer (leave it to a human).
    """
    for rule in policy.rules:
        matched = rule.evaluate(policy, content)
        if matched is not None:
            action, facts = matched
            return Decision(
                vote=_VOTES[action],
                rule=rule.name,
                reason=f"Rule {rule.name!r} {_VERBS[action]}: {facts}.",
            )
    return Decision(
        vote=_VOTES[policy.default],
        rule=None,
        reason=f"No rule matched; the default {policy.default!r} {_VERBS[policy.default]}.",
    )
