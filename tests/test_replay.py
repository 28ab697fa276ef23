"""Every committed history replays against today's workflow code without nondeterminism.

Add new histories with `python -m tests.record_histories`; never edit or delete one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.worker import Replayer

from agent_conversations import AgentConversationsPlugin, WorkerTuning
from support.histories import HISTORIES, load

pytestmark = pytest.mark.replay  # no server: the Replayer


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    # the worker's plugin, with the sandbox on: replay also checks the workflow's imports
    plugin = AgentConversationsPlugin(tuning=WorkerTuning(workflow_sandbox=True))
    replayer = Replayer(workflows=[], plugins=[plugin])
    result = await replayer.replay_workflow(load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


def test_committed_histories_cover_the_hard_cases() -> None:
    events = {p.stem: [e.event_type for e in load(p).events] for p in HISTORIES}
    demo = [load(p).events for p in HISTORIES if p.stem.startswith("demo-kill")]
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in demo[0]
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert max(attempts) >= 2, "no activity retried after the worker kill"
    features = [types for name, types in events.items() if name.startswith("features")]
    continued = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert any(continued in types for types in features), "no continue-as-new"
    signalled = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    assert any(signalled in types for types in features), "no approval signal"
