"""The chaos run: conversations on 3 worker processes that are SIGKILLed every 1-3 s.

`python -m bench.chaos [--short] [--conversations 100 --turns 10 --workers 3 --seed N]
[--out FILE]`. It starts the embedded dev server, a fresh database (a SQLite file, or a
fresh schema in the PostgreSQL of `DATABASE_URL`) and the workers. Each turn asks for a
claim note (a database tool) and an email (an external tool) in parallel. Clients send
turns as the `ask` update or the `user_message` signal, retry on errors and timeouts with
the same message ID, give up on some attempts early as a client whose response was lost,
and send some messages twice, at once or after the answer. Meanwhile a random worker is
SIGKILLed every 1-3 s and restarted; some restarts arm a worst-moment fault
(activities/faults.py): after the commit, after the claim, after the effect, during the
model call. Then `bench/chaos_checks.py` reads the verdict off the database and the
histories. The exit code is 1 unless every check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.engine import make_url
from temporalio.client import Client
from temporalio.service import RPCError

from activities.db import Database
from bench.chaos_checks import Expected, Verdict, verify
from bench.chaos_zygote import MODEL_TIMEOUT, Child, Zygote
from conversation_client import Conversations, run_then_exit
from devserver import start_dev_server
from interface import ConversationSettings, StartConversation, TurnResult

T = TypeVar("T")

FAULTS = (
    "after_commit:create_claim_note",
    "after_claim:send_customer_email",
    "after_effect:send_customer_email",
    "after_commit:send_customer_email",
    "during_model",
)
"""Worst moments, in rotation: database and external tool steps, and the model call."""

KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
"""All the workers inherit: no model key (the scripted model), no encryption, no TLS, no
tuning or demo switches from the caller's shell; the product's defaults throughout."""


@dataclass(frozen=True)
class ChaosConfig:
    conversations: int = 100
    turns: int = 10
    workers: int = 3
    seed: int = 1
    concurrency: int = 25
    """Conversations in flight at once; each sends its turns one after another."""
    kill_every: tuple[float, float] = (1.0, 3.0)
    """Seconds between random SIGKILLs, drawn uniformly. A random kill also waits for a turn
    answered since the one before: on a loaded machine (CI runs this beside the rest of the
    suite on 2 cores) kills paced by the clock alone outran the workers' progress, and the
    last turns were killed over and over until the test's timeout."""
    fault_rate: float = 0.35
    """Share of worker starts armed with the next worst-moment fault (one armed at a time)."""
    armed_grace: float = 20.0
    """An armed worker is spared by the random killer for this long, so its fault can fire."""
    signal_rate: float = 0.4
    """Share of turns sent as the `user_message` signal (then collected with `ask`)."""
    duplicate_rate: float = 0.3
    """Share of turns sent twice with the same message ID: at once, or after the answer."""
    impatient_rate: float = 0.15
    """Share of attempts abandoned after 0.05-1.5 s, then sent again."""
    attempt_timeout: float = 30.0
    """A patient attempt's timeout."""
    turn_deadline: float = 900.0
    """A client gives up on a turn after this long."""
    max_turns_per_run: int = 4
    """Continue-as-new after this many turns, so deduplication is tested across runs."""
    model_timeout: float | None = None
    """Model calls' start-to-close in seconds; None: the agent's own (120 s; the model
    activity heartbeats, so a killed call is retried after its 5 s heartbeat timeout)."""


SHORT = ChaosConfig(conversations=20, turns=6, concurrency=20)


@dataclass
class Stats:
    """What the harness did. The verdict does not rely on these."""

    worker_starts: int = 0
    worker_crashes: int = 0
    random_kills: int = 0
    armed: Counter[str] = field(default_factory=Counter)
    sends: int = 0
    duplicate_sends: int = 0
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    turns_done: int = 0
    late_mismatches: int = 0


@dataclass
class Slot:
    child: Child
    fault: str | None
    marker: Path | None
    started: float
    ready: bool = False

    def armed(self) -> bool:
        """Armed with a fault that has not fired yet."""
        return self.marker is not None and not self.marker.exists()


