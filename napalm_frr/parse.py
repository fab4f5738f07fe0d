"""FRR's own output turned into NAPALM's getter models, and frr-reload diffs cleaned up."""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "bgp_neighbors",
    "clean_reload_diff",
    "expand_address_families",
    "interfaces",
    "sanitize",
    "version_of",
]

_VERSION = re.compile(r"^FRRouting (\S+) \((\S+)\) on (\S+)", re.MULTILINE)
_SECRET = re.compile(
    r"^(\s*(?:\S+ )*?(?:password|secret|key-string)\s+(?:\d\s+)?)\S+", re.MULTILINE
)
_SECTIONS = ("Lines To Delete", "Lines To Add")


def version_of(show_version: str) -> tuple[str, str, str]:
    """``(version, hostname, os)`` from ``show version``, or empty strings."""
    match = _VERSION.search(show_version)
    if match is None:
        return "", "", ""
    return match.group(1), match.group(2), match.group(3).rstrip(".")


def sanitize(config: str) -> str:
    """``config`` with the value after ``password``/``secret``/``key-string`` removed."""
    return _SECRET.sub(r"\1<removed>", config)


_SHORT_AF = re.compile(r"^(\s+address-family (?:ipv4|ipv6))[ \t]*$", re.MULTILINE)


def expand_address_families(config: str) -> str:
    """``config`` with the short ``address-family ipv4|ipv6`` written in full (``… unicast``).

    vtysh accepts the short form and FRR shows it as ``… unicast``, but frr-reload.py 8.4.4
    crashes on it (``UnboundLocalError: rm_match`` in ``ignore_delete_re_add_lines``); the
    candidate is therefore sent to the device in the form FRR itself prints.
    """
    return _SHORT_AF.sub(r"\1 unicast", config)


def clean_reload_diff(diff: str, running: str) -> str:
    """Tidy ``frr-reload.py --test`` output: drop blank lines and no-op additions.

    zebra never prints ``ip forwarding`` / ``ipv6 forwarding`` (only the ``no`` forms), so
    frr-reload always lists a candidate's ``ip forwarding`` under "Lines To Add" although
    sending it changes nothing; it is dropped unless the running config has the ``no``
    form. A section left empty is dropped; no section left means no change (``""``).
    """
    present = {line.strip() for line in running.splitlines()}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in diff.splitlines():
        line = raw.rstrip()
        if line in _SECTIONS:
            current = sections.setdefault(line, [])
            continue
        if current is None or not line.strip() or set(line) == {"="}:
            continue
        if (
            current is sections.get("Lines To Add")
            and line in ("ip forwarding", "ipv6 forwarding")
            and f"no {line}" not in present
        ):
            continue
        current.append(line)
    blocks = [
        f"{title}\n{'=' * len(title)}\n" + "".join(f"{line}\n" for line in lines)
        for title, lines in sections.items()
        if lines
    ]
    return "\n".join(blocks)


def interfaces(show_interface: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """NAPALM ``get_interfaces`` from zebra's ``show interface json``."""
    result: dict[str, dict[str, Any]] = {}
    for name, data in sorted(show_interface.items()):
        if not isinstance(data, dict):
            continue
        speed = data.get("speed")
        result[name] = {
            "is_up": data.get("operationalStatus") == "up",
            "is_enabled": data.get("administrativeStatus") == "up",
            "description": str(data.get("description") or ""),
            "last_flapped": -1.0,
            "speed": float(speed) if isinstance(speed, int | float) and speed > 0 else 0.0,
            "mtu": int(data.get("mtu") or 0),
            "mac_address": str(data.get("hardwareAddress") or ""),
        }
    return result


def _peer(data: dict[str, Any], received: dict[str, int]) -> dict[str, Any]:
    families: dict[str, dict[str, int]] = {}
    for key, info in (data.get("addressFamilyInfo") or {}).items():
        family = "ipv6" if key.startswith("ipv6") else "ipv4" if key.startswith("ipv4") else key
        if not isinstance(info, dict):
            continue
        accepted = int(info.get("acceptedPrefixCounter", 0))
        families[family] = {
            "received_prefixes": received.get(family, accepted),
            "accepted_prefixes": accepted,
            "sent_prefixes": int(info.get("sentPrefixCounter", 0)),
        }
    state = str(data.get("bgpState", ""))
    up = state == "Established"
    local_as = int(data.get("localAs", 0))
    return {
        "local_as": local_as,
        "remote_as": _remote_as(data, local_as),
        "remote_id": str(data.get("remoteRouterId", "0.0.0.0")),
        "is_up": up,
        "is_enabled": not data.get("adminShutDown", False) and "Admin" not in state,
        "description": str(data.get("nbrDesc") or ""),
        "uptime": int(data.get("bgpTimerUpMsec", 0)) // 1000 if up else -1,
        "address_family": families,
    }


def _remote_as(data: dict[str, Any], local_as: int) -> int:
    """The peer's AS: FRR reports ``remoteAs`` 0 for ``remote-as internal|external`` (on
    the neighbor or its peer group) until the session is up; internal means our own AS.
    An external peer that was never up has no known AS (0)."""
    remote = int(data.get("remoteAs") or 0)
    if remote == 0 and data.get("nbrInternalLink"):
        return local_as
    return remote


def _received(summary: dict[str, Any], vrf: str) -> dict[str, dict[str, int]]:
    """``{peer: {family: pfxRcd}}`` from ``show bgp vrf all summary json``."""
    out: dict[str, dict[str, int]] = {}
    for family_key, family_data in (summary.get(vrf) or {}).items():
        if not isinstance(family_data, dict):
            continue
        family = "ipv6" if family_key.startswith("ipv6") else "ipv4"
        for peer, info in (family_data.get("peers") or {}).items():
            out.setdefault(peer, {})[family] = int(info.get("pfxRcd", 0))
    return out


def bgp_neighbors(neighbors: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """NAPALM ``get_bgp_neighbors`` from ``show bgp vrf all neighbors json`` and ``... summary
    json``; the default VRF is ``global``."""
    result: dict[str, Any] = {}
    for vrf, data in neighbors.items():
        if not isinstance(data, dict):
            continue
        received = _received(summary, vrf)
        peers = {
            peer: _peer(info, received.get(peer, {}))
            for peer, info in data.items()
            if isinstance(info, dict)
        }
        router_id = next(
            (p.get("localRouterId") for p in data.values() if isinstance(p, dict)), None
        )
        if router_id is None:
            families = [f for f in (summary.get(vrf) or {}).values() if isinstance(f, dict)]
            router_id = next((f.get("routerId") for f in families if f.get("routerId")), "")
        result["global" if vrf == "default" else vrf] = {
            "router_id": str(router_id or ""),
            "peers": peers,
        }
    return result
