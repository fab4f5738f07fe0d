"""``lab_up`` / ``lab_down`` / ``lab_status``: build, check and remove one lab.

Everything a lab makes is named in its state file ``<root>/lab.json`` (written *before*
anything is built), so ``lab_down`` can remove a half-built lab too: it stops every daemon
and sshd by its pid file, then any process still inside one of the lab's namespaces,
deletes the namespaces and host-side management links, and removes the files it wrote.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from pathlib import Path

from pydantic import BaseModel, ConfigDict

import nornir_coopchain
from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.lab import daemons
from nornir_coopchain.lab._run import namespace_pids, run, stop_pid
from nornir_coopchain.lab.errors import LabError
from nornir_coopchain.lab.frrconf import pe_config, router_config
from nornir_coopchain.lab.inventory import write_inventory
from nornir_coopchain.lab.plan import (
    MAX_ROUTERS,
    LabPlan,
    choose_mgmt_octet,
    load_site,
    make_plan,
)
from nornir_coopchain.lab.ssh import make_client_key, make_host_key, sshd_config, write_known_hosts

__all__ = [
    "PACKAGES",
    "LabInfo",
    "LabStatus",
    "PEInfo",
    "RouterInfo",
    "RouterStatus",
    "check_prerequisites",
    "default_site",
    "lab_down",
    "lab_status",
    "lab_up",
    "load_info",
    "set_daemon",
    "set_sshd",
]

PACKAGES = ("frr", "frr-pythontools", "openssh-server")
STATE = "lab.json"
_MADE = ("inventory", "ssh")
_REQUIRED = (
    *(daemons.FRR_DIR / d for d in daemons.ROUTER_DAEMONS),
    daemons.FRR_DIR / "frr-reload.py",
    daemons.VTYSH,
    daemons.SSHD,
)


class RouterInfo(BaseModel):
    """One site router of a lab."""

    model_config = ConfigDict(frozen=True)

    name: str
    namespace: str
    directory: Path
    mgmt_address: str
    mgmt_interface: str


class PEInfo(BaseModel):
    """One tenant's PE of a lab."""

    model_config = ConfigDict(frozen=True)

    operator: str
    namespace: str
    directory: Path
    asn: int
    addresses: tuple[str, ...]


