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

import time
from typing import TYPE_CHECKING

import pytest
from hexbytes import HexBytes

from nornir_coopchain.chain.accounts import dev_accounts
from nornir_coopchain.chain.client import ChainClient, is_poa_block
from nornir_coopchain.chain.devchain import DevChain, start_anvil
from nornir_coopchain.chain.errors import NotMember
from nornir_coopchain.exceptions import (
    ChainConnectionError,
    ConfigError,
    ContractError,
    TransactionError,
    TransactionReverted,
    TransactionTimeout,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3.contract import Contract

    from nornir_coopchain.chain.artifacts import ContractArtifact
    from nornir_coopchain.chain.devchain import AnvilProcess

NOTE = b"n" * 32


def _transfer(to: str, value: int = 1) -> dict[str, object]:
    return {"to": to, "value": value}


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
