"""Contract events read with ``eth_getLogs`` from a persisted block cursor.

No server-side filters (``eth_newFilter``): nodes drop them on restart or after idling.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from web3 import Web3
from web3._utils.events import get_event_data

from nornir_coopchain._files import write_atomic
from nornir_coopchain.exceptions import ChainError, ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from eth_typing import ABIEvent
    from web3.types import EventData, LogReceipt

    from nornir_coopchain.chain.client import ChainClient

__all__ = ["LogCursor", "decode_log"]


def decode_log(client: ChainClient, log: LogReceipt, event_abi: ABIEvent) -> EventData:
    """Decode one log with its event ABI (``args`` by name, plus block/tx metadata).

    Raises:
        ConfigError: the log does not match the ABI.
    """
    try:
        return cast("EventData", get_event_data(client.w3.codec, event_abi, log))
    except Exception as exc:  # web3 raises MismatchedABI, eth_abi DecodingError, ...
        raise ConfigError(f"log does not match event {event_abi.get('name')}: {exc}") from exc


class LogCursor:
    """Reads one contract's logs in (block, logIndex) order, exactly once across restarts.

    :meth:`poll` returns the next batch without moving the cursor; :meth:`commit` (after
    the caller has handled the batch) advances it and persists ``{"next_block", "chain_id",
    "address"}`` atomically (temp file + ``os.replace``). A crash before ``commit``
    redelivers the batch on restart (so handling should be idempotent, or committed per
    batch); committed batches are never delivered again. ``with cursor.batch() as logs:``
    commits only when the block exits without an exception.

    Reorgs deeper than ``confirmations`` are out of scope: logs are read only up to
    ``latest - confirmations`` and never re-checked (``removed`` logs are skipped).

    Arguments:
        client: the chain client.
        address: the contract whose logs to read.
        state_file: where the cursor persists; ``None`` keeps it in memory.
        start_block: the first block to read when there is no state yet.
        max_range: the most blocks per ``eth_getLogs`` request (halved on node errors).
        confirmations: blocks to stay behind the head.
        topics: optional ``eth_getLogs`` topic filter.

    Raises:
        ConfigError: the state file is unreadable or belongs to another chain or contract.
    """

    def __init__(
        self,
        client: ChainClient,
        address: str,
        *,
        state_file: Path | None = None,
        start_block: int = 0,
        max_range: int = 2000,
        confirmations: int = 0,
        topics: Sequence[Any] | None = None,
    ):
        if max_range < 1 or confirmations < 0 or start_block < 0:
            raise ConfigError("max_range must be >= 1, confirmations and start_block >= 0")
        self.client = client
        self.address = Web3.to_checksum_address(address)
        self.state_file = state_file
        self.max_range = max_range
        self.confirmations = confirmations
        self.topics = topics
        self.next_block = start_block
        self._pending_next: int | None = None
        self._load()

    @property
    def caught_up(self) -> bool:
        """Whether the last :meth:`poll` reached the confirmed head."""
        return self._caught_up

    def _load(self) -> None:
        self._caught_up = False
        self._saved = self.next_block
        if self.state_file is None or not self.state_file.exists():
            return
        source = str(self.state_file)
        try:
            state = json.loads(self.state_file.read_text())
            next_block, chain_id, address = (
                int(state["next_block"]),
                int(state["chain_id"]),
                str(state["address"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"unreadable log cursor state: {exc}", source=source) from exc
        if chain_id != self.client.chain_id:
            raise ConfigError(
                f"cursor is for chain {chain_id}, connected to {self.client.chain_id}",
                source=source,
            )
        if Web3.to_checksum_address(address) != self.address:
            raise ConfigError(
                f"cursor is for contract {address}, not {self.address}", source=source
            )
        self.next_block = self._saved = next_block

    def poll(self) -> list[LogReceipt]:
        """Return the next batch of logs (empty when none up to the confirmed head).

        Scans ranges of up to ``max_range`` blocks until one has logs or the head is
        reached; calling it again before :meth:`commit` returns the same batch.

        Raises:
            ChainConnectionError: the node failed even for a single-block range.
        """
        head = self.client.block_number() - self.confirmations
        span = self.max_range
        self._caught_up, self._pending_next = False, None
        while self.next_block <= head:
            start = self.next_block
            end = min(head, start + span - 1)
            try:
                logs = self.client.get_logs(self.address, start, end, self.topics)
            except ChainError:
                if span == 1:
                    raise
                span = max(1, span // 2)  # e.g. "query returned more than N results"
                continue
            live = [log for log in logs if not log.get("removed")]
            if live:
                self._pending_next = end + 1
                return live
            self.next_block = end + 1  # nothing to hand over: no ack needed
        self._caught_up = True
        return []

    def commit(self) -> None:
        """Advance past the last batch returned by :meth:`poll` and persist.

        Raises:
            ConfigError: the state file cannot be written.
        """
        if self._pending_next is not None:
            self.next_block, self._pending_next = self._pending_next, None
        if self.next_block != self._saved:
            self._save()

    @contextmanager
    def batch(self) -> Iterator[list[LogReceipt]]:
        """``with cursor.batch() as logs:`` polls, and commits if the block succeeds."""
        logs = self.poll()
        yield logs
        self.commit()

    def _save(self) -> None:
        if self.state_file is None:
            return
        state = {
            "next_block": self.next_block,
            "chain_id": self.client.chain_id,
            "address": self.address,
        }
        try:
            write_atomic(self.state_file, json.dumps(state).encode())
        except OSError as exc:
            raise ConfigError(
                f"cannot save log cursor: {exc}", source=str(self.state_file)
            ) from exc
        self._saved = self.next_block
