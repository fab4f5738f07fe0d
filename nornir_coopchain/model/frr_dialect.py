"""FRRouting 8.4: how ``show running-config`` echoes what was configured.

Each rule below was seen on FRR 8.4.4 (Debian 12) with the public configurations of
``tests/corpus/frr`` and is tested in ``tests/test_compliance.py``. Line rules run in this
order on every line and every stanza header; stanza rules then run on the whole config.

Line rules:

- ``ipv6``: IPv6 addresses and prefixes are stored as addresses and printed compressed
  and lower case (``fc00:0:0:0::1/64`` → ``fc00::1/64``).
- ``keywords``: vtysh accepts any unique abbreviation and FRR prints the full keyword:
  ``int X`` → ``interface X``, ``shut`` → ``shutdown``, ``null0``/``NULL0`` → ``Null0``
  in static routes; the short ``address-family ipv4|ipv6`` is printed as ``… unicast``
  (re-qualifying every line under it).
- ``interface-vrf``: with the Linux VRF backend the VRF of an interface is the kernel's;
  zebra 8.4 prints ``interface X vrf Y`` as ``interface X``.
- ``debug-updates``: ``debug bgp updates`` is printed as its two directions, ``debug bgp
  updates in`` and ``debug bgp updates out``.
- ``log-level``: a log destination at the default level (``debugging``) is printed without
  the level (``log syslog debugging`` → ``log syslog``).
- ``defaults``: lines that set what is already the default are not printed: ``no
  shutdown`` of an interface or a BFD peer, ``vrf default`` of a BFD peer, ``bgp
  suppress-duplicates`` (on by default since 8.0), ``timers bgp 60 180`` with the
  traditional profile (the datacenter profile's default is ``3 9``).
- ``bfd-echo``: ``echo-interval N`` is printed as ``echo receive-interval N`` and ``echo
  transmit-interval N``.

Every FRR command is idempotent (``idempotent``): a line entered twice configures once
and is printed once, so the lines compare as sets.

Stanza rules:

- ``ipv4-unicast``: IPv4-unicast commands written at ``router bgp`` level (``network``,
  ``redistribute``, ``neighbor X route-map …``, …) are printed inside ``address-family
  ipv4 unicast``; ``neighbor X activate`` there is the default (``bgp default
  ipv4-unicast``) and not printed unless ``no bgp default ipv4-unicast`` is set.
- ``static-vrf``: ``ip route P NH vrf V …`` is printed inside a ``vrf V`` stanza, without
  ``vrf V``.
- ``remote-as``: a neighbor has one remote AS: a later ``neighbor X remote-as`` replaces
  an earlier one; ``neighbor X interface`` and ``neighbor X remote-as R`` are printed as
  one ``neighbor X interface remote-as R``.
- ``declared-version``: a config that declares an older ``frr version`` gets that
  version's BGP defaults (``bgp ebgp-requires-policy`` and ``bgp network import-check``
  off before 7.4, ``bgp suppress-duplicates`` before 7.6, ``bgp graceful-restart
  notification`` and ``bgp hard-administrative-reset`` before 8.3), which 8.4 prints as
  ``no …`` lines in each ``router bgp`` stanza (seen for 7.0, 7.2.1 and 8.1).
- ``seq``: entries of prefix-lists, access-lists, community-lists and as-path lists
  written without ``seq`` get the next multiple of 5 above the list's highest so far.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nornir_coopchain.model.dialect import Context, Dialect, Entry, LineRule, compress_ipv6

__all__ = ["FRR", "ipv6_rule"]


def _ipv6(_path: tuple[str, ...], line: str, _ctx: Context) -> list[str] | None:
    if "::" not in line and line.count(":") < 7:  # no IPv6 address can be in it
        return None
    words = line.split(" ")
    changed = False
    for index, word in enumerate(words):
        compressed = compress_ipv6(word)
        if compressed is not None and compressed != word:
            words[index] = compressed
            changed = True
    return [" ".join(words)] if changed else None


ipv6_rule = LineRule("ipv6", "addresses are printed compressed", _ipv6)
"""Shared with other dialects: every platform prints IPv6 addresses compressed."""

_NULL0 = re.compile(r"(?i)(?<= )null0(?= |$)")
_SHORT_AF = re.compile(r"address-family (ipv4|ipv6)")


def _keywords(path: tuple[str, ...], line: str, _ctx: Context) -> list[str] | None:
    if not path and line.startswith("int ") and not line.startswith("interface "):
        return [f"interface {line[4:]}"]
    if path and path[0].startswith("interface ") and line in ("shut", "no shut"):
        return [f"{line}down"]
    if line.startswith(("ip route ", "ipv6 route ")) and _NULL0.search(line):
        return [_NULL0.sub("Null0", line)]
    if path and path[0].startswith("router bgp ") and _SHORT_AF.fullmatch(line):
        return [f"{line} unicast"]
    return None


_INTERFACE_VRF = re.compile(r"(interface \S+) vrf \S+")


def _interface_vrf(path: tuple[str, ...], line: str, _ctx: Context) -> list[str] | None:
    match = _INTERFACE_VRF.fullmatch(line) if not path else None
    return [match.group(1)] if match else None


def _debug_updates(path: tuple[str, ...], line: str, _ctx: Context) -> list[str] | None:
    if not path and line == "debug bgp updates":
        return ["debug bgp updates in", "debug bgp updates out"]
    return None


_LOG_DEBUGGING = re.compile(r"(log (?:syslog|stdout|file \S+)) debugging")


def _log_level(path: tuple[str, ...], line: str, _ctx: Context) -> list[str] | None:
    match = _LOG_DEBUGGING.fullmatch(line) if not path else None
    return [match.group(1)] if match else None


def _defaults(path: tuple[str, ...], line: str, ctx: Context) -> list[str] | None:
    top = path[0] if path else ""
    if line == "no shutdown" and (
        (len(path) == 1 and top.startswith("interface "))
        or (len(path) == 2 and top == "bfd" and path[1].startswith("peer "))
    ):
        return []
    if len(path) == 1 and top == "bfd" and line.startswith("peer ") and " vrf default" in line:
        return [line.replace(" vrf default", "")]
    if len(path) == 1 and top.startswith("router bgp "):
        if line == "bgp suppress-duplicates":
            return []
        if line == "timers bgp 60 180" and ctx.defaults == "traditional":
            return []
    return None


_ECHO_INTERVAL = re.compile(r"echo-interval (\d+)")


def _bfd_echo(path: tuple[str, ...], line: str, _ctx: Context) -> list[str] | None:
    match = _ECHO_INTERVAL.fullmatch(line) if path[:1] == ("bfd",) else None
    if match is None:
        return None
    return [f"echo receive-interval {match[1]}", f"echo transmit-interval {match[1]}"]


_AF_COMMANDS = re.compile(
    r"(?:network|redistribute|aggregate-address|maximum-paths|table-map|distance bgp) .*"
    r"|neighbor \S+ (?:activate|route-map|prefix-list|filter-list|distribute-list"
    r"|next-hop-self|soft-reconfiguration|remove-private-AS|allowas-in|maximum-prefix"
    r"|default-originate|send-community|route-reflector-client|route-server-client"
    r"|unsuppress-map|weight|attribute-unchanged|as-override|addpath-tx)\b.*"
)
_IPV4_UNICAST = "address-family ipv4 unicast"


def _ipv4_unicast(entries: list[Entry], _ctx: Context) -> list[Entry]:
    """Router-level IPv4-unicast commands are shown inside ``address-family ipv4 unicast``;
    an activate there is the default unless ``no bgp default ipv4-unicast`` is set."""
    off = {e[0] for e in entries if len(e) == 2 and e[1] == "no bgp default ipv4-unicast"}
    out: list[Entry] = []
    for entry in entries:
        if (
            entry[0].startswith("router bgp ")
            and len(entry) == 2
            and _AF_COMMANDS.fullmatch(entry[1])
        ):
            entry = (entry[0], _IPV4_UNICAST, entry[1])
        if (
            len(entry) == 3
            and entry[1] == _IPV4_UNICAST
            and entry[0] not in off
            and re.fullmatch(r"neighbor \S+ activate", entry[2])
        ):
            continue
        out.append(entry)
    return out


_STATIC_VRF = re.compile(r"((?:ip|ipv6) route .*?) vrf (\S+)(.*)")


def _static_vrf(entries: list[Entry], _ctx: Context) -> list[Entry]:
    """``ip route … vrf V …`` is shown inside ``vrf V`` without ``vrf V``."""
    out: list[Entry] = []
    for entry in entries:
        match = _STATIC_VRF.fullmatch(entry[0]) if len(entry) == 1 else None
        if match is None or match[2] == "default":
            out.append(entry)
        else:
            out.append((f"vrf {match[2]}", f"{match[1]}{match[3]}"))
    return out


_REMOTE_AS = re.compile(r"neighbor (\S+) remote-as (\S+)")


def _remote_as(entries: list[Entry], _ctx: Context) -> list[Entry]:
    """One remote AS per neighbor (the last one written); ``neighbor X interface`` and its
    ``remote-as`` are shown as one line."""
    last: dict[tuple[str, str], int] = {}
    bare = {(e[0], e[1][9:-10]) for e in entries if len(e) == 2 and e[1].endswith(" interface")}
    for index, entry in enumerate(entries):
        match = _REMOTE_AS.fullmatch(entry[1]) if len(entry) == 2 else None
        if match is not None:
            last[(entry[0], match[1])] = index
    out: list[Entry] = []
    for index, entry in enumerate(entries):
        if len(entry) == 2:
            match = _REMOTE_AS.fullmatch(entry[1])
            if match is not None:
                key = (entry[0], match[1])
                if last[key] != index:
                    continue
                if key in bare:
                    entry = (entry[0], f"neighbor {match[1]} interface remote-as {match[2]}")
            elif entry[1].endswith(" interface") and (entry[0], entry[1][9:-10]) in last:
                continue
        out.append(entry)
    return out


_LISTS = re.compile(
    r"(?P<list>(?:ip|ipv6) prefix-list \S+|access-list \S+|ipv6 access-list \S+"
    r"|bgp (?:community-list|large-community-list|extcommunity-list) (?:standard |expanded )?\S+"
    r"|bgp as-path access-list \S+) (?P<rest>(?:seq (?P<seq>\d+) )?(?:permit|deny) .*)"
)


def _seq(entries: list[Entry], _ctx: Context) -> list[Entry]:
    """List entries without ``seq`` get the list's highest sequence number plus 5."""
    highest: dict[str, int] = {}
    out: list[Entry] = []
    for entry in entries:
        match = _LISTS.fullmatch(entry[0]) if len(entry) == 1 else None
        if match is not None:
            name = match["list"]
            if match["seq"] is None:
                number = highest.get(name, 0) // 5 * 5 + 5
                entry = (f"{name} seq {number} {match['rest']}",)
            else:
                number = int(match["seq"])
            highest[name] = max(highest.get(name, 0), number)
        out.append(entry)
    return out


