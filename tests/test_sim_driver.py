"""The SIMULATED NAPALM driver (platform ``coopchain_sim``), through NAPALM and a real Nornir.

Everything here runs against the simulator only; it stands in for no real device.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import textwrap
import threading
import time
from typing import TYPE_CHECKING, Any

import napalm
import pytest
import yaml
from napalm.base.exceptions import (
    CommitConfirmException,
    CommitError,
    ConnectionClosedException,
    ConnectionException,
)
from nornir import InitNornir
from nornir_napalm.plugins.tasks import napalm_configure, napalm_get

import napalm_coopchain_sim.driver as sim_driver
from napalm_coopchain_sim import SIM_VENDOR, CoopchainSimDriver, clear_memory_devices
from napalm_coopchain_sim.text import merge_configs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from nornir.core import Nornir

    MakeNornir = Callable[..., Nornir]

BASE = "hostname r1\ninterface eth0\n description uplink\n"
NEW = "hostname r1\ninterface eth0\n description uplink\ninterface eth1\n description ran\n"


@pytest.fixture(autouse=True)
def _fresh_devices() -> Iterator[None]:
    clear_memory_devices()
    yield
    clear_memory_devices()


@pytest.fixture
def make_nornir(tmp_path: Path) -> Iterator[MakeNornir]:
    """Build a Nornir whose hosts are simulated devices with the given optional_args."""
    made: list[Nornir] = []

    def make(hosts: dict[str, dict[str, Any]], workers: int = 10) -> Nornir:
        inventory = {
            name: {
                "hostname": name,
                "platform": "coopchain_sim",
                "connection_options": {"napalm": {"extras": {"optional_args": args}}},
            }
            for name, args in hosts.items()
        }
        options = {}
        for key, data in (("host", inventory), ("group", {}), ("defaults", {})):
            path = tmp_path / f"{key}.yaml"
            path.write_text(yaml.safe_dump(data))
            options[f"{key}_file"] = str(path)
        nr = InitNornir(
            runner={"plugin": "threaded", "options": {"num_workers": workers}},
            inventory={"plugin": "SimpleInventory", "options": options},
            logging={"enabled": False},
        )
        made.append(nr)
        return nr

    yield make
    for nr in made:
        nr.close_connections()


def _driver(name: str, **optional_args: Any) -> CoopchainSimDriver:
    driver_class = napalm.get_network_driver("coopchain_sim")
    device = driver_class(name, "user", "pw", optional_args=optional_args)
    device.open()
    return device  # type: ignore[no-any-return]


def _running(nr: Nornir, host: str) -> str:
    result = nr.filter(name=host).run(task=napalm_get, getters=["config"], on_failed=True)
    return str(result[host][0].result["config"]["running"])


def test_napalm_finds_the_driver_by_community_name() -> None:
    assert napalm.get_network_driver("coopchain_sim") is CoopchainSimDriver


def test_dry_run_changes_nothing_and_commit_applies(make_nornir: MakeNornir) -> None:
    nr = make_nornir({"r1": {"initial_config": BASE}})

    dry = nr.run(task=napalm_configure, configuration=NEW, replace=True, dry_run=True)
    assert not dry.failed
    assert dry["r1"][0].changed
    assert "+interface eth1" in dry["r1"][0].diff
    assert dry["r1"][0].diff.startswith("--- running\n+++ candidate\n")
    assert _running(nr, "r1") == BASE

    real = nr.run(task=napalm_configure, configuration=NEW, replace=True, dry_run=False)
    assert real["r1"][0].changed
    assert _running(nr, "r1") == NEW

    again = nr.run(task=napalm_configure, configuration=NEW, replace=True, dry_run=False)
    assert not again["r1"][0].changed
    assert again["r1"][0].diff == ""


def test_merge_adds_missing_lines_into_their_blocks(make_nornir: MakeNornir) -> None:
    nr = make_nornir({"r1": {"initial_config": BASE}})
    merge = "interface eth0\n mtu 9000\ninterface eth1\n description uplink\n"

    result = nr.run(task=napalm_configure, configuration=merge, dry_run=False)

    assert result["r1"][0].changed
    assert _running(nr, "r1") == (
        "hostname r1\ninterface eth0\n description uplink\n mtu 9000\n"
        "interface eth1\n description uplink\n"
    )


def test_merge_configs_keeps_order_and_ignores_present_lines() -> None:
    assert merge_configs(BASE, "hostname r1\ninterface eth0\n description uplink\n") == BASE
    assert merge_configs("", "a\n b\n") == "a\n b\n"
    assert merge_configs("x\n", "  \n y\n") == "x\n y\n"


def test_rollback_restores_the_previous_running_config(make_nornir: MakeNornir) -> None:
    nr = make_nornir({"r1": {"initial_config": BASE}})
    nr.run(task=napalm_configure, configuration=NEW, replace=True, dry_run=False)

    device = _driver("r1")
    device.rollback()

    assert device.get_config()["running"] == BASE
    assert _running(nr, "r1") == BASE


def test_commit_confirm_reverts_unless_confirmed(
    make_nornir: MakeNornir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from napalm_coopchain_sim.store import FileStore, MemoryStore

    clock = [1_000.0]  # the devices' clock, moved by the test: no sleep against a timer
    monkeypatch.setattr(MemoryStore, "now", lambda _self: clock[0])
    monkeypatch.setattr(FileStore, "now", lambda _self: clock[0])
    nr = make_nornir({"lapse": {"initial_config": BASE}, "keep": {"initial_config": BASE}})
    lapse = nr.filter(name="lapse").run(
        task=napalm_configure, configuration=NEW, replace=True, dry_run=False, revert_in=1
    )
    assert lapse["lapse"][0].changed
    keep = _driver("keep")
    keep.load_replace_candidate(config=NEW)
    keep.commit_config(revert_in=1)
    persisted = _driver("saved", state_dir=str(tmp_path / "state"), initial_config=BASE)
    persisted.load_replace_candidate(config=NEW)
    persisted.commit_config(revert_in=1)

    lapsed = _driver("lapse")
    assert lapsed.has_pending_commit()
    assert lapsed.get_config()["running"] == NEW
    lapsed.load_merge_candidate(config="x\n")
    with pytest.raises(CommitError, match="pending"):
        lapsed.commit_config()
    keep.confirm_commit()
    clock[0] += 1.1  # past revert_in

    assert _running(nr, "lapse") == BASE
    assert not lapsed.has_pending_commit()
    assert _running(nr, "keep") == NEW
    with pytest.raises(CommitConfirmException):
        keep.confirm_commit()
    assert persisted.get_config()["running"] == BASE
    assert not persisted.has_pending_commit()


def test_commit_confirm_unsupported(make_nornir: MakeNornir) -> None:
    nr = make_nornir({"r1": {"initial_config": BASE, "supports_commit_confirm": False}})

    result = nr.run(
        task=napalm_configure, configuration=NEW, replace=True, dry_run=False, revert_in=1
    )

    assert isinstance(result["r1"][0].exception, NotImplementedError)
    assert _running(nr, "r1") == BASE


def test_commit_drops_make_the_read_back_differ(make_nornir: MakeNornir) -> None:
    nr = make_nornir({"r1": {"initial_config": BASE, "commit_drops": [r"^ description ran$"]}})

    result = nr.run(task=napalm_configure, configuration=NEW, replace=True, dry_run=False)

    assert not result.failed
    assert result["r1"][0].changed
    read_back = _running(nr, "r1")
    assert read_back != NEW
    assert "interface eth1" in read_back
    assert "description ran" not in read_back
    recheck = nr.run(task=napalm_configure, configuration=NEW, replace=True, dry_run=True)
    assert recheck["r1"][0].diff.endswith("+ description ran\n")


def test_commit_error_leaves_running_unchanged(make_nornir: MakeNornir) -> None:
    nr = make_nornir({"r1": {"initial_config": BASE, "commit_error": True}})

    result = nr.run(task=napalm_configure, configuration=NEW, replace=True, dry_run=False)

    assert result.failed_hosts.keys() == {"r1"}
    assert isinstance(result["r1"][0].exception, CommitError)
    assert _running(nr, "r1") == BASE


def test_unreachable_host_fails_alone(make_nornir: MakeNornir) -> None:
    nr = make_nornir({"r1": {}, "r2": {"unreachable": True}, "r3": {}})

    result = nr.run(task=napalm_get, getters=["facts"])

    assert set(result.failed_hosts) == {"r2"}
    assert isinstance(result["r2"][0].exception, ConnectionException)
    assert "r2" in str(result["r2"][0].exception)
    for host in ("r1", "r3"):
        facts = result[host][0].result["facts"]
        assert facts["vendor"] == SIM_VENDOR
        assert facts["hostname"] == host


def test_facts_and_get_config_retrieve(make_nornir: MakeNornir) -> None:
    nr = make_nornir({"dev1": {"initial_config": NEW}})

    result = nr.run(
        task=napalm_get,
        getters=["facts", "config"],
        getters_options={"config": {"retrieve": "running"}},
    )

    facts = result["dev1"][0].result["facts"]
    assert facts["hostname"] == "r1"
    assert facts["interface_list"] == ["eth0", "eth1"]
    assert "SIMULATED" in facts["os_version"]
    assert facts["uptime"] >= 0
    assert result["dev1"][0].result["config"] == {"running": NEW, "candidate": "", "startup": ""}


def test_same_process_sessions_share_one_device() -> None:
    first = _driver("r1", initial_config=BASE)
    first.load_replace_candidate(config=NEW)
    assert _driver("r1").get_config()["candidate"] == ""
    first.commit_config()

    second = _driver("r1", initial_config="ignored: the device already exists\n")

    assert second.get_config()["running"] == NEW
    second.close()
    with pytest.raises(ConnectionClosedException):
        second.get_config()


def test_persisted_state_is_shared_across_instances_and_processes(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    first = _driver("r1", state_dir=str(state_dir), initial_config=BASE)
    first.load_replace_candidate(config=NEW)
    first.commit_config()
    assert _driver("r1", state_dir=str(state_dir)).get_config()["running"] == NEW
    assert json.loads((state_dir / "r1.json").read_text())["commits"] == 1
    committed = json.loads((state_dir / "r1.json").read_text())["committed"]
    assert committed == [hashlib.sha256(NEW.encode()).hexdigest()]  # the commit log

    script = textwrap.dedent(
        f"""
        import napalm
        d = napalm.get_network_driver("coopchain_sim")("r1", "", "", optional_args={{
            "state_dir": {str(state_dir)!r}}})
        d.open()
        assert d.get_config()["running"] == {NEW!r}
        d.load_merge_candidate(config="ntp server 192.0.2.1\\n")
        d.commit_config()
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)

    assert first.get_config()["running"] == NEW + "ntp server 192.0.2.1\n"
    assert _driver("r1").get_config()["running"] == ""  # memory is another device store


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most spans (start, end) in progress at one instant."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        running += step
        most = max(most, running)
    return most


