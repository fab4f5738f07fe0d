"""The lab's plan: who is where and which address each side of each link has. Pure data.

The site is the sample inventory's: its site group (the group whose data has ``tenants``)
and its ``frr`` group (``uplink_interface`` / ``ran_interface``) are reused as they are, and
router *n* takes the sample's *n*-th host's ``router_id`` and ``tenant_links`` when the
sample has one, else the same addressing plan continued (see ``inventory/groups.yaml``).

Topology, hub and spoke as on a shared tower: every site router ``r<n>`` has its uplink
(``eth0``) and its RAN side (``eth1``) on two bridges of a switch namespace, with one VLAN
sub-interface per tenant on each (``eth0.<vlan>``, ``eth1.<ran_vlan>``); each tenant has a
PE namespace ``pe<k>`` (its own AS, ``peer_asn``) on the uplink bridge with the tenant's
VLAN, holding the ``backhaul.peer`` address of every router's link and announcing the
tenant's ``accept`` prefixes. So the site template's BGP sessions are real eBGP sessions.
The management link of router *n* is a veth from the host: ``198.19.<m>.(4n-3)/30`` on the
host side, ``.(4n-2)`` in the namespace (``mgmt0``), one /24 ``<m>`` in 128..254 per lab.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nornir_coopchain.exceptions import ConfigError

__all__ = [
    "MAX_ROUTERS",
    "LabPlan",
    "RouterPlan",
    "SiteData",
    "TenantPlan",
    "choose_mgmt_octet",
    "load_site",
    "make_plan",
]

MAX_ROUTERS = 9
"""The sample's addressing plan (``198.18.(10X+n).0/24`` per tenant X) has room for 9."""
MGMT_NET = "198.19"
MGMT_OCTETS = range(128, 255)


@dataclass(frozen=True)
class SiteData:
    """The parts of a site inventory the lab reuses."""

    site_group: str
    site_data: dict[str, Any]
    frr_data: dict[str, Any]
    hosts: tuple[dict[str, Any], ...]
    """The sample hosts of the site group, in file order (their ``data``)."""
    defaults: dict[str, Any]


@dataclass(frozen=True)
class TenantPlan:
    """One tenant of the site and its PE."""

    operator: str
    index: int
    vlan: int
    ran_vlan: int
    peer_asn: int
    announce: tuple[str, ...]
    addresses: tuple[str, ...]
    """The PE's ``address/len`` on each router's backhaul link, router order."""


@dataclass(frozen=True)
class RouterPlan:
    """One site router."""

    index: int
    name: str
    router_id: str
    tenant_links: dict[str, Any] = field(hash=False)
    mgmt_host: str
    mgmt_address: str


@dataclass(frozen=True)
class LabPlan:
    """Every name and address of one lab."""

    lab_id: str
    root: Path
    site: SiteData
    asn: int
    uplink: str
    ran: str
    mgmt_octet: int
    tenants: tuple[TenantPlan, ...]
    routers: tuple[RouterPlan, ...]

    @property
    def prefix(self) -> str:
        """The prefix of every namespace and host-side interface of this lab."""
        return f"cc{self.lab_id}"

    def router_ns(self, router: RouterPlan) -> str:
        """The namespace of a site router."""
        return f"{self.prefix}-r{router.index}"

    def pe_ns(self, tenant: TenantPlan) -> str:
        """The namespace of a tenant's PE."""
        return f"{self.prefix}-pe{tenant.index}"

    @property
    def switch_ns(self) -> str:
        """The namespace holding the uplink and RAN bridges."""
        return f"{self.prefix}-sw"

    def mgmt_if(self, router: RouterPlan) -> str:
        """The host-side interface of a router's management link."""
        return f"{self.prefix}m{router.index}"

    def router_dir(self, router: RouterPlan) -> Path:
        """A router's FRR directory (config, vty sockets, pid files)."""
        return self.root / f"r{router.index}"

    def pe_dir(self, tenant: TenantPlan) -> Path:
        """A PE's FRR directory."""
        return self.root / f"pe{tenant.index}"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read: {e}", source=str(path)) from e
    if not isinstance(data, dict):
        raise ConfigError("not a mapping", source=str(path))
    return data


