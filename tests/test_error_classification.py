"""Errors classified on purpose: provider errors by status and headers, bugs bounded.

Unit tests of the mapping build the providers' real exception objects around real
`httpx.Response`s; the integration tests run a real worker whose model client or tool has
a bug, and read the workflow's history.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import anthropic
import httpx
import openai
import pytest
from autogen_core.models import CreateResult, LLMMessage
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from temporalio.api.enums.v1 import EventType, RetryState
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.bounds import MAX_ERROR_CHARS
from activities.db import Database
from activities.errors import UNEXPECTED_ATTEMPTS, classified, failure
from activities.model import ModelActivities
from activities.provider_errors import MAX_RETRY_AFTER, provider_failure, provider_failures
from activities.tables import LedgerEntry
from activities.transcript import Transcript
from agents.registry import AgentDefinition, AgentRegistry
from agents.tools import ToolContext, tool
from conversation_client import Conversations
from demo.scripted_model import ScriptedChatCompletionClient
from interface import DescribeAgentInput, StartConversation
from support.ids import new_id
from support.workers import WorkerFactory

REQUEST = httpx.Request("POST", "https://api.example.test/v1/chat/completions")
KEY = "sk-proj-0123456789abcdefABCDEF"


def openai_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    response = httpx.Response(status, headers=headers, request=REQUEST)
    return openai.APIStatusError(f"Error code: {status}", response=response, body=None)


def anthropic_error(status: int, headers: dict[str, str] | None = None) -> Exception:
    response = httpx.Response(status, headers=headers, request=REQUEST)
    return anthropic.APIStatusError(f"Error code: {status}", response=response, body=None)


def mapped(exc: Exception) -> ApplicationError:
    found = provider_failure(exc)
    assert found is not None, f"{type(exc).__name__} was not taken for a provider error"
    return found


# --- provider errors: status codes and headers ------------------------------------------


@pytest.mark.parametrize("make", [openai_error, anthropic_error], ids=["openai", "anthropic"])
@pytest.mark.parametrize(
    ("status", "retried"),
    [(408, True), (409, True), (429, True), (500, True), (503, True), (529, True)]
    + [(400, False), (401, False), (403, False), (404, False), (422, False)],
)
def test_status_decides_without_hints(make: Any, status: int, retried: bool) -> None:
    error = mapped(make(status))
    assert error.type == f"ModelHTTP{status}"
    assert error.non_retryable is (not retried)
    assert f"HTTP {status}" in error.message


def test_anthropic_overloaded_529_is_retried() -> None:
    response = httpx.Response(529, request=REQUEST)
    error = mapped(anthropic.OverloadedError("Overloaded", response=response, body=None))
    assert (error.type, error.non_retryable) == ("ModelHTTP529", False)


@pytest.mark.parametrize(
    ("status", "hint", "retried"), [(400, "true", True), (429, "false", False)]
)
def test_x_should_retry_overrides_the_status(status: int, hint: str, retried: bool) -> None:
    error = mapped(openai_error(status, {"x-should-retry": hint}))
    assert error.non_retryable is (not retried)


def test_retry_after_ms_is_honoured_before_retry_after() -> None:
    error = mapped(openai_error(429, {"retry-after-ms": "1500", "retry-after": "9"}))
    assert error.next_retry_delay == timedelta(milliseconds=1500)


@pytest.mark.parametrize(
    ("headers", "delay"),
    [
        ({"retry-after": "3"}, timedelta(seconds=3)),
        ({"retry-after": "0.25"}, timedelta(milliseconds=250)),
        ({"retry-after-ms": "not a number", "retry-after": "2"}, timedelta(seconds=2)),
        ({"retry-after": "86400"}, MAX_RETRY_AFTER),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "-5"}, None),
        ({}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], delay: timedelta | None) -> None:
    assert mapped(anthropic_error(503, headers)).next_retry_delay == delay


def test_retry_after_as_an_http_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    delay = mapped(openai_error(429, {"retry-after": later})).next_retry_delay
    assert delay is not None and timedelta(seconds=25) < delay <= timedelta(seconds=31)


def test_a_hint_on_an_error_that_is_not_retried_sets_no_delay() -> None:
    error = mapped(openai_error(429, {"x-should-retry": "false", "retry-after": "3"}))
    assert error.non_retryable and error.next_retry_delay is None


@pytest.mark.parametrize(
    "exc",
    [
        openai.APIConnectionError(request=REQUEST),
        openai.APITimeoutError(request=REQUEST),
        anthropic.APIConnectionError(request=REQUEST),
        httpx.ConnectError("refused", request=REQUEST),
        TimeoutError(),
        ConnectionResetError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_unreachable_endpoint_is_retried(exc: Exception) -> None:
    error = mapped(exc)
    assert (error.type, error.non_retryable) == ("ModelUnavailable", False)


def test_a_provider_error_wrapped_by_a_framework_keeps_its_classification() -> None:
    try:
        try:
            raise openai_error(400)
        except openai.APIStatusError as inner:
            raise RuntimeError("the framework's wrapper") from inner
    except RuntimeError as outer:
        assert mapped(outer).type == "ModelHTTP400"


def test_provider_messages_are_scrubbed_and_bounded() -> None:
    response = httpx.Response(401, request=REQUEST)
    text = f"Incorrect API key provided: {KEY}. " + "x" * 50_000
    error = mapped(openai.AuthenticationError(text, response=response, body=None))
    assert KEY not in error.message and KEY[8:24] not in error.message
    assert len(error.message) <= MAX_ERROR_CHARS and "[truncated" in error.message


def test_other_errors_pass_the_provider_mapping_unchanged() -> None:
    assert provider_failure(TypeError("no")) is None
    with pytest.raises(KeyError), provider_failures():
        raise KeyError("passes through")
    with pytest.raises(ApplicationError) as raised, provider_failures():
        raise openai_error(503)
    assert raised.value.type == "ModelHTTP503"


# --- everything else: transient, or a bug retried a bounded few times ----------------------


@pytest.mark.parametrize("exc", [TypeError("x"), KeyError("k"), AttributeError("a")])
def test_a_bug_is_retried_until_the_bounded_attempt(exc: Exception) -> None:
    kinds = [failure(exc, attempt) for attempt in range(1, UNEXPECTED_ATTEMPTS + 2)]
    assert [k.non_retryable for k in kinds] == [False] * (UNEXPECTED_ATTEMPTS - 1) + [True, True]
    assert {k.type for k in kinds} == {type(exc).__name__}
    assert (
        f"attempt {UNEXPECTED_ATTEMPTS} of {UNEXPECTED_ATTEMPTS}, not retried" in kinds[-2].message
    )


def test_a_transient_database_error_is_retried_without_its_sql() -> None:
    exc = OperationalError(
        "INSERT INTO t VALUES (?)", ("customer's secret text",), Exception("locked")
    )
    error = failure(exc, attempt=50)
    assert (error.type, error.non_retryable) == ("OperationalError", False)
    assert "customer's secret text" not in error.message and "INSERT" not in error.message
    assert "locked" in error.message


def test_an_unexpected_database_error_is_bounded_and_shows_no_parameters() -> None:
    exc = IntegrityError("INSERT INTO t VALUES (?)", ("customer text",), Exception("UNIQUE"))
    error = failure(exc, attempt=UNEXPECTED_ATTEMPTS)
    assert (error.type, error.non_retryable) == ("IntegrityError", True)
    assert "customer text" not in error.message


def test_a_validation_error_shows_locations_not_input() -> None:
    class Reply(BaseModel):
        count: int

    with pytest.raises(ValidationError) as raised:
        Reply.model_validate({"count": "customer text"})
    error = failure(raised.value, attempt=1)
    assert error.type == "ValidationError" and "count" in error.message
    assert "customer text" not in error.message


def test_an_unexpected_message_is_scrubbed_and_bounded() -> None:
    error = failure(ValueError(f"Bearer {KEY} " + "y" * 10_000), attempt=1)
    assert KEY not in error.message and "Bearer" not in error.message.replace("[redacted]", "")
    assert len(error.message) <= MAX_ERROR_CHARS


async def test_classified_keeps_the_bugs_traceback_and_reads_the_attempt() -> None:
    def buggy() -> None:
        {}["missing"]

    async def body() -> None:
        with classified():
            buggy()

    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=UNEXPECTED_ATTEMPTS)
    with pytest.raises(ApplicationError) as raised:
        await env.run(body)
    assert (raised.value.type, raised.value.non_retryable) == ("KeyError", True)
    assert raised.value.__cause__ is None  # the original, with its message, is not chained
    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert "buggy" in frames


async def test_describe_on_a_worker_without_the_pydantic_converter_fails_at_once(
    db: Database,
) -> None:
    agents = AgentRegistry([_agent("plain", ScriptedChatCompletionClient())])
    activities = ModelActivities(agents, Transcript(db))
    env = ActivityEnvironment()
    env.payload_converter = DataConverter.default.payload_converter
    with pytest.raises(ApplicationError) as raised:
        await env.run(activities.describe_agent, DescribeAgentInput(agent="plain"))
    assert (raised.value.type, raised.value.non_retryable) == ("ConfigurationError", True)
    assert "pydantic_data_converter" in raised.value.message


# --- with a real worker --------------------------------------------------------------------


class BrokenModel(ScriptedChatCompletionClient):
    """A model client with a bug in its conversion code."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def create(self, messages: Sequence[LLMMessage], **kwargs: Any) -> CreateResult:
        self.calls += 1
        raise TypeError(f"Object of type timedelta is not JSON serializable (call {self.calls})")


