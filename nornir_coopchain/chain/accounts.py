"""Signing keys: encrypted keystore V3 files only, plus the labelled dev-chain exception.

A plain private key is refused wherever a key is expected (:func:`reject_plain_key`); make
a keystore with ``coopchain init`` or ``python -m nornir_coopchain.chain.accounts new PATH``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from eth_account import Account
from web3 import Web3

from nornir_coopchain.exceptions import ConfigError, CoopchainError, KeystoreError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from eth_typing import ChecksumAddress

    from nornir_coopchain.chain.client import ChainClient

__all__ = [
    "ANVIL_CHAIN_ID",
    "ANVIL_MNEMONIC",
    "ETH_TESTER_CHAIN_ID",
    "PasswordSource",
    "create_keystore",
    "dev_accounts",
    "load_keystore",
    "reject_plain_key",
]

ETH_TESTER_CHAIN_ID = 131277322940537
ANVIL_CHAIN_ID = 31337
#: anvil's default, publicly known mnemonic: DEV CHAINS ONLY, never a real network.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
HOW_TO = (
    "store it in an encrypted keystore instead: run `coopchain init` or "
    "`python -m nornir_coopchain.chain.accounts new PATH` and point the configuration at "
    "the keystore file (password from an environment variable, a file or a prompt)"
)
_PLAIN_KEY = re.compile(r"(0x)?[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class PasswordSource:
    """Where a keystore password comes from: exactly one of env, file or prompt.

    Build one with :meth:`from_env`, :meth:`from_file`, :meth:`interactive` or :meth:`parse`.
    """

    env: str | None = None
    file: Path | None = None
    prompt: bool = False

    def __post_init__(self) -> None:
        if sum((self.env is not None, self.file is not None, self.prompt)) != 1:
            raise ConfigError("a password source needs exactly one of env, file or prompt")

    @classmethod
    def from_env(cls, name: str) -> PasswordSource:
        """The password is the value of environment variable ``name``."""
        return cls(env=name)

    @classmethod
    def from_file(cls, path: str | Path) -> PasswordSource:
        """The password is the content of ``path`` (one trailing newline removed)."""
        return cls(file=Path(path))

    @classmethod
    def interactive(cls) -> PasswordSource:
        """The password is asked for on the terminal."""
        return cls(prompt=True)

    @classmethod
    def parse(cls, spec: str) -> PasswordSource:
        """Parse ``env:NAME``, ``file:PATH`` or ``prompt``.

        Raises:
            ConfigError: any other form.
        """
        kind, _, value = spec.partition(":")
        if kind == "env" and value:
            return cls.from_env(value)
        if kind == "file" and value:
            return cls.from_file(value)
        if spec == "prompt":
            return cls.interactive()
        raise ConfigError(f"password source must be env:NAME, file:PATH or prompt, not {spec!r}")

    def read(self, *, purpose: str = "keystore") -> str:
        """Return the password.

        Arguments:
            purpose: names what the password is for, in the prompt and in errors.

        Raises:
            KeystoreError: the variable is unset, the file unreadable, stdin is not a
                terminal, or the password is empty.
        """
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise KeystoreError(f"environment variable {self.env} is not set", source=purpose)
        elif self.file is not None:
            try:
                value = self.file.read_text().removesuffix("\n").removesuffix("\r")
            except OSError as exc:
                raise KeystoreError(
                    f"cannot read password file: {exc.strerror}", source=str(self.file)
                ) from exc
        else:
            if not sys.stdin.isatty():
                raise KeystoreError(
                    "a password prompt needs a terminal, but stdin is not one: give the "
                    "password through an environment variable or a file instead",
                    source=purpose,
                )
            value = getpass.getpass(f"Password for {purpose}: ")
        if not value:
            raise KeystoreError("empty password", source=purpose)
        return value


def _password(password: PasswordSource | str, purpose: str) -> str:
    return password.read(purpose=purpose) if isinstance(password, PasswordSource) else password


def reject_plain_key(value: object, *, source: str | None = None, field: str | None = None) -> None:
    """Refuse a plain private key where a keystore is expected.

    Arguments:
        value: the configured value (a path, normally).
        source: the file the value came from, for the message.
        field: the field name, for the message.

    Raises:
        KeystoreError: the value is a 64-hex-digit string (the key is never echoed).
    """
    if isinstance(value, str) and _PLAIN_KEY.fullmatch(value.strip()):
        raise KeystoreError(
            f"a plain private key is not accepted here; {HOW_TO}", source=source, field=field
        )


def load_keystore(path: str | Path, password: PasswordSource | str) -> LocalAccount:
    """Decrypt a keystore V3 file.

    Arguments:
        path: the keystore JSON file.
        password: where the password comes from (a plain ``str`` for programmatic use).

    Returns:
        The local signing account.

    Raises:
        KeystoreError: unreadable or invalid file, a plain key instead of a keystore, or
            a wrong password (the message names the file, never the password or key).
    """
    path = Path(path)
    reject_plain_key(str(path), field="keystore")
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeystoreError(f"cannot read keystore: {exc.strerror}", source=str(path)) from exc
    reject_plain_key(text, source=str(path))
    try:
        keyfile = json.loads(text)
    except ValueError as exc:
        raise KeystoreError("not a keystore V3 JSON file", source=str(path)) from exc
    if not isinstance(keyfile, dict) or "crypto" not in {key.lower() for key in keyfile}:
        raise KeystoreError("not a keystore V3 JSON file (no crypto section)", source=str(path))
    secret = _password(password, str(path))
    try:
        key = Account.decrypt(keyfile, secret)
    except ValueError as exc:
        wrong = "MAC mismatch" in str(exc)
        reason = "wrong password" if wrong else "cannot decrypt keystore"
        raise KeystoreError(reason, source=str(path)) from None
    account: LocalAccount = Account.from_key(key)
    return account


def create_keystore(
    path: str | Path,
    password: PasswordSource | str,
    *,
    private_key: str | bytes | None = None,
    iterations: int | None = None,
) -> ChecksumAddress:
    """Write a new keystore V3 file (mode 0600), never overwriting an existing file.

    Arguments:
        path: where to write; missing parent directories are created (mode 0700).
        password: the password (or where to read it from).
        private_key: import this key instead of generating a new one.
        iterations: KDF cost override (lower it only in tests).

    Returns:
        The account's address.

    Raises:
        KeystoreError: the file exists or cannot be written, or the key is invalid.
    """
    path = Path(path)
    secret = _password(password, str(path))
    try:
        account = Account.from_key(private_key) if private_key is not None else Account.create()
    except (ValueError, TypeError) as exc:
        raise KeystoreError("invalid private key", source=str(path)) from exc
    keyfile = Account.encrypt(account.key, secret, iterations=iterations)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeystoreError("file exists; refusing to overwrite it", source=str(path)) from exc
    except OSError as exc:
        raise KeystoreError(f"cannot create keystore: {exc.strerror}", source=str(path)) from exc
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        json.dump(keyfile, handle)
    return Web3.to_checksum_address(account.address)


@cache
def _anvil_key(index: int) -> bytes:
    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return bytes(account.key)


def dev_accounts(
    client: ChainClient, count: int, *, allow_dev_keys: bool = False
) -> list[LocalAccount]:
    """DEV CHAINS ONLY: the publicly known, pre-funded keys of eth-tester or anvil.

    Arguments:
        client: a client on the embedded chain or on anvil.
        count: how many accounts.
        allow_dev_keys: also allow chain IDs other than eth-tester's and anvil's default
            (e.g. anvil started with ``--chain-id``); never do this on a real network.

    Returns:
        ``count`` accounts: eth-tester's funded keys on the embedded chain, otherwise
        the keys of anvil's default mnemonic.

    Raises:
        KeystoreError: the chain is not a known dev chain, or there are not enough keys.
    """
    if client.chain_id not in (ETH_TESTER_CHAIN_ID, ANVIL_CHAIN_ID) and not allow_dev_keys:
        raise KeystoreError(
            f"refusing the publicly known dev keys on chain ID {client.chain_id}: they are "
            f"only for eth-tester ({ETH_TESTER_CHAIN_ID}) and anvil ({ANVIL_CHAIN_ID})"
        )
    if client.kind == "embedded":
        keys = client.w3.provider.ethereum_tester.backend.account_keys  # type: ignore[attr-defined]
        if count > len(keys):
            raise KeystoreError(f"the embedded chain has only {len(keys)} funded accounts")
        return [Account.from_key(key.to_bytes()) for key in keys[:count]]
    return [Account.from_key(_anvil_key(index)) for index in range(count)]


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nornir_coopchain.chain.accounts",
        description="Create an encrypted keystore V3 file (mode 0600).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="create a keystore with a new or imported key")
    new.add_argument("path", type=Path)
    new.add_argument("--password", default="prompt", help="env:NAME, file:PATH or prompt")
    new.add_argument("--import-key-env", metavar="NAME", help="import the key in env var NAME")
    args = parser.parse_args(argv)
    try:
        source = PasswordSource.parse(args.password)
        password = source.read(purpose=str(args.path))
        if source.prompt and getpass.getpass("Repeat password: ") != password:
            raise KeystoreError("the passwords differ", source=str(args.path))
        key = None
        if args.import_key_env:
            key = os.environ.get(args.import_key_env)
            if key is None:
                raise KeystoreError(f"environment variable {args.import_key_env} is not set")
        address = create_keystore(args.path, password, private_key=key)
    except CoopchainError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(address)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