class _TimedSleeps:
    """Stands in for the driver module's ``time``: its sleeps are slept, and each is noted
    as (seconds asked, start, end); everything else is the real ``time``."""

    def __init__(self) -> None:
        self.slept: list[tuple[float, float, float]] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        start = time.monotonic()
        time.sleep(seconds)
        with self._lock:
            self.slept.append((seconds, start, time.monotonic()))


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> _TimedSleeps:
    """The simulator's sleeps, noted."""
    timed = _TimedSleeps()
    monkeypatch.setattr(sim_driver, "time", timed)
    return timed


def test_latency_is_concurrent_across_devices(
    make_nornir: MakeNornir, sleeps: _TimedSleeps
) -> None:
    """Each device sleeps its latency holding nothing another device needs: the ten
    devices' sleeps overlap (a lock around them would make them take turns)."""
    nr = make_nornir({f"r{i}": {"latency": 0.2} for i in range(10)}, workers=10)
    result = nr.run(task=napalm_get, getters=["facts"])

    assert not result.failed
    assert [seconds for seconds, _, _ in sleeps.slept] == [0.2] * 20  # open + get_facts, x10
    spans = [(start, end) for _, start, end in sleeps.slept]
    assert _most_at_once(spans) >= 2, spans  # 1 if the devices took turns


