"""The lab's Nornir inventory (SimpleInventory files) in ``<lab>/inventory``.

Hosts are the site routers with ``platform: frr`` (the ``napalm_frr`` driver),
``hostname`` their management address, user root with the lab's key, host keys checked
against the lab's ``known_hosts``, and the per-router FRR paths the driver needs. Groups
are the sample site group and ``frr`` group unchanged; host data is each router's
``router_id`` and ``tenant_links`` (those the lab's links were built from).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nornir_coopchain.lab.plan import LabPlan

__all__ = ["write_inventory"]


def _dump(path: Path, header: str, data: dict[str, Any]) -> None:
    path.write_text(f"---\n# {header}\n" + yaml.safe_dump(data, sort_keys=False))


def write_inventory(plan: LabPlan, key: Path, known_hosts: Path) -> Path:
    """Write hosts.yaml, groups.yaml and defaults.yaml; return the directory."""
    directory = plan.root / "inventory"
    directory.mkdir(parents=True, exist_ok=True)
    hosts: dict[str, Any] = {}
    for router in plan.routers:
        frr_dir = str(plan.router_dir(router))
        hosts[router.name] = {
            "hostname": router.mgmt_address,
            "platform": "frr",
            "username": "root",
            "port": 22,
            "groups": [plan.site.site_group, "frr"],
            "connection_options": {
                "napalm": {
                    "extras": {
                        "optional_args": {
                            "key_file": str(key),
                            "use_keys": True,
                            "allow_agent": False,
                            "ssh_strict": True,
                            "system_host_keys": False,
                            "alt_host_keys": True,
                            "alt_key_file": str(known_hosts),
                            "conn_timeout": 5,
                            "vty_socket": frr_dir,
                            "confdir": frr_dir,
                            "rundir": frr_dir,
                            # Debian's frr-reload.py runs on Debian's python3 (the lab's
                            # routers share this machine's root, whose PATH may differ)
                            "python": "/usr/bin/python3",
                        }
                    }
                }
            },
            "data": {
                "template_platform": "frr",
                "lab_namespace": plan.router_ns(router),
                "router_id": router.router_id,
                "tenant_links": router.tenant_links,
            },
        }
    groups = {
        plan.site.site_group: {"data": plan.site.site_data},
        "frr": {"data": plan.site.frr_data},
    }
    coopchain = dict(
        ((plan.site.defaults.get("connection_options") or {}).get("coopchain") or {}).get("extras")
        or {}
    )
    coopchain["state_dir"] = str(plan.root / "coopchain")
    defaults = {"connection_options": {"coopchain": {"extras": coopchain}}}
    lab = f"coopchain lab {plan.lab_id} (generated; `coopchain lab down` removes it)"
    _dump(directory / "hosts.yaml", f"{lab}: FRRouting routers over SSH", hosts)
    _dump(directory / "groups.yaml", f"{lab}: the sample site's groups", groups)
    _dump(directory / "defaults.yaml", f"{lab}: this operator's coopchain session", defaults)
    return directory
