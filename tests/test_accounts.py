"""Keystores, password sources, plain-key refusal and the dev-chain key exception."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from nornir_coopchain.chain.accounts import (
    ANVIL_CHAIN_ID,
    PasswordSource,
    _main,
    create_keystore,
    dev_accounts,
    load_keystore,
    reject_plain_key,
)
from nornir_coopchain.exceptions import ConfigError, KeystoreError

if TYPE_CHECKING:
    from nornir_coopchain.chain.client import ChainClient

KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
FAST = 2**4  # scrypt cost for tests only; the default is 2**18
ANVIL_FIRST = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def _keystore(tmp_path: Path, password: str = "correct horse") -> tuple[Path, str]:
    path = tmp_path / "keys" / "operator.json"
    address = create_keystore(path, password, private_key=KEY, iterations=FAST)
    return path, address


def test_round_trip_and_permissions(tmp_path: Path) -> None:
    path, address = _keystore(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["version"] == 3
    account = load_keystore(path, "correct horse")
    assert account.address == address
    assert account.key.hex() == KEY[2:]


def test_never_overwrites(tmp_path: Path) -> None:
    path, _ = _keystore(tmp_path)
    before = path.read_text()
    with pytest.raises(KeystoreError, match="refusing to overwrite"):
        create_keystore(path, "other", iterations=FAST)
    assert path.read_text() == before


def test_wrong_password_names_the_file_only(tmp_path: Path) -> None:
    path, _ = _keystore(tmp_path)
    with pytest.raises(KeystoreError) as caught:
        load_keystore(path, "wrong guess")
    message = str(caught.value)
    assert str(path) in message
    assert "wrong password" in message
    assert "wrong guess" not in message
    assert KEY[2:] not in message
    assert caught.value.__cause__ is None


@pytest.mark.parametrize("value", [KEY, KEY[2:], KEY.upper().replace("0X", "0x"), f" {KEY}\n"])
def test_plain_key_is_refused_with_how_to(value: str) -> None:
    with pytest.raises(KeystoreError) as caught:
        reject_plain_key(value, source="inventory/hosts.yaml", field="r1.data.keystore")
    message = str(caught.value)
    assert message.startswith("inventory/hosts.yaml: r1.data.keystore: ")
    assert "coopchain init" in message
    assert "python -m nornir_coopchain.chain.accounts new" in message
    assert KEY[2:] not in message.lower()


def test_plain_key_file_or_path_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "key.txt"
    key_file.write_text(KEY + "\n")
    with pytest.raises(KeystoreError, match="plain private key"):
        load_keystore(key_file, "x")
    with pytest.raises(KeystoreError, match="plain private key"):
        load_keystore(KEY, "x")
    reject_plain_key("keys/operator.json")  # a path is fine
    reject_plain_key("0x1234")


def test_password_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, address = _keystore(tmp_path, "from somewhere")
    monkeypatch.setenv("COOP_PW", "from somewhere")
    assert load_keystore(path, PasswordSource.from_env("COOP_PW")).address == address
    password_file = tmp_path / "pw"
    password_file.write_text("from somewhere\n")
    assert load_keystore(path, PasswordSource.parse(f"file:{password_file}")).address == address
    monkeypatch.delenv("COOP_PW")
    with pytest.raises(KeystoreError, match="COOP_PW is not set"):
        load_keystore(path, PasswordSource.parse("env:COOP_PW"))
    with pytest.raises(KeystoreError, match="cannot read password file"):
        load_keystore(path, PasswordSource.from_file(tmp_path / "missing"))


def test_prompt_refused_without_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = _keystore(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(KeystoreError, match="stdin is not one"):
        load_keystore(path, PasswordSource.interactive())


def test_password_source_forms() -> None:
    assert PasswordSource.parse("prompt").prompt
    with pytest.raises(ConfigError):
        PasswordSource.parse("plain-password")
    with pytest.raises(ConfigError):
        PasswordSource(env="A", prompt=True)


def test_not_a_keystore(tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": 1}')
    with pytest.raises(KeystoreError, match="not a keystore"):
        load_keystore(junk, "x")
    with pytest.raises(KeystoreError, match="cannot read keystore"):
        load_keystore(tmp_path / "absent.json", "x")


def test_module_entry_point_creates_a_keystore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "new.json"
    monkeypatch.setenv("NEW_PW", "pw for new")
    monkeypatch.setenv("IMPORT_KEY", KEY)
    assert (
        _main(["new", str(target), "--password", "env:NEW_PW", "--import-key-env", "IMPORT_KEY"])
        == 0
    )
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert _main(["new", str(target), "--password", "env:NEW_PW"]) == 1  # exists


def test_python_dash_m_runs(tmp_path: Path) -> None:
    target = tmp_path / "cli.json"
    env = {**os.environ, "NEW_PW": "pw"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nornir_coopchain.chain.accounts",
            "new",
            str(target),
            "--password",
            "env:NEW_PW",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("0x")
    assert json.loads(target.read_text())["address"].lower() == result.stdout.strip()[2:].lower()


def test_dev_accounts_on_dev_chains(chain: ChainClient) -> None:
    accounts = dev_accounts(chain, 3)
    assert len({account.address for account in accounts}) == 3
    assert all(chain.w3.eth.get_balance(account.address) > 10**18 for account in accounts)
    if chain.chain_id == ANVIL_CHAIN_ID:
        assert accounts[0].address == ANVIL_FIRST


class _FakeClient:
    chain_id = 1
    kind = "rpc"


def test_dev_accounts_refused_elsewhere() -> None:
    with pytest.raises(KeystoreError, match="refusing the publicly known dev keys on chain ID 1"):
        dev_accounts(_FakeClient(), 1)  # type: ignore[arg-type]
    assert dev_accounts(_FakeClient(), 1, allow_dev_keys=True)[0].address == ANVIL_FIRST  # type: ignore[arg-type]
