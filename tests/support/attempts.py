"""What a conversation's history says about its activities' attempts."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from interface.contract import ACTIVITY_MODEL_CALL

__all__ = ["model_attempts"]


async def model_attempts(client: Client, cid: str) -> list[int]:
    """The attempt number of each started model activity, from the workflow's history."""
    history = await client.get_workflow_handle(cid).fetch_history()
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    return [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and scheduled[e.activity_task_started_event_attributes.scheduled_event_id]
        == ACTIVITY_MODEL_CALL
    ]