class LabInfo(BaseModel):
    """What a lab is made of (the content of ``lab.json``)."""

    model_config = ConfigDict(frozen=True)

    lab_id: str
    root: Path
    routers: tuple[RouterInfo, ...]
    pes: tuple[PEInfo, ...]
    switch_namespace: str
    inventory: Path
    ssh_dir: Path

    @property
    def ssh_key(self) -> Path:
        """The client key that logs in as root on every router."""
        return self.ssh_dir / "client"

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every namespace of the lab."""
        return (
            *(r.namespace for r in self.routers),
            *(p.namespace for p in self.pes),
            self.switch_namespace,
        )

    def router(self, name: str) -> RouterInfo:
        """The router called ``name`` (inventory host name)."""
        for router in self.routers:
            if router.name == name:
                return router
        raise ConfigError(f"no router {name!r} in lab {self.lab_id}", field="router")


class RouterStatus(BaseModel):
    """Health of one router."""

    name: str
    namespace: bool
    daemons: dict[str, bool]
    sshd: bool
    bgp_established: int | None


class LabStatus(BaseModel):
    """Health of a lab; ``info`` is None when there is no lab in the directory."""

    info: LabInfo | None
    routers: tuple[RouterStatus, ...] = ()
    pes: dict[str, bool] = {}

    @property
    def healthy(self) -> bool:
        """Every namespace exists and every daemon and sshd runs."""
        return (
            self.info is not None
            and all(r.namespace and r.sshd and all(r.daemons.values()) for r in self.routers)
            and all(self.pes.values())
        )


def default_site() -> Path:
    """The sample inventory: next to the installed package, else in the current directory."""
    beside = Path(nornir_coopchain.__file__).resolve().parents[1] / "inventory"
    return beside if (beside / "groups.yaml").is_file() else Path.cwd() / "inventory"


def check_prerequisites() -> None:
    """Raises ConfigError unless we are root and FRR, frr-reload.py and sshd are installed."""
    if os.geteuid() != 0:
        raise ConfigError(
            "the FRRouting lab needs root (network namespaces, veth links, daemons): run it "
            "as root; `scripts/test` run as root also installs " + " ".join(PACKAGES)
        )
    missing = [str(path) for path in _REQUIRED if not path.exists()]
    missing += [tool for tool in ("ip", "ssh-keygen") if shutil.which(tool) is None]
    if missing:
        raise ConfigError(
            f"missing {', '.join(missing)}: install the Debian packages {' '.join(PACKAGES)} "
            "(`apt-get install -y --no-install-recommends frr frr-pythontools openssh-server`"
            ", or run `scripts/test` as root)"
        )


def load_info(root: Path) -> LabInfo | None:
    """The lab in ``root``, or None."""
    path = root.resolve() / STATE
    if not path.is_file():
        return None
    return LabInfo.model_validate_json(path.read_text())


def _netns_list() -> set[str]:
    return {line.split()[0] for line in run(["ip", "netns", "list"]).stdout.splitlines() if line}


def _host_link_exists(name: str) -> bool:
    return run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def _used_mgmt_octets() -> set[int]:
    used = set()
    for line in run(["ip", "-4", "-o", "addr", "show"]).stdout.splitlines():
        for word in line.split():
            if word.startswith("198.19."):
                used.add(int(word.split(".")[2]))
    return used


def _new_id() -> str:
    names = _netns_list()
    for _ in range(50):
        lab_id = secrets.token_hex(2)
        if not any(n.startswith(f"cc{lab_id}-") for n in names) and not _host_link_exists(
            f"cc{lab_id}m1"
        ):
            return lab_id
    raise LabError("could not find an unused lab ID")


def _info(plan: LabPlan) -> LabInfo:
    return LabInfo(
        lab_id=plan.lab_id,
        root=plan.root,
        routers=tuple(
            RouterInfo(
                name=r.name,
                namespace=plan.router_ns(r),
                directory=plan.router_dir(r),
                mgmt_address=r.mgmt_address,
                mgmt_interface=plan.mgmt_if(r),
            )
            for r in plan.routers
        ),
        pes=tuple(
            PEInfo(
                operator=t.operator,
                namespace=plan.pe_ns(t),
                directory=plan.pe_dir(t),
                asn=t.peer_asn,
                addresses=t.addresses,
            )
            for t in plan.tenants
        ),
        switch_namespace=plan.switch_ns,
        inventory=plan.root / "inventory",
        ssh_dir=plan.root / "ssh",
    )


def _ip(*args: str) -> None:
    run(["ip", *args])


def _veth(namespace: str, name: str, switch: str, port: str, bridge: str) -> None:
    """A veth ``name`` in ``namespace`` whose peer ``port`` is on ``bridge`` of the switch."""
    _ip("link", "add", name, "netns", namespace, "type", "veth", "peer", "name", port,
        "netns", switch)  # fmt: skip
    _ip("-n", switch, "link", "set", port, "master", bridge, "up")
    _ip("-n", namespace, "link", "set", name, "up")


def _build_links(plan: LabPlan) -> None:
    """Namespaces and links. A VLAN sub-interface ``<parent>.<vlan>`` is a veth of that name
    to the switch's bridge ``v<vlan>``: the same L2 segment per VLAN as 802.1Q sub-interfaces
    on a trunk, without needing the kernel's 8021q module (absent on some VM kernels)."""
    sw = plan.switch_ns
    _ip("netns", "add", sw)
    _ip("-n", sw, "link", "set", "lo", "up")
    vlans = [t.vlan for t in plan.tenants] + [t.ran_vlan for t in plan.tenants]
    for bridge in ("br-up", "br-ran", *(f"v{vlan}" for vlan in vlans)):
        _ip("-n", sw, "link", "add", bridge, "type", "bridge")
        _ip("-n", sw, "link", "set", bridge, "up")
    for router in plan.routers:
        ns, n = plan.router_ns(router), router.index
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        _veth(ns, plan.uplink, sw, f"r{n}u", "br-up")
        _veth(ns, plan.ran, sw, f"r{n}r", "br-ran")
        for tenant in plan.tenants:
            for parent, vlan in ((plan.uplink, tenant.vlan), (plan.ran, tenant.ran_vlan)):
                _veth(ns, f"{parent}.{vlan}", sw, f"r{n}v{vlan}", f"v{vlan}")
        mgmt = plan.mgmt_if(router)
        _ip("link", "add", mgmt, "type", "veth", "peer", "name", "mgmt0", "netns", ns)
        _ip("addr", "add", f"{router.mgmt_host}/30", "dev", mgmt)
        _ip("link", "set", mgmt, "up")
        _ip("-n", ns, "addr", "add", f"{router.mgmt_address}/30", "dev", "mgmt0")
        _ip("-n", ns, "link", "set", "mgmt0", "up")
    for tenant in plan.tenants:
        ns = plan.pe_ns(tenant)
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        _veth(ns, "eth0", sw, f"pe{tenant.index}", "br-up")
        _veth(ns, f"eth0.{tenant.vlan}", sw, f"pe{tenant.index}v{tenant.vlan}", f"v{tenant.vlan}")