def _agent(name: str, model: Any, tools: Sequence[Any] = ()) -> AgentDefinition:
    return AgentDefinition(name=name, system_message="test", model_client=model, tools=tools)


async def test_a_bug_in_the_model_client_fails_the_turn_after_bounded_attempts(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    model, cid = BrokenModel(), new_id()
    started = time.monotonic()
    async with run_worker(db, AgentRegistry([_agent("broken", model)])):
        turn = conversations.ask(cid, "hello", "m-1", StartConversation(agent="broken"))
        result = await asyncio.wait_for(turn, 60)
    elapsed = time.monotonic() - started
    assert result.status == "failed"
    assert elapsed < 30, f"the turn took {elapsed:.0f} s: the bug was retried on and on"
    assert model.calls == UNEXPECTED_ATTEMPTS
    events = (await client.get_workflow_handle(cid).fetch_history()).events
    started_attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    failed = [
        e.activity_task_failed_event_attributes
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    assert started_attempts == [UNEXPECTED_ATTEMPTS]  # history records the last attempt
    assert len(failed) == 1
    assert failed[0].retry_state == RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE
    info = failed[0].failure.application_failure_info
    assert (info.type, info.non_retryable) == ("TypeError", True)
    assert "not JSON serializable (call 3)" in failed[0].failure.message
    assert "create" in failed[0].failure.stack_trace  # where the bug is


class Opaque:
    """A value pydantic cannot serialize."""


class Unrenderable(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    value: Opaque


class NoArgs(BaseModel):
    pass


async def test_a_bug_after_a_database_tool_ran_is_bounded_and_leaves_no_ledger_row(
    any_db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    runs: list[str] = []

    @tool(kind="database")
    async def broken_result(ctx: ToolContext, args: NoArgs) -> Unrenderable:
        """Return a result that cannot be rendered."""
        runs.append(ctx.idempotency_key)
        return Unrenderable(value=Opaque())

    agent = _agent("unrenderable", ScriptedChatCompletionClient(), [broken_result])
    cid, start = new_id(), StartConversation(agent="unrenderable")
    started = time.monotonic()
    async with run_worker(any_db, AgentRegistry([agent])):
        turn = conversations.ask(cid, "!call broken_result {}", "m-1", start)
        result = await asyncio.wait_for(turn, 60)
    assert time.monotonic() - started < 30
    assert result.status == "completed"  # the model hears of the failure; the turn goes on
    (call,) = result.tool_calls
    assert call.status == "error"
    assert json.loads(call.result)["error"] == "PydanticSerializationError"
    assert len(runs) == UNEXPECTED_ATTEMPTS
    async with any_db.session() as session:
        rows = await session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.conversation_id == cid)
        )
    assert rows == 0  # each attempt's transaction rolled back
