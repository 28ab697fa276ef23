"""The report: targets read off the results, rich tables on stdout, and the JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.stats import median


@dataclass(frozen=True)
class Target:
    name: str
    value: float
    limit: float
    at_least: bool = False
    unit: str = "x"

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"met": self.met}


def _get(results: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(results, dict) or key not in results:
            return None
        results = results[key]
    return results


TARGETS: list[tuple[str, tuple[str, ...], float, bool, str]] = [
    ("turn latency p50, ours / floor", ("latency", "p50_ratio"), 1.2, False, "x"),
    ("throughput, ours / floor", ("throughput", "turns_per_s_ratio"), 0.85, True, "x"),
    ("worker CPU per turn, ours / floor", ("throughput", "cpu_ratio"), 1.5, False, "x"),
    ("history bytes per turn, last / first point", ("history", "growth_ratio"), 1.2, False, "x"),
    ("long conversation p50, end / turns 10-20", ("long", "late_to_early_p50"), 1.2, False, "x"),
    ("worker RSS, end / a tenth of the way", ("long", "rss_growth"), 1.2, False, "x"),
    (
        "recovery, after the new worker polls",
        ("recovery", "from_new_worker_ready_s"),
        3,
        False,
        "s",
    ),
    ("idle conversations RSS, large / small", ("idle", "rss_ratio"), 1.5, False, "x"),
]
"""(name, path in the results, limit, whether the value must reach it, unit). "Worker RSS
does not grow with length" has no number in the issue; 1.2 is ours."""


def targets(lifted: dict[str, Any]) -> list[Target]:
    found = []
    for name, path, limit, at_least, unit in TARGETS:
        value = _get(lifted, *path)
        if value is not None:
            found.append(Target(name, float(value), limit, at_least, unit))
    return found


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


# --- tables ----------------------------------------------------------------------------------


def _median_of(runs: list[dict[str, Any]], key: str) -> float:
    return median([float(r[key]) for r in runs])


def _fmt(value: Any, digits: int = 2) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, int | float) else str(value)


def ours_vs_floor(title: str, results: dict[str, Any]) -> Table:
    table = Table(title=title)
    for column in ("metric", "ours", "floor", "ours / floor"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    latency, tput = results.get("latency"), results.get("throughput")
    if latency:
        for key, ratio_key in (("p50_ms", "p50_ratio"), ("p95_ms", "p95_ratio")):
            ours, floor = _median_of(latency["ours"], key), _median_of(latency["floor"], key)
            label = f"turn latency {key[:3]} (ms, median of {len(latency['ours'])})"
            table.add_row(label, _fmt(ours), _fmt(floor), _fmt(latency[ratio_key], 3))
    if tput:
        for key, ratio_key in (
            ("turns_per_s", "turns_per_s_ratio"),
            ("cpu_ms_per_turn", "cpu_ratio"),
        ):
            ours, floor = _median_of(tput["ours"], key), _median_of(tput["floor"], key)
            table.add_row(key.replace("_", " "), _fmt(ours), _fmt(floor), _fmt(tput[ratio_key], 3))
    return table


def breakdown_table(results: dict[str, Any]) -> Table | None:
    parts = _get(results, "latency", "breakdown_ms_per_turn")
    if not parts:
        return None
    table = Table(title="Where a turn's time goes (server event times, per turn)")
    table.add_column("part")
    for name in parts:
        table.add_column(name, justify="right")
    for key in _breakdown_order(parts):
        table.add_row(key, *(_fmt(values.get(key, "")) for values in parts.values()))
    return table


def _breakdown_order(parts: dict[str, dict[str, float]]) -> list[str]:
    """Server parts in the order a turn meets them, each activity type under "activity run"."""
    keys = {key for values in parts.values() for key in values}
    per_activity = sorted(key for key in keys if key.startswith("  "))
    order = ["update accepted to completed", "workflow task queue", "workflow task run"]
    order += ["activity queue", "activity run", *per_activity]
    order += ["workflow tasks", "activities", "turns"]
    return [key for key in order if key in keys]


def history_table(results: dict[str, Any]) -> Table | None:
    history, long = results.get("history"), results.get("long")
    if not history:
        return None
    table = Table(title="History growth and the long conversation (ours)")
    for column in ("turn", "history bytes", "events", "runs", "bytes / turn", "events / turn"):
        table.add_column(column, justify="right")
    for turn, size in history["points"].items():
        row = (turn, size["bytes"], size["events"], size["runs"], size["bytes_per_turn"])
        table.add_row(*(_fmt(v, 0) for v in row), _fmt(size["events_per_turn"]))
    if long:
        early, late = long["early"], long["late"]
        table.caption = (
            f"p50 turns {early['turns']}: {early['p50_ms']} ms, turns {late['turns']}: "
            f"{late['p50_ms']} ms; worker RSS by turn (MB): {long['rss_mb_by_turn']}"
        )
    return table


def other_table(results: dict[str, Any]) -> Table | None:
    rows = []
    if recovery := results.get("recovery"):
        for key in ("from_new_worker_ready_s", "from_kill_s"):
            rows.append((f"recovery: turn done, {key.replace('_', ' ')}", recovery[key]))
    if idle := results.get("idle"):
        small, large = idle["conversations"]
        rows += [
            ("idle: worker RSS MB before any", idle["rss_mb_before"]),
            (f"idle: worker RSS MB at {small:,}", idle["rss_mb_small"]),
            (f"idle: worker RSS MB at {large:,}", idle["rss_mb_large"]),
            ("idle: starts per second", idle["starts_per_s"]),
            ("idle: new turn, newest conversation (ms)", idle["turn_ms_newest"]),
            ("idle: new turn, oldest conversation (ms)", idle["turn_ms_oldest"]),
        ]
    if not rows:
        return None
    table = Table(title="Recovery and idle conversations (ours)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, value in rows:
        table.add_row(label, _fmt(value))
    return table


def targets_table(found: list[Target]) -> Table:
    table = Table(title="Targets (reported, never enforced)")
    for column in ("target", "measured", "limit", "met"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for t in found:
        limit = f"{'>=' if t.at_least else '<='} {t.limit:g}{t.unit}"
        table.add_row(t.name, f"{t.value:.3g}{t.unit}", limit, "yes" if t.met else "NO")
    return table


def print_report(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    meta = report["meta"]
    console.print(
        f"[bold]bench[/bold] {meta['mode']} {meta['date']}: {meta['cpus']} CPUs "
        f"({meta['cpu_model']}), commit {meta['commit']}, load average "
        f"{_loads(meta['load_before'])} -> {_loads(meta['load_after'])} {meta.get('note', '')}"
    )
    for label, title in (("lifted", "dev server, cap lifted"), ("stock", "stock dev server")):
        results = report.get(label)
        if not results:
            continue
        tables = [
            ours_vs_floor(f"Ours against the floor: {title}", results),
            breakdown_table(results),
            history_table(results),
            other_table(results),
        ]
        for table in tables:
            if table is not None and table.row_count:
                console.print(table)
    if report.get("targets"):
        console.print(targets_table([Target(**_fields(t)) for t in report["targets"]]))


def _loads(values: list[float]) -> str:
    return "/".join(f"{v:.1f}" for v in values)


def _fields(target: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in target.items() if k != "met"}
