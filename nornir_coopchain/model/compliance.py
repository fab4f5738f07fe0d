"""Normalised compliance of a read-back config against the intended one (Golden-Config style).

A config is turned into *stanza-qualified lines*: a non-indented line opens a stanza, an
indented line belongs to the nearest less-indented line above it and is written with the
whole header path, e.g. ``router bgp 65017 > address-family ipv4 unicast > neighbor X
activate``. Leading and trailing whitespace and CRLF/CR line endings do not matter; blank
lines, comments (``!``, ``#``), ``end`` and the stanza terminators (``exit``,
``exit-address-family``, ``exit-vrf``, any ``exit-…``) are dropped. Comparison is a multiset
difference of those lines, so the order of stanzas and of lines inside a stanza does not
matter (FRR re-orders both) but a line written twice must be read back twice. A stanza
header counts once per config, however often the stanza is opened (a merge candidate may
open ``router bgp 65017`` twice, the device shows it once). This matches the *unordered*
compliance of netutils / Nautobot Golden Config, with parents folded into each line.

Before comparing, both configs are rewritten into the device's own form by the platform's
dialect (:data:`DIALECTS`: :mod:`~nornir_coopchain.model.frr_dialect`,
:mod:`~nornir_coopchain.model.eos_dialect`), explicit rules each naming the device
behaviour it mirrors (FRR prints ``int X`` as ``interface X``, compresses IPv6, drops
defaults, numbers list entries, ...). For FRR, whose commands are idempotent, the lines
compare as sets. The report carries the hash of the intended config's normalised form and
the rule set's version (see ``docs/compliance.md``).

Ignore rules drop lines the device adds on read-back that an intended config never
contains. A rule drops lines from one side (``running``, ``intended`` or ``both``) whose
qualified form fullmatches its regex; a rule with ``unless`` is off when the *other* config
has a line fullmatching that regex. :func:`normalise` applies the unconditional rules,
:func:`check_compliance` all of them.

| platform | side     | line                                      | unless other side has     |
| -------- | -------- | ----------------------------------------- | ------------------------- |
| any (a)  | both     | ``Building configuration...``             |                           |
| any (a)  | both     | ``Current configuration\\s*:.*``          |                           |
| frr (b)  | both     | ``frr version .*``                        |                           |
| frr (b)  | both     | ``frr defaults .*``                       |                           |
| frr (c)  | both     | ``(no )?service integrated-vtysh-config`` |                           |
| frr (d)  | running  | ``hostname \\S+``                         | ``hostname .*``           |
| frr (e)  | running  | ``no ip forwarding``                      | ``(no )?ip forwarding``   |
| frr (e)  | both     | ``ip forwarding``                         | ``no ip forwarding``      |
| frr (e)  | running  | ``no ipv6 forwarding``                    | ``(no )?ipv6 forwarding`` |
| frr (e)  | both     | ``ipv6 forwarding``                       | ``no ipv6 forwarding``    |
| frr (f)  | both     | ``line vty`` (the header only)            |                           |
| frr (f)  | running  | ``bfd`` (the header only)                 | ``bfd( > .*)?``           |
| eos (g)  |          | nothing beyond the generic rules          |                           |

(a) the banner of ``show running-config`` (FRR, IOS), not config. (b) written by FRR
itself: the version, and the defaults profile fixed at build/start time. (c) a vtysh.conf
setting that vtysh echoes. (d) FRR shows the machine's (UTS namespace) hostname when none
is configured, and beside the configured one when they differ (then only the extra line is
dropped, when the intended one is present too). (e) zebra echoes the kernel's forwarding
sysctl, and only ever prints the ``no`` form, so the positive form means the default
wherever it appears (a device that echoes it back, like the simulated driver, is not
different); an explicit ``no`` on
either side still counts. (f) vtysh prints an empty ``line vty`` stanza or not (8.4.4
omits it), and bfdd keeps printing ``bfd`` once its last peer is gone; lines inside
either still count. (g) ``! device: …`` / ``! Command: …``
are comments and ``end`` is dropped anyway.

``log …`` lines are deliberately **not** ignored: FRR prints them only when configured (it
adds no logging defaults on read-back), and a changed or removed log destination is a
real, auditable difference. Unknown platforms get the generic rules only.
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, StrictBool, field_validator, model_validator

from nornir_coopchain.model.content import DeviceEvidence, Hex32, hash_text
from nornir_coopchain.model.dialect import Context, Dialect, Entry
from nornir_coopchain.model.eos_dialect import EOS
from nornir_coopchain.model.frr_dialect import FRR
from nornir_coopchain.model.hashing import canonical_json, keccak, to_hex32
from nornir_coopchain.model.redact import redact

__all__ = [
    "IGNORE_RULES",
    "SEPARATOR",
    "ComplianceReport",
    "HeaderStack",
    "IgnoreRule",
    "check_compliance",
    "evidence_for",
    "is_skipped",
    "normalise",
]

SEPARATOR: Final = " > "
"""Joins a stanza path and a line: ``"<header> > <sub-header> > <line>"``."""

_LOG_FILE = re.compile(r"log file (\S+)(.*)")
_SKIPPED = re.compile(r"[!#].*|end|exit(-[\w-]+)?")


def is_skipped(line: str) -> bool:
    """Tell whether a stripped config line is syntax only: a comment, ``end`` or ``exit…``."""
    return _SKIPPED.fullmatch(line) is not None


class HeaderStack:
    """The chain of stanza headers above the current line, tracked by indentation."""

    def __init__(self, seed: str | None = None) -> None:
        """Start empty, or inside the top-level stanza ``seed`` (e.g. a hunk's section)."""
        self._entries: list[tuple[int, str]] = [] if seed is None else [(0, seed)]

    def place(self, indent: int, text: str) -> tuple[tuple[str, ...], bool]:
        """Place a line and return its enclosing headers, outermost first.

        Arguments:
            indent: the line's indentation (number of leading whitespace characters).
            text: the stripped line; it becomes a possible header for the lines below it.

        Returns:
            The header path (empty for a top-level line) and whether it is anchored: False
            when the outermost header in sight is itself indented, i.e. the top-level
            stanza is not known (e.g. a diff shows too little context).
        """
        while self._entries and self._entries[-1][0] >= indent:
            self._entries.pop()
        path = tuple(entry for _, entry in self._entries)
        anchored = indent == 0 or (bool(self._entries) and self._entries[0][0] == 0)
        self._entries.append((indent, text))
        return path, anchored


Side = Literal["running", "intended", "both"]


@dataclass(frozen=True)
class IgnoreRule:
    """A line to drop on read-back (see the table in the module docstring)."""

    pattern: str
    """Regex that must fullmatch the qualified line."""
    side: Side
    """Which config the rule drops lines from."""
    unless: str | None = None
    """The rule does not apply when a line of the *other* config fullmatches this regex."""

    def applies(self, other: list[str] | None) -> bool:
        """Tell whether the rule applies, given the other config's lines (None: unknown,
        so a conditional rule does not apply)."""
        if self._unless is None:
            return True
        return other is not None and not any(map(self._unless.fullmatch, other))

    @cached_property
    def _unless(self) -> re.Pattern[str] | None:
        return None if self.unless is None else re.compile(self.unless)


_GENERIC: Final = (
    IgnoreRule(r"Building configuration\.\.\.", "both"),
    IgnoreRule(r"Current configuration\s*:.*", "both"),
)
IGNORE_RULES: Final[dict[str, tuple[IgnoreRule, ...]]] = {
    "frr": (
        IgnoreRule(r"frr version .*", "both"),
        IgnoreRule(r"frr defaults .*", "both"),
        IgnoreRule(r"(no )?service integrated-vtysh-config", "both"),
        IgnoreRule(r"hostname \S+", "running", unless=r"hostname .*"),
        IgnoreRule(r"no ip forwarding", "running", unless=r"(no )?ip forwarding"),
        IgnoreRule(r"ip forwarding", "both", unless=r"no ip forwarding"),
        IgnoreRule(r"no ipv6 forwarding", "running", unless=r"(no )?ipv6 forwarding"),
        IgnoreRule(r"ipv6 forwarding", "both", unless=r"no ipv6 forwarding"),
        IgnoreRule(r"line vty", "both"),
        IgnoreRule(r"bfd", "running", unless=r"bfd( > .*)?"),
    ),
    "eos": (),
}
"""Per-platform ignore rules, on top of the generic ones (platform names are lower case)."""


DIALECTS: Final[dict[str, Dialect]] = {"frr": FRR, "eos": EOS}
"""Per-platform rewrite rules (:mod:`~nornir_coopchain.model.dialect`), applied to both
sides before the ignore rules."""


def _rules(platform: str) -> tuple[IgnoreRule, ...]:
    return _GENERIC + IGNORE_RULES.get(platform.lower(), ())


def _entries(config: str) -> list[Entry]:
    """Every meaningful line of ``config`` as an entry: its headers, then the line."""
    skipped = _SKIPPED.fullmatch
    indents: list[int] = []  # the open headers' indentation...
    path: Entry = ()  # ...and the headers themselves
    entries: list[Entry] = []
    for raw in config.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        indented = raw.lstrip()
        text = indented.rstrip()
        if not text or skipped(text) is not None:
            continue
        indent = len(raw) - len(indented)
        while indents and indents[-1] >= indent:
            indents.pop()
            path = path[:-1]
        entry = (*path, text)
        entries.append(entry)
        indents.append(indent)
        path = entry
    return entries


def _lines(entries: list[Entry]) -> list[str]:
    """Entries as qualified lines, in order; a stanza header once however often opened."""
    headers = {entry[:n] for entry in entries for n in range(1, len(entry))}
    seen: set[Entry] = set()
    lines: list[str] = []
    for entry in entries:
        for n in range(1, len(entry) + 1):
            prefix = entry[:n]
            if prefix in headers:
                if prefix in seen:
                    continue
                seen.add(prefix)
            elif n < len(entry):
                continue
            lines.append(SEPARATOR.join(prefix))
    return lines


def _qualify(config: str, platform: str, context: Context | None = None) -> list[str]:
    """Every meaningful line of ``config``, rewritten by the platform's dialect (with the
    ``context`` read from the read-back, or from ``config`` itself) and qualified."""
    return _qualify_entries(_entries(config), platform, context)


def _qualify_entries(entries: list[Entry], platform: str, context: Context | None) -> list[str]:
    dialect = DIALECTS.get(platform.lower())
    if dialect is None:
        return _lines(entries)
    lines = _lines(dialect.rewrite(entries, context or dialect.context(entries)))
    return list(dict.fromkeys(lines)) if dialect.idempotent else lines


def _apply(lines: list[str], rules: tuple[IgnoreRule, ...], other: list[str] | None) -> list[str]:
    """Drop the lines ``rules`` match; conditional rules only when ``other`` is known."""
    dropped = _any_of(tuple(rule.pattern for rule in rules if rule.applies(other)))
    if dropped is None:
        return lines
    return [line for line in lines if dropped.fullmatch(line) is None]


@lru_cache(maxsize=64)
def _any_of(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex that fullmatches what any of ``patterns`` fullmatches (None for none)."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns))


def normalise(config: str, platform: str) -> tuple[str, ...]:
    """Turn a config into its canonical stanza-qualified lines.

    Only the unconditional ignore rules apply here (those that depend on the other config,
    such as FRR's ``hostname``, are applied by :func:`check_compliance`).

    Arguments:
        config: the config text (any line endings).
        platform: the NAPALM platform, e.g. ``frr`` or ``eos``; unknown ones get the
            generic rules only.

    Returns:
        The qualified lines, sorted (duplicates kept, stanza headers once).
    """
    rules = tuple(rule for rule in _rules(platform) if rule.unless is None)
    return tuple(sorted(_apply(_qualify(config, platform), rules, None)))


class ComplianceReport(BaseModel):
    """The compliance of one device: what the read-back lacks and what it has in excess."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    compliant: StrictBool
    """True iff nothing is missing and nothing is extra."""
    missing: tuple[str, ...] = ()
    """Qualified intended lines the read-back lacks (sorted; repeated per missing copy)."""
    extra: tuple[str, ...] = ()
    """Qualified read-back lines the intended config lacks, after ignore rules (sorted)."""
    intended_hash: Hex32
    """:func:`hash_text` of the intended (candidate) config."""
    running_hash: Hex32
    """:func:`hash_text` of the read-back config."""
    normalised_hash: Hex32
    """:func:`hash_text` of the intended config's normalised form, the sorted qualified
    lines that were compared (one per line), after the platform's rules."""
    rules: str
    """The rule set that normalised both sides (e.g. ``frr-8.4/1``; ``generic``)."""

    @field_validator("missing", "extra")
    @classmethod
    def _sort_lines(cls, lines: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(lines))

    @model_validator(mode="after")
    def _check_verdict(self) -> ComplianceReport:
        if self.compliant != (not self.missing and not self.extra):
            raise ValueError("compliant must be true exactly when nothing is missing or extra")
        return self

    def report_hash(self) -> str:
        """The keccak-256 of the report's canonical JSON, as ``0x`` + 64 hex digits."""
        return to_hex32(keccak(canonical_json(self.model_dump(mode="json"))))


def _vtysh_hostnames(running: list[str], intended: list[str], platform: str) -> list[str]:
    """FRR (d'): vtysh adds the OS host name beside a configured one that differs; drop the
    added ``hostname`` lines when the intended one is present."""
    names = [line for line in intended if line.startswith("hostname ")]
    if platform != "frr" or not names or not set(names) <= set(running):
        return running
    return [line for line in running if not line.startswith("hostname ") or line in names]


def _relative_log_files(running: list[str], intended: list[str], platform: str) -> list[str]:
    """FRR: a relative ``log file`` path is resolved against vtysh's working directory and
    printed absolute; read ``log file /dir/NAME …`` back as the intended ``log file NAME …``
    when the intended config has that relative form."""
    relative = {line for line in intended if _LOG_FILE.fullmatch(line) and line[9] != "/"}
    if platform.lower() != "frr" or not relative:
        return running
    out = []
    for line in running:
        match = _LOG_FILE.fullmatch(line)
        if match is not None and match[1].startswith("/"):
            name = f"log file {match[1].rsplit('/', 1)[1]}{match[2]}"
            line = name if name in relative else line
        out.append(line)
    return out


def check_compliance(intended: str, running: str, platform: str) -> ComplianceReport:
    """Compare a read-back config with the intended one, order-insensitively.

    Arguments:
        intended: the intended (candidate) config.
        running: the config read back from the device.
        platform: the NAPALM platform, which selects the ignore rules.

    Returns:
        The report: missing and extra qualified lines (multiset difference) and the hashes
        of both raw texts.
    """
    rules = _rules(platform)
    dialect = DIALECTS.get(platform.lower())
    running_entries = _entries(running)
    context = None if dialect is None else dialect.context(running_entries)
    ours = _qualify(intended, platform, context)
    theirs = (  # a read-back as pushed is qualified once
        ours if running == intended else _qualify_entries(running_entries, platform, context)
    )
    theirs = _relative_log_files(theirs, ours, platform)
    intended_rules = tuple(rule for rule in rules if rule.side in ("intended", "both"))
    running_rules = tuple(rule for rule in rules if rule.side in ("running", "both"))
    wanted_lines = _apply(ours, intended_rules, theirs)
    wanted = Counter(wanted_lines)
    found = Counter(_apply(_vtysh_hostnames(theirs, ours, platform), running_rules, ours))
    missing = tuple((wanted - found).elements())
    extra = tuple((found - wanted).elements())
    return ComplianceReport(
        compliant=not missing and not extra,
        missing=missing,
        extra=extra,
        intended_hash=hash_text(intended),
        running_hash=hash_text(running),
        normalised_hash=hash_text("".join(f"{line}\n" for line in sorted(wanted_lines))),
        rules="generic" if dialect is None else dialect.version,
    )


def evidence_for(
    host: str, intended: str, running: str, platform: str, *, salt: str | None = None
) -> tuple[DeviceEvidence, ComplianceReport]:
    """Check a device's read-back and summarise it as its salted evidence entry.

    Secrets are redacted from both configs (:func:`~nornir_coopchain.model.redact.redact`)
    before comparing and hashing, so a config with secrets still verifies and no secret
    reaches the evidence.

    Arguments:
        host: the Nornir host name.
        intended: the intended (approved candidate) config.
        running: the config read back after the change.
        platform: the config dialect (e.g. ``frr``).
        salt: the leaf's salt (``0x`` + 64 hex); random when omitted.

    Returns:
        The :class:`DeviceEvidence` and the full :class:`ComplianceReport` it summarises.

    Raises:
        ValidationError: when ``host`` is empty or ``salt`` is malformed.
    """
    redacted_intended = redact(intended, platform)
    report = check_compliance(redacted_intended, redact(running, platform), platform)
    unchanged = redacted_intended is intended  # no secret: the report hashed it already
    evidence = DeviceEvidence(
        host=host,
        salt=salt or to_hex32(secrets.token_bytes(32)),
        candidate_hash=report.intended_hash if unchanged else hash_text(intended),
        readback_hash=report.running_hash,
        compliant=report.compliant,
        missing_lines=len(report.missing),
        extra_lines=len(report.extra),
        report_hash=report.report_hash(),
    )
    return evidence, report
