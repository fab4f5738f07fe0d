"""Arista EOS: how ``show running-config`` echoes what was configured, per EOS's manuals.

**Untested against a live EOS device**: the project's lab runs FRR only, so these rules
come from EOS's documented behaviour and are checked by unit tests alone. Same structure as
:mod:`~nornir_coopchain.model.frr_dialect`:

- ``ipv6``: IPv6 addresses and prefixes are printed compressed and lower case.
- ``interface-names``: interface names are printed in EOS's canonical case and in full
  (``interface ethernet1`` / ``int et1`` → ``interface Ethernet1``, ``loopback0`` →
  ``Loopback0``, ``port-channel10`` → ``Port-Channel10``).
- ``peer-group``: the older ``neighbor X peer-group G`` form is printed as ``neighbor X
  peer group G`` (EOS 4.23 and later).
"""

from __future__ import annotations

import re

from nornir_coopchain.model.dialect import Context, Dialect, LineRule
from nornir_coopchain.model.frr_dialect import ipv6_rule

__all__ = ["EOS"]

_NAMES = {
    "et": "Ethernet",
    "ethernet": "Ethernet",
    "lo": "Loopback",
    "loopback": "Loopback",
    "po": "Port-Channel",
    "port-channel": "Port-Channel",
    "vl": "Vlan",
    "vlan": "Vlan",
    "ma": "Management",
    "management": "Management",
}
_INTERFACE = re.compile(r"(?:int|interface) ([A-Za-z-]+?)(\d[\d/.]*)")


def _interface_names(path: tuple[str, ...], line: str, _ctx: Context) -> list[str] | None:
    match = _INTERFACE.fullmatch(line) if not path else None
    if match is None:
        return None
    name = _NAMES.get(match[1].lower())
    return None if name is None else [f"interface {name}{match[2]}"]


_PEER_GROUP = re.compile(r"(neighbor \S+) peer-group(.*)")


def _peer_group(path: tuple[str, ...], line: str, _ctx: Context) -> list[str] | None:
    match = _PEER_GROUP.fullmatch(line) if path[:1] and path[0].startswith("router bgp") else None
    return None if match is None else [f"{match[1]} peer group{match[2]}"]


EOS = Dialect(
    name="eos",
    version="eos/1-untested",
    line_rules=(
        ipv6_rule,
        LineRule("interface-names", "interface names are printed canonically", _interface_names),
        LineRule("peer-group", "printed as `peer group`", _peer_group),
    ),
)
"""Arista EOS's rules (see the module docstring; untested against a live device)."""