def test_most_at_once_counts_overlaps_not_neighbours() -> None:
    assert _most_at_once([(0, 1), (1, 2), (2, 3)]) == 1  # one after the other
    assert _most_at_once([(0, 2), (1, 3), (1.5, 1.6)]) == 3


def test_method_latency_times_each_named_method_loads_included(sleeps: _TimedSleeps) -> None:
    timing = {"get_config": 0.15, "load_replace_candidate": 0.1}
    device = _driver("r1", latency=0.4, method_latency=timing)

    def slept(call: Callable[[], object]) -> list[float]:
        sleeps.slept.clear()
        call()
        return [seconds for seconds, _, _ in sleeps.slept]

    assert slept(lambda: device.get_config(retrieve="running")) == [0.15]
    assert slept(lambda: device.load_replace_candidate(config=NEW)) == [0.1]
    assert slept(device.compare_config) == [0.4]  # not named: ``latency``
    assert slept(lambda: device.load_merge_candidate(config=NEW)) == []  # loads: 0 unless named


@pytest.mark.parametrize(
    ("method_latency", "complaint"),
    [
        ({"get_confg": 0.1}, "'get_confg' is not one of"),
        ({"get_config": -1}, "must be seconds >= 0"),
        ({"get_config": True}, "must be seconds >= 0"),
        (["get_config"], "must be a mapping"),
    ],
)
def test_method_latency_is_checked(method_latency: object, complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        _driver("r1", method_latency=method_latency)


@pytest.mark.parametrize("persisted", [False, True], ids=["memory", "state_dir"])
def test_concurrent_sessions_on_one_device_lose_no_commit(tmp_path: Path, persisted: bool) -> None:
    args = {"state_dir": str(tmp_path / "state")} if persisted else {}

    def commit_lines(worker: int) -> None:
        device = _driver("r1", **args)
        for i in range(15):
            device.load_merge_candidate(config=f"line {worker}-{i}\n")
            device.commit_config()

    threads = [threading.Thread(target=commit_lines, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    running = _driver("r1", **args).get_config()["running"].splitlines()
    assert sorted(running) == sorted(f"line {w}-{i}" for w in range(3) for i in range(15))


def test_commit_checks_the_expected_running_config_atomically() -> None:
    from nornir_coopchain.exceptions import StaleBaseError

    device = _driver("r1", initial_config=BASE)
    read = device.get_config(retrieve="running")["running"]
    other = _driver("r1")
    other.load_merge_candidate(config="ip route 10.99.99.0/24 Null0\n")
    other.commit_config()  # out of band, between the read and the commit
    changed = device.get_config(retrieve="running")["running"]
    device.load_replace_candidate(config=NEW)
    with pytest.raises(StaleBaseError, match="r1: the running config changed"):
        device.commit_config(revert_in=30, expected_running=read)
    assert device.get_config(retrieve="running")["running"] == changed
    assert not device.has_pending_commit()
    device.commit_config(expected_running=changed)  # the candidate stays loaded
    assert device.get_config(retrieve="running")["running"] == NEW


def test_a_device_without_the_in_commit_check_tells_its_saved_pre_commit_config() -> None:
    import inspect

    device = _driver("r1", initial_config=BASE, commit_checks_base=False)
    assert "expected_running" not in inspect.signature(device.commit_config).parameters
    with pytest.raises(CommitError, match="no commit to roll back"):
        device.get_rollback_config()
    device.load_replace_candidate(config=NEW)
    device.commit_config(revert_in=30)
    assert device.get_rollback_config() == BASE  # the pending commit-confirm's revert point
    device.confirm_commit()
    assert device.get_rollback_config() == BASE  # the config before the last commit
    device.rollback()
    assert device.get_config(retrieve="running")["running"] == BASE
