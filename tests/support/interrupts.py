"""An agent whose calls can be interrupted (`cancel_turn`): a scripted model that streams
slowly, tools that take a while, and a client that watches the text deltas.
tests/test_cancel_turn.py runs it; tests/record_histories.py records it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from autogen_core.models import CreateResult, LLMMessage, RequestUsage, UserMessage
from pydantic import BaseModel
from sqlalchemy import select
from temporalio.client import Client
from temporalio.worker import Worker

from activities.db import Database
from activities.deltas import TextDeltas
from activities.streaming import text_sink
from activities.tables import LedgerEntry, TranscriptMessage
from agent_conversations import AgentConversationsPlugin
from agents.definitions import AgentDefinition
from agents.errors import ToolNotStarted
from agents.registry import AgentRegistry
from agents.tools import ToolContext, tool
from conversation_client import Conversations
from demo.scripted_model import ScriptedChatCompletionClient
from demo.tools import claims_tools
from interface import Message, ModelPolicy, StartConversation, ToolPolicy

__all__ = [
    "START",
    "TOOLS",
    "Deltas",
    "StreamingModel",
    "interruptible_agent",
    "interruptible_worker",
    "ledger_rows",
    "ledger_shows",
    "transcript",
    "until",
    "watching_client",
]

BEAT = timedelta(seconds=1)
"""Heartbeat timeout of the test agent's calls: a cancel lands within 0.8 s of it."""
WORD_DELAY = 0.15
START = StartConversation(agent="interruptible")


class StreamingModel(ScriptedChatCompletionClient):
    """The scripted model; `!stream N` answers N words, slowly, through the call's text
    sink. It keeps every prompt it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.prompts: list[list[LLMMessage]] = []

    async def create(self, messages: Sequence[LLMMessage], **options: Any) -> CreateResult:
        self.prompts.append(list(messages))
        found = re.search(r"!stream (\d+)", _last_user(messages))
        if found is None:
            return await super().create(messages, **options)
        words = [f"word{i} " for i in range(int(found.group(1)))]
        sink = text_sink()
        for word in words:
            if sink is not None:
                await sink.text(word)
            await asyncio.sleep(WORD_DELAY)
        usage = RequestUsage(prompt_tokens=1, completion_tokens=len(words))
        return CreateResult(finish_reason="stop", content="".join(words), usage=usage, cached=False)


def _last_user(messages: Sequence[LLMMessage]) -> str:
    texts = [m.content for m in messages if isinstance(m, UserMessage)]
    return str(texts[-1]) if texts else ""


class Deltas:
    """A client watching the conversation's text deltas (`Conversations.events`), as a chat
    window shows them: a `text_reset` clears what a retried step had shown."""

    def __init__(self) -> None:
        self.received: list[str] = []

    async def watch(self, conversations: Conversations, cid: str) -> None:
        """Until the first turn ends."""
        async for _, event in conversations.events(cid):
            if event.type == "text":
                self.received.append(event.text or "")
            elif event.type == "text_reset":
                self.received.clear()
            elif event.type == "turn_finished":
                return

    async def watching(self, conversations: Conversations, cid: str) -> asyncio.Task[None]:
        """Start the conversation and watch it; returns once the watcher listens."""
        await conversations.start(cid, START)
        task = asyncio.create_task(self.watch(conversations, cid))
        await asyncio.sleep(0.3)  # subscribed (listening) before the turn is sent
        return task


def watching_client(client: Client, task_queue: str, db: Database) -> Conversations:
    """A client that reads the text deltas from the conversation database."""
    return Conversations(client, task_queue, deltas=TextDeltas(db))


class WaitArgs(BaseModel):
    seconds: float


def interruptible_agent(db: Database, model: StreamingModel) -> AgentDefinition:
    fast = ToolPolicy(heartbeat=BEAT)

    @tool(kind="external", policy=fast)
    async def wait_for_payment(ctx: ToolContext, args: WaitArgs) -> dict[str, object]:
        """Wait for a payment to arrive; nothing is sent meanwhile."""
        try:
            await asyncio.sleep(args.seconds)
        except asyncio.CancelledError:
            raise ToolNotStarted("cancelled while waiting: nothing was sent") from None
        return {"paid": True}

    @tool(kind="external", policy=fast)
    async def slow_transfer(ctx: ToolContext, args: WaitArgs) -> dict[str, object]:
        """Transfer money through a slow provider."""
        await asyncio.sleep(args.seconds)
        return {"transferred": True}

    note = next(t for t in claims_tools(db.sessions) if t.name == "create_claim_note")
    note = replace(note, policy=fast)
    return AgentDefinition(
        name=START.agent,
        system_message="You help with claims.",
        model_client=model,
        tools=[note, wait_for_payment, slow_transfer],
        model_policy=ModelPolicy(heartbeat=BEAT),
    )


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def ledger_rows(db: Database, cid: str) -> dict[str, str]:
    async with db.session() as session:
        rows = await session.execute(
            select(LedgerEntry.tool, LedgerEntry.status).where(LedgerEntry.conversation_id == cid)
        )
        return {tool_name: status for tool_name, status in rows}


async def transcript(db: Database, cid: str) -> list[tuple[int, Message]]:
    async with db.session() as session:
        rows = await session.execute(
            select(TranscriptMessage.seq, TranscriptMessage.body)
            .where(TranscriptMessage.conversation_id == cid)
            .order_by(TranscriptMessage.seq)
        )
        return [(seq, Message.model_validate_json(body)) for seq, body in rows]


def interruptible_worker(
    client: Client, task_queue: str, db: Database, model: StreamingModel
) -> Worker:
    agents = AgentRegistry([interruptible_agent(db, model)])
    plugin = AgentConversationsPlugin(agents, db)
    return Worker(client, task_queue=task_queue, plugins=[plugin])


TOOLS = "\n".join(
    [
        '!call create_claim_note {"claim_id": 123, "text": "called the garage"}',
        '!call wait_for_payment {"seconds": 60}',
        '!call slow_transfer {"seconds": 60}',
    ]
)


async def ledger_shows(db: Database, cid: str, expected: Mapping[str, str]) -> bool:
    found = await ledger_rows(db, cid)
    return all(found.get(name) == status for name, status in expected.items())
