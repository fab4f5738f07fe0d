"""What every command shares: consoles, exit codes, options, settings, sessions, progress.

Exit codes: 0 success; 1 the outcome was a failure (a device failed verification, an audit
failed); 2 bad input (a file, field, option or host is wrong); 3 refused (the change may not
be applied, or the contract reverted with one of its errors, or the change was recorded by
another run); 4 the chain could not be used; 130 interrupted (Ctrl-C).
Only :class:`~nornir_coopchain.exceptions.CoopchainError` is caught; anything else is a bug
and shows its traceback. With ``--json`` an error is also the one JSON object on stdout:
``{"error": {"type": ..., "message": ..., "exit_code": ...}}``.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
)

from nornir_coopchain.exceptions import ChangeRefused, ConfigError, ContractError, CoopchainError
from nornir_coopchain.gate.approved import check_proposal
from nornir_coopchain.model.times import iso

if TYPE_CHECKING:
    from nornir.core import Nornir
    from nornir.core.inventory import Host
    from nornir.core.task import AggregatedResult, MultiResult, Task

    from nornir_coopchain.chain.contract import CoopChain
    from nornir_coopchain.chain.models import ProposalInfo
    from nornir_coopchain.session import CoopchainSession
    from nornir_coopchain.settings import CoopchainSettings

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CHAIN",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_REFUSED",
    "ChainOption",
    "ContractOption",
    "DevAccountOption",
    "InventoryOption",
    "JsonOption",
    "KeystoreOption",
    "OperatorSession",
    "PasswordOption",
    "ProposalArgument",
    "TemplateOption",
    "TemplatesOption",
    "check_proposal",
    "emit",
    "err",
    "host_progress",
    "inventory_extras",
    "iso",
    "out",
    "outcome",
    "reader",
    "resolve_settings",
    "signer",
    "site",
    "span",
    "spinner",
    "tally",
    "tally_text",
    "tenant_patterns",
]

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3
EXIT_CHAIN = 4
EXIT_INTERRUPTED = 130

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print exactly one JSON object on stdout (no prompts).")
]
InventoryOption = Annotated[
    Path,
    typer.Option(
        "--inventory",
        "--config",
        "-c",
        help="Inventory directory (hosts.yaml, groups.yaml, defaults.yaml), or a Nornir config "
        "file (any inventory plugin; Nornir's own logging settings).",
    ),
]
TemplatesOption = Annotated[Path, typer.Option("--templates", help="Templates directory.")]
TemplateOption = Annotated[
    str | None,
    typer.Option(
        "--template",
        help="Template path under --templates, else under its <platform>/ folder (default: "
        "each host's `template` data); the proposal pins it for show --rerender and apply.",
    ),
]
ChainOption = Annotated[
    str | None, typer.Option("--chain", help="Chain URL (http(s)://… or ws(s)://…).")
]
ContractOption = Annotated[
    str | None, typer.Option("--contract", help="Address of the CoopChain contract.")
]
KeystoreOption = Annotated[
    Path | None, typer.Option("--keystore", help="Encrypted keystore V3 file of the sender.")
]
PasswordOption = Annotated[
    str | None,
    typer.Option("--password", help="Keystore password source: env:NAME, file:PATH or prompt."),
]
DevAccountOption = Annotated[
    int | None,
    typer.Option(
        "--dev-account",
        help="DEV CHAINS ONLY: sign with anvil's publicly known dev key N (never a real chain).",
    ),
]
ProposalArgument = Annotated[int, typer.Argument(help="Proposal number.", min=1)]

_EMBEDDED_HINT = (
    "embedded:// exists only inside one process; run `coopchain chain up` (anvil) and use "
    "--chain http://127.0.0.1:8545, or give a node URL"
)


def emit(payload: dict[str, Any]) -> None:
    """Print one JSON object on stdout."""
    typer.echo(json.dumps(payload, default=str))


def exit_code(error: CoopchainError) -> int:
    """The exit code for one of our errors."""
    if isinstance(error, ConfigError):
        return EXIT_BAD_INPUT
    if isinstance(error, (ChangeRefused, ContractError)):
        return EXIT_REFUSED
    return EXIT_CHAIN


@contextmanager
def outcome(as_json: bool = False) -> Iterator[None]:
    """Turn our errors into a red ``Type: message`` on stderr and an exit code by outcome.

    With ``as_json`` the error is also the one JSON object on stdout.
    """
    try:
        yield
    except CoopchainError as exc:
        code = exit_code(exc)
        name = type(exc).__name__
        err.print(f"[red]{name}[/red]: {escape(str(exc))}", soft_wrap=True)
        if as_json:
            emit({"error": {"type": name, "message": str(exc), "exit_code": code}})
        raise typer.Exit(code) from exc


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """While the block runs, Ctrl-C (SIGINT) and kill (SIGTERM) raise KeyboardInterrupt, so a
    long-running command can stop cleanly; the previous handlers come back after.

    Also when the process started with SIGINT ignored (a background job of a non-interactive
    shell, ``nohup``), which Python would otherwise leave ignored.
    """
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, _interrupt) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def spinner(text: str, enabled: bool) -> AbstractContextManager[object]:
    """A rich spinner on stderr while a block runs (nothing when disabled)."""
    return err.status(text) if enabled else nullcontext()


class _HostBar:
    """A Nornir processor advancing one progress bar per task run, one step per host."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.bars: dict[str, TaskID] = {}

    def task_started(self, task: Task) -> None:
        total = len(task.nornir.inventory.hosts)
        self.bars[task.name] = self.progress.add_task(task.name, total=total)

    def task_completed(self, task: Task, result: AggregatedResult) -> None:
        self.progress.update(self.bars[task.name], completed=len(result))

    def task_instance_started(self, task: Task, host: Host) -> None:
        """Nothing to show before a host ends."""

    def task_instance_completed(self, task: Task, host: Host, result: MultiResult) -> None:
        self.progress.advance(self.bars[task.name])

    def subtask_instance_started(self, task: Task, host: Host) -> None:
        """Subtasks are not shown."""

    def subtask_instance_completed(self, task: Task, host: Host, result: MultiResult) -> None:
        """Subtasks are not shown."""