def _write_frr_dir(directory: Path, config: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "frr.conf").write_text(config)
    (directory / "vtysh.conf").touch()
    for path in (directory, directory / "frr.conf", directory / "vtysh.conf"):
        shutil.chown(path, "frr", "frr")


def _check_traversable(root: Path) -> None:
    """FRR's daemons run as user frr: every directory above ``root`` must let others in."""
    for parent in (root, *root.parents):
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            raise ConfigError(
                f"FRR's daemons run as user frr and cannot enter {parent}: put the lab "
                "below directories others may enter (e.g. /tmp or /var/tmp)",
                source=str(root),
            )


def _start(plan: LabPlan, info: LabInfo) -> None:
    for tenant, pe in zip(plan.tenants, info.pes, strict=True):
        _write_frr_dir(pe.directory, pe_config(plan, tenant))
        for daemon in daemons.PE_DAEMONS:
            daemons.start_daemon(pe.namespace, f"pe-{pe.operator.lower()}", pe.directory, daemon)
    info.ssh_dir.mkdir(parents=True, exist_ok=True)
    key = make_client_key(info.ssh_dir, plan.lab_id)
    for router, ri in zip(plan.routers, info.routers, strict=True):
        _write_frr_dir(ri.directory, router_config(plan, router))
        for daemon in daemons.ROUTER_DAEMONS:
            daemons.start_daemon(ri.namespace, ri.name, ri.directory, daemon)
        make_host_key(info.ssh_dir, ri.name)
        sshd_config(info.ssh_dir, ri.name, ri.mgmt_address)
        daemons.start_sshd(ri.namespace, info.ssh_dir, ri.name, ri.mgmt_address)
    known = write_known_hosts(info.ssh_dir, {r.mgmt_address: r.name for r in info.routers})
    write_inventory(plan, key, known)


def lab_up(n: int = 4, root: Path = Path(".coopchain/lab"), *, site: Path | None = None) -> LabInfo:
    """Build (or find, if already up and healthy) a lab of ``n`` FRR routers in ``root``.

    Arguments:
        n: how many site routers (1..9).
        root: the lab's state directory (FRR directories, SSH keys, inventory, lab.json).
        site: the sample inventory to take the site from (default: :func:`default_site`).

    Returns:
        The lab; its inventory is ``info.inventory``.

    Raises:
        ConfigError: not root, FRR or sshd missing, or a bad ``n`` / ``root`` / site.
        LabError: building failed (whatever was built is removed again).
    """
    check_prerequisites()
    if not 1 <= n <= MAX_ROUTERS:
        raise ConfigError(f"--routers must be 1..{MAX_ROUTERS}, got {n}", field="routers")
    root = root.resolve()
    site_data = load_site(site or default_site())
    existing = load_info(root)
    if existing is not None:
        if len(existing.routers) == n and lab_status(root).healthy:
            return existing
        lab_down(root)
    _check_traversable(root)
    if len(str(root / "r9" / "staticd.vty")) > 100:
        raise ConfigError("path too long for FRR's vty sockets", source=str(root))
    lab_id = _new_id()
    plan = make_plan(root, lab_id, n, site_data, choose_mgmt_octet(lab_id, _used_mgmt_octets()))
    info = _info(plan)
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(root.stat().st_mode | 0o755)
    (root / STATE).write_text(info.model_dump_json(indent=2))
    try:
        _build_links(plan)
        _start(plan, info)
    except BaseException:
        lab_down(root)
        raise
    return info


