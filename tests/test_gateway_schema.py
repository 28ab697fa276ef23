"""schemathesis against the gateway's published OpenAPI schema, with a real server and worker.

Every operation gets schema-valid and schema-invalid requests; every answer must be
documented, match its schema and never be a 5xx.
"""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, GenerationMode, Response
from schemathesis.core.result import Err
from schemathesis.openapi import from_asgi

from activities.db import Database
from conversation_client import Conversations
from gateway import ApiKey, GatewayAuth, GatewaySettings, create_app
from support.workers import WorkerFactory

KEY = "schemathesis-key-0123456789"
AUTH = GatewayAuth(keys=[ApiKey(name="schemathesis", key=KEY)])
EXAMPLES = 30
"""Per operation and generation mode; about 300 requests, some of them real turns."""
BUSINESS_REJECTIONS = {"unknown_agent", "message_rejected", "invalid_page_token"}
# A schema-valid request may still be refused: an agent no worker knows, a text over the
# conversation's own limit, a made-up page token. Those 422s, and only those (checked below).
CONFIG = schemathesis.Config.from_str(
    f"""
[auth.openapi.HTTPBearer]
bearer = "{KEY}"

[[operations]]
include-operation-id = "post_message"
checks.positive_data_acceptance.expected-statuses = ["2xx", "404", "409", "422"]

[[operations]]
include-operation-id = "post_tool_decision"
checks.positive_data_acceptance.expected-statuses = ["2xx", "404", "409"]

[[operations]]
include-operation-id = "list_conversations"
checks.positive_data_acceptance.expected-statuses = ["2xx", "422"]
"""
)


def only_business_rejections(ctx: CheckContext, response: Response, case: Case) -> None:
    """A 422 for a schema-valid request must be the workflow's refusal, not ours."""
    if case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE:
        if response.status_code == 422:
            assert response.json()["error"] in BUSINESS_REJECTIONS, response.text


def check_operations(schema: schemathesis.BaseSchema) -> list[str]:
    """Run every operation's cases; return the operations checked."""
    checked = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise AssertionError(f"the schema has an invalid operation: {result.err()}")
        operation = result.ok()
        modes = [operation.as_strategy(mode) for mode in GenerationMode]

        @given(case=st.one_of(modes))
        @settings(
            max_examples=EXAMPLES * len(modes),
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Case) -> None:
            case.call_and_validate(additional_checks=[only_business_rejections])

        check()
        checked.append(operation.label)
    return checked


# a random agent name fails its conversation under the pending `ask`; warnings are errors here
@pytest.mark.filterwarnings("ignore::temporalio.workflow.UnfinishedUpdateHandlersWarning")
async def test_the_gateway_conforms_to_its_openapi_schema(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    settings = GatewaySettings(ask_timeout=10, query_timeout=10, auth=AUTH)
    app = create_app(conversations, settings)
    schema = await asyncio.to_thread(from_asgi, "/openapi.json", app, config=CONFIG)
    async with run_worker(db):
        # schemathesis calls the app from its own thread and loop; this loop runs the worker
        checked = await asyncio.wait_for(asyncio.to_thread(check_operations, schema), 120)
    assert sorted(checked) == [
        "GET /conversations",
        "GET /conversations/{conversation_id}",
        "GET /conversations/{conversation_id}/events",
        "GET /healthz",
        "GET /readyz",
        "GET /ui/config",
        "POST /conversations/{conversation_id}/cancel",
        "POST /conversations/{conversation_id}/end",
        "POST /conversations/{conversation_id}/messages",
        "POST /conversations/{conversation_id}/tool-decisions",
        "POST /ui/session",
    ]