@contextmanager
def host_progress(nr: Nornir, enabled: bool) -> Iterator[Nornir]:
    """``nr`` with a per-host progress bar on stderr for each run (unchanged when disabled)."""
    if not enabled:
        yield nr
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        yield nr.with_processors([_HostBar(progress)])


def _mapping(value: object, source: str, field: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("must be a mapping", source=source, field=field)
    return value


def inventory_extras(inventory: Path) -> tuple[dict[str, Any], str]:
    """The coopchain extras of ``<inventory>/defaults.yaml`` and the file's name.

    Raises:
        ConfigError: the file is missing, not YAML, or not shaped like a Nornir defaults file.
    """
    path = inventory / "defaults.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(
            f"cannot read: {exc.strerror} (run `coopchain init` or pass --inventory)",
            source=str(path),
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=str(path)) from exc
    node = _mapping(data, str(path), None)
    keys: list[str] = []
    for key in ("connection_options", "coopchain", "extras"):
        keys.append(key)
        node = _mapping(node.get(key), str(path), ".".join(keys))
    return dict(node), str(path)


def resolve_settings(
    inventory: Path,
    *,
    chain: str | None = None,
    contract: str | None = None,
    keystore: Path | None = None,
    password: str | None = None,
    dev_account: int | None = None,
) -> CoopchainSettings:
    """The inventory's coopchain settings with the command line's overrides applied.

    Raises:
        ConfigError: an invalid setting (naming the file or option and the field), a plain
            private key (KeystoreError), or ``embedded://``, which no other process can reach.
    """
    from nornir_coopchain.settings import CoopchainSettings

    if keystore is not None and dev_account is not None:
        raise ConfigError("give either --keystore or --dev-account, not both", field="--keystore")
    if inventory.is_file():  # a Nornir config file: the settings its hosts share
        from nornir_coopchain.cli._inventory import load_nornir
        from nornir_coopchain.plugins.connections.coopchain import coopchain_settings

        source = f"{inventory}: the hosts' coopchain extras"
        settings = coopchain_settings(load_nornir(inventory), source=source)
    else:
        from nornir_coopchain.cli._inventory import check_inventory_folder

        extras, source = inventory_extras(inventory)
        check_inventory_folder(inventory)  # bad input first, before the chain is asked
        settings = CoopchainSettings.from_extras(extras, source=f"{source}: coopchain extras")
    given: dict[str, Any] = {
        key: value
        for key, value in (
            ("chain_url", chain),
            ("contract", contract),
            ("keystore", keystore),
            ("password", password),
            ("dev_account", dev_account),
        )
        if value is not None
    }
    if keystore is not None:
        given["dev_account"] = None
    if dev_account is not None:
        given["keystore"] = None
    if given:
        merged = {**settings.model_dump(), **given}
        settings = CoopchainSettings.from_extras(merged, source="command-line options")
    if settings.chain_url.startswith("embedded:"):
        raise ConfigError(_EMBEDDED_HINT, field="chain_url")
    return settings


@contextmanager
def signer(settings: CoopchainSettings) -> Iterator[CoopchainSession]:
    """The operator's session (chain, contract, signing key), closed at the end."""
    from nornir_coopchain.session import close_all, open_session

    try:
        yield open_session(settings)
    finally:
        close_all()


