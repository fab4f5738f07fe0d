"""ChainClient on the embedded chain and on anvil: sending, receipts, reverts, dev controls.

The test contract is tests/contracts_fixture/Probe.sol, compiled once with solc-js 0.8.37
(optimizer 200 runs, cancun) into Probe.json::

    contract Probe {
        error CoopChainNotMember(address account);   // same selector as ICoopChain's
        event Pinged(uint256 indexed seq, address indexed sender, bytes32 note);
        uint256 public count;
        constructor(uint256 start) { count = start; }
        function ping(bytes32 note) external returns (uint256) { ... emit Pinged(...); }
        function denied() external view returns (uint256) { revert CoopChainNotMember(msg.sender); }
        function deny() external { count += 1; revert CoopChainNotMember(msg.sender); }
        function fail(string calldata reason) external pure { revert(reason); }
    }
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

import pytest
from eth_account import Account
from hexbytes import HexBytes
from needs import needs_anvil
from web3.middleware.base import Web3Middleware

from nornir_coopchain.chain.accounts import dev_accounts
from nornir_coopchain.chain.client import ChainClient, is_poa_block
from nornir_coopchain.chain.devchain import DevChain, start_anvil
from nornir_coopchain.chain.errors import NotMember
from nornir_coopchain.chain.fees import FeeCache
from nornir_coopchain.exceptions import (
    ChainConnectionError,
    ConfigError,
    ContractError,
    TransactionError,
    TransactionReverted,
    TransactionTimeout,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from eth_account.signers.local import LocalAccount
    from web3.contract import Contract
    from web3.types import MakeRequestFn, RPCEndpoint, RPCResponse

    from nornir_coopchain.chain.artifacts import ContractArtifact
    from nornir_coopchain.chain.devchain import AnvilProcess

NOTE = b"n" * 32


def _transfer(to: str, value: int = 1) -> dict[str, object]:
    return {"to": to, "value": value}


def _count_rpcs(client: ChainClient) -> collections.Counter[str]:
    """Count every JSON-RPC request ``client`` makes from now on, by method."""
    calls: collections.Counter[str] = collections.Counter()

    class Counting(Web3Middleware):
        def wrap_make_request(self, make_request: MakeRequestFn) -> MakeRequestFn:
            def middleware(method: RPCEndpoint, params: Any) -> RPCResponse:
                calls[method] += 1
                return make_request(method, params)

            return middleware

    client.w3.middleware_onion.add(Counting, "count_rpcs")
    return calls


# ---------------------------------------------------------------- connecting


def test_connect_detects_chain(chain: ChainClient) -> None:
    assert chain.chain_id in (131277322940537, 31337)
    assert chain.is_poa is False
    assert chain.legacy_transactions is False  # both default to EIP-1559 fees
    fees = chain.fee_fields()
    assert fees["maxFeePerGas"] >= fees["maxPriorityFeePerGas"] > 0


def test_unreachable_node_names_the_url() -> None:
    with pytest.raises(ChainConnectionError, match=r"http://127\.0\.0\.1:1\b"):
        ChainClient.connect("http://127.0.0.1:1")
    with pytest.raises(ChainConnectionError, match=r"ws://127\.0\.0\.1:1\b"):
        ChainClient.connect("ws://127.0.0.1:1")


def test_unsupported_scheme_and_redacted_credentials() -> None:
    with pytest.raises(ConfigError, match="unsupported chain URL"):
        ChainClient.connect("ftp://example.org")
    with pytest.raises(ChainConnectionError) as caught:
        ChainClient.connect("http://user:s3cret@127.0.0.1:1/?key=abc")
    assert "s3cret" not in str(caught.value)
    assert "abc" not in str(caught.value)


@pytest.mark.anvil
def test_websocket_transport(anvil: AnvilProcess, probe_artifact: ContractArtifact) -> None:
    with ChainClient.connect(anvil.ws_url) as client:
        account = dev_accounts(client, 1)[0]
        address = client.deploy(account, probe_artifact, 5)
        probe = client.w3.eth.contract(address=address, abi=probe_artifact.abi)
        assert client.call(probe.functions.count()) == 5
        with pytest.raises(NotMember):
            client.call(probe.functions.denied(), sender=account.address)


def test_poa_detection_on_block_dicts() -> None:
    vanity_and_seals = "0x" + "ab" * 97  # Clique/QBFT-style extraData
    assert is_poa_block({"extraData": vanity_and_seals})
    assert is_poa_block({"extraData": HexBytes(vanity_and_seals)})
    assert not is_poa_block({"extraData": "0x" + "00" * 32})
    assert not is_poa_block({"extraData": b""})
    assert not is_poa_block({})


@pytest.mark.anvil
def test_free_gas_network_uses_legacy_zero_price(free_gas_chain: ChainClient) -> None:
    client = free_gas_chain
    assert client.free_gas
    assert client.legacy_transactions
    assert client.fee_fields() == {"gasPrice": 0}
    sender, receiver = dev_accounts(client, 2)
    before = client.w3.eth.get_balance(sender.address)
    receipt = client.wait_for_receipt(
        client.send_transaction(sender, _transfer(receiver.address, 7))
    )
    tx = client.w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["type"] == 0
    assert tx["gasPrice"] == 0
    assert receipt["effectiveGasPrice"] == 0
    assert client.w3.eth.get_balance(sender.address) == before - 7


# ---------------------------------------------------------------- round trips and fees


def test_contract_read_and_gas_estimate_are_one_rpc_each(
    chain: ChainClient, accounts: list[LocalAccount], probe: Contract
) -> None:
    assert "validation" not in chain.w3.middleware_onion  # no eth_chainId per call
    calls = _count_rpcs(chain)
    assert chain.call(probe.functions.count()) == 0
    if chain.kind == "rpc":
        assert dict(calls) == {"eth_call": 1}
    else:  # eth-tester's own middleware also asks eth_accounts (in process)
        assert calls["eth_call"] == 1
        assert "eth_chainId" not in calls
    calls.clear()
    chain.estimate_gas({"from": accounts[0].address, "to": accounts[1].address, "value": 1})
    assert dict(calls) == {"eth_estimateGas": 1}


def test_foreign_chain_id_is_refused_before_signing(
    chain: ChainClient, accounts: list[LocalAccount]
) -> None:
    sender, receiver = accounts[4], accounts[0]
    before = chain.w3.eth.get_transaction_count(sender.address, "pending")
    foreign = chain.chain_id + 1
    with pytest.raises(ConfigError, match=rf"chainId: .*chain ID {foreign}\b"):
        chain.send_transaction(sender, {**_transfer(receiver.address), "chainId": foreign})
    own = {**_transfer(receiver.address), "chainId": hex(chain.chain_id)}
    receipt = chain.wait_for_receipt(chain.send_transaction(sender, own))
    assert chain.w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == before


def test_fee_refresh_is_shared_by_threads(chain: ChainClient) -> None:
    chain.fee_fields()
    time.sleep(1.05)  # FEE_TTL: the next reading is stale
    calls = _count_rpcs(chain)
    with ThreadPoolExecutor(50) as pool:
        fees = list(pool.map(lambda _: chain.fee_fields(), range(200)))
    assert calls, "the stale reading was refreshed"
    assert max(calls.values()) == 1  # one refresh (its one or two requests), not one per thread
    assert all(set(each) == {"maxFeePerGas", "maxPriorityFeePerGas"} for each in fees)


def test_fee_cache_keeps_other_threads_off_the_node() -> None:
    reads: list[int] = []
    answer = threading.Event()

    def read() -> dict[str, int]:
        reads.append(len(reads) + 1)
        answer.wait(5)
        return {"gasPrice": len(reads)}

    cache = FeeCache(read, ttl=60)
    with ThreadPoolExecutor(20) as pool:
        first = [pool.submit(cache.fields) for _ in range(20)]
        while not reads:
            time.sleep(0.001)
        time.sleep(0.05)
        assert len(reads) == 1  # the others wait for that one reading: there is none yet
        answer.set()
        assert {each.result()["gasPrice"] for each in first} == {1}
    answer.clear()
    cache.ttl = 0.0  # every reading is stale from now on
    with ThreadPoolExecutor(20) as pool:
        refresher = pool.submit(cache.fields)
        while len(reads) < 2:
            time.sleep(0.001)
        others = [cache.fields() for _ in range(20)]  # while the refresh is under way
        assert others == [{"gasPrice": 1}] * 20  # the previous reading, without waiting
        answer.set()
        assert refresher.result() == {"gasPrice": 2}
    assert len(reads) == 2


@pytest.mark.anvil
def test_free_gas_send_reads_no_fees(free_gas_chain: ChainClient) -> None:
    sender, receiver = dev_accounts(free_gas_chain, 4)[2:4]
    free_gas_chain.send_transaction(sender, _transfer(receiver.address))  # reads the nonce
    calls = _count_rpcs(free_gas_chain)
    tx_hash = free_gas_chain.send_transaction(sender, _transfer(receiver.address))
    assert dict(calls) == {"eth_estimateGas": 1, "eth_sendRawTransaction": 1}
    assert free_gas_chain.wait_for_receipt(tx_hash)["effectiveGasPrice"] == 0


# ---------------------------------------------------------------- sending


def test_deploy_transact_and_call(
    chain: ChainClient, accounts: list[LocalAccount], probe: Contract
) -> None:
    receipt = chain.transact(accounts[0], probe.functions.ping(NOTE))
    assert receipt["status"] == 1
    assert len(receipt["logs"]) == 1
    assert chain.call(probe.functions.count()) == 1
    assert chain.call(probe.functions.count(), block=receipt["blockNumber"] - 1) == 0
    assert chain.now() > 0


def test_send_rejects_foreign_from(chain: ChainClient, accounts: list[LocalAccount]) -> None:
    with pytest.raises(ConfigError, match="not the signing account"):
        chain.send_transaction(
            accounts[0], {"from": accounts[1].address, "to": accounts[1].address}
        )


def test_resending_the_same_signed_tx_counts_as_sent(
    chain: ChainClient, accounts: list[LocalAccount]
) -> None:
    sender, receiver = accounts[0], accounts[1]
    nonce = chain.w3.eth.get_transaction_count(sender.address, "pending")
    tx = {"to": receiver.address, "value": 3, "gas": 21_000, "nonce": nonce, **chain.fee_fields()}
    first = chain.send_transaction(sender, tx)
    chain.wait_for_receipt(first)
    again = chain.send_transaction(sender, tx)  # mined already: node says "nonce too low"
    assert again == first
    assert chain.w3.eth.get_transaction_count(sender.address) == nonce + 1


def test_already_known_in_the_pool(chain: ChainClient, accounts: list[LocalAccount]) -> None:
    dev = DevChain(chain)
    sender, receiver = accounts[2], accounts[3]
    dev.set_automine(False)
    try:
        nonce = chain.w3.eth.get_transaction_count(sender.address, "pending")
        tx = {
            "to": receiver.address,
            "value": 1,
            "gas": 21_000,
            "nonce": nonce,
            **chain.fee_fields(),
        }
        first = chain.send_transaction(sender, tx)
        assert chain.send_transaction(sender, tx) == first  # anvil: "transaction already imported"
        dev.mine()
    finally:
        dev.set_automine(True)
    receipt = chain.wait_for_receipt(first)
    block = chain.w3.eth.get_block(receipt["blockNumber"])
    assert block["transactions"] == [first]


def test_foreign_use_of_a_managed_nonce_is_resynced(
    chain: ChainClient, accounts: list[LocalAccount]
) -> None:
    sender, receiver = accounts[1], accounts[2]
    chain.wait_for_receipt(chain.send_transaction(sender, _transfer(receiver.address)))
    # Another process uses the next nonce behind the manager's back.
    nonce = chain.w3.eth.get_transaction_count(sender.address)
    signed = sender.sign_transaction(
        {
            "to": receiver.address,
            "value": 2,
            "gas": 21_000,
            "nonce": nonce,
            "chainId": chain.chain_id,
            **chain.fee_fields(),
        }
    )
    chain.w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = chain.wait_for_receipt(chain.send_transaction(sender, _transfer(receiver.address)))
    assert chain.w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == nonce + 1


def test_explicit_stale_nonce_is_rejected(chain: ChainClient, accounts: list[LocalAccount]) -> None:
    sender = accounts[3]
    chain.wait_for_receipt(chain.send_transaction(sender, _transfer(accounts[4].address)))
    with pytest.raises(TransactionError, match="rejected"):
        chain.send_transaction(
            sender, {**_transfer(accounts[4].address, 9), "nonce": 0, "gas": 21_000}
        )


# ---------------------------------------------------------------- reverts


def test_call_revert_maps_to_contract_error(
    chain: ChainClient, accounts: list[LocalAccount], probe: Contract
) -> None:
    with pytest.raises(NotMember) as caught:
        chain.call(probe.functions.denied(), sender=accounts[1].address)
    assert str(caught.value.args_by_name["account"]).lower() == accounts[1].address.lower()
    assert caught.value.tx_hash is None
    with pytest.raises(TransactionReverted, match="reverted: boom") as plain:
        chain.call(probe.functions.fail("boom"))
    assert not isinstance(plain.value, ContractError)


def test_revert_at_estimate_consumes_no_nonce(
    chain: ChainClient, accounts: list[LocalAccount], probe: Contract
) -> None:
    sender = accounts[0]
    before = chain.w3.eth.get_transaction_count(sender.address, "pending")
    with pytest.raises(NotMember) as caught:
        chain.transact(sender, probe.functions.deny())
    assert caught.value.tx_hash is None
    receipt = chain.transact(sender, probe.functions.ping(NOTE))
    assert chain.w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == before


def test_mined_revert_is_replayed_and_typed(
    chain: ChainClient, accounts: list[LocalAccount], probe: Contract
) -> None:
    with pytest.raises(NotMember) as caught:
        chain.transact(accounts[2], probe.functions.deny(), gas=100_000)
    assert caught.value.tx_hash is not None
    receipt = chain.w3.eth.get_transaction_receipt(HexBytes(caught.value.tx_hash))
    assert receipt["status"] == 0
    assert str(caught.value.args_by_name["account"]).lower() == accounts[2].address.lower()
    with pytest.raises(TransactionReverted, match="reverted: bye") as plain:
        chain.transact(accounts[2], probe.functions.fail("bye"), gas=100_000)
    assert plain.value.tx_hash is not None


@pytest.mark.anvil
def test_node_that_never_mines_times_out(stalled_anvil: AnvilProcess) -> None:
    with ChainClient.connect(stalled_anvil.url) as client:
        sender, receiver = dev_accounts(client, 2)
        tx_hash = client.send_transaction(sender, _transfer(receiver.address))
        started = time.monotonic()
        with pytest.raises(TransactionTimeout) as caught:
            client.wait_for_receipt(tx_hash, timeout=0.3)
        assert time.monotonic() - started < 2
        assert tx_hash.to_0x_hex() in str(caught.value)
        assert "0.3 s" in str(caught.value)
        assert caught.value.tx_hash == tx_hash.to_0x_hex()


def test_confirmations_wait_for_blocks(chain: ChainClient, accounts: list[LocalAccount]) -> None:
    chain.confirmations = 2
    tx_hash = chain.send_transaction(accounts[0], _transfer(accounts[1].address))
    with pytest.raises(TransactionTimeout, match="fewer than 2 confirmations"):
        chain.wait_for_receipt(tx_hash, timeout=0.2)
    DevChain(chain).mine(2)
    assert chain.wait_for_receipt(tx_hash, timeout=2)["status"] == 1


# ---------------------------------------------------------------- lost transactions


def _own_anvil(*args: str) -> AnvilProcess:
    needs_anvil()
    return start_anvil(extra_args=args)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param((), id="eip1559"),
        pytest.param(("--gas-price", "0", "--block-base-fee-per-gas", "0"), id="free_gas"),
    ],
)
def lossy_anvil(request: pytest.FixtureRequest) -> Iterator[AnvilProcess]:
    """An anvil of this module's own, told to lose transactions (anvil_drop*)."""
    with _own_anvil(*request.param) as process:
        yield process


