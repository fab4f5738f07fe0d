"""SSH material of a lab: one client key, one host key and sshd config per router,
and a known_hosts file so clients can check host keys strictly."""

from __future__ import annotations

from pathlib import Path

from nornir_coopchain.lab._run import run

__all__ = ["make_client_key", "make_host_key", "sshd_config", "write_known_hosts"]


def _keygen(path: Path, comment: str) -> None:
    if not path.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])


def make_client_key(ssh_dir: Path, lab_id: str) -> Path:
    """The lab's client key (``client``, ``client.pub``) and ``authorized_keys``."""
    key = ssh_dir / "client"
    _keygen(key, f"coopchain-lab-{lab_id}")
    (ssh_dir / "authorized_keys").write_text(key.with_suffix(".pub").read_text())
    return key


def make_host_key(ssh_dir: Path, name: str) -> Path:
    """Router ``name``'s host key."""
    key = ssh_dir / f"host_{name}"
    _keygen(key, f"host-{name}")
    return key


def sshd_config(ssh_dir: Path, name: str, address: str) -> Path:
    """Write router ``name``'s sshd config: key auth only, on its management address, and
    commands run without the host's shell start-up files."""
    path = ssh_dir / f"sshd_{name}.conf"
    path.write_text(
        "\n".join(
            [
                f"ListenAddress {address}",
                "Port 22",
                f"HostKey {ssh_dir / f'host_{name}'}",
                f"PidFile {ssh_dir / f'sshd_{name}.pid'}",
                f"AuthorizedKeysFile {ssh_dir / 'authorized_keys'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "UsePAM no",
                "UseDNS no",
                "PrintMotd no",
                "LogLevel ERROR",
                "MaxStartups 50:30:100",
                # The routers share this machine's accounts: without this, bash sources the
                # host's ~/.bashrc for every command run over SSH (Debian's bash does when
                # SSH_CLIENT is set and SHLVL < 2), which a real router's shell does not.
                "SetEnv SHLVL=1",
                "",
            ]
        )
    )
    return path


def write_known_hosts(ssh_dir: Path, hosts: dict[str, str]) -> Path:
    """``known_hosts`` for ``{address: router name}``."""
    lines = []
    for address, name in hosts.items():
        kind, key, *_ = (ssh_dir / f"host_{name}.pub").read_text().split()
        lines.append(f"{address} {kind} {key}")
    path = ssh_dir / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    return path
