"""The floor: a bare Temporal workflow doing what one of our turns does, with tiny payloads.

An update per turn, then three activities in sequence: a model-ish no-op (or a sleep, in the
scale scenario), one row inserted with plain sqlite3 or psycopg, and another no-op. No
ledger, no transcript, no pydantic models. This file is workflow code: it imports only the
SDK.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

FLOOR_WORKFLOW = "BenchFloor"
MODEL = "floor.model"
INSERT = "floor.insert"
TIMEOUT = timedelta(seconds=30)


@workflow.defn(name=FLOOR_WORKFLOW)
class FloorWorkflow:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()  # turns run one at a time, in arrival order

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)  # lives until the server goes away

    @workflow.update(name="ask")
    async def ask(self, text: str) -> str:
        async with self._lock:
            await workflow.execute_activity(MODEL, text, start_to_close_timeout=TIMEOUT)
            await workflow.execute_activity(INSERT, text, start_to_close_timeout=TIMEOUT)
            return await workflow.execute_activity(
                MODEL, "summary", result_type=str, start_to_close_timeout=TIMEOUT
            )
