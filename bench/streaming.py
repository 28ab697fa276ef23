"""`python -m bench --streaming`: the event stream's targets (issue 12, docs/streaming.md).

One in-process worker on the embedded default (dev server, SQLite) and a scripted model that
takes 20 ms per token whether it streams or not. Four modes, each on its own conversation:
- `off`: streaming off (`stream_text=False`), nobody listening: the baseline;
- `on_idle`: streaming on (deltas to the database), nobody listening;
- `on_listening`: streaming on, a client of `Conversations.events()` listening;
- `workflow_streams`: the candidate we did not choose: the activity publishes its delta
  batches to the workflow's stream (`WorkflowStreamClient.from_within_activity`, one signal
  per 50 ms batch), and a client subscribes to them.
Per mode: history bytes and events per turn (the whole continue-as-new chain), the worker
process's CPU seconds per turn, and where a client listens, how long the first token of each
turn takes from the model emitting it to the client receiving it.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from autogen_core.models import CreateResult, LLMMessage
from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.worker import Worker

from activities.db import Database
from activities.deltas import TextDeltas
from activities.streaming import TextSink
from agent_conversations import AgentConversationsPlugin, WorkerTuning
from agents.definitions import AgentDefinition
from agents.registry import AgentRegistry
from bench.history import chain_size
from bench.stats import median, percentile
from conversation_client import Conversations
from demo.scripted_model import ScriptedChatCompletionClient
from devserver import start_dev_server
from interface import StartConversation
from worker import prepare_database

TOKEN_DELAY = 0.02
"""Seconds per token of the scripted endpoint (the issue's 20 ms)."""
REPLY_WORDS = 40
DELTAS_TOPIC = "deltas"
MODES = ("off", "on_idle", "on_listening", "workflow_streams")


class TimedModel(ScriptedChatCompletionClient):
    """The scripted model at 20 ms a token, streaming or not; notes when each streamed
    call emits its first token (perf_counter, the same clock as the listening client)."""

    def __init__(self) -> None:
        super().__init__(token_delay=TOKEN_DELAY)
        self.first_emitted: list[float] = []

    async def create(self, messages: Sequence[LLMMessage], **options: Any) -> CreateResult:
        result = await super().create(messages, **options)
        if isinstance(result.content, str):  # as long as streaming the same reply
            await asyncio.sleep(TOKEN_DELAY * len(result.content.split()))
        return result

    async def create_stream(  # type: ignore[override]
        self, messages: Sequence[LLMMessage], **options: Any
    ) -> AsyncGenerator[str | CreateResult, None]:
        result = await ScriptedChatCompletionClient.create(self, messages, **options)
        assert isinstance(result.content, str)
        for index, chunk in enumerate(re.findall(r"\S+\s*", result.content)):
            await asyncio.sleep(TOKEN_DELAY)
            if index == 0:
                self.first_emitted.append(time.perf_counter())
            yield chunk
        yield result


class WorkflowStreamDeltas:
    """Candidate (a): the activity publishes delta batches to the workflow's stream."""

    def writer(
        self, conversation_id: str, turn: int, step: int, attempt: int
    ) -> AbstractAsyncContextManager[TextSink | None]:
        return self._publishing()

    @asynccontextmanager
    async def _publishing(self) -> AsyncIterator[TextSink | None]:
        client = WorkflowStreamClient.from_within_activity(
            batch_interval=timedelta(milliseconds=50)
        )
        topic = client.topic(DELTAS_TOPIC, type=str)

        class Sink:
            first = True

            async def text(self, delta: str) -> None:
                topic.publish(delta, force_flush=Sink.first)  # the first delta at once
                Sink.first = False

        assert activity.info().workflow_id
        async with client:
            yield Sink()


@dataclass
class ModeResult:
    mode: str
    turns: int
    history_bytes_per_turn: float
    history_events_per_turn: float
    publish_signals: int
    cpu_ms_per_turn: float
    first_token_ms: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "turns": self.turns,
            "history_bytes_per_turn": round(self.history_bytes_per_turn),
            "history_events_per_turn": round(self.history_events_per_turn, 2),
            "publish_signals": self.publish_signals,
            "cpu_ms_per_turn": round(self.cpu_ms_per_turn, 2),
        }
        if self.first_token_ms:
            out["first_token_ms"] = {
                "p50": round(percentile(self.first_token_ms, 50), 1),
                "p95": round(percentile(self.first_token_ms, 95), 1),
                "max": round(max(self.first_token_ms), 1),
                "n": len(self.first_token_ms),
            }
        return out


