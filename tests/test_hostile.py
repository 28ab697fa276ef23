"""Hostile and malformed input against a running worker (hypothesis where it fits).

Raw signal and update payloads that bypass the pydantic client models, hostile model
outputs, tool results over the payload limit, SQL injection through a tool argument, and
the demo's approval switch. Every case ends with the conversation answering a normal turn
and its history showing that no workflow task failed, or (one documented case) that every
failed workflow task was followed by a completed one.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from autogen_core import FunctionCall
from autogen_core.models import CreateResult, LLMMessage, RequestUsage
from autogen_core.models import UserMessage as AutogenUserMessage
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import func, select
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import RawValue
from temporalio.service import RPCError

from activities.db import Database
from activities.model import MAX_ARGUMENT_BYTES, MAX_REPLY_BYTES, MAX_TOOL_CALLS
from activities.tables import LedgerEntry, TranscriptMessage
from activities.tools import MAX_RESULT_BYTES
from agents.definitions import AgentDefinition
from agents.registry import AgentRegistry
from agents.tools import ToolContext, tool
from conversation_client import Conversations
from demo.agent import claims_assistant
from demo.scripted_model import ScriptedChatCompletionClient
from demo.tables import Claim, ClaimNote, OutboxEmail, Policy
from interface import Message, StartConversation, ToolDecision, TurnResult
from settings import WorkerSettings
from support.ids import new_id
from support.paths import ROOT
from support.workers import WorkerFactory
from worker import default_agents

TRUNCATED = re.compile(r"\.\.\. \[truncated (\d+) characters\]$")
INJECTION = "'; DROP TABLE claims; --"


class HostileModel(ScriptedChatCompletionClient):
    """The scripted model; a test can queue the exact response to the next user turn."""

    def __init__(self) -> None:
        super().__init__()
        self.script: deque[str | list[FunctionCall]] = deque()

    async def create(self, messages: Sequence[LLMMessage], **kwargs: Any) -> CreateResult:
        if self.script and isinstance(messages[-1], AutogenUserMessage):
            content = self.script.popleft()
            finish = "function_calls" if isinstance(content, list) else "stop"
            usage = RequestUsage(prompt_tokens=1, completion_tokens=1)
            return CreateResult(finish_reason=finish, content=content, usage=usage, cached=False)
        return await super().create(messages, **kwargs)


class EchoArgs(BaseModel):
    text: str


class SizeArgs(BaseModel):
    size: int


def hostile_agents(db: Database, model: HostileModel) -> AgentRegistry:
    @tool(kind="read")
    async def echo(ctx: ToolContext, args: EchoArgs) -> str:
        """Echo the text back."""
        return args.text

    @tool(kind="read")
    async def blob(ctx: ToolContext, args: SizeArgs) -> str:
        """Return `size` characters."""
        return "x" * args.size

    @tool(kind="database")
    async def db_blob(ctx: ToolContext, args: SizeArgs) -> str:
        """Return `size` characters, under the ledger."""
        return "z" * args.size

    hostile = AgentDefinition(
        name="hostile",
        system_message="test",
        model_client=model,
        tools=[echo, blob, db_blob],
        max_steps=3,
    )
    return AgentRegistry([claims_assistant(model, db.sessions), hostile])


@dataclass
class Running:
    """One worker and one conversation, reused by every example of a property."""

    client: Client
    conversations: Conversations
    model: HostileModel
    db: Database
    cid: str
    start: StartConversation

    async def ask(self, text: str) -> TurnResult:
        message_id = f"m-{uuid.uuid4().hex[:12]}"
        return await self.conversations.ask(self.cid, text, message_id, self.start)

    def handle(self) -> WorkflowHandle:
        return self.client.get_workflow_handle(self.cid)


@pytest.fixture
async def hostile(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> AsyncIterator[Running]:
    model = HostileModel()
    start = StartConversation(agent="hostile")
    async with run_worker(db, hostile_agents(db, model)):
        running = Running(client, conversations, model, db, new_id("hostile"), start)
        assert (await running.ask("!say ready")).reply == "ready"
        yield running


async def failed_workflow_tasks(handle: WorkflowHandle) -> list[str]:
    history = await handle.fetch_history()
    return [
        e.workflow_task_failed_event_attributes.failure.message
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]


async def assert_no_workflow_task_failed(handle: WorkflowHandle) -> None:
    """Not one WORKFLOW_TASK_FAILED event in the conversation's history."""
    assert await failed_workflow_tasks(handle) == []


