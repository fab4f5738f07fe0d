"""Smoke tests of the benchmark scripts: each runs once at its smallest size with --json.

Only the JSON shape is checked (keys and types), never the speed; the numbers live in
benchmarks/README.md. (The FRR-lab profile's run is held to lower bounds only: the sums of
the calls each device makes one after the other, which a loaded machine cannot undercut.)
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from needs import needs_anvil

from napalm_coopchain_sim.options import TIMED_METHODS

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"


def _run(script: str, *args: str, timeout: float = 300) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must be exactly one JSON object, got: {done.stdout[:500]}"
    payload = json.loads(lines[0])
    assert isinstance(payload, dict)
    return payload


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@pytest.mark.parametrize("script", ["gas.py", "scale.py", "throughput.py", "lab.py"])
def test_help(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "--json" in done.stdout


@pytest.mark.slow
@pytest.mark.anvil
def test_gas_json_shape() -> None:
    needs_anvil()
    payload = _run("gas.py")
    assert set(payload) == {"ours", "oz_governor", "per_device_storage"}
    ours, peer = payload["ours"], payload["oz_governor"]
    votes = {"propose", "cast_vote_first", "cast_vote", "vote_by_sig"}
    assert set(ours) == votes | {"batch_extra_ballot", "record", "claim_apply"}
    assert set(peer) == votes
    assert all(_is_int(ours[key]) and _is_int(peer[key]) for key in votes)
    assert _is_int(ours["batch_extra_ballot"])
    assert _is_int(ours["claim_apply"])
    assert set(ours["record"]) == {"1", "10", "100", "1000"}
    assert all(_is_int(gas) for gas in ours["record"].values())
    assert set(payload["per_device_storage"]) == {"1000"}
    assert _is_int(payload["per_device_storage"]["1000"])
    # the gas targets (issue #13 §4 keeps them through its contract fixes)
    assert max(ours["cast_vote"], ours["cast_vote_first"]) <= 36_000
    assert ours["batch_extra_ballot"] <= 12_000
    assert max(ours["record"].values()) <= 50_000  # any device count


@pytest.mark.slow
def test_scale_json_shape() -> None:
    payload = _run("scale.py", "--devices", "10", "--latency", "0.01")
    assert set(payload) == {
        "devices",
        "ungated_s",
        "gated_s",
        "chain_s",
        "vote_wait_s",
        "chain_txs",
        "ungated_reviewed_s",
    }
    assert payload["devices"] == 10
    assert payload["chain_txs"] == 5  # propose, two votes, claim, record
    for key in ("ungated_s", "gated_s", "chain_s", "vote_wait_s", "ungated_reviewed_s"):
        assert isinstance(payload[key], float)
        assert payload[key] > 0


def _scale_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    """benchmarks/scale.py, imported (its folder on sys.path for its ``_common``)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("scale")


@pytest.mark.slow
def test_scale_frr_lab_profile_times_each_napalm_method(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    scale = _scale_module(monkeypatch)
    profile = scale.FRR_LAB_LATENCY
    assert set(profile) == set(TIMED_METHODS)  # every call the simulator times is named
    profiled = argparse.Namespace(latency_profile="frr-lab")
    scale.write_inventory(tmp_path, 2, 0.05, scale.method_latency(profiled))
    defaults = yaml.safe_load((tmp_path / "defaults.yaml").read_text())
    options = defaults["connection_options"]["napalm"]["extras"]["optional_args"]
    assert options["method_latency"] == profile  # what the simulator sleeps, per method
    # (tests/test_sim_driver.py: it sleeps a named method's figure, and devices at once)

    payload = _run("scale.py", "--devices", "2", "--latency-profile", "frr-lab")
    # Lower bounds only (a loaded machine makes a run slower, never faster): each device's
    # calls run one after the other. napalm_configure: open, load, compare, commit.
    ungated = ("open", "load_replace_candidate", "compare_config", "commit_config")
    assert payload["ungated_s"] >= sum(profile[method] for method in ungated)
    # The reviewed side adds the dry run (a base read and a discard), the base check, the
    # read-back and the confirm: its own connection, two loads and compares, one commit.
    reviewed = (
        *ungated,
        *("get_config",) * 3,
        "load_replace_candidate",
        "compare_config",
        "discard_config",
        "confirm_commit",
    )
    assert payload["ungated_reviewed_s"] >= sum(profile[method] for method in reviewed)


@pytest.mark.slow
@pytest.mark.anvil
def test_throughput_json_shape() -> None:
    needs_anvil()
    payload = _run(
        "throughput.py", "--threads", "1,4,16,50", "--tx-per-thread", "2", "--seconds", "5"
    )
    assert set(payload) == {"ours", "naive"}
    for mode in payload.values():
        assert set(mode) == {"threads"}
        assert set(mode["threads"]) == {"1", "4", "16", "50"}
        for stats in mode["threads"].values():
            assert set(stats) == {"tx_per_s", "nonce_errors"}
            assert isinstance(stats["tx_per_s"], float)
            assert _is_int(stats["nonce_errors"])