@pytest.fixture
def lossy(lossy_anvil: AnvilProcess) -> Iterator[ChainClient]:
    """A client that looks for lost transactions after 0.2 s without a receipt."""
    with ChainClient.connect(lossy_anvil.url, receipt_timeout=10, rebroadcast_after=0.2) as client:
        yield client


def _rpc(client: ChainClient, method: str, *params: Any) -> Any:
    response = client.w3.provider.make_request(cast("RPCEndpoint", method), list(params))
    assert "error" not in response, response
    return response["result"]


def _fresh_account(client: ChainClient) -> LocalAccount:
    """A funded account no other test of the module sends from."""
    account: LocalAccount = Account.create()
    _rpc(client, "anvil_setBalance", account.address, hex(10**20))
    return account


@contextlib.contextmanager
def _paused(client: ChainClient) -> Iterator[DevChain]:
    """Automine off inside the block: sent transactions wait in the pool."""
    dev = DevChain(client)
    dev.set_automine(False)
    try:
        yield dev
    finally:
        dev.set_automine(True)


def _nonces(client: ChainClient, hashes: Sequence[HexBytes]) -> list[int]:
    return [client.w3.eth.get_transaction(tx_hash)["nonce"] for tx_hash in hashes]


@pytest.mark.anvil
def test_dropped_transactions_are_rebroadcast(
    lossy: ChainClient, caplog: pytest.LogCaptureFixture
) -> None:
    sender, receiver = _fresh_account(lossy), dev_accounts(lossy, 1)[0]
    with _paused(lossy) as dev:
        hashes = [lossy.send_transaction(sender, _transfer(receiver.address, n)) for n in range(6)]
        _rpc(lossy, "anvil_dropTransaction", hashes[2].to_0x_hex())  # and 3-5, which need it
        dev.mine()  # 0 and 1
        assert lossy.w3.eth.get_transaction_count(sender.address, "pending") == 2
    with caplog.at_level(logging.WARNING, logger="nornir_coopchain.chain.rebroadcast"):
        receipts = [lossy.wait_for_receipt(tx_hash) for tx_hash in hashes]
    assert all(receipt["status"] == 1 for receipt in receipts)
    assert _nonces(lossy, hashes) == list(range(6))
    assert sum("the node had lost it" in message for message in caplog.messages) == 4
    assert lossy.inflight.count(sender.address) == 0


