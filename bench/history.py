"""What a conversation's history weighs, and where a turn's time goes by its event times."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client


@dataclass(frozen=True)
class ChainSize:
    bytes: int
    events: int
    runs: int


async def chain_size(client: Client, workflow_id: str) -> ChainSize:
    """History bytes and events summed over the continue-as-new chain."""
    total = events = runs = 0
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        total += sum(event.ByteSize() for event in history.events)
        events += len(history.events)
        runs += 1
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id
        if not run_id:
            return ChainSize(total, events, runs)


async def events_of(client: Client, workflow_id: str) -> list[HistoryEvent]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return list(history.events)


def _seconds(event: HistoryEvent) -> float:
    return event.event_time.seconds + event.event_time.nanos / 1e9


class _Tally:
    """Server-side durations of workflow tasks, activities and updates, summed."""

    def __init__(self) -> None:
        self.times: dict[int, float] = {}
        self.names: dict[int, str] = {}
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: Counter[str] = Counter()

    def see(self, event: HistoryEvent) -> None:
        self.times[event.event_id] = _seconds(event)
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            self.names[event.event_id] = attrs.activity_type.name

    def add(self, part: str, event: HistoryEvent, since_event_id: int) -> None:
        self.sums[part] += _seconds(event) - self.times[since_event_id]
        self.counts[part] += 1

    def count(self, event: HistoryEvent) -> None:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            started = event.workflow_task_started_event_attributes
            self.add("workflow task queue", event, started.scheduled_event_id)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            completed = event.workflow_task_completed_event_attributes
            self.add("workflow task run", event, completed.started_event_id)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            activity = event.activity_task_started_event_attributes
            self.add("activity queue", event, activity.scheduled_event_id)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            self.add("activity run", event, done.started_event_id)
            self.add(f"  {self.names[done.scheduled_event_id]}", event, done.started_event_id)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            update = event.workflow_execution_update_completed_event_attributes
            self.add("update accepted to completed", event, update.accepted_event_id)

    def per_turn(self) -> dict[str, float]:
        turns = max(self.counts["update accepted to completed"], 1)
        result = {part: 1000 * total / turns for part, total in self.sums.items()}
        result["workflow tasks"] = self.counts["workflow task run"] / turns
        result["activities"] = self.counts["activity run"] / turns
        return result | {"turns": float(turns)}


def turn_breakdown(events: list[HistoryEvent], skip_turns: int) -> dict[str, float]:
    """Per-turn milliseconds by the server's clock, over the turns after `skip_turns`.

    "queue" is scheduled -> started (server dispatch and the worker's poll); "run" is
    started -> completed (the worker's time plus one round trip)."""
    tally, finished = _Tally(), 0
    for event in events:
        tally.see(event)
        if finished >= skip_turns:
            tally.count(event)
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            finished += 1
    return tally.per_turn()
