"""``FRRDriver``: a NAPALM driver for FRRouting over SSH (netmiko, vtysh, frr-reload.py)."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napalm.base import NetworkDriver
from napalm.base.exceptions import (
    CommandErrorException,
    CommitConfirmException,
    CommitError,
    ConnectionClosedException,
    ConnectionException,
    MergeConfigException,
    ReplaceConfigException,
)
from napalm.base.netmiko_helpers import netmiko_args
from netmiko import ConnectHandler

from napalm_frr.options import FRROptions
from napalm_frr.parse import (
    bgp_neighbors,
    clean_reload_diff,
    expand_address_families,
    interfaces,
    sanitize,
    version_of,
)
from napalm_frr.remote import Completed, Remote, quote
from nornir_coopchain.exceptions import StaleBaseError
from nornir_coopchain.model.compliance import ComplianceReport, check_compliance

__all__ = ["FRR_VENDOR", "FRRDriver", "RollbackIncomplete"]

FRR_VENDOR = "FRRouting"
_RETRIEVE = ("all", "running", "candidate", "startup")
_SEPARATOR = "=====napalm_frr:end-of-running-config====="
# Exit codes of the commit command; the apply commands never use them (frr-reload.py exits
# 0 or 1, vtysh with FRR's CMD_* codes, below 20).
_STALE, _TIMER_FAILED, _PENDING, _SAVE_FAILED = 96, 97, 98, 99


class RollbackIncomplete(CommitError):  # type: ignore[misc]  # napalm ships no py.typed
    """A restore left the device other than the saved config: its read-back does not
    comply with it. ``missing`` / ``extra`` are the residual lines (qualified)."""

    def __init__(self, message: str, missing: tuple[str, ...], extra: tuple[str, ...]) -> None:
        super().__init__(message)
        self.missing = missing
        self.extra = extra


def _residual(report: ComplianceReport) -> str:
    """The lines a restore left over, e.g. ``residual lines missing: a / extra: b``."""
    parts = [f"missing: {'; '.join(report.missing)}"] if report.missing else []
    parts += [f"extra: {'; '.join(report.extra)}"] if report.extra else []
    return f"residual lines {' / '.join(parts)}"


@dataclass(frozen=True)
class _Candidate:
    kind: str  # "replace" | "merge"
    text: str
    path: str


class FRRDriver(NetworkDriver):  # type: ignore[misc]  # napalm ships no py.typed
    """FRRouting (zebra/staticd/bgpd with the integrated ``frr.conf``) behind the NAPALM API.

    **Transport.** netmiko (``device_type="linux"``) opens the SSH session; every command
    runs in its own exec channel on it (:mod:`napalm_frr.remote`) and reaches FRR through
    ``vtysh``. The SSH user needs vtysh and frr-reload.py rights on the device (root, or a
    member of ``frrvty`` allowed to write ``confdir`` and ``device_dir``).

    **Candidate.** Kept on the device, in ``device_dir/candidate-<session>.conf``, and
    checked by vtysh (``vtysh -m -f``) when loaded: a line FRR does not know fails the load.
    It belongs to this session: ``discard_config()`` and ``close()`` delete it.

    * Replace (``load_replace_candidate``): the candidate is the whole config.
      ``compare_config()`` is ``frr-reload.py --test`` (FRR's "Lines To Delete / Lines To
      Add", no-op ``ip forwarding`` additions dropped); ``commit_config()`` is
      ``frr-reload.py --reload``, which applies exactly that delta and then writes
      ``confdir/frr.conf`` (startup = running).
    * Merge (``load_merge_candidate``): the lines are applied as typed, by ``vtysh -f`` at
      commit, then ``write memory`` (FRR's own merge semantics: ``no ...`` lines remove,
      others add). ``compare_config()`` is ``frr-reload.py --test`` of the running config
      followed by the merge lines, i.e. what the merge adds.

    **Commit, rollback.** A commit is one command on the device: it refuses while a
    commit-confirm is pending, saves the running config as ``device_dir/rollback.conf``,
    applies, and with ``revert_in`` starts the revert timer. A commit whose apply fails
    (non-zero exit) is undone at once by reloading that file, then raises ``CommitError``.
    ``rollback()`` reloads it (saving the current config in its place, so a second rollback
    re-applies).

    **Commit-confirm** (``revert_in``): a timer *on the device*, a detached ``setsid sh``
    (``sleep N``, then ``frr-reload.py --reload rollback.conf``) that writes its own pid to
    ``device_dir/pending.pid``; it survives the SSH session ending. ``confirm_commit()``
    and the timer race by renaming that pid file (atomic): the one that renames it first
    wins, so a confirm either stops the timer or fails with ``CommitConfirmException``
    because the revert has started. A device reboot clears a pending timer without
    reverting (``device_dir`` defaults to ``rundir``, a tmpfs).

    ``optional_args`` (paths on the device):

    * ``vty_socket``: the daemons' vty socket directory (``vtysh --vty_socket``), for
      devices running FRR with ``--vty_socket`` (e.g. one FRR per network namespace).
    * ``confdir`` (``/etc/frr``), ``rundir`` (``/var/run/frr``), ``bindir`` (``/usr/bin``,
      where vtysh is): passed to frr-reload.py; ``confdir`` also to vtysh (``--config_dir``).
    * ``frr_reload`` (``/usr/lib/frr/frr-reload.py``) and ``python`` (``python3``).
    * ``device_dir`` (``<rundir>/napalm_frr``): candidate, rollback and timer files.
    * ``command_timeout`` (120 s): the longest any one command may run.
    * netmiko's own keys (``port``, ``key_file``, ``use_keys``, ``ssh_strict``,
      ``alt_host_keys``, ``alt_key_file``, ``conn_timeout``, ...) go to netmiko.

    Raises:
        ValueError: when an ``optional_args`` value is invalid.
    """

    def __init__(
        self,
        hostname: str,
        username: str = "",
        password: str = "",
        timeout: int = 60,
        optional_args: dict[str, Any] | None = None,
    ) -> None:
        self.hostname = hostname
        self.username = username
        self.password = password
        self.timeout = timeout
        self.options = FRROptions.parse(optional_args)
        own = FRROptions.own_keys()
        self._netmiko = netmiko_args(
            {k: v for k, v in (optional_args or {}).items() if k not in own}
        )
        self._session = secrets.token_hex(4)
        self._connection: Any = None
        self._remote: Remote | None = None
        self._candidate: _Candidate | None = None

    # -- session -----------------------------------------------------------------------------

    def open(self) -> None:
        """Open the SSH session and check that vtysh reaches FRR.

        Raises:
            ConnectionException: SSH fails (refused, timeout, authentication, host key) or
                FRR does not answer.
        """
        try:
            self._connection = ConnectHandler(
                device_type="linux",
                host=self.hostname,
                username=self.username,
                password=self.password or None,
                timeout=self.timeout,
                **self._netmiko,
            )
        except Exception as e:  # netmiko raises many unrelated types; all mean "no session"
            raise ConnectionException(
                f"{self.hostname}: cannot open SSH: {type(e).__name__}: {e}"
            ) from e
        self._remote = Remote(self._connection, self.hostname)
        directory = quote(self.options.device_dir)
        check = self._run(
            f"mkdir -p {directory} && chmod 700 {directory} && {self._vtysh_cmd('show version')}"
        )
        if check.returncode != 0:
            self.close()
            raise ConnectionException(
                f"{self.hostname}: FRR does not answer through vtysh: {check.output[-300:]}"
            )

    def close(self) -> None:
        """Delete this session's candidate on the device and end the SSH session."""
        if self._remote is not None and self._remote.alive():
            self._drop_candidate()
        if self._connection is not None:
            self._connection.disconnect()
        self._connection = self._remote = self._candidate = None

    def is_alive(self) -> dict[str, bool]:
        """Returns ``{"is_alive": True}`` while the SSH session is up."""
        return {"is_alive": self._remote is not None and self._remote.alive()}

    # -- candidate ---------------------------------------------------------------------------

    def load_replace_candidate(
        self, filename: str | None = None, config: str | None = None
    ) -> None:
        """Make the candidate the given full config (``filename`` wins over ``config``).

        Raises:
            ReplaceConfigException: neither given, the file is unreadable, or vtysh rejects
                a line.
        """
        self._load("replace", filename, config, ReplaceConfigException)

    def load_merge_candidate(self, filename: str | None = None, config: str | None = None) -> None:
        """Make the candidate the given lines, to be merged into the running config.

        Raises:
            MergeConfigException: neither given, the file is unreadable, or vtysh rejects a
                line.
        """
        self._load("merge", filename, config, MergeConfigException)

    def compare_config(self) -> str:
        """Returns FRR's diff running → candidate (``frr-reload.py --test``), ``""`` if none.

        Raises:
            ReplaceConfigException / MergeConfigException: frr-reload.py cannot diff.
        """
        candidate = self._candidate
        if candidate is None:
            return ""
        error = ReplaceConfigException if candidate.kind == "replace" else MergeConfigException
        show = self._vtysh_cmd("show running-config no-header")
        target, merge = candidate.path, ""
        if candidate.kind == "merge":  # the running config followed by the merge lines
            target = self._file("merged")
            merge = f"{{ {show}; cat {quote(candidate.path)}; }} > {quote(target)} && "
        done = self._run(
            f"umask 077 && {show} && echo {_SEPARATOR} && {merge}{self._reload_cmd('test', target)}"
        )
        running, separated, diff = done.stdout.partition(f"{_SEPARATOR}\n")
        if "Traceback" in done.stderr:  # e.g. 8.4.4's UnboundLocalError rm_match
            raise error(
                f"{self.hostname}: frr-reload.py crashed on this candidate, refusing it: "
                f"{done.stderr.strip().splitlines()[-1]}"
            )
        if done.returncode != 0 or not separated or "failed to process" in done.stderr:
            raise error(f"{self.hostname}: frr-reload.py --test failed: {done.output[-500:]}")
        return clean_reload_diff(diff, running)

    def discard_config(self) -> None:
        """Drop the candidate (and its file on the device)."""
        self._check_open()
        self._drop_candidate()

    # -- commit ------------------------------------------------------------------------------

    def commit_config(
        self,
        message: str = "",
        revert_in: int | None = None,
        *,
        expected_running: str | None = None,
    ) -> None:
        """Apply the candidate; keep the previous running config for ``rollback()``.

        One SSH command when it succeeds: the base check (with ``expected_running``), the
        pending check, the save, the apply and, with ``revert_in``, the start of the revert
        timer. A failed apply costs a second one (the restore).

        Arguments:
            message: accepted, not kept (FRR has no commit log).
            revert_in: seconds; the device reverts by itself unless ``confirm_commit()``
                comes first.
            expected_running: commit only if ``show running-config no-header`` still prints
                exactly this text (``get_config``'s ``running``): compared on the device (SHA-256)
                in the same command, before frr-reload.py runs.

        Raises:
            StaleBaseError: the running config is not ``expected_running``; nothing changed
                (the candidate stays loaded).
            CommitError: no candidate, a commit-confirm pending (the candidate stays loaded),
                the apply failed (the previous config was restored; the message says whether
                that worked) or the timer did not start (the change was rolled back).
            ValueError: ``revert_in`` is not positive.
        """
        if revert_in is not None and revert_in <= 0:
            raise ValueError(f"revert_in must be positive, got {revert_in!r}")
        candidate = self._candidate
        if candidate is None:
            raise CommitError(f"{self.hostname}: no candidate loaded")
        if candidate.kind == "replace":
            apply = self._reload_cmd("reload", candidate.path)
        else:
            write = self._vtysh_cmd("write memory")
            apply = f"{self._vtysh_cmd()} -f {quote(candidate.path)} && {write}"
        timer = "" if revert_in is None else f"; {self._timer_cmd(int(revert_in))}"
        base = "" if expected_running is None else self._base_test(expected_running)
        done = self._run(
            f"{base}{self._pending_test()} && exit {_PENDING}; "
            f"{self._save_cmd(self._rollback_file)} || exit {_SAVE_FAILED}; {apply}; rc=$?; "
            f"rm -f {self._candidate_files()}; [ $rc -eq 0 ] || exit $rc"
            f"{timer}"
        )
        if done.returncode == _STALE:
            raise StaleBaseError(
                "the running config changed since it was read: nothing committed",
                host=self.hostname,
            )
        if done.returncode == _PENDING:
            raise CommitError(f"{self.hostname}: a commit-confirm is pending; confirm first")
        self._candidate = None
        if done.returncode == _SAVE_FAILED:
            raise CommitError(f"{self.hostname}: cannot save the running config: {done.output}")
        if done.returncode == _TIMER_FAILED:
            self.rollback()
            raise CommitError(
                f"{self.hostname}: cannot start the commit-confirm timer (change rolled back): "
                f"{done.output[-500:]}"
            )
        if done.returncode != 0:
            left = self._restore(self._rollback_file)
            state = "restored" if left.compliant else f"NOT restored ({_residual(left)})"
            raise CommitError(
                f"{self.hostname}: applying the candidate failed (exit {done.returncode}); "
                f"previous config {state}: {done.output[-500:]}"
            )

    def has_pending_commit(self) -> bool:
        """Returns True while a commit-confirm timer runs on the device, or its revert does
        (the commit is not settled until the revert is done)."""
        done = self._run(f"{self._pending_test()} && echo pending")
        return done.stdout.strip() == "pending"

    def confirm_commit(self) -> None:
        """Keep the pending commit: stop the device's revert timer.

        Raises:
            CommitConfirmException: no timer pending (none started, or it already fired; a
                revert in progress is waited for first, so the device then runs the
                reverted config).
        """
        if not self._cancel_timer():
            raise CommitConfirmException(f"{self.hostname}: no pending commit to confirm")

    def rollback(self) -> None:
        """Undo the last change: reload ``rollback.conf`` (stopping a pending timer first).

        Restored means proven by the read-back, not by frr-reload.py's exit status (which is
        1 for lines it cannot remove, e.g. on interfaces the device lacks, even when the
        device ends up as saved): the running config must comply with the saved one
        (:func:`~nornir_coopchain.model.compliance.check_compliance`). Once restored, the
        config replaced takes the saved one's place, so rolling back twice re-applies the
        change; with nothing saved this does nothing.

        Raises:
            RollbackIncomplete: the read-back does not comply with the saved config; the
                error names the residual lines (the saved file is kept).
        """
        self._check_open()
        self._cancel_timer()
        saved, current = quote(self._rollback_file), self._file("rollback-next")
        if self._run(f"test -s {saved}").returncode != 0:
            return
        kept = self._run(f"{self._save_cmd(current)}")
        if kept.returncode != 0:
            raise CommitError(f"{self.hostname}: cannot save the running config: {kept.output}")
        left = self._restore(self._rollback_file)
        if not left.compliant:
            self._run(f"rm -f {quote(current)}")
            raise RollbackIncomplete(
                f"{self.hostname}: rollback incomplete: {_residual(left)}", left.missing, left.extra
            )
        self._run(f"mv {quote(current)} {saved}")

    def _restore(self, path: str) -> ComplianceReport:
        """Reload ``path`` and check the read-back against it (whatever frr-reload.py's exit
        status: the read-back is the proof)."""
        wanted = self._run(f"cat {quote(path)}").stdout
        self._run(self._reload_cmd("reload", path))
        return check_compliance(wanted, self._vtysh("show running-config no-header"), "frr")

    # -- getters -----------------------------------------------------------------------------

    def get_config(
        self,
        retrieve: str = "all",
        full: bool = False,
        sanitized: bool = False,
        format: str = "text",
    ) -> dict[str, str]:
        """Returns ``{"running", "candidate", "startup"}``; unrequested ones are ``""``.

        ``running`` is ``show running-config no-header`` (text that loads back, without the
        ``Building configuration...`` banner), ``startup`` is ``confdir/frr.conf`` and
        ``candidate`` the loaded text. ``full`` is ignored (FRR cannot show its defaults).

        Raises:
            ValueError: ``retrieve`` is unknown.
            NotImplementedError: ``format`` is not "text".
            CommandErrorException: vtysh failed, or the running config does not end with
                its ``end`` line (a partial read is never returned).
        """
        if retrieve not in _RETRIEVE:
            raise ValueError(f"retrieve must be one of {_RETRIEVE}, got {retrieve!r}")
        if format != "text":
            raise NotImplementedError(f"frr: format {format!r} not supported")
        config = {"running": "", "candidate": "", "startup": ""}
        if retrieve in ("all", "running"):  # loadable: no "Building configuration..." banner
            config["running"] = self._vtysh("show running-config no-header")
            if config["running"].rstrip().rsplit("\n", 1)[-1] != "end":
                raise CommandErrorException(
                    f"{self.hostname}: show running-config did not end with `end` (a "
                    f"partial read): ...{config['running'][-80:]!r}"
                )
        if retrieve in ("all", "startup"):
            config["startup"] = self._run(f"cat {quote(self.options.confdir)}/frr.conf").stdout
        if retrieve in ("all", "candidate") and self._candidate is not None:
            config["candidate"] = self._candidate.text
        return {k: sanitize(v) for k, v in config.items()} if sanitized else config

    def get_facts(self) -> dict[str, Any]:
        """Returns NAPALM facts: FRR's version, the host name vtysh reports, the device's
        uptime and machine ID (as serial number) and zebra's interfaces."""
        version, name, os_name = version_of(self._vtysh("show version"))
        host = self._run("cat /proc/uptime /etc/machine-id").stdout.split()
        interface_list = list(self._json("show interface json"))
        return {
            "uptime": float(host[0]) if host else -1.0,
            "vendor": FRR_VENDOR,
            "model": f"FRRouting on {os_name}" if os_name else "FRRouting",
            "os_version": version,
            "serial_number": host[2] if len(host) > 2 else "",
            "hostname": name,
            "fqdn": name,
            "interface_list": interface_list,
        }

    def get_interfaces(self) -> dict[str, dict[str, Any]]:
        """Returns NAPALM interfaces from ``show interface json`` (``last_flapped`` -1)."""
        return interfaces(self._json("show interface json"))

    def get_bgp_neighbors(self) -> dict[str, Any]:
        """Returns NAPALM BGP neighbors per VRF (``global`` = default) from
        ``show bgp vrf all neighbors json`` and ``... summary json``."""
        return bgp_neighbors(
            self._json("show bgp vrf all neighbors json"),
            self._json("show bgp vrf all summary json"),
        )

    # -- helpers -----------------------------------------------------------------------------

    @property
    def _rollback_file(self) -> str:
        return f"{self.options.device_dir}/rollback.conf"

    @property
    def _pid_file(self) -> str:
        return f"{self.options.device_dir}/pending.pid"

    @property
    def _firing_file(self) -> str:
        """The timer's pid file once it fired, while its revert runs."""
        return f"{self.options.device_dir}/pending.firing"

    def _file(self, kind: str) -> str:
        return f"{self.options.device_dir}/{kind}-{self._session}.conf"

    def _check_open(self) -> Remote:
        if self._remote is None:
            raise ConnectionClosedException(f"{self.hostname}: session is not open")
        return self._remote

    def _run(self, command: str, stdin: str | None = None) -> Completed:
        return self._check_open().run(command, stdin=stdin, timeout=self.options.command_timeout)

    def _vtysh_cmd(self, *commands: str) -> str:
        words = [f"{self.options.bindir}/vtysh", "--config_dir", self.options.confdir]
        if self.options.vty_socket:
            words += ["--vty_socket", self.options.vty_socket]
        for command in commands:
            words += ["-c", command]
        return " ".join(quote(w) for w in words)

    def _vtysh(self, *commands: str) -> str:
        done = self._run(self._vtysh_cmd(*commands))
        if done.returncode != 0:
            raise CommandErrorException(
                f"{self.hostname}: vtysh {' / '.join(commands)}: {done.output[-300:]}"
            )
        return done.stdout

    def _json(self, command: str) -> dict[str, Any]:
        try:
            data = json.loads(self._vtysh(command) or "{}")
        except json.JSONDecodeError as e:
            raise CommandErrorException(f"{self.hostname}: {command}: not JSON: {e}") from e
        return data if isinstance(data, dict) else {}

    def _reload_cmd(self, mode: str, path: str) -> str:
        o = self.options
        words = [o.python, o.frr_reload, f"--{mode}", "--stdout", "--bindir", o.bindir,
                 "--confdir", o.confdir, "--rundir", o.rundir]  # fmt: skip
        if o.vty_socket:
            words += ["--vty_socket", o.vty_socket]
        return " ".join(quote(w) for w in [*words, path])

    def _base_test(self, expected: str) -> str:
        """The commands that exit _STALE unless the running config is ``expected``."""
        digest = hashlib.sha256(expected.encode()).hexdigest()
        seen = quote(self._file("base"))
        show = self._vtysh_cmd("show running-config no-header")
        return (
            f"(umask 077 && {show} > {seen}) || exit {_STALE}; "
            f"echo {digest}' '{seen} | sha256sum -c --status; rc=$?; rm -f {seen}; "
            f"[ $rc -eq 0 ] || exit {_STALE}; "
        )

    def _save_cmd(self, path: str) -> str:
        """The command that saves the running config as ``path`` (atomically)."""
        tmp = quote(f"{path}.tmp")
        show = self._vtysh_cmd("show running-config no-header")
        return f"(umask 077 && {show} > {tmp} && mv {tmp} {quote(path)})"

    def _load(
        self, kind: str, filename: str | None, config: str | None, error: type[Exception]
    ) -> None:
        if filename is not None:
            try:
                text = Path(filename).read_text()
            except OSError as e:
                raise error(f"frr: cannot read {filename}: {e}") from e
        elif config is not None:
            text = config
        else:
            raise error("frr: give filename or config")
        self._check_open()
        self._candidate = None
        path = quote(self._file("candidate"))
        checked = self._run(
            f"umask 077 && cat > {path} && {self._vtysh_cmd()} -m -f {path} > /dev/null "
            f"|| {{ rc=$?; rm -f {path}; exit $rc; }}",
            stdin=expand_address_families(text if text.endswith("\n") else f"{text}\n"),
        )
        if checked.returncode != 0:
            raise error(f"{self.hostname}: FRR rejects the candidate: {checked.output[-500:]}")
        path = self._file("candidate")
        self._candidate = _Candidate(kind, text, path)

    def _candidate_files(self) -> str:
        return " ".join(quote(self._file(kind)) for kind in ("candidate", "merged"))

    def _drop_candidate(self) -> None:
        if self._candidate is not None:
            self._candidate = None
            self._run(f"rm -f {self._candidate_files()}")

    def _timer_cmd(self, seconds: int) -> str:
        """The command that starts the revert timer; it exits _TIMER_FAILED unless it runs.

        The detached timer writes its own pid to ``pending.pid``, prints it and closes its
        stdout and stderr, so ``$(...)`` returns as soon as the timer has started (no fixed
        wait) and an empty pid means it never ran (its error, if any, is on stderr); the pid
        must then name the timer's process.
        """
        pid = quote(self._pid_file)
        firing = quote(self._firing_file)
        log = quote(f"{self.options.device_dir}/revert.log")
        revert = self._reload_cmd("reload", self._rollback_file)
        script = (
            f"echo $$ > {pid} || exit; echo $$; exec > /dev/null 2>&1; "
            f"sleep {seconds}; mv {pid} {firing} 2>/dev/null || exit 0; "
            f"{revert} > {log} 2>&1; rm -f {firing}"
        )
        return (
            f"p=$(setsid sh -c {quote(script)} < /dev/null &); "
            f'[ -n "$p" ] && {self._is_timer("$p")} || exit {_TIMER_FAILED}'
        )

    def _is_timer(self, pid: str) -> str:
        """A shell test: process ``pid`` (a shell word such as ``$p``) is the revert timer."""
        return (
            f"tr '\\0' ' ' < /proc/{pid}/cmdline 2>/dev/null | grep -qF -- {quote(self._pid_file)}"
        )

    def _pending_test(self) -> str:
        """A shell test: the revert timer runs, waiting (``pending.pid``) or reverting
        (``pending.firing``)."""
        waiting, reverting = self._timer_in(self._pid_file), self._timer_in(self._firing_file)
        return f"{{ {waiting}; }} || {{ {reverting}; }}"

    def _timer_in(self, path: str) -> str:
        """A shell test: the process whose pid file ``path`` is (it sets ``p``) is the timer."""
        return f'p=$(cat {quote(path)} 2>/dev/null) && [ -n "$p" ] && {self._is_timer("$p")}'

    def _cancel_timer(self) -> bool:
        """Stop the pending revert timer (True); when it has already fired, wait (at most
        ~50 s) until its revert is done, so that the config read next is the reverted one."""
        pid = quote(self._pid_file)
        taken = quote(f"{self.options.device_dir}/pending.cancel")
        reverting = self._timer_in(self._firing_file)
        done = self._run(
            f"if mv {pid} {taken} 2>/dev/null; then p=$(cat {taken}); "
            f"if {self._is_timer('$p')}; then "
            f"kill -TERM -- -$p && echo cancelled; fi; rm -f {taken}; "
            f"else n=0; while [ $n -lt 1000 ] && {reverting}; do sleep 0.05; n=$((n+1)); done; fi"
        )
        return done.stdout.strip() == "cancelled"
