"""starter.py, run as a user runs it: a subprocess against the dev server and a worker."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass

from temporalio.client import WorkflowExecutionStatus

from conversation_client import Conversations
from tests.conftest import ROOT, WorkerFactory, new_id

TIMEOUT = 60


@dataclass
class Run:
    code: int
    out: str
    err: str


async def cli(*args: str, address: str, task_queue: str) -> Run:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "starter.py"),
        "--address",
        address,
        "--task-queue",
        task_queue,
        *args,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


async def test_ask_prints_the_reply(db, run_worker: WorkerFactory, temporal_address, task_queue):
    conversation_id = new_id()
    async with run_worker(db):
        run = await cli(
            "ask",
            conversation_id,
            "Check policy status for claim 123",
            "--message-id",
            "m-1",
            address=temporal_address,
            task_queue=task_queue,
        )
    assert run.code == 0, run
    assert "Claim 123 is in_review" in run.out
    assert "turn 1: completed" in run.out


async def test_send_then_state_json(db, run_worker: WorkerFactory, temporal_address, task_queue):
    conversation_id = new_id()
    async with run_worker(db):
        sent = await cli(
            "send",
            conversation_id,
            "Check policy status for claim 123",
            address=temporal_address,
            task_queue=task_queue,
        )
        assert sent.code == 0, sent
        assert "sent m-" in sent.out
        for _ in range(40):
            run = await cli(
                "state", conversation_id, "--json", address=temporal_address, task_queue=task_queue
            )
            assert run.code == 0, run
            state = json.loads(run.out)
            if state["turn_count"] == 1 and state["status"] == "idle":
                break
            await asyncio.sleep(0.25)
    assert state["turn_count"] == 1
    assert state["agent"] == "claims-assistant"
    assert any("in_review" in m["content"] for m in state["messages"] if m["role"] == "assistant")


async def test_ask_with_empty_text_is_rejected(
    db, run_worker: WorkerFactory, temporal_address, task_queue
):
    async with run_worker(db):
        run = await cli("ask", new_id(), "  ", address=temporal_address, task_queue=task_queue)
    assert run.code == 1, run
    assert "text is empty" in run.err
    assert "Traceback" not in run.err


async def test_state_of_unknown_conversation(temporal_address, task_queue):
    run = await cli("state", new_id(), address=temporal_address, task_queue=task_queue)
    assert run.code == 1, run
    assert "no conversation" in run.err
    assert "Traceback" not in run.err


async def test_unreachable_temporal(task_queue):
    run = await cli("state", new_id(), address="127.0.0.1:1", task_queue=task_queue)
    assert run.code == 2, run
    assert "cannot reach Temporal at 127.0.0.1:1" in run.err
    assert "Traceback" not in run.err


async def test_list_and_end(
    db, run_worker: WorkerFactory, conversations: Conversations, temporal_address, task_queue
):
    conversation_id = new_id()
    async with run_worker(db):
        started = await cli(
            "start", conversation_id, address=temporal_address, task_queue=task_queue
        )
        assert started.code == 0, started
        for _ in range(20):  # visibility is eventually consistent
            listed = await cli(
                "list",
                "--query",
                f'WorkflowId="{conversation_id}"',
                address=temporal_address,
                task_queue=task_queue,
            )
            assert listed.code == 0, listed
            if conversation_id in listed.out:
                break
            await asyncio.sleep(0.25)
        assert conversation_id in listed.out
        assert "RUNNING" in listed.out

        ended = await cli("end", conversation_id, address=temporal_address, task_queue=task_queue)
        assert ended.code == 0, ended
        handle = conversations.handle(conversation_id)
        summary = await asyncio.wait_for(handle.result(), TIMEOUT)
    assert summary.turn_count == 0
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
