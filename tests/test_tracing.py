"""Tracing: one conversation turn is one trace, from the client's call to each activity."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.db import Database
from conversation_client import Conversations
from observability import client_interceptors
from settings import WorkerSettings
from support.ids import new_id
from worker import build_worker, default_agents


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    yield spans
    spans.shutdown()


async def traced_client(temporal_address: str, exporter: InMemorySpanExporter) -> Client:
    """A client whose TracingInterceptor also applies to the worker built on it."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    interceptor = TracingInterceptor(provider.get_tracer("test"))
    return await Client.connect(
        temporal_address, data_converter=pydantic_data_converter, interceptors=[interceptor]
    )


def ancestry(span: ReadableSpan, spans: list[ReadableSpan]) -> list[str]:
    """The span's name, then its parent's, up to the root."""
    by_id = {s.context.span_id: s for s in spans}
    names = [span.name]
    while span.parent is not None:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


async def test_one_trace_links_workflow_model_and_tool_activities(
    temporal_address: str, exporter: InMemorySpanExporter, db: Database, task_queue: str
):
    client = await traced_client(temporal_address, exporter)
    agents = default_agents(WorkerSettings(), db)
    conversation_id = new_id()
    async with build_worker(client, task_queue, db, agents):
        result = await Conversations(client, task_queue).ask(
            conversation_id, "Check policy status for claim 123", "m-1"
        )
    assert [call.name for call in result.tool_calls] == ["get_claim_status"]

    spans = list(exporter.get_finished_spans())
    names = {span.name for span in spans}
    for expected in (
        "StartUpdateWithStartWorkflow:AgentConversation",
        "RunWorkflow:AgentConversation",
        "HandleUpdate:ask",
        "RunActivity:agent.model_call-v1",
        "RunActivity:agent.call_tool-v1",
    ):
        assert expected in names, f"no {expected} span in {sorted(names)}"
    assert len({span.context.trace_id for span in spans}) == 1, "more than one trace"

    # The SDK's shape: the workflow's spans (run, update handler, and the scheduling of
    # each activity) are children of the client's call, and each activity's run is a child
    # of the workflow's span that scheduled it.
    root = "StartUpdateWithStartWorkflow:AgentConversation"
    [run] = [s for s in spans if s.name == "RunWorkflow:AgentConversation"]
    [handler] = [s for s in spans if s.name == "HandleUpdate:ask"]
    assert ancestry(run, spans) == ["RunWorkflow:AgentConversation", root]
    assert ancestry(handler, spans) == ["HandleUpdate:ask", root]
    assert run.attributes and run.attributes["temporalWorkflowID"] == conversation_id
    run_id = run.attributes["temporalRunID"]

    [tool] = [s for s in spans if s.name == "RunActivity:agent.call_tool-v1"]
    models = [s for s in spans if s.name == "RunActivity:agent.model_call-v1"]
    assert len(models) == 2  # the call that asked for the tool, and the answer after it
    for activity_span in [tool, *models]:
        kind = activity_span.name.removeprefix("RunActivity:")
        assert ancestry(activity_span, spans) == [activity_span.name, f"StartActivity:{kind}", root]
        scheduled = next(s for s in spans if s.context.span_id == activity_span.parent.span_id)
        assert scheduled.attributes and scheduled.attributes["temporalRunID"] == run_id
        assert activity_span.attributes
        assert activity_span.attributes["temporalWorkflowID"] == conversation_id


def test_tracing_is_off_without_an_endpoint():
    assert client_interceptors(WorkerSettings()) == []
    [interceptor] = client_interceptors(WorkerSettings(otel_endpoint="http://collector:4318"))
    assert isinstance(interceptor, TracingInterceptor)
