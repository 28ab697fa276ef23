"""starter.py, run as a user runs it: a subprocess against the dev server and a worker."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from activities.db import Database
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.agent import claims_assistant
from interface import ToolPolicy
from settings import ENV, WorkerSettings
from tests.conftest import ROOT, WorkerFactory, new_id

TIMEOUT = 60
CLAIM_QUESTION = "Check policy status for claim 123"


@dataclass
class Run:
    code: int
    out: str
    err: str


Starter = Callable[..., Awaitable[Run]]


async def run_starter(*args: str, env: dict[str, str] | None = None) -> Run:
    # the outer environment must not choose the server, namespace or queue
    clean = {k: v for k, v in os.environ.items() if k not in ENV.values()}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "starter.py"),
        *args,
        cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


@pytest.fixture
def starter(temporal_address: str, task_queue: str) -> Starter:
    """`await starter("state", "conv-1")`: the CLI against the test server and queue."""

    def run(*args: str) -> Awaitable[Run]:
        return run_starter("--address", temporal_address, "--task-queue", task_queue, *args)

    return run


async def poll_state(
    starter: Starter, conversation_id: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    for _ in range(40):
        run = await starter("state", conversation_id, "--json")
        assert run.code == 0, run
        state = json.loads(run.out)
        if done(state):
            return state
        await asyncio.sleep(0.25)
    raise AssertionError(f"state never got there: {state}")


async def test_ask_prints_the_reply(db, run_worker: WorkerFactory, starter: Starter):
    async with run_worker(db):
        run = await starter("ask", new_id(), CLAIM_QUESTION, "--message-id", "m-1")
    assert run.code == 0, run
    assert "Claim 123 is in_review" in run.out
    assert "get_claim_status" in run.out  # the tool-call table
    assert "turn 1: completed" in run.out


async def test_send_then_state_json(db, run_worker: WorkerFactory, starter: Starter):
    conversation_id = new_id()
    async with run_worker(db):
        sent = await starter("send", conversation_id, CLAIM_QUESTION)
        assert sent.code == 0, sent
        assert "sent m-" in sent.out
        state = await poll_state(
            starter, conversation_id, lambda s: s["turn_count"] == 1 and s["status"] == "idle"
        )
    assert state["agent"] == "claims-assistant"
    replies = [m["content"] for m in state["messages"] if m["role"] == "assistant"]
    assert any("in_review" in reply for reply in replies)


async def test_ask_with_empty_text_is_rejected(db, run_worker: WorkerFactory, starter: Starter):
    async with run_worker(db):
        run = await starter("ask", new_id(), "  ")
    assert run.code == 1, run
    assert "text is empty" in run.err
    assert "Traceback" not in run.err


async def test_state_of_unknown_conversation(starter: Starter):
    conversation_id = new_id()
    run = await starter("state", conversation_id)
    assert run.code == 1, run
    assert f"no conversation {conversation_id}" in run.err
    assert "Traceback" not in run.err


async def test_unreachable_temporal():
    run = await run_starter("--address", "127.0.0.1:1", "state", new_id())
    assert run.code == 2, run
    assert "cannot reach Temporal at 127.0.0.1:1" in run.err
    assert "Traceback" not in run.err


async def test_address_from_the_environment():
    run = await run_starter("list", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert run.code == 2, run
    assert "cannot reach Temporal at 127.0.0.1:1" in run.err


async def test_list_and_end(
    db, run_worker: WorkerFactory, conversations: Conversations, starter: Starter
):
    conversation_id = new_id()
    async with run_worker(db):
        started = await starter("start", conversation_id)
        assert started.code == 0, started
        for _ in range(20):  # visibility is eventually consistent
            listed = await starter("list", "--query", f'WorkflowId="{conversation_id}"')
            assert listed.code == 0, listed
            if conversation_id in listed.out:
                break
            await asyncio.sleep(0.25)
        assert conversation_id in listed.out
        assert "RUNNING" in listed.out

        ended = await starter("end", conversation_id)
        assert ended.code == 0, ended
        handle = conversations.handle(conversation_id)
        summary = await asyncio.wait_for(handle.result(), TIMEOUT)
    assert summary.turn_count == 0
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


def agents_needing_approval(db: Database) -> AgentRegistry:
    """The demo agent, with `send_customer_email` waiting for a person's decision."""
    agent = claims_assistant(WorkerSettings().model_client(), db.sessions)
    approval = ToolPolicy(needs_approval=True)
    tools = [
        replace(t, policy=approval) if t.name == "send_customer_email" else t for t in agent.tools
    ]
    return AgentRegistry([replace(agent, tools=tools)])


@pytest.mark.parametrize(("command", "status"), [("approve", "ok"), ("deny", "denied")])
async def test_decide_a_pending_tool_call(
    db, run_worker: WorkerFactory, starter: Starter, command: str, status: str
):
    conversation_id = new_id()
    async with run_worker(db, agents=agents_needing_approval(db)):
        sent = await starter("send", conversation_id, "Email the customer about claim 123")
        assert sent.code == 0, sent
        waiting = await poll_state(
            starter, conversation_id, lambda s: s["status"] == "waiting_approval"
        )
        [pending] = waiting["pending_approvals"]
        assert pending["name"] == "send_customer_email"
        shown = await starter("state", conversation_id)
        assert pending["tool_call_id"] in shown.out

        decided = await starter(command, conversation_id, pending["tool_call_id"], "--reason", "ok")
        assert decided.code == 0, decided
        idle = await poll_state(starter, conversation_id, lambda s: s["status"] == "idle")
    [record] = [t for t in idle["tool_calls"] if t["id"] == pending["tool_call_id"]]
    assert record["status"] == status
