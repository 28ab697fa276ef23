"""Log lines name their conversation, turn and tool call; a replay repeats none of them."""

from __future__ import annotations

import ast
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from agent_workflows.conversation import AgentConversation
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from activities.db import Database
from agents.adapters import function_tool
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.agent import claims_assistant
from interface import UserMessage
from observability import log_handler
from settings import WorkerSettings
from support.ids import new_id
from support.paths import ROOT
from support.workers import WorkerFactory

HISTORIES = sorted((ROOT / "tests" / "histories").glob("*.json"))
WORKFLOW_LOGGER = "temporalio.workflow"


async def record_note(text: str) -> str:
    """Logs the note through the tool's own logger, then returns it."""
    logging.getLogger("tests.tool").info("recording note %r", text)
    return f"noted: {text}"


async def broken_tool(text: str) -> str:
    """Always raises: the activity logs the exception and the model hears of it."""
    raise RuntimeError(f"cannot handle {text!r}")


def agents_with_logging_tools(db: Database) -> AgentRegistry:
    agent = claims_assistant(WorkerSettings().model_client(), db.sessions)
    extra = [function_tool(record_note, kind="read"), function_tool(broken_tool, kind="read")]
    return AgentRegistry([replace(agent, tools=[*agent.tools, *extra])])


@pytest.fixture
def printed() -> Iterator[io.StringIO]:
    """What the worker's log handler prints (observability.log_handler), at INFO."""
    stream = io.StringIO()
    handler = log_handler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def lines_with(stream: io.StringIO, text: str) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if text in line]


async def test_log_lines_carry_conversation_turn_and_key(
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    printed: io.StringIO,
):
    conversation_id = new_id()
    calls = "\n".join(
        [
            '!call record_note {"text": "customer called"}',
            '!call broken_tool {"text": "odd input"}',
        ]
    )
    async with run_worker(db, agents=agents_with_logging_tools(db)):
        # an empty message by signal is dropped, and the workflow logs why
        handle = await conversations.start(conversation_id)
        await handle.signal(AgentConversation.user_message, UserMessage(message_id="m-0", text=""))
        await conversations.ask(conversation_id, "Check claim 123", "m-1")
        result = await conversations.ask(conversation_id, calls, "m-2")
    assert [c.status for c in result.tool_calls] == ["ok", "error"]
    run_id = (await handle.describe()).run_id
    keys = {
        c.name: f"{conversation_id}/{run_id}/t2/s1/c{i}" for i, c in enumerate(result.tool_calls)
    }

    # the tool's own logger, and the activity's warning about the tool that raised
    [note] = lines_with(printed, "recording note 'customer called'")
    [raised] = lines_with(printed, "tool broken_tool raised RuntimeError")
    assert f"[conversation={conversation_id} turn=2 key={keys['record_note']}]" in note
    assert f"[conversation={conversation_id} turn=2 key={keys['broken_tool']}]" in raised

    # the workflow's own line names the conversation
    [dropped] = lines_with(printed, "user_message 'm-0' dropped: text is empty")
    assert f"[conversation={conversation_id}]" in dropped


async def test_replay_logs_nothing(
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    caplog: pytest.LogCaptureFixture,
):
    """workflow.logger drops records during replay: a replayed history, live or committed,
    logs none of the workflow's lines again."""
    conversation_id = new_id()
    caplog.set_level(logging.DEBUG)
    async with run_worker(db):
        handle = await conversations.start(conversation_id)
        await handle.signal(AgentConversation.user_message, UserMessage(message_id="m-0", text=""))
        await conversations.ask(conversation_id, "Check claim 123", "m-1")
    live = [r for r in caplog.records if r.name == WORKFLOW_LOGGER]
    assert any("dropped" in r.getMessage() for r in live), "the live run logged nothing"

    caplog.clear()
    histories = [await handle.fetch_history()]
    for path in HISTORIES:
        record = json.loads(path.read_text())
        histories.append(WorkflowHistory.from_json(record["workflow_id"], record["history"]))
    replayer = Replayer(workflows=[AgentConversation], data_converter=pydantic_data_converter)
    for history in histories:
        await replayer.replay_workflow(history)
    replayed = [r.getMessage() for r in caplog.records if r.name == WORKFLOW_LOGGER]
    assert replayed == []


def test_workflow_logs_only_through_workflow_logger():
    """`logging` or `print` in the workflow would log again on every replay."""
    source = Path(AgentConversation.__module__.replace(".", "/"))
    tree = ast.parse((ROOT / "workflows" / f"{source.name}.py").read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "logging" not in imported
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert "print" not in calls
    assert "workflow.logger" in ast.unparse(tree)
