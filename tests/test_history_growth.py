"""History is linear: a long conversation's bytes per turn do not grow with its length."""

from __future__ import annotations

from temporalio.client import Client

from activities.db import Database
from conversation_client import Conversations
from interface import ConversationSettings, StartConversation
from support.ids import new_id
from support.workers import WorkerFactory

TURN = "Check policy status for claim 123"  # a model call, a tool call, a model call


async def chain_bytes(client: Client, conversation_id: str) -> tuple[int, int]:
    """(history bytes, runs) summed over the continue-as-new chain, newest run first."""
    total, runs, run_id = 0, 0, None
    while True:
        handle = client.get_workflow_handle(conversation_id, run_id=run_id)
        history = await handle.fetch_history()
        total += sum(event.ByteSize() for event in history.events)
        runs += 1
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id
        if not run_id:
            return total, runs


async def test_three_hundred_turns_grow_history_linearly(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, client: Client
) -> None:
    cid = new_id("long")
    start = StartConversation(settings=ConversationSettings(max_turns_per_run=100))
    per_turn = {}
    async with run_worker(db):
        for turn in range(1, 301):
            result = await conversations.ask(cid, TURN, f"m-{turn}", start)
            assert result.status == "completed" and result.turn == turn
            if turn in (10, 100, 300):
                total, runs = await chain_bytes(client, cid)
                per_turn[turn] = total / turn
        state = await conversations.state(cid)
    print(f"history bytes per turn: {per_turn}, runs: {runs}")
    assert state.turn_count == 300 and runs >= 3
    assert per_turn[300] <= 1.2 * per_turn[10], per_turn