async def assert_workflow_tasks_recovered(handle: WorkflowHandle) -> None:
    """Every WORKFLOW_TASK_FAILED event is followed by a WORKFLOW_TASK_COMPLETED one."""
    history = await handle.fetch_history()
    last_failed = last_completed = -1
    for index, event in enumerate(history.events):
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            last_failed = index
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            last_completed = index
    assert last_completed > last_failed


def raw(data: bytes, encoding: bytes = b"json/plain") -> RawValue:
    return RawValue(Payload(metadata={"encoding": encoding}, data=data))


def valid(message_id: str, text: str) -> RawValue:
    return raw(json.dumps({"message_id": message_id, "text": text}).encode())


# --- signal and update payloads -----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
# any Unicode but surrogates: control characters, NUL, bidi marks, astral planes
hostile_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)
message_objects = st.fixed_dictionaries(
    {},
    optional={
        "message_id": hostile_text | json_values,
        "text": hostile_text | json_values,
        "extra": json_values,
    },
)


@st.composite
def payload_data(draw: st.DrawFn) -> RawValue:
    """A JSON object with missing fields, wrong types or control characters; or bytes that
    are not JSON, not UTF-8, or under an encoding no converter knows."""
    document = json.dumps(draw(message_objects), ensure_ascii=draw(st.booleans())).encode()
    kind = draw(st.sampled_from(["json", "invalid-utf8", "bytes", "encoding"]))
    if kind == "invalid-utf8":
        at = draw(st.integers(0, len(document)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"]))
        document = document[:at] + bad + document[at:]
    elif kind == "bytes":
        document = draw(st.binary(max_size=64))
    encoding = b"binary/unknown" if kind == "encoding" else b"json/plain"
    return raw(document, encoding)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(arguments=st.lists(payload_data(), max_size=2))
@example(arguments=[])  # the CLI's `temporal workflow signal` without --input
@example(arguments=[valid("two-1", "!say one"), valid("two-2", "!say two")])
@example(arguments=[raw(b'{"message_id": "s", "text": "\\ud800"}')])  # lone surrogate
@example(arguments=[raw(b'{"message_id": "n", "text": "a\\u0000b\\u001b[31m"}')])
@example(arguments=[raw(b"null")])
async def test_malformed_user_messages_are_dropped_or_rejected(
    hostile: Running, arguments: list[RawValue]
) -> None:
    """A signal is applied or dropped with a warning; an update is accepted or rejected with
    an error for its caller; either way no workflow task fails and the next turn answers."""
    handle = hostile.handle()
    await handle.signal("user_message", args=arguments)
    try:
        result = await handle.execute_update(
            "ask", args=arguments, id=f"u-{uuid.uuid4().hex}", result_type=TurnResult
        )
    except WorkflowUpdateFailedError as rejected:
        assert str(rejected.cause)  # the validator's or the decoder's reason
    else:
        assert result.status in ("completed", "duplicate", "step_limit")
    assert (await hostile.ask("!say still here")).reply == "still here"
    await assert_no_workflow_task_failed(handle)


async def test_malformed_decisions_and_end_signals_are_dropped(hostile: Running) -> None:
    handle = hostile.handle()
    await handle.signal("decide_tool")
    await handle.signal("decide_tool", args=[raw(b'{"approve": "maybe"}'), raw(b"{}")])
    await handle.signal("decide_tool", raw(b'"call_1"'))
    await handle.signal("end", raw(b'"now"'))
    await handle.signal("end", args=[raw(b"{}"), raw(b"{}")])
    assert (await hostile.ask("!say not ended")).reply == "not ended"
    await assert_no_workflow_task_failed(handle)
    await handle.signal("end", raw(b"null"))  # a JSON null, as other SDKs send for "no input"
    summary = await handle.result()
    assert summary["turn_count"] == 2
    await assert_no_workflow_task_failed(handle)


async def test_oversized_messages_are_refused(hostile: Running) -> None:
    handle = hostile.handle()
    limit = hostile.start.settings.max_message_chars
    over_limit = valid("long", "q" * (limit + 1))
    with pytest.raises(WorkflowUpdateFailedError) as rejected:
        await handle.execute_update("ask", over_limit, id="long")
    assert f"longer than {limit} characters" in str(rejected.value.cause)
    await handle.signal("user_message", over_limit)  # dropped with a warning
    near_2mb = valid("near-2mb", "q" * 1_900_000)  # under the server's 2 MB blob limit
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update("ask", near_2mb, id="near-2mb")
    await handle.signal("user_message", near_2mb)
    with pytest.raises(RPCError, match="size exceeds limit"):  # the server refuses it
        await handle.signal("user_message", valid("over-2mb", "q" * 2_100_000))
    for name in ("signal", "update"):  # over gRPC's 4 MB message limit
        with pytest.raises(RPCError, match="larger than max"):
            if name == "signal":
                await handle.signal("user_message", valid("5mb", "q" * 5_000_000))
            else:
                await handle.execute_update("ask", valid("5mb", "q" * 5_000_000), id="5mb")
    assert (await hostile.ask("!say still here")).reply == "still here"
    state = await hostile.conversations.state(hostile.cid)
    assert state.turn_count == 2  # "ready" and "still here": nothing oversized was taken
    await assert_no_workflow_task_failed(handle)


async def test_update_between_2_and_4_mb_fails_workflow_tasks_only_while_it_is_pending(
    hostile: Running,
) -> None:
    """The server takes an update of 2-4 MB, and the SDK puts the rejected request in its
    rejection, which breaks the 2 MB limit: the workflow task fails until the server gives
    the update up (about 20 s), then the conversation goes on. Documented in the README."""
    handle = hostile.handle()
    with pytest.raises((RPCError, WorkflowUpdateFailedError)):
        await handle.execute_update("ask", valid("3mb", "q" * 2_100_000), id="3mb")
    for _ in range(30):
        try:
            reply = await asyncio.wait_for(hostile.ask("!say recovered"), 10)
            break
        except (RPCError, TimeoutError):
            await asyncio.sleep(2)
    assert reply.reply == "recovered"
    assert await failed_workflow_tasks(handle)  # the limit this test documents
    await assert_workflow_tasks_recovered(handle)


# --- model outputs ------------------------------------------------------------------------

tool_names = st.sampled_from(["echo", "blob", "no_such_tool", "", "x" * 300, "'; --"])
tool_arguments = st.one_of(
    st.builds(lambda t: json.dumps({"text": t}), st.text(max_size=20)),
    st.builds(lambda n: json.dumps({"size": n}), st.integers(-5, 70_000)),
    st.text(max_size=30),  # rarely JSON
    st.just('{"text": 5}'),
    st.just("[1, 2]"),
)
tool_calls = st.lists(
    st.builds(lambda n, a: (n, a), tool_names, tool_arguments), min_size=1, max_size=60
)


def calls_of(pairs: Sequence[tuple[str, str]]) -> list[FunctionCall]:
    return [FunctionCall(id=f"c{i}", name=n, arguments=a) for i, (n, a) in enumerate(pairs)]


async def transcript(db: Database, cid: str) -> list[Message]:
    async with db.session() as session:
        bodies = await session.scalars(
            select(TranscriptMessage.body)
            .where(TranscriptMessage.conversation_id == cid)
            .order_by(TranscriptMessage.seq)
        )
        return [Message.model_validate_json(body) for body in bodies]


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pairs=tool_calls)
@example(pairs=[("echo", json.dumps({"text": str(i)})) for i in range(300)])
@example(pairs=[("blob", json.dumps({"size": 64_000 + i})) for i in range(60)])
@example(pairs=[("echo", "{not json"), ("nope", "{}"), ("echo", '{"text": 5}')])
async def test_hostile_tool_calls_become_errors_or_are_bounded(
    hostile: Running, pairs: list[tuple[str, str]]
) -> None:
    """Invalid JSON, unknown tools and schema failures go back to the model as structured
    errors; at most MAX_TOOL_CALLS calls of one response run; none breaks the conversation."""
    hostile.model.script.append(calls_of(pairs))
    result = await hostile.ask("go")
    assert result.status == "completed"
    ran = pairs[:MAX_TOOL_CALLS]
    assert [c.name for c in result.tool_calls] == [n[:200] for n, _ in ran]
    for (name, arguments), record in zip(ran, result.tool_calls, strict=True):
        error = json.loads(record.result)["error"] if record.status == "error" else None
        if name not in ("echo", "blob"):
            assert error == "unknown_tool"
        elif not isinstance(_json_or_none(arguments), dict):
            assert error in ("invalid_json", "invalid_arguments")
        else:
            assert record.status == "ok" or error == "invalid_arguments"
    results = [m for m in await transcript(hostile.db, hostile.cid) if m.role == "tool"]
    assert all(len(m.content.encode()) <= MAX_RESULT_BYTES for m in results)
    if len(pairs) > MAX_TOOL_CALLS and not TRUNCATED.search(result.reply):
        # the scripted model's summary of its context: the calls beyond the limit failed
        assert "no result was recorded for this call" in result.reply
    assert (await hostile.ask("!say still here")).reply == "still here"
    await assert_no_workflow_task_failed(hostile.handle())


def _json_or_none(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


async def test_a_reply_over_the_payload_limit_is_truncated(hostile: Running) -> None:
    reply = "y" * 3_000_000
    hostile.model.script.append(reply)
    result = await hostile.ask("go")
    assert result.status == "completed"
    marker = TRUNCATED.search(result.reply)
    assert marker is not None and len(result.reply.encode()) <= MAX_REPLY_BYTES
    assert result.reply.startswith("y" * 1000)
    assert int(marker.group(1)) == len(reply) - result.reply.index("...")
    stored = [m for m in await transcript(hostile.db, hostile.cid) if m.role == "assistant"]
    assert stored[-1].content == reply  # the SQL transcript keeps the full text
    assert (await hostile.ask("!say still here")).reply == "still here"
    await assert_no_workflow_task_failed(hostile.handle())


async def test_oversized_tool_arguments_come_back_as_invalid_json(hostile: Running) -> None:
    arguments = json.dumps({"text": "a" * 3_000_000})
    hostile.model.script.append([FunctionCall(id="big", name="echo", arguments=arguments)])
    result = await hostile.ask("go")
    (record,) = result.tool_calls
    assert json.loads(record.result)["error"] == "invalid_json"
    assert len(record.arguments) <= MAX_ARGUMENT_BYTES
    assert (await hostile.ask("!say still here")).reply == "still here"
    await assert_no_workflow_task_failed(hostile.handle())


# --- tool results -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["blob", "db_blob"])
async def test_tool_results_over_the_payload_limit_are_truncated(
    hostile: Running, name: str
) -> None:
    """The model sees the cut result with its marker; the ledger records that same result."""
    size = 3_000_000
    result = await hostile.ask(f'!call {name} {{"size": {size}}}')
    assert result.status == "completed" and result.tool_calls[0].status == "ok"
    (seen,) = [m for m in await transcript(hostile.db, hostile.cid) if m.role == "tool"]
    marker = TRUNCATED.search(seen.content)
    assert marker is not None and len(seen.content.encode()) <= MAX_RESULT_BYTES
    assert int(marker.group(1)) == size - seen.content.index("...")
    assert marker.group(0) in result.reply  # the model's answer quotes the cut result
    if name == "db_blob":
        async with hostile.db.session() as session:
            (entry,) = (await session.scalars(select(LedgerEntry))).all()
        assert json.loads(entry.result or "{}")["content"] == seen.content
    assert (await hostile.ask("!say still here")).reply == "still here"
    await assert_no_workflow_task_failed(hostile.handle())


# --- SQL injection ------------------------------------------------------------------------


async def test_sql_in_tool_arguments_is_inert(
    any_db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    cid = new_id()
    async with any_db.session() as session:
        claims_before = await session.scalar(select(func.count()).select_from(Claim))
    note = json.dumps({"claim_id": 123, "text": INJECTION})
    policy = json.dumps({"policy_id": "POL-1001' OR '1'='1"})
    email = json.dumps({"claim_id": 123, "subject": INJECTION, "body": INJECTION})
    async with run_worker(any_db):
        turn = await conversations.ask(
            cid, f"!call create_claim_note {note}\n!call lookup_policy {policy}", "m-1"
        )
        await conversations.ask(cid, f"!call send_customer_email {email}", "m-2")
        after = await conversations.ask(cid, "Check policy status for claim 123", "m-3")
    statuses = {c.name: (c.status, c.result) for c in turn.tool_calls}
    assert statuses["create_claim_note"][0] == "ok"
    assert statuses["lookup_policy"] == (
        "error",
        json.dumps({"error": "ToolBusinessError", "message": "no policy POL-1001' OR '1'='1"}),
    )
    assert "Claim 123 is in_review" in after.reply
    async with any_db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Claim)) == claims_before
        assert await session.scalar(select(func.count()).select_from(Policy)) > 0
        notes = (
            await session.scalars(select(ClaimNote).where(ClaimNote.conversation_id == cid))
        ).all()
        (sent,) = (
            await session.scalars(select(OutboxEmail).where(OutboxEmail.conversation_id == cid))
        ).all()
    assert [n.text for n in notes] == [INJECTION]
    assert (sent.subject, sent.body) == (INJECTION, INJECTION)
    await assert_no_workflow_task_failed(client.get_workflow_handle(cid))


async def test_control_characters_reach_the_database_safely(
    any_db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    """NUL and other control characters in the conversation ID, a message ID, a message and
    tool arguments. PostgreSQL text cannot hold NUL: IDs are stored with U+FFFD for it, and
    there a note with NUL fails as a tool error."""
    cid = f"{new_id()}\x00nul"
    nul = json.dumps({"claim_id": 123, "text": "a\x00b"})
    controls = "bell\x07 esc\x1b[31m rtl\u202e tab\t"
    other = json.dumps({"claim_id": 123, "text": controls})
    async with run_worker(any_db):
        first = await conversations.ask(cid, "!say a\x00b\x1b[0m", "m\x00-1")
        notes = await conversations.ask(
            cid, f"!call create_claim_note {nul}\n!call create_claim_note {other}", "m-2"
        )
        after = await conversations.ask(cid, "!say still here", "m-3")
    assert first.reply == "a\x00b\x1b[0m"
    statuses = [c.status for c in notes.tool_calls]
    assert statuses == (["ok", "ok"] if any_db.is_sqlite else ["error", "ok"])
    assert after.reply == "still here"
    async with any_db.session() as session:
        stored = (
            await session.scalars(
                select(ClaimNote.text).where(
                    ClaimNote.conversation_id == cid.replace("\x00", "\ufffd")
                )
            )
        ).all()
    assert controls in stored
    await assert_no_workflow_task_failed(client.get_workflow_handle(cid))


def test_no_sql_is_built_from_strings() -> None:
    """Where tool arguments and model output reach SQL, it is built with SQLAlchemy
    expressions: no `text()` or `execute()` of an f-string, %-formatting, .format() or a
    concatenation. (activities/db.py formats only constants: its migration lock ID and
    `BEGIN` statements.)"""
    built = re.compile(
        r"""\b(text|execute|exec_driver_sql)\(\s*(f["']|["'][^"']*["']\s*(%|\+|\.format))"""
    )
    paths = [
        path
        for folder in ("activities", "agents", "demo", "examples", "gateway")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != ROOT / "activities" / "db.py"
    ]
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in paths
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if built.search(line)
    ]
    assert len(paths) > 20 and offenders == []


# --- the demo's approval switch -----------------------------------------------------------


@pytest.mark.parametrize(("value", "needs_approval"), [("1", True), ("0", False), ("", False)])
def test_demo_email_approval_setting(value: str, needs_approval: bool) -> None:
    env: Mapping[str, str] = {"DEMO_EMAIL_APPROVAL": value}
    assert WorkerSettings.from_env(env).demo_email_approval is needs_approval


async def test_demo_email_waits_for_approval_when_switched_on(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    cid = new_id()
    settings = WorkerSettings.from_env({"DEMO_EMAIL_APPROVAL": "1"})
    async with run_worker(db, default_agents(settings, db)):
        await conversations.ask(cid, "Check policy status for claim 123", "m-1")
        turn = asyncio.create_task(conversations.ask(cid, "email the customer an update", "m-2"))
        for _ in range(200):
            state = await conversations.state(cid)
            if state.pending_approvals:
                break
            await asyncio.sleep(0.05)
        assert state.status == "waiting_approval"
        (pending,) = state.pending_approvals
        assert pending.name == "send_customer_email"
        async with db.session() as session:
            assert await session.scalar(select(func.count()).select_from(OutboxEmail)) == 0
        await conversations.decide(
            cid, ToolDecision(tool_call_id=pending.tool_call_id, approve=True)
        )
        result = await turn
    assert result.tool_calls[0].status == "ok" and "ada@example.com" in result.reply
    async with db.session() as session:
        emails = await session.scalar(
            select(func.count()).select_from(OutboxEmail).where(OutboxEmail.conversation_id == cid)
        )
    assert emails == 1
    await assert_no_workflow_task_failed(client.get_workflow_handle(cid))


async def test_the_client_refuses_text_over_1_mb_before_sending(
    conversations: Conversations, client: Client
) -> None:
    """An `ask` of 2 to 4 MB would stall the conversation (README, Known limits): the
    client refuses anything over 1 MB, and nothing reaches the server."""
    cid = new_id("big")
    with pytest.raises(ValueError, match="1,500,000 bytes"):
        await conversations.ask(cid, "q" * 1_500_000, "m-1")
    with pytest.raises(ValueError, match="1,500,000 bytes"):
        await conversations.send(cid, "q" * 1_500_000, "m-2")
    with pytest.raises(RPCError, match="not found"):
        await client.get_workflow_handle(cid).describe()