class OperatorSession:
    """``with OperatorSession(inventory, chain=…, …) as session:``: the operator's session
    (chain, contract, signing key) from the inventory's settings and the command line's
    overrides (:func:`resolve_settings`), closed at the end (:func:`signer`).

    The settings are resolved when this is made, so bad input is named before a node is
    asked or a keystore opened; ``settings`` serves a command that checks them (or waits
    for the chain) before it opens the session. Inside and after the block they are also
    ``session.settings``.

    Raises:
        ConfigError: as :func:`resolve_settings` (when made).
    """

    def __init__(
        self,
        inventory: Path,
        *,
        chain: str | None = None,
        contract: str | None = None,
        keystore: Path | None = None,
        password: str | None = None,
        dev_account: int | None = None,
    ):
        self.settings = resolve_settings(
            inventory,
            chain=chain,
            contract=contract,
            keystore=keystore,
            password=password,
            dev_account=dev_account,
        )
        self._opened: AbstractContextManager[CoopchainSession] | None = None

    def __enter__(self) -> CoopchainSession:
        self._opened = signer(self.settings)
        return self._opened.__enter__()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        opened, self._opened = self._opened, None
        if opened is not None:
            opened.__exit__(kind, error, traceback)


@contextmanager
def reader(settings: CoopchainSettings) -> Iterator[CoopChain]:
    """The contract for reading only (no key needed), closed at the end."""
    from nornir_coopchain.chain.contract import CoopChain
    from nornir_coopchain.session import chain_client, close_all

    if settings.contract is None:
        raise ConfigError(
            "no contract address: deploy one with `coopchain chain deploy --write-inventory` "
            "or pass --contract",
            field="contract",
        )
    try:
        yield CoopChain(chain_client(settings), settings.contract)
    finally:
        close_all()


@contextmanager
def site(
    inventory: Path, settings: CoopchainSettings, hosts: Sequence[str] = ()
) -> Iterator[Nornir]:
    """A Nornir over the inventory whose coopchain connection uses ``settings``.

    Arguments:
        inventory: the directory of hosts.yaml, groups.yaml and defaults.yaml, or a Nornir
            config file (:func:`~nornir_coopchain.cli._inventory.load_nornir`).
        settings: the resolved coopchain settings.
        hosts: only these hosts (all when empty).

    Raises:
        ConfigError: an inventory file is missing or malformed (naming file and line), or a
            host is not in the inventory.
    """
    from nornir.core.inventory import ConnectionOptions

    from nornir_coopchain.cli._inventory import load_nornir
    from nornir_coopchain.settings import CONNECTION_NAME

    nr = load_nornir(inventory)
    options = ConnectionOptions(extras=settings.model_dump(mode="json"))
    nr.inventory.defaults.connection_options[CONNECTION_NAME] = options
    inventory_elements = [*nr.inventory.groups.values(), *nr.inventory.hosts.values()]
    for element in inventory_elements:  # the resolved settings, not a group's or host's own
        element.connection_options.pop(CONNECTION_NAME, None)
    unknown = sorted(set(hosts) - set(nr.inventory.hosts))
    if unknown:
        raise ConfigError(f"not in the inventory: {', '.join(unknown)}", source=str(inventory))
    if hosts:
        nr = nr.filter(filter_func=lambda host: host.name in hosts)
    try:
        yield nr
    finally:
        nr.close_connections(on_good=True, on_failed=True)


def tenant_patterns(inventory: Path) -> dict[str, dict[str, list[str]]]:
    """Each inventory host's ``coopchain.tenants_patterns``, for recomputing the tenants a
    proposal affects (an inventory folder or a Nornir config file, as :func:`site` reads).

    Raises:
        ConfigError: an inventory file is missing or malformed.
    """
    from nornir_coopchain.cli._inventory import load_nornir
    from nornir_coopchain.gate.declared import load_tenant_patterns

    return load_tenant_patterns(load_nornir(inventory).inventory.hosts.items())


def span(start: int, end: int) -> str:
    """A window in ISO 8601 UTC: ``2030-01-31T22:00:00+00:00 → 2030-01-31T23:00:00+00:00``."""
    return f"{iso(start)} → {iso(end)}"


def tally(info: ProposalInfo) -> dict[str, int]:
    """A proposal's vote units."""
    return {
        "approve": info.approve_units,
        "reject": info.reject_units,
        "abstain": info.abstain_units,
        "total": info.total_units,
    }


def tally_text(info: ProposalInfo) -> str:
    """``2 approve, 0 reject, 0 abstain of 2``."""
    units = tally(info)
    return (
        f"{units['approve']} approve, {units['reject']} reject, {units['abstain']} abstain "
        f"of {units['total']}"
    )