async def _listen(
    conversations: Conversations, cid: str, after: str, received: dict[int, float]
) -> None:
    async for _, event in conversations.events(cid, after=after):
        if event.type == "text" and event.turn not in received:
            received[event.turn] = time.perf_counter()


async def _listen_stream(client: Client, cid: str, received: list[float]) -> None:
    """Candidate (a)'s reader: the first delta after each gap of silence starts a turn."""
    stream = WorkflowStreamClient.create(client, cid)
    last = 0.0
    async for _ in stream.subscribe([DELTAS_TOPIC], result_type=str):
        now = time.perf_counter()
        if now - last > 0.3:
            received.append(now)
        last = now


async def run_mode(client: Client, db: Database, mode: str, turns: int) -> ModeResult:
    model = TimedModel()
    agents = AgentRegistry([AgentDefinition("bench-streamer", "stream", model)])
    tuning = WorkerTuning(stream_text=mode in ("on_idle", "on_listening"))
    plugin = AgentConversationsPlugin(agents, db, tuning=tuning, search_attributes=False)
    if mode == "workflow_streams":
        assert plugin._model is not None
        plugin._model._deltas = WorkflowStreamDeltas()
    queue = f"bench-stream-{uuid.uuid4().hex[:8]}"
    deltas = TextDeltas(db)
    conversations = Conversations(client, queue, deltas=deltas)
    cid = f"bench-stream-{mode}-{uuid.uuid4().hex[:6]}"
    start = StartConversation(agent="bench-streamer")
    text = "!say " + " ".join(f"word{i}" for i in range(REPLY_WORDS))
    received: dict[int, float] = {}
    received_stream: list[float] = []
    async with Worker(client, task_queue=queue, plugins=[plugin]):
        await conversations.ask(cid, "!say warm", "warm", start)  # start, first turn
        listeners = []
        if mode in ("on_listening", "workflow_streams"):
            position = await conversations.event_position(cid)
            listeners.append(asyncio.create_task(_listen(conversations, cid, position, received)))
        if mode == "workflow_streams":
            listeners.append(asyncio.create_task(_listen_stream(client, cid, received_stream)))
        await asyncio.sleep(0.5)
        model.first_emitted.clear()
        before = await chain_size(client, cid)
        cpu = time.process_time()
        for turn in range(turns):
            await conversations.ask(cid, text, f"t-{turn}", start)
        cpu = time.process_time() - cpu
        await asyncio.sleep(0.3)
        after = await chain_size(client, cid)
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        signals = await _publish_signals(client, cid)
    emitted = model.first_emitted
    if mode == "on_listening":
        arrived = [received[t] for t in sorted(received) if t >= 2][: len(emitted)]
    else:
        arrived = received_stream[1 : 1 + len(emitted)]  # the warm-up turn's is dropped
    first_token = [1000 * (a - e) for a, e in zip(arrived, emitted, strict=False)]
    return ModeResult(
        mode=mode,
        turns=turns,
        history_bytes_per_turn=(after.bytes - before.bytes) / turns,
        history_events_per_turn=(after.events - before.events) / turns,
        publish_signals=signals,
        cpu_ms_per_turn=1000 * cpu / turns,
        first_token_ms=first_token,
    )


async def _publish_signals(client: Client, cid: str) -> int:
    history = await client.get_workflow_handle(cid).fetch_history()
    return sum(
        e.workflow_execution_signaled_event_attributes.signal_name
        == "__temporal_workflow_stream_publish"
        for e in history.events
        if e.HasField("workflow_execution_signaled_event_attributes")
    )


