"""The ``coopchain`` Nornir connection plugin: gives each host the operator's shared session."""

from __future__ import annotations

from typing import Any

from nornir.core.configuration import Config

from nornir_coopchain.session import CoopchainSession, open_session
from nornir_coopchain.settings import CONNECTION_NAME, CoopchainSettings

__all__ = ["CONNECTION_NAME", "CoopchainConnection"]


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
        settings = CoopchainSettings.from_extras(
            extras, source=f"connection_options.{CONNECTION_NAME}.extras"
        )
        self.connection = open_session(settings)

    def close(self) -> None:
        """Nothing to close per host: the session is shared by the whole process."""