def _stop_all(info: LabInfo) -> None:
    for router in info.routers:
        daemons.stop_sshd(info.ssh_dir, router.name)
        for daemon in reversed(daemons.ROUTER_DAEMONS):
            daemons.stop_daemon(router.directory, daemon)
    for pe in info.pes:
        for daemon in reversed(daemons.PE_DAEMONS):
            daemons.stop_daemon(pe.directory, daemon)


def lab_down(root: Path = Path(".coopchain/lab")) -> bool:
    """Remove the lab in ``root``: processes, namespaces, host links and the files it wrote.

    Returns:
        False when there was no lab in ``root``.

    Raises:
        ConfigError: not root.
    """
    info = load_info(root)
    if info is None:
        return False
    if os.geteuid() != 0:
        raise ConfigError("removing the FRRouting lab needs root")
    _stop_all(info)
    present = _netns_list()
    for namespace in info.namespaces:
        if namespace in present:
            for pid in namespace_pids(namespace):
                stop_pid(pid, "", timeout=3)
            run(["ip", "netns", "del", namespace], check=False)
    for router in info.routers:
        if _host_link_exists(router.mgmt_interface):
            run(["ip", "link", "del", router.mgmt_interface], check=False)
    for directory in (
        *(r.directory for r in info.routers),
        *(p.directory for p in info.pes),
        *(info.root / name for name in _MADE),
    ):
        shutil.rmtree(directory, ignore_errors=True)
    (info.root / STATE).unlink(missing_ok=True)
    if info.root.is_dir() and not any(info.root.iterdir()):
        info.root.rmdir()
    return True


def _established(directory: Path) -> int | None:
    import json

    try:
        summary = json.loads(daemons.vtysh(directory, "show bgp summary json", timeout=5))
    except (LabError, ValueError):
        return None
    peers = (summary.get("ipv4Unicast") or {}).get("peers") or {}
    return sum(1 for peer in peers.values() if peer.get("state") == "Established")


def lab_status(root: Path = Path(".coopchain/lab")) -> LabStatus:
    """How the lab in ``root`` is doing (no lab: ``info`` is None)."""
    info = load_info(root)
    if info is None:
        return LabStatus(info=None)
    present = _netns_list()
    routers = []
    for router in info.routers:
        running = {d: daemons.daemon_alive(router.directory, d) for d in daemons.ROUTER_DAEMONS}
        routers.append(
            RouterStatus(
                name=router.name,
                namespace=router.namespace in present,
                daemons=running,
                sshd=daemons.sshd_alive(info.ssh_dir, router.name),
                bgp_established=_established(router.directory) if running["bgpd"] else None,
            )
        )
    pes = {
        pe.operator: pe.namespace in present
        and all(daemons.daemon_alive(pe.directory, d) for d in daemons.PE_DAEMONS)
        for pe in info.pes
    }
    return LabStatus(info=info, routers=tuple(routers), pes=pes)


def set_sshd(info: LabInfo, name: str, running: bool) -> None:
    """Stop or (re)start router ``name``'s sshd: the router becomes unreachable or reachable.

    Raises:
        ConfigError: no such router.
        LabError: it did not start.
    """
    router = info.router(name)
    if running:
        daemons.start_sshd(router.namespace, info.ssh_dir, router.name, router.mgmt_address)
    else:
        daemons.stop_sshd(info.ssh_dir, router.name)


def set_daemon(info: LabInfo, name: str, daemon: str, running: bool) -> None:
    """Stop or (re)start one FRR daemon of router ``name`` (it re-reads its ``frr.conf``).

    Raises:
        ConfigError: no such router or daemon.
        LabError: it did not start.
    """
    router = info.router(name)
    if daemon not in daemons.ROUTER_DAEMONS:
        raise ConfigError(f"not one of {daemons.ROUTER_DAEMONS}: {daemon!r}", field="daemon")
    if running:
        daemons.start_daemon(router.namespace, router.name, router.directory, daemon)
    else:
        daemons.stop_daemon(router.directory, daemon)
