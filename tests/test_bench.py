"""The benchmark suite runs end to end and writes a complete report (no timing thresholds)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bench.databases import libpq_url
from bench.report import markdown
from bench.scale import OVERLOAD
from support.databases import HAS_POSTGRES, POSTGRES_URL
from support.paths import ROOT

pytestmark = pytest.mark.e2e  # `python -m bench` as a subprocess

TINY = ["--set", "latency_turns=3", "--set", "repeats=1", "--set", "warmup_turns=1"]


def run_bench(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    """`python -m bench ARGS` from the project root, as CI runs it."""
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_quick_latency_scenario_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    work = str(tmp_path / "work")
    command = ["--quick", "--only", "latency", *TINY, "--out", str(out), "--workdir", work]
    done = run_bench(*command, timeout=240)
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
    names = [t["name"] for t in report["targets"]]
    assert names == ["turn latency p50, ours / floor", "history bytes per turn, ours / floor"]
    assert all(t["value"] > 0 and t["scope"] == "sqlite" for t in report["targets"])
    # a missed target says what bounds it, with this run's figures, in the JSON and on stdout
    for target in report["targets"]:
        assert bool(target["bound_by"]) is not target["met"], target
        if not target["met"]:
            assert f"MISSED sqlite: {target['name']}" in done.stdout
    bytes_per_turn = latency["history_bytes_per_turn"]
    [history] = [t for t in report["targets"] if t["name"].startswith("history bytes")]
    if not history["met"]:
        assert f"{bytes_per_turn['ours']:,.0f} bytes/turn" in history["bound_by"]


def test_long_scenario_compares_the_last_turns_with_a_new_conversation_in_the_same_minutes(
    tmp_path: Path,
) -> None:
    out = tmp_path / "report.json"
    command = ["--quick", "--only", "long", "--set", "long_turns=14", "--out", str(out)]
    done = run_bench(*command, "--workdir", str(tmp_path / "work"), timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    long = report["lifted"]["long"]
    assert long["turns"] == 14 and long["late"]["n"] == 11 and long["fresh"]["n"] == 11
    assert long["late_to_fresh_p50"] == round(long["late"]["p50_ms"] / long["fresh"]["p50_ms"], 3)
    [target] = [t for t in report["targets"] if t["name"].startswith("long conv")]
    assert target["value"] == long["late_to_fresh_p50"]
    # the new conversation ran 9 untimed turns, then the 11 timed ones: 20 answered turns
    conversations = sqlite3.connect(tmp_path / "work" / "lifted.db")
    [(fresh,)] = conversations.execute(
        "SELECT count(*) FROM transcript_messages WHERE conversation_id LIKE 'bench-long-fresh-%'"
        " AND role = 'user'"
    ).fetchall()
    assert fresh == 20


def test_postgres_and_scale_modes_write_their_figures_and_targets(tmp_path: Path) -> None:
    kind = "postgres" if HAS_POSTGRES else "sqlite"
    out = tmp_path / "report.json"
    scale = ["--scale", "3", "--set", "scale_workers=2", "--set", "scale_turns=1"]
    command = ["--only", "latency", "--database", kind, *scale, "--set", "scale_model_ms=50"]
    done = run_bench(*command, *TINY, "--out", str(out), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Scale" in done.stdout
    report = json.loads(out.read_text())
    results = report["lifted"] if kind == "sqlite" else report["postgres"]
    assert results["database"] == kind and report["meta"]["databases"] == [kind]
    history = results["latency"]["history_bytes_per_turn"]
    assert history["ours"] > history["floor"] > 0  # ours records more per turn
    [(database, scaled)] = report["scale"].items()
    assert database == kind and scaled["model_ms"] == 50
    run = scaled["by_workers"]["2"]
    for side in ("ours", "floor"):
        assert run[side]["turns"] == 3 and len(run[side]["rss_mb_peak"]) == 2
        assert set(run[side]["worker_log"]) == set(OVERLOAD)
        assert run[side]["latency"]["p95_ms"] >= 100  # two model calls of 50 ms each
    scopes = {(t["scope"], t["name"]) for t in report["targets"]}
    assert (kind, "history bytes per turn, ours / floor") in scopes
    assert (f"scale {kind}, 2 workers", "throughput, ours / floor") in scopes
    table = markdown(report)
    assert "| figure | floor | ours | ours / floor | target | met |" in table
    assert "2 workers: throughput (turns/s)" in table
    if kind == "postgres":  # every schema the run made is gone
        assert not leftover_schemas([results["schema"], *scaled["schemas"]])


def leftover_schemas(names: list[str]) -> list[str]:
    with psycopg.connect(libpq_url(POSTGRES_URL)) as conn:
        rows = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (names,))
        return [row[0] for row in rows]


def test_activities_harness_runs_the_bench_turn_once_per_turn(tmp_path: Path) -> None:
    """`python -m bench.activities`: each turn's note, ledger row and 4 transcript rows."""
    url = f"sqlite:///{tmp_path}/agents.db"
    done = subprocess.run(
        [sys.executable, "-m", "bench.activities", "--turns", "3", "--database", url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ms CPU per turn: our three activities, 3 turns, sqlite" in done.stdout
    turns = 3 + 5  # and the untimed warm-up turns
    with sqlite3.connect(tmp_path / "agents.db") as db:
        assert db.execute("SELECT count(*) FROM bench_notes").fetchone() == (turns,)
        ledger = db.execute("SELECT tool, status, count(*) FROM tool_ledger GROUP BY 1, 2")
        assert ledger.fetchall() == [("add_note", "succeeded", turns)]
        roles = db.execute("SELECT role, count(*) FROM transcript_messages GROUP BY 1 ORDER BY 1")
        assert roles.fetchall() == [("assistant", 2 * turns), ("tool", turns), ("user", turns)]