async def run_streaming(turns: int, repeats: int, workdir: Path | None = None) -> dict[str, Any]:
    env = await start_dev_server()
    scratch = workdir or Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    db = Database(f"sqlite:///{scratch}/agents.db")
    await prepare_database(db)
    results: dict[str, list[ModeResult]] = {mode: [] for mode in MODES}
    try:
        for _ in range(repeats):  # interleaved, so that a busy moment hits every mode
            for mode in MODES:
                results[mode].append(await run_mode(env.client, db, mode, turns))
        check_ms = await listened_check_cpu_ms(db)
    finally:
        await db.dispose()
        await env.shutdown()
    report = summarize(results, turns, repeats)
    off_cpu = median([r.cpu_ms_per_turn for r in results["off"]])
    report["figures"]["listened_check_cpu_ms"] = round(check_ms, 3)
    report["figures"]["cpu_ratio_idle_derived"] = round((off_cpu + check_ms) / off_cpu, 3)
    return report


async def listened_check_cpu_ms(db: Database, calls: int = 300) -> float:
    """CPU ms of the one thing a model call does more with streaming on and nobody
    listening: "does anyone listen?" read from the database (uncached: the worst case)."""
    deltas = TextDeltas(db)
    started = time.process_time()
    for index in range(calls):
        deltas._refreshed = -1e9  # the read every call, as if each were a second apart
        await deltas.listened(f"nobody-{index}")
    return 1000 * (time.process_time() - started) / calls


def summarize(results: dict[str, list[ModeResult]], turns: int, repeats: int) -> dict[str, Any]:
    modes = {mode: [r.as_dict() for r in runs] for mode, runs in results.items()}

    def med(mode: str, key: str) -> float:
        return median([getattr(r, key) for r in results[mode]])

    listening = [ms for r in results["on_listening"] for ms in r.first_token_ms]
    candidate = [ms for r in results["workflow_streams"] for ms in r.first_token_ms]
    off_bytes = med("off", "history_bytes_per_turn")
    figures: dict[str, Any] = {
        "first_token_p95_ms": round(percentile(listening, 95), 1),
        "first_token_p50_ms": round(percentile(listening, 50), 1),
        "history_ratio_listening": round(
            med("on_listening", "history_bytes_per_turn") / off_bytes, 3
        ),
        "history_ratio_idle": round(med("on_idle", "history_bytes_per_turn") / off_bytes, 3),
        "cpu_ratio_idle": round(
            med("on_idle", "cpu_ms_per_turn") / med("off", "cpu_ms_per_turn"), 3
        ),
        "publish_signals_listening": sum(r.publish_signals for r in results["on_listening"]),
        "workflow_streams_history_ratio": round(
            med("workflow_streams", "history_bytes_per_turn") / off_bytes, 3
        ),
        "workflow_streams_first_token_p95_ms": round(percentile(candidate, 95), 1)
        if candidate
        else None,
        "workflow_streams_publish_signals_per_turn": round(
            median([r.publish_signals / r.turns for r in results["workflow_streams"]]), 2
        ),
    }
    targets: list[tuple[str, float, float]] = [
        ("first token to an events() client, p95 (ms)", figures["first_token_p95_ms"], 100),
        ("history bytes per turn, streaming / not", figures["history_ratio_listening"], 1.3),
        (
            "stream publish signals in history (per token: none)",
            figures["publish_signals_listening"],
            0,
        ),
        ("worker CPU per turn, streaming nobody listening / off", figures["cpu_ratio_idle"], 1.05),
    ]
    return {
        "meta": {
            "turns": turns,
            "repeats": repeats,
            "token_delay_ms": TOKEN_DELAY * 1000,
            "reply_tokens": REPLY_WORDS,
        },
        "modes": modes,
        "figures": figures,
        "targets": [
            {"name": name, "value": value, "limit": limit, "met": value <= limit}
            for name, value, limit in targets
        ],
    }


def print_streaming(report: dict[str, Any]) -> None:
    print("Streaming (docs/streaming.md): per mode, medians over repeats")
    for mode, runs in report["modes"].items():
        for run in runs:
            print(f"  {mode:17} {run}")
    figures = report["figures"]
    print(
        f"  CPU of the listened check: {figures.get('listened_check_cpu_ms')} ms per model call; "
        f"derived ratio {figures.get('cpu_ratio_idle_derived')} (the end-to-end ratio is noisy "
        "on a shared machine)"
    )
    for target in report["targets"]:
        mark = "met" if target["met"] else "MISSED"
        print(f"  {target['name']}: {target['value']} (limit {target['limit']}): {mark}")
    print(f"  figures: {report['figures']}")