@pytest.mark.anvil
def test_a_nonce_gap_is_filled_when_the_wait_times_out(lossy: ChainClient) -> None:
    sender, receiver = _fresh_account(lossy), dev_accounts(lossy, 1)[0]
    with _paused(lossy):
        lost = lossy.send_transaction(sender, _transfer(receiver.address, 1))
        _rpc(lossy, "anvil_dropTransaction", lost.to_0x_hex())
        queued = lossy.send_transaction(sender, _transfer(receiver.address, 2))  # behind the gap
        assert _rpc(lossy, "txpool_status")["queued"] == "0x1"
    lossy.rebroadcast_after = 60.0  # only the check at the timeout
    receipt = lossy.wait_for_receipt(queued, timeout=0.3)
    assert receipt["status"] == 1
    assert lossy.wait_for_receipt(lost)["blockNumber"] <= receipt["blockNumber"]
    assert _nonces(lossy, [lost, queued]) == [0, 1]


@pytest.mark.anvil
def test_a_flushed_pool_is_refilled_for_pipelined_senders(lossy: ChainClient) -> None:
    sender, receiver = _fresh_account(lossy), dev_accounts(lossy, 1)[0]
    threads, per_thread = 16, 5
    barrier = threading.Barrier(threads)

    def worker(index: int) -> list[HexBytes]:
        barrier.wait()
        return [
            lossy.send_transaction(sender, _transfer(receiver.address, index * 100 + n))
            for n in range(per_thread)
        ]

    with _paused(lossy):
        with ThreadPoolExecutor(threads) as pool:
            hashes = [h for batch in pool.map(worker, range(threads)) for h in batch]
        _rpc(lossy, "anvil_dropAllTransactions")
        assert _rpc(lossy, "txpool_status") == {"pending": "0x0", "queued": "0x0"}
    assert lossy.rebroadcast_lost(sender.address) == threads * per_thread
    assert all(lossy.wait_for_receipt(h, timeout=5)["status"] == 1 for h in hashes)
    assert sorted(_nonces(lossy, hashes)) == list(range(threads * per_thread))
    assert lossy.rebroadcast_lost(sender.address) == 0  # nothing kept, nothing sent


