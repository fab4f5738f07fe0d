"""LogCursor: every event exactly once across restarts, in (block, logIndex) order."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from nornir_coopchain.chain.devchain import DevChain
from nornir_coopchain.chain.events import LogCursor, decode_log
from nornir_coopchain.exceptions import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from eth_account.signers.local import LocalAccount
    from eth_typing import ABIEvent
    from web3.contract import Contract
    from web3.types import LogReceipt

    from nornir_coopchain.chain.client import ChainClient


def _pings(client: ChainClient, account: LocalAccount, probe: Contract, count: int) -> None:
    for index in range(count):
        client.transact(account, probe.functions.ping(index.to_bytes(32, "big")))


def _seqs(client: ChainClient, probe: Contract, logs: list[LogReceipt]) -> list[int]:
    event_abi: ABIEvent = probe.events.Pinged().abi
    return [decode_log(client, log, event_abi)["args"]["seq"] for log in logs]


def test_exactly_once_across_restarts(
    chain: ChainClient, accounts: list[LocalAccount], probe: Contract, tmp_path: Path
) -> None:
    state = tmp_path / "state" / "cursor.json"
    _pings(chain, accounts[0], probe, 3)

    first = LogCursor(chain, probe.address, state_file=state)
    batch = first.poll()
    assert _seqs(chain, probe, batch) == [1, 2, 3]
    assert first.poll() == batch  # not acknowledged yet: same batch again
    # "Crash" before commit: a new cursor redelivers, nothing is lost.
    second = LogCursor(chain, probe.address, state_file=state)
    assert _seqs(chain, probe, second.poll()) == [1, 2, 3]
    second.commit()
    assert json.loads(state.read_text()) == {
        "next_block": chain.block_number() + 1,
        "chain_id": chain.chain_id,
        "address": probe.address,
    }
    assert [p.name for p in state.parent.iterdir()] == ["cursor.json"]  # no temp files left

    _pings(chain, accounts[1], probe, 2)
    third = LogCursor(chain, probe.address, state_file=state)
    assert _seqs(chain, probe, third.poll()) == [4, 5]  # committed ones never again
    third.commit()
    assert LogCursor(chain, probe.address, state_file=state).poll() == []


def test_order_small_ranges_and_confirmations(
    chain: ChainClient, accounts: list[LocalAccount], probe: Contract
) -> None:
    start = chain.block_number()
    _pings(chain, accounts[0], probe, 2)
    DevChain(chain).mine(3)  # empty blocks between events
    _pings(chain, accounts[0], probe, 1)
    cursor = LogCursor(chain, probe.address, start_block=start, max_range=1, confirmations=1)
    seen: list[int] = []
    while True:
        logs = cursor.poll()
        if not logs:
            break
        assert [(log["blockNumber"], log["logIndex"]) for log in logs] == sorted(
            (log["blockNumber"], log["logIndex"]) for log in logs
        )
        seen += _seqs(chain, probe, logs)
        cursor.commit()
    assert seen == [1, 2]  # the last event is in the latest block: not confirmed yet
    assert cursor.caught_up
    DevChain(chain).mine()
    assert _seqs(chain, probe, cursor.poll()) == [3]


def test_batch_commits_only_on_success(
    chain: ChainClient, accounts: list[LocalAccount], probe: Contract
) -> None:
    _pings(chain, accounts[0], probe, 1)
    cursor = LogCursor(chain, probe.address)

    def failing_handler() -> None:
        with cursor.batch() as logs:
            assert len(logs) == 1
            raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        failing_handler()
    with cursor.batch() as logs:
        assert _seqs(chain, probe, logs) == [1]
    with cursor.batch() as logs:
        assert logs == []


def test_state_for_another_chain_or_contract_is_refused(
    chain: ChainClient, probe: Contract, tmp_path: Path
) -> None:
    state = tmp_path / "cursor.json"
    state.write_text(json.dumps({"next_block": 1, "chain_id": 1, "address": probe.address}))
    with pytest.raises(ConfigError, match="cursor is for chain 1"):
        LogCursor(chain, probe.address, state_file=state)
    other = "0x" + "11" * 20
    state.write_text(json.dumps({"next_block": 1, "chain_id": chain.chain_id, "address": other}))
    with pytest.raises(ConfigError, match="cursor is for contract"):
        LogCursor(chain, probe.address, state_file=state)
    state.write_text("{not json")
    with pytest.raises(ConfigError, match=r"cursor\.json: unreadable"):
        LogCursor(chain, probe.address, state_file=state)
