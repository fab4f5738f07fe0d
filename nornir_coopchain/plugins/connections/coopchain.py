"""The ``coopchain`` Nornir connection plugin: gives each host the operator's shared session."""

from __future__ import annotations

from typing import Any

from nornir.core import Nornir
from nornir.core.configuration import Config

from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.session import CoopchainSession, open_session
from nornir_coopchain.settings import CONNECTION_NAME, CoopchainSettings

__all__ = ["CONNECTION_NAME", "CoopchainConnection", "coopchain_session", "coopchain_settings"]

_SOURCE = f"connection_options.{CONNECTION_NAME}.extras"


def coopchain_session(nr: Nornir) -> CoopchainSession:
    """The operator's session for a Nornir object: what its hosts' ``coopchain`` connection
    options describe (host, groups, then defaults, as Nornir resolves them).

    Raises:
        ConfigError: the hosts' coopchain options differ (one session per run), or are invalid.
        KeystoreError: a plain private key, or the keystore cannot be decrypted.
        ChainConnectionError: the chain cannot be reached.
    """
    return open_session(coopchain_settings(nr))


def coopchain_settings(nr: Nornir, *, source: str = _SOURCE) -> CoopchainSettings:
    """The coopchain settings the hosts of ``nr`` share (see :func:`coopchain_session`).

    Raises:
        ConfigError: the hosts' coopchain options differ, or are invalid (naming ``source``).
        KeystoreError: a value looks like a plain private key.
    """
    hosts = list(nr.inventory.hosts.values())
    if hosts:
        extras = [host.get_connection_parameters(CONNECTION_NAME).extras for host in hosts]
    else:
        options = nr.inventory.defaults.connection_options.get(CONNECTION_NAME)
        extras = [None if options is None else options.extras]
    found = {CoopchainSettings.from_extras(one, source=source) for one in extras}
    if len(found) > 1:
        raise ConfigError(
            "the hosts' coopchain settings differ: one session per run", source=source
        )
    return found.pop()


class CoopchainConnection:
    """Connection plugin ``coopchain``; ``self.connection`` is a :class:`CoopchainSession`.

    Configure it with ``connection_options.coopchain.extras`` (see
    :mod:`nornir_coopchain.settings`). All hosts with the same settings share one session,
    one chain client and one nonce manager.
    """

    connection: CoopchainSession

    def open(
        self,
        hostname: str | None,
        username: str | None,
        password: str | None,
        port: int | None,
        platform: str | None,
        extras: dict[str, Any] | None = None,
        configuration: Config | None = None,
    ) -> None:
        """Open (or reuse) the session the extras describe."""
        settings = CoopchainSettings.from_extras(extras, source=_SOURCE)
        self.connection = open_session(settings)

    def close(self) -> None:
        """Nothing to close per host: the session is shared by the whole process."""
