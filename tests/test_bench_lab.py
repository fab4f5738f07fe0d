"""Smoke test of ``benchmarks/lab.py``: one run of each side on a real FRR lab, with --json.

Marker ``lab`` (root and FRRouting / OpenSSH, like tests/test_lab.py): skipped locally
without them, a failure when CI=true. Checks the JSON shape and that the numbers are sane,
never the speed; and that the script removed its lab.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from needs import needs_lab

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 240  # ~40 s on an idle 2-core machine; the rest is for a loaded one


def _lab_namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in listed.stdout.splitlines() if line.startswith("cc")}


@pytest.mark.lab
@pytest.mark.slow
def test_lab_benchmark_json() -> None:
    needs_lab()
    before = _lab_namespaces()
    script = subprocess.Popen(
        [sys.executable, str(REPO / "benchmarks" / "lab.py"), "--json", "--repeat", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        stdout, stderr = script.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        script.send_signal(signal.SIGTERM)  # not SIGKILL: the script tears its lab down
        stdout, stderr = script.communicate(timeout=60)
        pytest.fail(f"benchmarks/lab.py still running after {TIMEOUT} s: {stderr[-2000:]}")
    assert _lab_namespaces() <= before, "benchmarks/lab.py left lab namespaces behind"
    assert script.returncode == 0, stderr[-3000:]
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must be exactly one JSON object, got: {stdout[:500]}"
    payload = json.loads(lines[0])

    times = ("ungated_s", "gated_s", "chain_s", "vote_wait_s")
    assert set(payload) == {
        *times,
        "chain_txs",
        "devices",
        "chain",
        "repeat",
        "gated_verified",
        "runs",
    }
    assert (payload["devices"], payload["chain"], payload["repeat"]) == (4, "embedded", 1)
    assert payload["gated_verified"] is True
    assert payload["chain_txs"] == 5  # propose, two votes, claim, record: for four routers
    for key in times:
        assert isinstance(payload[key], float)
        assert payload[key] > 0, key
        assert payload["runs"][key] == [payload[key]]
    # The chain time and the vote phase are parts of the gated run.
    assert payload["chain_s"] + payload["vote_wait_s"] < payload["gated_s"]
