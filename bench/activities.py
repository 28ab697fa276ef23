"""`python -m bench.activities [--turns N] [--database URL] [--profile FILE]`: a bench turn's
three activities in this process, no server: the CPU they cost per turn.

The bench agent's turn (bench/agent.py): a model call that asks for `add_note`, the tool
under the ledger (its result message written with its ledger row), and a model call that
answers. They run through `temporalio.testing.ActivityEnvironment`, one conversation, so
the figure is our activities' own work (the transcript, the ledger, the framework's
messages, the scripted model) without the SDK's task handling or the server. It measures
a change to the activities in seconds, where `./run bench` needs minutes and a quiet
machine; `--profile` writes a pyinstrument report of the timed turns.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from activities.db import Database
from activities.ledger import Ledger
from activities.model import ModelActivities
from activities.tools import ToolActivities
from activities.transcript import Transcript
from agents.registry import AgentRegistry
from bench.agent import AGENT, TABLES, TURN, bench_agent
from interface import Message, ModelCallInput, SeqMessage, ToolCallInput
from settings import WorkerSettings
from worker import prepare_database

WARMUP = 5


class Turns:
    """One conversation's turns, each the three activities as the workflow schedules them."""

    def __init__(self, db: Database) -> None:
        agents = AgentRegistry([bench_agent(WorkerSettings().model_client())])
        transcript = Transcript(db)
        self.models = ModelActivities(agents, transcript)
        self.tools = ToolActivities(agents, Ledger(db), transcript)
        self.env = ActivityEnvironment()
        self.cid = f"bench-activities-{uuid.uuid4().hex[:8]}"
        self.seq = 0

    def _model_input(self, turn: int, step: int, new: list[SeqMessage]) -> ModelCallInput:
        return ModelCallInput(
            conversation_id=self.cid,
            chain_id=self.cid,
            agent=AGENT,
            turn=turn,
            step=step,
            new_messages=new,
            output_seq=self.seq + 1 + 2 * step,
        )

    async def turn(self, turn: int) -> None:
        user = Message(role="user", content=TURN, message_id=f"{self.cid}-m{turn}")
        first = await self.env.run(
            self.models.model_call,
            self._model_input(turn, 0, [SeqMessage(seq=self.seq, message=user)]),
        )
        call = first.message.tool_calls[0]
        result = await self.env.run(
            self.tools.call_tool,
            ToolCallInput(
                conversation_id=self.cid,
                chain_id=self.cid,
                agent=AGENT,
                turn=turn,
                key=f"{self.cid}/{self.cid}/{turn}/c0",
                name=call.name,
                arguments=call.arguments,
                call_ids=[call.id],
                result_seqs=[self.seq + 2],
            ),
        )
        answer = await self.env.run(self.models.model_call, self._model_input(turn, 1, []))
        if not (result.written and answer.message.content):
            raise RuntimeError(f"turn {turn} did not complete: {result}, {answer}")
        self.seq += 4


async def measure(url: str, turns: int, profile: Path | None) -> float:
    db = Database(url)
    try:
        await prepare_database(db, [TABLES])
        conversation = Turns(db)
        await conversation.models.warm_up()
        for n in range(WARMUP):
            await conversation.turn(n)
        profiler = None
        if profile is not None:
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="disabled")
            profiler.start()
        cpu = time.process_time()
        for n in range(WARMUP, WARMUP + turns):
            await conversation.turn(n)
        cpu = time.process_time() - cpu
        if profiler is not None and profile is not None:
            profiler.stop()
            profile.write_text(profiler.output_text(unicode=False, color=False))
        return cpu / turns * 1000
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.activities", description=__doc__)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--database", help="a database URL (default: a new SQLite file)")
    parser.add_argument("--profile", type=Path, help="pyinstrument report of the timed turns")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-activities-") as scratch:
        url = args.database or f"sqlite:///{scratch}/agents.db"
        ms = asyncio.run(measure(url, args.turns, args.profile))
    print(
        f"{ms:.2f} ms CPU per turn: our three activities, {args.turns} turns, {url.split(':')[0]}"
    )


if __name__ == "__main__":
    main()