_VERSION_DEFAULTS = (
    ((7, 4), "bgp ebgp-requires-policy"),
    ((7, 4), "bgp network import-check"),
    ((7, 6), "bgp suppress-duplicates"),
    ((8, 3), "bgp graceful-restart notification"),
    ((8, 3), "bgp hard-administrative-reset"),
)
_VERSION = re.compile(r"frr version (\d+)\.(\d+)")


def _declared_version(entries: list[Entry], _ctx: Context) -> list[Entry]:
    """A config that declares an older ``frr version`` gets that version's BGP defaults,
    which 8.4 prints as ``no …`` in every ``router bgp`` stanza that does not set them."""
    match = next((_VERSION.match(e[0]) for e in entries if len(e) == 1), None)
    if match is None:
        return entries
    declared = (int(match[1]), int(match[2]))
    off = [line for since, line in _VERSION_DEFAULTS if declared < since]
    routers = dict.fromkeys(e[0] for e in entries if e[0].startswith("router bgp "))
    written = {(e[0], e[1].removeprefix("no ")) for e in entries if len(e) == 2}
    added = [(r, f"no {line}") for r in routers for line in off if (r, line) not in written]
    return entries + added


def _context(entries: Sequence[Entry]) -> Context:
    for entry in entries:
        if len(entry) == 1 and entry[0].startswith("frr defaults "):
            return Context(defaults=entry[0].split()[2])
    return Context()


FRR = Dialect(
    name="frr",
    version="frr-8.4/1",
    line_rules=(
        ipv6_rule,
        LineRule("keywords", "abbreviations are printed in full", _keywords),
        LineRule("interface-vrf", "an interface's VRF is the kernel's", _interface_vrf),
        LineRule("debug-updates", "printed per direction", _debug_updates),
        LineRule("log-level", "the default level is not printed", _log_level),
        LineRule("defaults", "defaults are not printed", _defaults),
        LineRule("bfd-echo", "printed per direction", _bfd_echo),
    ),
    stanza_rules=(_ipv4_unicast, _static_vrf, _remote_as, _seq, _declared_version),
    context=_context,
    idempotent=True,
)
"""FRRouting 8.4's rules (see the module docstring)."""
