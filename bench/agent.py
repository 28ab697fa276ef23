"""Our side of a benchmark turn: an agent whose one tool does the floor's work.

The floor's tool inserts one row (`bench/floor_activities.py`); `add_note` inserts one row
too, through the session the ledger hands a database tool, so the two turns differ by what
we add (the ledger, the transcript, the framework's messages), not by the tool. The demo's
`create_claim_note` also reads the claim and goes through the ORM's unit of work: the
chaos and recovery runs use it, with the demo's tables.
"""

from __future__ import annotations

from autogen_core.models import ChatCompletionClient
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from activities.db import TableSet
from agents.definitions import AgentDefinition
from agents.tools import ToolContext, tool

AGENT = "bench-assistant"
TURN = '!call add_note {"text": "bench"}'
"""The scripted model answers it with exactly this tool call, then with a text summary."""

METADATA = MetaData()
NOTES = Table(
    "bench_notes",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("text", String, nullable=False),
)
TABLES = TableSet("bench", metadata=METADATA)


class NoteArgs(BaseModel):
    text: str


@tool(kind="database")
async def add_note(ctx: ToolContext, args: NoteArgs) -> dict[str, int]:
    """Add a note."""
    result = await ctx.db.execute(insert(NOTES).values(text=args.text))
    return {"note_id": int(result.inserted_primary_key[0])}  # type: ignore[attr-defined]


def bench_agent(model_client: ChatCompletionClient) -> AgentDefinition:
    return AgentDefinition(
        name=AGENT,
        system_message="You keep notes. Use the tool to add one. Keep answers short.",
        model_client=model_client,
        tools=[add_note],
    )