class Chaos:
    """One chaos run: the worker slots, the killer and the clients."""

    def __init__(self, config: ChaosConfig, client: Client, workdir: Path, db_url: str) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.client = client
        self.workdir = workdir
        self.db_url = db_url
        self.queue = f"chaos-{uuid.uuid4().hex[:8]}"
        self.conversations = Conversations(client, self.queue)
        self.stats = Stats()
        self.slots: list[Slot | None] = [None] * config.workers
        self.stopping = asyncio.Event()
        self.faults_armed = 0
        self.markers: list[Path] = []
        self.run_id = uuid.uuid4().hex[:6]
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        (workdir / "faults").mkdir(parents=True, exist_ok=True)

    # --- workers -------------------------------------------------------------------------

    def worker_env(self, fault: str | None, marker: Path | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in KEPT_ENV}
        env |= {
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
            "TEMPORAL_ADDRESS": self.client.service_client.config.target_host,
            "TEMPORAL_TASK_QUEUE": self.queue,
            "DATABASE_URL": self.db_url,
        }
        if fault and marker:
            env |= {"AGENT_FAULT": fault, "AGENT_FAULT_ONCE": str(marker)}
        if self.config.model_timeout:
            env[MODEL_TIMEOUT] = str(self.config.model_timeout)
        return env

    def next_fault(self) -> tuple[str | None, Path | None]:
        armed = any(s is not None and s.armed() for s in self.slots)
        if armed or self.rng.random() >= self.config.fault_rate:
            return None, None
        fault = FAULTS[self.faults_armed % len(FAULTS)]
        self.faults_armed += 1
        self.stats.armed[fault] += 1
        marker = self.workdir / "faults" / f"{self.faults_armed:04d}-{fault.replace(':', '-')}"
        self.markers.append(marker)
        return fault, marker

    async def run_slot(self, zygote: Zygote, n: int) -> None:
        generation = 0
        while not self.stopping.is_set():
            fault, marker = self.next_fault()
            log = self.workdir / "logs" / f"worker-{n}-{generation:04d}.log"
            child = await zygote.spawn(self.worker_env(fault, marker), log)
            self.stats.worker_starts += 1
            self.note(f"start {log.name} pid {child.pid} fault {fault or '-'}")
            slot = Slot(child, fault, marker, time.monotonic())
            self.slots[n] = slot
            code = await child.exited
            self.slots[n] = None
            self.note(f"exit {log.name} pid {child.pid} code {code}")
            fired = marker is not None and marker.exists()
            if code != -9 and not self.stopping.is_set() and not fired:
                self.stats.worker_crashes += 1
            generation += 1

    async def killer(self, zygote: Zygote) -> None:
        low, high = self.config.kill_every
        answered = -1  # turns answered at the last kill
        while not self.stopping.is_set():
            await asyncio.sleep(self.rng.uniform(low, high))
            if self.stats.turns_done == answered:
                continue  # no progress since the last kill: let the workers make some
            now = time.monotonic()
            candidates = [
                s
                for s in self.slots
                if s is not None
                and _ready(s)
                and not (s.armed() and now - s.started < self.config.armed_grace)
            ]
            if candidates:
                victim = self.rng.choice(candidates).child
                self.note(f"kill {victim.log.name} pid {victim.pid}")
                await zygote.kill(victim)
                self.stats.random_kills += 1
                answered = self.stats.turns_done

    def note(self, line: str) -> None:
        """The workers' timeline, to match against histories (activity `identity` is
        `pid@host`)."""
        with (self.workdir / "workers.log").open("a") as out:
            out.write(f"{datetime.now(UTC).isoformat(timespec='milliseconds')} {line}\n")

    def worst_moment_kills(self) -> Counter[str]:
        fired: Counter[str] = Counter()
        for marker in self.markers:
            if marker.exists():
                fired[marker.read_text().split()[0]] += 1
        return fired

    # --- clients -------------------------------------------------------------------------

    async def conversation(self, cid: str, expected: Expected, gate: asyncio.Semaphore) -> None:
        start = StartConversation(
            settings=ConversationSettings(max_turns_per_run=self.config.max_turns_per_run)
        )
        async with gate:
            for k in range(1, self.config.turns + 1):
                message_id = f"{cid}-m{k}"
                marker = f"chaos {cid} turn {k}"
                expected.messages[cid].append(message_id)
                expected.markers[message_id] = marker
                await self.turn(cid, message_id, turn_text(marker), start)
                self.stats.turns_done += 1
            await self.retrying(lambda: self.conversations.end(cid), "end")

    async def turn(self, cid: str, message_id: str, text: str, start: StartConversation) -> None:
        rng, conv = self.rng, self.conversations

        def ask() -> Awaitable[TurnResult]:
            return conv.ask(cid, text, message_id, start)

        def signal() -> Awaitable[Any]:
            return conv.send(cid, text, message_id, start)

        duplicate = rng.random() < self.config.duplicate_rate
        at_once = duplicate and rng.random() < 0.5
        if rng.random() < self.config.signal_rate:
            sends = [self.retrying(signal, "signal")]
            if at_once:
                sends.append(self.retrying(rng.choice([signal, ask]), "duplicate"))
            await asyncio.gather(*sends)
            result = await self.retrying(ask, "ask")  # collect the answer
        else:
            asks = [self.retrying(ask, "ask")]
            if at_once:
                asks.append(self.retrying(rng.choice([signal, ask]), "duplicate"))
            result = (await asyncio.gather(*asks))[0]
        if duplicate and not at_once:
            if rng.random() < 0.5:
                again = await self.retrying(ask, "duplicate")
                if again.turn != result.turn or again.reply != result.reply:
                    self.stats.late_mismatches += 1
            else:
                await self.retrying(signal, "duplicate")

    async def retrying(self, send: Callable[[], Awaitable[T]], kind: str) -> T:
        """As a flaky HTTP client: time out, retry with the same message ID, back off."""
        config, rng = self.config, self.rng
        deadline = time.monotonic() + config.turn_deadline
        self.stats.duplicate_sends += kind == "duplicate"
        for attempt in range(1_000_000):
            self.stats.sends += 1
            patient = rng.random() >= config.impatient_rate
            timeout = config.attempt_timeout if patient else rng.uniform(0.05, 1.5)
            try:
                return await asyncio.wait_for(send(), timeout)
            except Exception as error:  # every failure is retried, as a client would
                self.stats.errors[type(error).__name__] += 1
            if time.monotonic() > deadline:
                break
            self.stats.retries += 1
            await asyncio.sleep(min(0.2 * 2**attempt, 5) * rng.uniform(0.5, 1.0))
        raise TimeoutError(f"{kind}: no answer within {config.turn_deadline} s")

    async def finished(self, cid: str) -> None:
        handle = self.conversations.handle(cid)
        await self.retrying(handle.result, "result")

    # --- the run -------------------------------------------------------------------------

    async def run(self, zygote: Zygote, progress: Callable[[], None]) -> Expected:
        expected = Expected(messages={}, markers={})
        ids = [f"chaos-{self.run_id}-{n:03d}" for n in range(self.config.conversations)]
        for cid in ids:
            expected.messages[cid] = []
        slots = [asyncio.create_task(self.run_slot(zygote, n)) for n in range(len(self.slots))]
        killer = asyncio.create_task(self.killer(zygote))
        ticker = asyncio.create_task(_tick(progress))
        gate = asyncio.Semaphore(self.config.concurrency)
        try:
            outcomes = await asyncio.gather(
                *(self.conversation(cid, expected, gate) for cid in ids), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    self.stats.errors[f"client gave up: {outcome}"] += 1
            await asyncio.gather(*(self.finished(cid) for cid in ids), return_exceptions=True)
        finally:
            self.stopping.set()
            killer.cancel()
            ticker.cancel()
            await zygote.stop()
            await asyncio.gather(*slots, return_exceptions=True)
            progress()
        return expected


def turn_text(marker: str) -> str:
    """A turn that makes the scripted model call a database tool and an external tool at
    once; the note's text and the email's subject are `marker`, unique to the turn."""
    note = {"claim_id": 123, "text": marker}
    email = {"claim_id": 124, "subject": marker, "body": f"An update ({marker})."}
    lines = [
        f"!call create_claim_note {json.dumps(note)}",
        f"!call send_customer_email {json.dumps(email)}",
    ]
    return "\n".join(lines)


def _ready(slot: Slot) -> bool:
    if not slot.ready:
        slot.ready = b"worker polling" in slot.child.log.read_bytes()
    return slot.ready


async def _tick(progress: Callable[[], None]) -> None:
    while True:
        progress()
        await asyncio.sleep(0.5)


# --- database ---------------------------------------------------------------------------


@asynccontextmanager
async def fresh_database(workdir: Path) -> AsyncIterator[str]:
    """A SQLite file in `workdir`, or a new schema in DATABASE_URL's PostgreSQL (dropped
    afterwards), migrated and seeded."""
    from worker import prepare_database  # imports the frameworks: only when needed

    base = os.environ.get("DATABASE_URL", "")
    schema = None
    if base.startswith("postgres"):
        schema = f"chaos_{uuid.uuid4().hex[:10]}"
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        db_url = url.render_as_string(hide_password=False)
    else:
        db_url = f"sqlite:///{workdir}/chaos.db"
    db = Database(db_url)
    try:
        if schema:
            async with db.engine.begin() as conn:
                await conn.execute(text(f"CREATE SCHEMA {schema}"))
        await prepare_database(db)
        yield db_url
    finally:
        if schema:
            async with db.engine.begin() as conn:
                await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        await db.dispose()


# --- entry point ------------------------------------------------------------------------


async def chaos(
    config: ChaosConfig, workdir: Path, console: Console | None = None
) -> dict[str, Any]:
    """Run the chaos test and return its report (`report["verdict"]["passed"]`)."""
    console = console or Console(stderr=True)
    asyncio.get_running_loop().set_exception_handler(_quiet_cancellations)
    began = time.monotonic()
    async with AsyncExitStack() as stack:
        zygote = await Zygote.start(workdir / "zygote.log")
        stack.push_async_callback(zygote.stop)
        env = await start_dev_server()
        stack.push_async_callback(env.shutdown)
        db_url = await stack.enter_async_context(fresh_database(workdir))
        harness = Chaos(config, env.client, workdir, db_url)
        with _progress(console, harness) as progress:
            expected = await harness.run(zygote, progress)
        ran = time.monotonic() - began
        db = Database(db_url)
        try:
            verdict = await verify(env.client, db, expected)
        finally:
            await db.dispose()
        await _write_histories(env.client, verdict.suspects, workdir / "histories")
    return _report(config, harness, verdict, ran, time.monotonic() - began, db_url)


async def _write_histories(client: Client, conversation_ids: list[str], folder: Path) -> None:
    """Every run of the conversations a check failed for, as JSON the Web UI and `Replayer`
    read, so a failure can be studied after the dev server has gone."""
    for cid in conversation_ids:
        folder.mkdir(parents=True, exist_ok=True)
        run_id: str | None = None
        for newest_first in range(10_000):
            history = await client.get_workflow_handle(cid, run_id=run_id).fetch_history()
            (folder / f"{cid}-{newest_first}.json").write_text(history.to_json())
            started = history.events[0].workflow_execution_started_event_attributes
            run_id = started.continued_execution_run_id or None
            if run_id is None:
                break


def _quiet_cancellations(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An abandoned or failed update-with-start leaves the SDK's internal future for the
    start unread. The client has seen the same error and retries; no traceback needed."""
    if isinstance(context.get("exception"), asyncio.CancelledError | RPCError):
        return
    loop.default_exception_handler(context)


class _progress:
    """A rich progress bar on a terminal; a line every 10 s otherwise (CI logs)."""

    def __init__(self, console: Console, harness: Chaos) -> None:
        self.console, self.harness = console, harness
        self.bar = Progress(
            TextColumn("turns"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
        )
        total = harness.config.conversations * harness.config.turns
        self.task = self.bar.add_task("", total=total)
        self.last = 0.0

    def __enter__(self) -> Callable[[], None]:
        if self.console.is_terminal:
            self.bar.start()
        return self.update

    def __exit__(self, *_: object) -> None:
        self.bar.stop()

    def update(self) -> None:
        stats = self.harness.stats
        fired = sum(self.harness.worst_moment_kills().values())
        line = (
            f"kills {stats.random_kills} random + {fired} worst-moment, "
            f"worker starts {stats.worker_starts}, client retries {stats.retries}"
        )
        self.bar.update(self.task, completed=stats.turns_done, description=line)
        if not self.console.is_terminal and time.monotonic() - self.last >= 10:
            self.last = time.monotonic()
            total = self.harness.config.conversations * self.harness.config.turns
            self.console.print(f"chaos: turns {stats.turns_done}/{total}, {line}")


def _report(
    config: ChaosConfig,
    harness: Chaos,
    verdict: Verdict,
    ran: float,
    total: float,
    db_url: str,
) -> dict[str, Any]:
    stats = harness.stats
    return {
        "meta": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "database": "postgresql" if db_url.startswith("postgres") else "sqlite",
            "workdir": str(harness.workdir),
        },
        "config": dataclasses.asdict(config),
        "harness": {
            "worker_starts": stats.worker_starts,
            "worker_crashes": stats.worker_crashes,
            "random_kills": stats.random_kills,
            "faults_armed": dict(stats.armed),
            "worst_moment_kills": dict(harness.worst_moment_kills()),
            "sends": stats.sends,
            "duplicate_sends": stats.duplicate_sends,
            "client_retries": stats.retries,
            "client_errors": dict(stats.errors),
            "late_duplicate_mismatches": stats.late_mismatches,
        },
        "verdict": verdict.as_dict(),
        "seconds": {"run": round(ran, 1), "total": round(total, 1)},
    }


def summary_table(report: dict[str, Any]) -> Table:
    v, h = report["verdict"], report["harness"]
    worst = sum(h["worst_moment_kills"].values())
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(h["worst_moment_kills"].items()))
    table = Table(title=f"Chaos run: {'PASSED' if v['passed'] else 'FAILED'}")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_column("detail")
    rows = [
        ("conversations", v["conversations"], f"{v['finished']} finished"),
        ("turns", v["turns_expected"], f"{v['turns_answered']} answered once"),
        ("tool calls", v["tool_calls"], f"{v['notes']} notes, {v['emails']} emails"),
        ("kills", h["random_kills"] + worst, f"{h['random_kills']} random, {worst} worst-moment"),
        ("worst-moment kills", worst, kinds or "-"),
        ("worker starts", h["worker_starts"], f"{h['worker_crashes']} crashed on their own"),
        (
            "client sends",
            h["sends"],
            f"{h['duplicate_sends']} duplicates, {h['client_retries']} retries",
        ),
        ("duplicates found", v["duplicates"], "must be 0"),
        ("lost turns", v["lost_turns"] + v["unanswered_turns"], "must be 0"),
        ("lost side effects", v["lost_effects"], "must be 0"),
        ("ledger rows left claimed", v["claimed_left"], "must be 0"),
        ("runs replayed", v["runs_replayed"], f"{v['replay_failures']} failed"),
        ("time", f"{report['seconds']['total']} s", f"{report['seconds']['run']} s of load"),
    ]
    for name, value, detail in rows:
        table.add_row(name, str(value), detail)
    return table


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the CI size: about 2 minutes")
    parser.add_argument("--conversations", type=int)
    parser.add_argument("--turns", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--kill-every",
        type=lambda v: tuple(float(x) for x in v.split(",")),
        metavar="LOW,HIGH",
        help="seconds between random kills, drawn uniformly (default 1,3)",
    )
    parser.add_argument(
        "--model-timeout",
        type=float,
        help="model calls' start-to-close in seconds (default: the agent's own, 120)",
    )
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    parser.add_argument("--workdir", type=Path, help="keep the database and worker logs here")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> ChaosConfig:
    base = SHORT if args.short else ChaosConfig()
    overrides = {
        name: getattr(args, name)
        for name in (
            "conversations",
            "turns",
            "workers",
            "concurrency",
            "seed",
            "kill_every",
            "model_timeout",
        )
        if getattr(args, name) is not None
    }
    if overrides.get("model_timeout") == 0:
        overrides["model_timeout"] = None
    return dataclasses.replace(base, **overrides)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    config = config_from(args)
    with tempfile.TemporaryDirectory(prefix="chaos-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(chaos(config, workdir))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    console = Console()
    console.print(summary_table(report))
    for problem in report["verdict"]["problems"]:
        console.print(f"- {problem}")
    return 0 if report["verdict"]["passed"] else 1


if __name__ == "__main__":
    run_then_exit(lambda: sys.exit(main()))
