"""Another SDK drives a conversation with plain JSON: here the `temporal` CLI (Go)."""

from __future__ import annotations

import json

from activities.db import Database
from support.ids import new_id
from support.temporal_cli import temporal
from support.workers import WorkerFactory


async def test_temporal_cli_drives_a_conversation_with_plain_json(
    db: Database, run_worker: WorkerFactory, temporal_address: str, task_queue: str
) -> None:
    cid = new_id("json")
    wf = ("--workflow-id", cid)
    async with run_worker(db):
        await temporal(
            temporal_address,
            "workflow",
            "start",
            "--type",
            "AgentConversation",
            *wf,
            "--task-queue",
            task_queue,
            "--id-conflict-policy",
            "UseExisting",
            "--input",
            '{"agent": "claims-assistant", "metadata": {"channel": "cli"}}',
        )
        ask = '{"message_id": "m-1", "text": "Check policy status for claim 123"}'
        out = await temporal(
            temporal_address,
            "workflow",
            "update",
            "execute",
            *wf,
            "--name",
            "ask",
            "--update-id",
            "m-1",
            "--input",
            ask,
        )
        await temporal(
            temporal_address,
            "workflow",
            "signal",
            *wf,
            "--name",
            "user_message",
            "--input",
            '{"message_id": "m-1", "text": "Check policy status for claim 123"}',
        )
        state = json.loads(
            await temporal(temporal_address, "workflow", "query", *wf, "--type", "state")
        )["queryResult"][0]
        await temporal(
            temporal_address, "workflow", "signal", *wf, "--name", "end", "--input", "{}"
        )
        result = json.loads(await temporal(temporal_address, "workflow", "result", *wf))
    reply = json.loads(out)["result"]
    assert reply["message_id"] == "m-1" and reply["status"] == "completed"
    assert reply["reply"].startswith("Claim 123 is in_review")
    assert reply["tool_calls"][0]["name"] == "get_claim_status"
    assert set(reply["tool_calls"][0]) >= {"id", "name", "arguments", "status", "result"}
    assert state["agent"] == "claims-assistant" and state["turn_count"] == 1
    assert set(state) >= {"status", "messages", "tool_calls", "pending_approvals", "usage"}
    assert result["result"]["turn_count"] == 1
