"""One operator's session: the chain client, the contract and the operator's signing key.

Sessions are shared process-wide: every Nornir host's connection and every thread of a run
uses the same :class:`CoopchainSession`, and every session on one chain URL shares one
:class:`ChainClient` (so one nonce manager per account, and one in-process chain for
``embedded://``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount

from nornir_coopchain.chain.accounts import PasswordSource, dev_accounts, load_keystore
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.models import MemberInfo
from nornir_coopchain.exceptions import ConfigError
from nornir_coopchain.settings import CoopchainSettings

__all__ = ["CoopchainSession", "chain_client", "close_all", "forget_all", "open_session"]

_lock = threading.Lock()
_clients: dict[tuple[str, int, float], ChainClient] = {}
_sessions: dict[CoopchainSettings, CoopchainSession] = {}


@dataclass
class CoopchainSession:
    """Everything one operator needs to talk to the contract."""

    settings: CoopchainSettings
    client: ChainClient
    coop: CoopChain
    account: LocalAccount
    _member: MemberInfo | None = field(default=None, repr=False)

    @property
    def member(self) -> MemberInfo:
        """This operator's member record (looked up once)."""
        if self._member is None:
            index = self.coop.member_index(self.account.address)
            self._member = self.coop.members()[index]
        return self._member

    @property
    def operator(self) -> str:
        """This operator's participant ID."""
        return self.member.operator_id


def chain_client(settings: CoopchainSettings, client: ChainClient | None = None) -> ChainClient:
    """The process-wide client for the settings' chain URL.

    Arguments:
        settings: the session settings.
        client: use (and share from now on) this already connected client for the URL, e.g.
            the one that holds an ``embedded://`` chain of this process.
    """
    key = (settings.chain_url, settings.confirmations, settings.receipt_timeout)
    with _lock:
        if client is not None:
            _clients[key] = client
            return client
        client = _clients.get(key)
        if client is None:
            client = ChainClient.connect(
                settings.chain_url,
                confirmations=settings.confirmations,
                receipt_timeout=settings.receipt_timeout,
            )
            _clients[key] = client
        return client


def _account(settings: CoopchainSettings, client: ChainClient) -> LocalAccount:
    if settings.keystore is not None and settings.dev_account is not None:
        raise ConfigError("give either keystore or dev_account, not both", field="keystore")
    if settings.keystore is not None:
        return load_keystore(settings.keystore, PasswordSource.parse(settings.password))
    if settings.dev_account is not None:
        return dev_accounts(client, settings.dev_account + 1)[settings.dev_account]
    raise ConfigError(
        "no signing key: set keystore (an encrypted keystore V3 file; create one with "
        "`coopchain init`) or, on a development chain only, dev_account",
        field="keystore",
    )


def open_session(
    settings: CoopchainSettings, client: ChainClient | None = None
) -> CoopchainSession:
    """The process-wide session for these settings, opened on first use.

    Arguments:
        settings: the session settings.
        client: an already connected client to use for the settings' chain URL.

    Raises:
        ConfigError: no contract address or no signing key in the settings.
        KeystoreError: the keystore cannot be decrypted.
        ChainConnectionError: the chain cannot be reached.
    """
    with _lock:
        session = _sessions.get(settings)
    if session is not None:
        return session
    if settings.contract is None:
        raise ConfigError(
            "no contract address: deploy one with `coopchain chain deploy` and set it",
            field="contract",
        )
    client = chain_client(settings, client)
    session = CoopchainSession(
        settings=settings,
        client=client,
        coop=CoopChain(client, settings.contract),
        account=_account(settings, client),
    )
    with _lock:
        return _sessions.setdefault(settings, session)


def close_all() -> None:
    """Close every shared client and forget every session (tests, end of a program)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
        _sessions.clear()


def forget_all() -> None:
    """Forget every shared client and session without closing them (their owners do)."""
    with _lock:
        _clients.clear()
        _sessions.clear()
