"""FRR daemons and sshd, one set per namespace, each found again by its pid file.

FRR daemons run as the ``frr`` user (FRR insists that the user it runs as is in the
``frrvty`` group), so a router's directory is owned by ``frr`` and every directory above it
must be enterable by others. They run with ``-P 0`` (no TCP vty) and their own
``--vty_socket`` and ``-z`` zserv socket in the router's directory, so routers never share
a socket.

Every process of a router (its daemons, its sshd and so every SSH session) runs in a UTS
namespace named after the router, as on a real box whose FRR runs under its own host name:
vtysh prints its own (the UTS) host name in ``show running-config`` beside the configured
one, so the two must agree.
"""

from __future__ import annotations

import socket
from pathlib import Path

from nornir_coopchain.lab._run import in_ns, pid_alive, read_pid, run, stop_pid, wait_for

__all__ = [
    "FRR_DIR",
    "PE_DAEMONS",
    "ROUTER_DAEMONS",
    "SSHD",
    "VTYSH",
    "daemon_alive",
    "sshd_alive",
    "start_daemon",
    "start_sshd",
    "stop_daemon",
    "stop_sshd",
    "vtysh",
]

FRR_DIR = Path("/usr/lib/frr")
VTYSH = Path("/usr/bin/vtysh")
SSHD = Path("/usr/sbin/sshd")
ROUTER_DAEMONS = ("zebra", "staticd", "bgpd")
PE_DAEMONS = ("zebra", "bgpd")


def _named(namespace: str, hostname: str, *args: str) -> list[str]:
    """``args`` run in ``namespace`` and in a new UTS namespace whose host name is set."""
    script = 'hostname "$0" && exec "$@"'
    return in_ns(namespace, "unshare", "--uts", "--", "sh", "-c", script, hostname, *args)


def _pidfile(directory: Path, daemon: str) -> Path:
    return directory / f"{daemon}.pid"


def daemon_alive(directory: Path, daemon: str) -> bool:
    """Tell whether ``daemon`` of the router in ``directory`` runs."""
    return pid_alive(read_pid(_pidfile(directory, daemon)), str(directory))


def start_daemon(
    namespace: str, hostname: str, directory: Path, daemon: str, *, profile: str | None = None
) -> None:
    """Start one FRR daemon in ``namespace`` reading ``directory/frr.conf``; wait for its vty.

    Arguments:
        profile: the defaults profile (``-F``), e.g. ``datacenter``; FRR's built-in one if None.

    Raises:
        LabError: it did not start or its vty socket did not appear within 10 s.
    """
    if daemon_alive(directory, daemon):
        return
    vty = directory / f"{daemon}.vty"
    vty.unlink(missing_ok=True)
    args = [
        str(FRR_DIR / daemon), "-d", "-P", "0",
        "-f", str(directory / "frr.conf"), "--vty_socket", str(directory),
        "-i", str(_pidfile(directory, daemon)), "-z", str(directory / "zserv.api"),
    ]  # fmt: skip
    if profile:
        args += ["-F", profile]
    run(_named(namespace, hostname, *args), timeout=20)
    wait_for(
        lambda: daemon_alive(directory, daemon) and vty.exists(),
        what=f"{daemon} in {namespace}",
        timeout=10,
    )


def stop_daemon(directory: Path, daemon: str) -> bool:
    """Stop one FRR daemon by its pid file. Returns True if one was running."""
    stopped = stop_pid(read_pid(_pidfile(directory, daemon)), str(directory))
    _pidfile(directory, daemon).unlink(missing_ok=True)
    return stopped


def vtysh(directory: Path, *commands: str, timeout: float = 20.0) -> str:
    """Run vtysh commands against the router in ``directory`` (from the host)."""
    args = [str(VTYSH), "--vty_socket", str(directory), "--config_dir", str(directory)]
    for command in commands:
        args += ["-c", command]
    return run(args, timeout=timeout).stdout


def _sshd_files(ssh_dir: Path, name: str) -> tuple[Path, Path]:
    return ssh_dir / f"sshd_{name}.conf", ssh_dir / f"sshd_{name}.pid"


def sshd_alive(ssh_dir: Path, name: str) -> bool:
    """Tell whether the sshd of router ``name`` runs."""
    config, pidfile = _sshd_files(ssh_dir, name)
    return pid_alive(read_pid(pidfile), str(config))


def _accepts(address: str, port: int = 22) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5) as conn:
            conn.settimeout(1.0)
            return conn.recv(4).startswith(b"SSH")
    except OSError:
        return False


def start_sshd(namespace: str, ssh_dir: Path, name: str, address: str) -> None:
    """Start router ``name``'s sshd (config already written) and wait until it greets.

    Raises:
        LabError: it did not start or did not answer on ``address`` within 10 s.
    """
    config, _ = _sshd_files(ssh_dir, name)
    if not sshd_alive(ssh_dir, name):
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        run(_named(namespace, name, str(SSHD), "-f", str(config)), timeout=20)
    wait_for(lambda: _accepts(address), what=f"sshd on {address}", timeout=10)


def stop_sshd(ssh_dir: Path, name: str) -> bool:
    """Stop router ``name``'s sshd listener by its pid file. Returns True if it was running.

    Sessions already open are children of the listener and end with their clients (or when
    the lab goes down, with every process left in the namespace).
    """
    config, pidfile = _sshd_files(ssh_dir, name)
    stopped = stop_pid(read_pid(pidfile), str(config))
    pidfile.unlink(missing_ok=True)
    return stopped
