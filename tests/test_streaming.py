"""The conversation's event stream (docs/streaming.md): durable events from the workflow,
text deltas through the database, resumable by event ID, across retries and
continue-as-new, with nothing per token in history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

from autogen_core.models import CreateResult, LLMMessage
from temporalio.client import Client

from activities.db import Database
from activities.deltas import TextDeltas
from agents.definitions import AgentDefinition
from agents.registry import AgentRegistry
from conversation_client import Conversations, parse_event_id
from demo.scripted_model import ScriptedChatCompletionClient
from interface import ConversationSettings, ModelPolicy, StartConversation
from interface.events import ConversationEvent
from interface.policies import RetrySettings
from support.ids import new_id
from support.workers import WorkerFactory

STATUS = "what is the status of claim 123?"
FAST = RetrySettings(initial_interval=timedelta(milliseconds=50), maximum_attempts=3)


class _FailsOnceMidStream(ScriptedChatCompletionClient):
    """Streams part of its reply, then fails its first attempt (a dropped connection)."""

    def __init__(self) -> None:
        super().__init__(token_delay=0.001)
        self.failed = False

    async def create_stream(  # type: ignore[override]
        self, messages: Sequence[LLMMessage], **options: Any
    ) -> AsyncIterator[str | CreateResult]:
        count = 0
        async for chunk in super().create_stream(messages, **options):
            count += 1
            if count == 3 and not self.failed:
                self.failed = True
                await asyncio.sleep(0.1)  # its deltas reach the table before the failure
                raise ConnectionError("the model's stream broke")
            yield chunk


def _agents(model: ScriptedChatCompletionClient) -> AgentRegistry:
    definition = AgentDefinition(
        name="streamer",
        system_message="stream",
        model_client=model,
        model_policy=ModelPolicy(retry=FAST, heartbeat=None),
    )
    return AgentRegistry([definition])


async def _collect(
    conversations: Conversations, cid: str, after: str | None, until: int = 1
) -> list[tuple[str, ConversationEvent]]:
    """Events until the `until`-th turn_finished."""
    seen: list[tuple[str, ConversationEvent]] = []
    async for event_id, event in conversations.events(cid, after=after):
        seen.append((event_id, event))
        if sum(e.type == "turn_finished" for _, e in seen) == until:
            return seen
    return seen


def _split(events: list[ConversationEvent]) -> tuple[list[ConversationEvent], ...]:
    """(durable events, text deltas), each in order: a resumed subscription yields each
    in the same order, though a step's deltas may come before or after its model_started."""
    deltas = [e for e in events if e.type in ("text", "text_reset")]
    return [e for e in events if e.type not in ("text", "text_reset")], deltas


def _texts(events: list[ConversationEvent]) -> dict[tuple[int, int | None], str]:
    """What a client shows per (turn, step): deltas appended, a reset clears."""
    shown: dict[tuple[int, int | None], str] = {}
    for event in events:
        key = (event.turn, event.step)
        if event.type == "text_reset":
            shown[key] = ""
        elif event.type == "text":
            shown[key] = shown.get(key, "") + (event.text or "")
    return shown


