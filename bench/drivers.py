"""One benchmark turn, sent the same way to our workflow and to the floor: update-with-start."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from bench.floor import FloorWorkflow
from conversation_client import Conversations
from interface import StartConversation

# the scripted model returns exactly this tool call, then a text summary of its result
TURN = '!call create_claim_note {"claim_id": 123, "text": "bench"}'


class Driver(Protocol):
    name: str

    async def turn(self, conversation_id: str, index: int) -> None: ...


@dataclass
class Ours:
    """Our conversation: model call -> create_claim_note under the ledger -> model call."""

    conversations: Conversations
    start: StartConversation | None = None
    name: str = "ours"

    async def turn(self, conversation_id: str, index: int) -> None:
        message_id = f"{conversation_id}-m{index}"
        result = await self.conversations.ask(conversation_id, TURN, message_id, self.start)
        if result.status != "completed" or [c.status for c in result.tool_calls] != ["ok"]:
            raise RuntimeError(f"turn {message_id} did not complete: {result}")


@dataclass
class Floor:
    """The bare workflow: no-op, sqlite3 insert, no-op."""

    client: Client
    task_queue: str
    name: str = "floor"

    async def turn(self, conversation_id: str, index: int) -> None:
        start = WithStartWorkflowOperation(
            FloorWorkflow.run,
            id=conversation_id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        reply = await self.client.execute_update_with_start_workflow(
            FloorWorkflow.ask, "bench", start_workflow_operation=start, id=f"m{index}"
        )
        if reply != "ok":
            raise RuntimeError(f"floor turn {index} of {conversation_id} answered {reply!r}")


async def timed_turn(driver: Driver, conversation_id: str, index: int) -> float:
    """Milliseconds from sending the update to holding its result."""
    began = time.perf_counter()
    await driver.turn(conversation_id, index)
    return (time.perf_counter() - began) * 1000