def load_site(inventory: Path) -> SiteData:
    """Read the site group, the ``frr`` group and the site's hosts of a sample inventory.

    Raises:
        ConfigError: a file is missing or no group holds ``tenants`` or no ``frr`` group
            holds ``uplink_interface`` and ``ran_interface``.
    """
    groups = _read_yaml(inventory / "groups.yaml")
    hosts = _read_yaml(inventory / "hosts.yaml")
    defaults = _read_yaml(inventory / "defaults.yaml")
    site = next(
        (
            name
            for name, g in groups.items()
            if isinstance(g, dict) and "tenants" in g.get("data", {})
        ),
        None,
    )
    if site is None:
        raise ConfigError("no group with data.tenants (the site)", source=str(inventory))
    frr = (groups.get("frr") or {}).get("data") or {}
    if not {"uplink_interface", "ran_interface"} <= set(frr):
        raise ConfigError(
            "group frr needs data.uplink_interface and data.ran_interface",
            source=str(inventory / "groups.yaml"),
        )
    site_hosts = tuple(
        dict(h.get("data") or {})
        for h in hosts.values()
        if isinstance(h, dict) and site in (h.get("groups") or [])
    )
    return SiteData(site, dict(groups[site]["data"]), dict(frr), site_hosts, defaults)


def _links(n: int, x: int) -> dict[str, Any]:
    """Router ``n``'s links to tenant number ``x`` (1-based), the sample plan continued."""
    low = 4 * n - 3
    return {
        "backhaul": {"local": f"198.19.{x}.{low}/30", "peer": f"198.19.{x}.{low + 1}"},
        "ran": {
            "local": f"198.19.{10 + x}.{low}/30",
            "routes": [
                {"prefix": f"198.18.{10 * x + n}.0/24", "next_hop": f"198.19.{10 + x}.{low + 1}"}
            ],
        },
    }


def choose_mgmt_octet(lab_id: str, used: set[int]) -> int:
    """A third octet of ``198.19.<m>.0/24`` no host address uses, seeded by the lab ID.

    Raises:
        ConfigError: every candidate is in use.
    """
    start = int(lab_id, 16) % len(MGMT_OCTETS)
    for step in range(len(MGMT_OCTETS)):
        octet = MGMT_OCTETS[(start + step) % len(MGMT_OCTETS)]
        if octet not in used:
            return octet
    raise ConfigError("no free management /24 left in 198.19.128.0/17 on this host")


def make_plan(root: Path, lab_id: str, routers: int, site: SiteData, mgmt_octet: int) -> LabPlan:
    """Lay out a lab of ``routers`` site routers for ``site``.

    Raises:
        ConfigError: ``routers`` is out of range or the site data lacks what the plan needs.
    """
    if not 1 <= routers <= MAX_ROUTERS:
        raise ConfigError(f"--routers must be 1..{MAX_ROUTERS}, got {routers}", field="routers")
    tenants_data: dict[str, Any] = site.site_data["tenants"]
    order = sorted(tenants_data)
    plans: list[RouterPlan] = []
    for n in range(1, routers + 1):
        sample = site.hosts[n - 1] if n <= len(site.hosts) else {}
        links = sample.get("tenant_links") or {op: _links(n, x) for x, op in enumerate(order, 1)}
        missing = [op for op in order if op not in links]
        if missing:
            raise ConfigError(f"router {n}: no tenant_links for {', '.join(missing)}")
        low = 4 * n - 3
        plans.append(
            RouterPlan(
                index=n,
                name=f"{site.site_group}-r{n}",
                router_id=str(sample.get("router_id") or f"192.0.2.{170 + n}"),
                tenant_links=links,
                mgmt_host=f"{MGMT_NET}.{mgmt_octet}.{low}",
                mgmt_address=f"{MGMT_NET}.{mgmt_octet}.{low + 1}",
            )
        )
    tenants = []
    for x, op in enumerate(order, 1):
        data = tenants_data[op]
        addresses = []
        for router in plans:
            backhaul = router.tenant_links[op]["backhaul"]
            length = ipaddress.ip_interface(backhaul["local"]).network.prefixlen
            addresses.append(f"{backhaul['peer']}/{length}")
        tenants.append(
            TenantPlan(
                operator=op,
                index=x,
                vlan=int(data["vlan"]),
                ran_vlan=int(data["ran_vlan"]),
                peer_asn=int(data["peer_asn"]),
                announce=tuple(str(a["prefix"]) for a in data.get("accept", [])),
                addresses=tuple(addresses),
            )
        )
    return LabPlan(
        lab_id=lab_id,
        root=root,
        site=site,
        asn=int(site.site_data["asn"]),
        uplink=str(site.frr_data["uplink_interface"]),
        ran=str(site.frr_data["ran_interface"]),
        mgmt_octet=mgmt_octet,
        tenants=tuple(tenants),
        routers=tuple(plans),
    )