async def test_a_turn_streams_its_events_and_text_and_history_holds_no_token(
    any_db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    """A subscriber from `event_position` sees the turn's durable events in order and its
    text deltas; the text is the reply; resuming from any ID yields exactly the rest."""
    streaming = Conversations(client, conversations.task_queue, deltas=TextDeltas(any_db))
    cid = new_id()
    async with run_worker(any_db):
        await streaming.start(cid)
        position = await streaming.event_position(cid)
        watcher = asyncio.create_task(_collect(streaming, cid, position))
        await asyncio.sleep(0.3)  # subscribed before the turn is sent
        result = await streaming.ask(cid, STATUS, "m-1")
        seen = await asyncio.wait_for(watcher, 20)
        await streaming.end(cid)
        await streaming.handle(cid).result()
        # after the end: the closed run's retained events, from the middle on
        middle = len(seen) // 2
        rest = await asyncio.wait_for(_collect(streaming, cid, seen[middle][0]), 20)
    events = [e for _, e in seen]
    durable = [e.type for e in events if e.type not in ("text", "text_reset")]
    assert durable == [
        "turn_accepted",
        "turn_started",
        "model_started",
        "tool_started",
        "tool_finished",
        "model_started",
        "turn_finished",
    ]
    finished = events[-1]
    assert finished.status == "completed" and finished.text == result.reply
    assert _texts(events)[(1, 2)] == result.reply
    # as it happened: a step's text after its model_started, so after the step before's tools
    started = {(e.turn, e.step): i for i, e in enumerate(events) if e.type == "model_started"}
    texts = [(i, e) for i, e in enumerate(events) if e.type == "text"]
    assert texts and all(i > started[(e.turn, e.step)] for i, e in texts)
    assert texts[0][0] > [e.type for e in events].index("tool_finished")
    assert _split([e for _, e in rest]) == _split(events[middle + 1 :])
    ids = [parse_event_id(i) for i, _ in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    deltas = [e for e in events if e.type == "text"]
    assert 1 <= len(deltas) < len(result.reply.split())  # batched: fewer rows than words
    history = await streaming.handle(cid).fetch_history()
    signals = [
        e for e in history.events if e.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert all(
        e.workflow_execution_signaled_event_attributes.signal_name
        != "__temporal_workflow_stream_publish"
        for e in signals
    )


async def test_a_retried_model_call_resets_its_text_and_a_reconnect_gets_what_it_missed(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    """The first attempt streams part of the reply and fails; the retry sends text_reset,
    then the whole text: the client shows it once. A subscriber that drops after the
    first delta and reconnects with its last ID sees exactly the events it missed."""
    streaming = Conversations(client, conversations.task_queue, deltas=TextDeltas(db))
    model = _FailsOnceMidStream()
    cid = new_id()
    start = StartConversation(agent="streamer")
    async with run_worker(db, _agents(model)):
        await streaming.start(cid, start)
        position = await streaming.event_position(cid)
        whole = asyncio.create_task(_collect(streaming, cid, position))
        dropped: list[tuple[str, ConversationEvent]] = []

        async def drop_after_first_delta() -> None:
            async for item in streaming.events(cid, after=position):
                dropped.append(item)
                if item[1].type == "text":
                    return

        first = asyncio.create_task(drop_after_first_delta())
        await asyncio.sleep(0.3)
        text = "one two three four five six seven eight"
        result = await streaming.ask(cid, f"!say {text}", "m-1", start)
        seen = await asyncio.wait_for(whole, 20)
        await asyncio.wait_for(first, 20)
        missed = await asyncio.wait_for(_collect(streaming, cid, dropped[-1][0]), 20)
    events = [e for _, e in seen]
    assert result.reply == text and model.failed
    kinds = [(e.type, e.attempt) for e in events if e.type in ("text", "text_reset")]
    assert ("text", 1) in kinds and ("text_reset", 2) in kinds
    assert kinds.index(("text_reset", 2)) > kinds.index(("text", 1))
    assert _texts(events)[(1, 1)] == text  # shown once, not "one two" + the whole text
    assert _split([e for _, e in dropped + missed]) == _split(events)


async def test_a_subscriber_follows_continue_as_new_without_noticing(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    """One turn per run: the second turn's events come from the next run, on the same
    subscription, with offsets that go on from the first run's."""
    streaming = Conversations(client, conversations.task_queue, deltas=TextDeltas(db))
    cid = new_id()
    start = StartConversation(settings=ConversationSettings(max_turns_per_run=1))
    async with run_worker(db):
        first_run = (await streaming.start(cid, start)).result_run_id
        position = await streaming.event_position(cid)
        watcher = asyncio.create_task(_collect(streaming, cid, position, until=2))
        await asyncio.sleep(0.3)
        one = await streaming.ask(cid, "!say first", "m-1", start)
        two = await streaming.ask(cid, "!say second", "m-2", start)
        seen = await asyncio.wait_for(watcher, 30)
        now_run = (await client.get_workflow_handle(cid).describe()).run_id
    finished = [e for _, e in seen if e.type == "turn_finished"]
    assert [e.text for e in finished] == [one.reply, two.reply]
    durable = [parse_event_id(i)[0] for i, e in seen if e.type not in ("text", "text_reset")]
    assert durable == list(range(durable[0], durable[0] + len(durable)))  # no gap, no repeat
    assert now_run != first_run  # the conversation did continue as new


async def test_delta_rows_are_batched_tagged_and_pruned(db: Database) -> None:
    """The first delta is written at once, later ones in one row per interval; a retry
    starts with text_reset; a new turn's first write deletes the earlier turns' rows;
    nothing is written for a conversation nobody listens to."""
    deltas = TextDeltas(db, interval=0.2)
    cid = new_id()
    async with deltas.writer(cid, 1, 1, 1) as nobody:
        assert nobody is None  # no reader marked it
    await deltas.listen(cid)
    deltas._refreshed = -1e9  # forget the worker's cached answer
    async with deltas.writer(cid, 1, 1, 1) as sink:
        assert sink is not None
        for word in ["a ", "b ", "c ", "d "]:
            await sink.text(word)
    async with deltas.writer(cid, 1, 1, 2) as retry:
        assert retry is not None
        await retry.text("a b c d")
    rows = await deltas.read(cid, 0)
    assert [(e.type, e.attempt, e.text) for _, e in rows] == [
        ("text", 1, "a "),
        ("text", 1, "b c d "),
        ("text_reset", 2, None),
        ("text", 2, "a b c d"),
    ]
    async with deltas.writer(cid, 2, 1, 1) as next_turn:
        assert next_turn is not None
        await next_turn.text("x")
    assert [(e.turn, e.text) for _, e in await deltas.read(cid, 0)] == [(2, "x")]
    assert await deltas.position() >= max(i for i, _ in rows)
