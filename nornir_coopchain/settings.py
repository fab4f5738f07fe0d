"""Settings of one operator's coopchain session, read the Nornir way.

They live in the inventory (``defaults.yaml`` or a group), under
``connection_options.coopchain.extras``::

    connection_options:
      coopchain:
        extras:
          chain_url: "http://127.0.0.1:8545"   # embedded:// (default), http(s)://, ws(s)://
          contract: "0x…"
          keystore: keys/operator-a.json        # encrypted keystore V3 file
          password: env:COOPCHAIN_PASSWORD      # env:NAME, file:PATH or prompt
          operator: OPERATOR-A
          resource_set: TOWER-017
          state_dir: .coopchain

``confirmations`` (default 0) is how many blocks must lie on top of a block before what it
holds counts: a receipt (the record, a vote), the verdict a push rests on, a proposal the
voter sees. 0 suits chains with instant finality (QBFT, Besu's consortium default, and the
embedded chain or anvil); set it above the deepest reorg a chain without instant finality
can make (e.g. 12 on a proof-of-work or clique network), and give such a chain a block time.

A plain private key anywhere in them is refused. ``dev_account`` (an index into the
embedded chain's or anvil's publicly known keys) is for development chains only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nornir_coopchain.chain.accounts import reject_plain_key
from nornir_coopchain.chain.models import Address
from nornir_coopchain.exceptions import ConfigError

__all__ = ["CONNECTION_NAME", "CoopchainSettings"]

CONNECTION_NAME = "coopchain"


class CoopchainSettings(BaseModel):
    """Where the chain is, who we are on it, and where the local journal lives."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain_url: str = "embedded://"
    contract: Address | None = None
    keystore: Path | None = None
    password: str = "prompt"
    dev_account: int | None = Field(default=None, ge=0, le=9)
    operator: str | None = None
    resource_set: str | None = None
    state_dir: Path = Path(".coopchain")
    confirmations: int = Field(default=0, ge=0)
    receipt_timeout: float = Field(default=60.0, gt=0)

    @field_validator("password")
    @classmethod
    def _password_is_a_source(cls, value: str) -> str:
        kind, _, rest = value.partition(":")
        if value != "prompt" and not (kind in ("env", "file") and rest):
            raise ValueError("must be env:NAME, file:PATH or prompt (never the password itself)")
        return value

    @classmethod
    def from_extras(cls, extras: Mapping[str, Any] | None, *, source: str) -> CoopchainSettings:
        """Validate the ``extras`` of the coopchain connection options.

        Raises:
            KeystoreError: a value looks like a plain private key.
            ConfigError: any other invalid value, naming ``source`` and the field.
        """
        values = dict(extras or {})
        for key, value in values.items():
            reject_plain_key(value, source=source, field=key)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or None
            raise ConfigError(first["msg"], source=source, field=field) from exc

    def journal_dir(self) -> Path:
        """Where this operator's change journals are kept."""
        return self.state_dir / "changes"
