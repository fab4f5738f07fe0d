"""The FRR configs the lab writes at start-up: a minimal base per site router, and the PEs.

A site router's base is its hostname, its interfaces' addresses and one eBGP session per
backhaul link (``no bgp ebgp-requires-policy``, no policy): the state before the site
template is first pushed. A PE announces its tenant's ``accept`` prefixes to every router
(``no bgp network import-check``: no route needs to exist) and retries every 5 s.
"""

from __future__ import annotations

from nornir_coopchain.lab.plan import LabPlan, RouterPlan, TenantPlan

__all__ = ["pe_config", "router_config"]


def _interface(name: str, addresses: list[str]) -> list[str]:
    return [f"interface {name}", *(f" ip address {a}" for a in addresses), "exit", "!"]


def router_config(plan: LabPlan, router: RouterPlan) -> str:
    """The base ``frr.conf`` of a site router."""
    lines = ["frr defaults traditional", f"hostname {router.name}", "!"]
    lines += _interface("lo", [f"{router.router_id}/32"])
    for tenant in plan.tenants:
        link = router.tenant_links[tenant.operator]
        lines += _interface(f"{plan.uplink}.{tenant.vlan}", [link["backhaul"]["local"]])
        lines += _interface(f"{plan.ran}.{tenant.ran_vlan}", [link["ran"]["local"]])
    lines += [
        f"router bgp {plan.asn}",
        f" bgp router-id {router.router_id}",
        " no bgp ebgp-requires-policy",
    ]
    for tenant in plan.tenants:
        peer = router.tenant_links[tenant.operator]["backhaul"]["peer"]
        lines.append(f" neighbor {peer} remote-as {tenant.peer_asn}")
    lines += ["exit", "!"]
    return "\n".join(lines) + "\n"


def pe_config(plan: LabPlan, tenant: TenantPlan) -> str:
    """The ``frr.conf`` of a tenant's PE."""
    name = f"pe-{tenant.operator.lower()}"
    router_id = tenant.addresses[0].split("/")[0]
    lines = ["frr defaults traditional", f"hostname {name}", "!"]
    lines += _interface(f"eth0.{tenant.vlan}", list(tenant.addresses))
    lines += [
        f"router bgp {tenant.peer_asn}",
        f" bgp router-id {router_id}",
        " no bgp ebgp-requires-policy",
        " no bgp network import-check",
    ]
    for router in plan.routers:
        local = router.tenant_links[tenant.operator]["backhaul"]["local"].split("/")[0]
        lines += [f" neighbor {local} remote-as {plan.asn}", f" neighbor {local} timers connect 5"]
    lines.append(" address-family ipv4 unicast")
    lines += [f"  network {prefix}" for prefix in tenant.announce]
    lines += [" exit-address-family", "exit", "!"]
    return "\n".join(lines) + "\n"
