"""One benchmark turn, sent the same way to our workflow and to the floor: update-with-start."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy

from bench.agent import AGENT, TURN
from bench.floor import FloorWorkflow
from conversation_client import Conversations
from interface import StartConversation

RPC_RETRIES = 10
"""An overloaded server answers an update's RPC with DEADLINE_EXCEEDED before the turn is
done; the update ID (the message ID) makes sending it again safe, on both sides."""


class Driver(Protocol):
    name: str
    retries: int
    """Update RPCs sent again after a timeout, over the driver's life."""

    async def turn(self, conversation_id: str, index: int) -> None: ...


@dataclass
class Ours:
    """Our conversation: model call -> add_note under the ledger -> model call."""

    conversations: Conversations
    start: StartConversation = field(default_factory=lambda: StartConversation(agent=AGENT))
    name: str = "ours"
    retries: int = 0

    async def turn(self, conversation_id: str, index: int) -> None:
        message_id = f"{conversation_id}-m{index}"
        for _ in range(RPC_RETRIES):
            try:
                result = await self.conversations.ask(conversation_id, TURN, message_id, self.start)
                break
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                self.retries += 1
        else:
            raise RuntimeError(f"turn {message_id}: {RPC_RETRIES} update RPCs timed out")
        if result.status != "completed" or [c.status for c in result.tool_calls] != ["ok"]:
            raise RuntimeError(f"turn {message_id} did not complete: {result}")


@dataclass
class Floor:
    """The bare workflow: no-op, sqlite3 insert, no-op."""

    client: Client
    task_queue: str
    name: str = "floor"
    retries: int = 0

    async def turn(self, conversation_id: str, index: int) -> None:
        for _ in range(RPC_RETRIES):
            try:
                reply = await self._ask(conversation_id, index)
                break
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                self.retries += 1
        else:
            raise RuntimeError(f"floor turn {index}: {RPC_RETRIES} update RPCs timed out")
        if reply != "ok":
            raise RuntimeError(f"floor turn {index} of {conversation_id} answered {reply!r}")

    async def _ask(self, conversation_id: str, index: int) -> object:
        start = WithStartWorkflowOperation(
            FloorWorkflow.run,
            id=conversation_id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        return await self.client.execute_update_with_start_workflow(
            FloorWorkflow.ask,  # type: ignore[arg-type]  # the SDK types async updates loosely
            "bench",
            start_workflow_operation=start,
            id=f"m{index}",
        )


async def timed_turn(driver: Driver, conversation_id: str, index: int) -> float:
    """Milliseconds from sending the update to holding its result."""
    began = time.perf_counter()
    await driver.turn(conversation_id, index)
    return (time.perf_counter() - began) * 1000