@pytest.mark.anvil
def test_a_nonce_used_by_another_transaction_is_reported(lossy: ChainClient) -> None:
    sender, receiver = _fresh_account(lossy), dev_accounts(lossy, 1)[0]
    with _paused(lossy):
        ours = lossy.send_transaction(sender, _transfer(receiver.address, 1))
        _rpc(lossy, "anvil_dropTransaction", ours.to_0x_hex())
    other = sender.sign_transaction(  # another process with the same key takes the nonce
        {
            **_transfer(receiver.address, 2),
            "gas": 21_000,
            "nonce": 0,
            "chainId": lossy.chain_id,
            **lossy.fee_fields(),
        }
    )
    lossy.wait_for_receipt(lossy.w3.eth.send_raw_transaction(other.raw_transaction))
    with pytest.raises(TransactionError, match=r"nonce 0 of \S+ was used by another") as caught:
        lossy.wait_for_receipt(ours)
    assert not isinstance(caught.value, TransactionTimeout)
    assert caught.value.tx_hash == ours.to_0x_hex()


# ---------------------------------------------------------------- dev controls


def test_devchain_time_snapshot_and_automine(
    chain: ChainClient, accounts: list[LocalAccount], probe: Contract
) -> None:
    dev = DevChain(chain)
    before = chain.now()
    assert dev.increase_time(3600) >= before + 3600
    snapshot = dev.snapshot()
    chain.transact(accounts[0], probe.functions.ping(NOTE))
    assert chain.call(probe.functions.count()) == 1
    dev.revert(snapshot)
    assert chain.call(probe.functions.count()) == 0
    dev.set_automine(False)
    try:
        tx_hash = chain.send_transaction(accounts[0], _transfer(accounts[1].address))
        with pytest.raises(TransactionTimeout):
            chain.wait_for_receipt(tx_hash, timeout=0.2)
        dev.mine()
    finally:
        dev.set_automine(True)
    assert chain.wait_for_receipt(tx_hash)["status"] == 1


def test_start_anvil_reports_missing_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COOPCHAIN_ANVIL", "/nonexistent/anvil")
    with pytest.raises(ConfigError, match=r"anvil not found: run `npm ci --prefix tools`"):
        start_anvil()
