"""`python -m bench [--quick] [--only SCENARIO ...] [--out PATH]`: run the benchmarks."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from bench.config import FULL, QUICK, SCENARIOS, Counts
from bench.report import print_report, targets, write_json
from bench.suite import Options, run_suite
from conversation_client import run_then_exit

RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI-sized counts (< 2 minutes)")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="run only these")
    parser.add_argument("--out", type=Path, help="JSON report path (default: bench/results/)")
    parser.add_argument("--workdir", type=Path, help="keep databases and worker logs here")
    parser.add_argument("--profile", type=Path, help="pyinstrument reports of the hosts here")
    parser.add_argument("--note", default="", help="free text kept in the report's meta")
    parser.add_argument(
        "--streaming",
        action="store_true",
        help="the event stream's targets instead (bench/streaming.py); --quick: fewer turns",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="COUNT=N",
        help="override a count, e.g. --set latency_turns=5 (see bench/config.py)",
    )
    return parser.parse_args(argv)


def counts_from(args: argparse.Namespace) -> Counts:
    base = QUICK if args.quick else FULL
    overrides: dict[str, Any] = {}
    for item in args.set:
        name, _, value = item.partition("=")
        current = getattr(base, name)
        overrides[name] = (
            tuple(int(v) for v in value.split(",")) if isinstance(current, tuple) else int(value)
        )
    return dataclasses.replace(base, **overrides)


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    options = Options(counts_from(args), set(args.only or SCENARIOS), workdir, args.profile)
    report = await run_suite(options, "quick" if args.quick else "full")
    report["meta"]["note"] = args.note
    report["targets"] = [t.as_dict() for t in targets(report.get("lifted", {}))]
    return report


def main() -> None:
    args = parse()
    if args.streaming:
        return streaming_main(args)
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(run(args, workdir))
    suffix = "-quick" if args.quick else ""
    out = args.out or RESULTS / f"{date.today().isoformat()}{suffix}.json"
    write_json(report, out)
    print_report(report)
    print(f"JSON report: {out}")


def streaming_main(args: argparse.Namespace) -> None:
    from bench.streaming import print_streaming, run_streaming

    turns, repeats = (8, 2) if args.quick else (20, 3)
    report = asyncio.run(run_streaming(turns, repeats, args.workdir))
    report["meta"]["note"] = args.note
    suffix = "-streaming-quick" if args.quick else "-streaming"
    out = args.out or RESULTS / f"{date.today().isoformat()}{suffix}.json"
    write_json(report, out)
    print_streaming(report)
    print(f"JSON report: {out}")


if __name__ == "__main__":
    run_then_exit(main)
