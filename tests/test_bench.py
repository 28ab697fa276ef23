"""The benchmark suite runs end to end and writes a complete report (no timing thresholds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import ROOT

pytestmark = pytest.mark.e2e  # `python -m bench` as a subprocess

TINY = ["--set", "latency_turns=3", "--set", "repeats=1", "--set", "warmup_turns=1"]


def test_quick_latency_scenario_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    command = [sys.executable, "-m", "bench", "--quick", "--only", "latency", *TINY]
    done = subprocess.run(
        [*command, "--out", str(out), "--workdir", str(tmp_path / "work")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Ours against the floor" in done.stdout
    report = json.loads(out.read_text())
    assert report["meta"]["mode"] == "quick" and report["meta"]["cpus"] >= 1
    latency = report["lifted"]["latency"]
    for side in ("ours", "floor"):
        [run] = latency[side]
        assert run["n"] == 3 and 0 < run["p50_ms"] <= run["p95_ms"]
        breakdown = latency["breakdown_ms_per_turn"][side]
        assert breakdown["turns"] == 3 and breakdown["activities"] == 3
        assert breakdown["activity run"] > 0 and breakdown["workflow task run"] > 0
    assert latency["p50_ratio"] > 0 and latency["p95_ratio"] > 0
    [target] = report["targets"]
    assert target["name"].startswith("turn latency") and target["value"] > 0
