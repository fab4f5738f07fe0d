"""The verdict wait on an operator's own node that lags the node the proposal went to
(issue #15): the proposal is not there yet, which is "still pending", not "no such proposal".

The operator's node is an :class:`~rpc_proxy.RpcProxy` in front of anvil serving a head
``lag`` blocks behind; the proposal and the votes go to anvil directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from coop_helpers import SITE, deploy, policy, propose
from eth_account.signers.local import LocalAccount
from rpc_proxy import RpcProxy

from nornir_coopchain.chain.accounts import dev_accounts
from nornir_coopchain.chain.client import ChainClient
from nornir_coopchain.chain.contract import CoopChain
from nornir_coopchain.chain.devchain import AnvilProcess
from nornir_coopchain.gate import VerdictTimeout, wait_for_verdict
from nornir_coopchain.model.rules import ProposalState, VoteType
from nornir_coopchain.session import CoopchainSession
from nornir_coopchain.settings import CoopchainSettings

pytestmark = pytest.mark.anvil


@dataclass
class Lagging:
    direct: ChainClient  # the node the proposal goes to
    coop: CoopChain  # on it
    proxy: RpcProxy  # the operator's own node
    people: list[LocalAccount]

    def session(self, client: ChainClient) -> CoopchainSession:
        """OPERATOR 0's session over ``client``."""
        settings = CoopchainSettings(
            chain_url=client.url, contract=self.coop.address, dev_account=0
        )
        return CoopchainSession(
            settings=settings,
            client=client,
            coop=CoopChain(client, self.coop.address),
            account=self.people[0],
        )

    def approved_unseen(self) -> int:
        """A proposal approved on the direct node, which the own node does not have yet."""
        created = propose(self.coop, self.people[0])
        for voter in self.people[1:]:
            self.coop.cast_vote(voter, created.proposal_id, VoteType.Approve)
        assert self.coop.state(created.proposal_id) is ProposalState.Approved
        self.proxy.lag = self.direct.block_number() - created.block_number + 1
        return created.proposal_id


@pytest.fixture
def lagging(anvil: AnvilProcess) -> Iterator[Lagging]:
    proxy = RpcProxy(anvil.url)
    with ChainClient.connect(anvil.url, receipt_timeout=10) as direct:
        people = dev_accounts(direct, 3)
        coop = deploy(direct, people, {SITE: policy(eligible_mask=0b111)})
        try:
            yield Lagging(direct, coop, proxy, people)
        finally:
            proxy.close()


def test_a_proposal_the_own_node_has_not_seen_yet_is_waited_for(lagging: Lagging) -> None:
    proposal_id = lagging.approved_unseen()
    lines: list[str] = []

    def catch_up(line: str) -> None:  # the own node catches up once the wait has looked
        lines.append(line)
        lagging.proxy.lag = 0

    with ChainClient.connect(lagging.proxy.url, receipt_timeout=10) as own:
        session = lagging.session(own)
        assert session.coop.find_proposal(proposal_id) is None
        state = wait_for_verdict(
            session, proposal_id, timeout=30, poll_interval=0.05, progress=catch_up
        )
    assert state is ProposalState.Approved
    assert lines == [f"proposal {proposal_id}: not yet seen by this node"]


def test_a_node_that_never_catches_up_times_out_saying_so(lagging: Lagging) -> None:
    proposal_id = lagging.approved_unseen()
    with ChainClient.connect(lagging.proxy.url, receipt_timeout=10) as own:
        session = lagging.session(own)
        with pytest.raises(VerdictTimeout) as raised:
            wait_for_verdict(session, proposal_id, timeout=0.3, poll_interval=0.05)
    message = str(raised.value)
    assert f"proposal {proposal_id} was never seen by this node" in message
    assert f"reports {proposal_id - 1} proposal(s)" in message
    assert lagging.proxy.url in message


def test_an_id_above_the_node_s_count_is_an_error_naming_it(lagging: Lagging) -> None:
    proposal_id = propose(lagging.coop, lagging.people[0]).proposal_id
    session = lagging.session(lagging.direct)  # not lagging: the ID is simply wrong
    with pytest.raises(VerdictTimeout, match=f"proposal {proposal_id + 5} was never seen") as e:
        wait_for_verdict(session, proposal_id + 5, timeout=0.2, poll_interval=0.05)
    assert f"reports {proposal_id} proposal(s)" in str(e.value)
    assert lagging.coop.address in str(e.value)


def test_a_proposal_at_the_head_but_not_deep_enough_is_waited_for(
    lagging: Lagging, anvil: AnvilProcess
) -> None:
    proposal_id = lagging.approved_unseen()
    depth, lagging.proxy.lag = lagging.proxy.lag, 0  # the proposal is just above that depth
    with (
        ChainClient.connect(anvil.url, confirmations=depth, receipt_timeout=10) as deep,
        pytest.raises(VerdictTimeout, match=f"head but not yet {depth} block"),
    ):
        wait_for_verdict(lagging.session(deep), proposal_id, timeout=0.2, poll_interval=0.05)
