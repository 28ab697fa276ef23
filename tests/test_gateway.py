"""The HTTP gateway with httpx against the ASGI app, a real Temporal server and a worker."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from autogen_ext.models.openai import OpenAIChatCompletionClient
from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RetryConfig

from activities.db import Database
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.agent import claims_assistant
from demo.scripted_model import ScriptedChatCompletionClient
from demo.tables import OutboxEmail
from devserver import start_dev_server
from gateway import ApiKey, GatewayAuth, GatewaySettings, connector, create_app
from gateway._models import NOT_BLANK
from gateway._temporal import missing_search_attributes
from settings import ENV
from support.databases import count
from support.fake_openai import API_KEY, FakeOpenAI, error, text, tool_call
from support.ids import new_id
from support.interrupts import StreamingModel, interruptible_agent, ledger_shows, until
from support.paths import ROOT
from support.workers import WorkerFactory

CLAIM_QUESTION = "Check policy status for claim 123"
KEY = "gateway-test-key-0123456789"
AUTH = GatewayAuth(keys=[ApiKey(name="tests", key=KEY)])
BEARER = {"Authorization": f"Bearer {KEY}"}
SEARCH_ATTRIBUTES = ["AgentName", "ConversationStatus"]


@asynccontextmanager
async def http_client(
    source: Conversations | Callable[..., Any], settings: GatewaySettings | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the gateway app, in this process, sending the tests' API key
    (the settings get that key unless they bring keys of their own)."""
    settings = settings or GatewaySettings()
    if not settings.auth.keys and not settings.auth.anonymous:
        settings = settings.model_copy(update={"auth": AUTH})
    transport = httpx.ASGITransport(app=create_app(source, settings))
    base = "http://gateway"
    async with httpx.AsyncClient(transport=transport, base_url=base, headers=BEARER) as http:
        yield http


@pytest.fixture
async def http(conversations: Conversations) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(conversations) as client:
        yield client


def key() -> str:
    return f"m-{uuid.uuid4()}"


async def post_message(
    http: httpx.AsyncClient, cid: str, text: str, idempotency_key: str | None, **params: str
) -> httpx.Response:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return await http.post(
        f"/conversations/{cid}/messages", json={"text": text}, headers=headers, params=params
    )


async def wait_for_state(
    http: httpx.AsyncClient, cid: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for _ in range(100):
        response = await http.get(f"/conversations/{cid}")
        if response.status_code == 200:
            state = response.json()
            if done(state):
                return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"state never got there: {state}")


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["error"] == code and body["message"], body
    return body


async def test_a_message_returns_the_turns_reply(
    db: Database, run_worker: WorkerFactory, http: httpx.AsyncClient
) -> None:
    cid, mid = new_id(), key()
    async with run_worker(db):
        response = await post_message(http, cid, CLAIM_QUESTION, mid)
    assert response.status_code == 200, response.text
    turn = response.json()
    assert turn["reply"].startswith("Claim 123 is in_review")
    assert turn["message_id"] == mid and turn["turn"] == 1 and turn["status"] == "completed"
    assert [c["name"] for c in turn["tool_calls"]] == ["get_claim_status"]


async def test_the_same_idempotency_key_makes_one_turn(
    db: Database, run_worker: WorkerFactory, http: httpx.AsyncClient
) -> None:
    cid, mid = new_id(), key()
    async with run_worker(db):
        concurrent = await asyncio.gather(
            *(post_message(http, cid, CLAIM_QUESTION, mid) for _ in range(5))
        )
        retried = await post_message(http, cid, CLAIM_QUESTION, mid)
        state = (await http.get(f"/conversations/{cid}")).json()
    assert [r.status_code for r in [*concurrent, retried]] == [200] * 6
    bodies = [r.json() for r in [*concurrent, retried]]
    assert all(body == bodies[0] for body in bodies)
    assert state["turn_count"] == 1
    assert [m["role"] for m in state["messages"]].count("user") == 1


async def test_a_failed_turn_resumes_with_the_same_idempotency_key(
    db: Database, run_worker: WorkerFactory, http: httpx.AsyncClient, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = [tool_call(), error(400), text("Claim 123 is in review.")]
    model = OpenAIChatCompletionClient(
        model="gpt-4o-mini", api_key=API_KEY, base_url=fake_openai.url
    )
    cid, mid = new_id(), key()
    async with run_worker(db, AgentRegistry([claims_assistant(model, db.sessions)])):
        failed = await post_message(http, cid, CLAIM_QUESTION, mid)
        resumed = await post_message(http, cid, CLAIM_QUESTION, mid, resume="true")
    assert failed.status_code == resumed.status_code == 200, resumed.text
    assert failed.json()["status"] == "failed"
    assert failed.json()["error"]["type"] == "ModelHTTP400"
    assert resumed.json()["status"] == "completed" and resumed.json()["turn"] == 1
    assert resumed.json()["reply"] == "Claim 123 is in review."
    assert [c["name"] for c in resumed.json()["tool_calls"]] == ["get_claim_status"]
    last = [m["role"] for m in fake_openai.requests[-1][1]["messages"]]
    assert last == ["system", "user", "assistant", "tool"]  # the tool's result, not run again


async def test_async_mode_answers_202_and_the_turn_runs(
    db: Database, run_worker: WorkerFactory, http: httpx.AsyncClient
) -> None:
    cid, mid = new_id(), key()
    async with run_worker(db):
        first = await post_message(http, cid, CLAIM_QUESTION, mid, mode="async")
        again = await post_message(http, cid, CLAIM_QUESTION, mid, mode="async")
        state = await wait_for_state(http, cid, lambda s: s["turn_count"] >= 1)
        recorded = await post_message(http, cid, CLAIM_QUESTION, mid)
        after = (await http.get(f"/conversations/{cid}")).json()
    assert first.status_code == 202 and again.status_code == 202, first.text
    assert first.headers["location"] == f"http://gateway/conversations/{cid}"
    assert first.json() == {
        "conversation_id": cid,
        "message_id": mid,
        "state_url": first.headers["location"],
    }
    assert state["turn_count"] == 1
    assert recorded.status_code == 200 and recorded.json()["message_id"] == mid
    assert recorded.json()["reply"].startswith("Claim 123 is in_review")
    assert after["turn_count"] == 1


async def test_invalid_requests_are_422(http: httpx.AsyncClient) -> None:
    cid = new_id()
    missing_key = await post_message(http, cid, CLAIM_QUESTION, None)
    body = assert_error(missing_key, 422, "invalid_request")
    assert "Idempotency-Key" in body["message"]
    assert body["details"][0]["loc"] == ["header", "Idempotency-Key"]
    for payload in ({}, {"text": "hi", "agent": "no spaces"}, {"text": "hi", "extra": 1}):
        response = await http.post(
            f"/conversations/{cid}/messages", json=payload, headers={"Idempotency-Key": key()}
        )
        assert_error(response, 422, "invalid_request")
    not_json = await http.post(
        f"/conversations/{cid}/messages", content=b"{", headers={"Idempotency-Key": key()}
    )
    assert_error(not_json, 422, "invalid_request")
    bad_mode = await post_message(http, cid, "hi", key(), mode="later")
    assert_error(bad_mode, 422, "invalid_request")
    bad_decision = await http.post(f"/conversations/{cid}/tool-decisions", json={"approve": 1})
    assert_error(bad_decision, 422, "invalid_request")
    bad_filter = await http.get("/conversations", params={"status": "sleeping"})
    assert_error(bad_filter, 422, "invalid_request")


async def test_messages_the_workflow_rejects_are_422_with_its_reason(
    db: Database, run_worker: WorkerFactory, http: httpx.AsyncClient
) -> None:
    cid = new_id()
    async with run_worker(db):
        blank = await post_message(http, cid, "   ", key())
        too_long = await post_message(http, cid, "x" * 32_001, key())
        state = (await http.get(f"/conversations/{cid}")).json()
    assert "text is empty" in assert_error(blank, 422, "invalid_request")["message"]
    body = assert_error(too_long, 422, "message_rejected")
    assert body["message"] == "rejected: text is longer than 32000 characters"
    assert state["turn_count"] == 0  # the rejected update started the conversation, no turn


async def test_an_unknown_conversation_is_404(http: httpx.AsyncClient) -> None:
    cid = new_id("missing")
    assert_error(await http.get(f"/conversations/{cid}"), 404, "conversation_not_found")
    decision = {"tool_call_id": "call-1", "approve": True}
    response = await http.post(f"/conversations/{cid}/tool-decisions", json=decision)
    assert_error(response, 404, "conversation_not_found")
    assert_error(await http.post(f"/conversations/{cid}/end"), 404, "conversation_not_found")
    assert_error(await http.get("/no/such/path"), 404, "not_found")


async def test_an_unknown_agent_is_422_and_the_failed_id_can_start_again(
    db: Database, run_worker: WorkerFactory, http: httpx.AsyncClient
) -> None:
    cid = new_id()
    async with run_worker(db):
        response = await http.post(
            f"/conversations/{cid}/messages",
            json={"text": "hello", "agent": "nobody"},
            headers={"Idempotency-Key": key()},
        )
        again = await post_message(http, cid, CLAIM_QUESTION, key())
    assert "nobody" in assert_error(response, 422, "unknown_agent")["message"]
    assert again.status_code == 200 and again.json()["turn"] == 1, again.text


async def listed(http: httpx.AsyncClient, cid: str, **params: str) -> list[dict[str, Any]]:
    """Visibility is eventually consistent: poll for a few seconds."""
    for _ in range(50):
        response = await http.get("/conversations", params={"page_size": "1000", **params})
        assert response.status_code == 200, response.text
        rows = [r for r in response.json()["conversations"] if r["conversation_id"] == cid]
        if rows:
            return rows
        await asyncio.sleep(0.1)
    return []


async def test_the_list_contains_the_conversation(
    db: Database, run_worker: WorkerFactory, http: httpx.AsyncClient, client: Client
) -> None:
    cid = new_id()
    async with run_worker(db):
        assert (await post_message(http, cid, "!say hi", key())).status_code == 200
        rows = await listed(http, cid)
        indexed = not await missing_search_attributes(client, SEARCH_ATTRIBUTES)
        filtered = await http.get("/conversations", params={"agent": "claims-assistant"})
        if indexed:
            by_agent = await listed(http, cid, agent="claims-assistant", status="idle")
    assert len(rows) == 1 and rows[0]["workflow_status"] == "RUNNING", rows
    if indexed:
        assert filtered.status_code == 200 and by_agent[0]["agent"] == "claims-assistant"
        assert by_agent[0]["status"] == "idle" and by_agent[0]["turn_count"] == 1
    else:
        assert_error(filtered, 501, "filter_unavailable")


async def test_pages_and_page_tokens(
    db: Database, run_worker: WorkerFactory, http: httpx.AsyncClient
) -> None:
    cids = [new_id(), new_id()]
    async with run_worker(db):
        for cid in cids:
            assert (await post_message(http, cid, "!say hi", key())).status_code == 200
        for cid in cids:
            assert await listed(http, cid)
    first = (await http.get("/conversations", params={"page_size": "1"})).json()
    token = first["next_page_token"]
    second = await http.get("/conversations", params={"page_size": "1", "page_token": token})
    assert second.status_code == 200, second.text
    assert second.json()["conversations"][0] != first["conversations"][0]
    other_query = {"page_token": token, "status": "idle"}
    assert_error(await http.get("/conversations", params=other_query), 422, "invalid_page_token")
    made_up = await http.get("/conversations", params={"page_token": "bm90LWEtdG9rZW4="})
    assert_error(made_up, 422, "invalid_page_token")
    not_base64 = await http.get("/conversations", params={"page_token": "%%"})
    assert_error(not_base64, 422, "invalid_request")


async def test_filters_without_search_attributes_are_501(
    client: Client, temporal_address: str, task_queue: str
) -> None:
    namespace = f"ns-{uuid.uuid4().hex[:8]}"  # a new namespace has no custom attributes
    retention = Duration(seconds=int(timedelta(days=1).total_seconds()))
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=retention)
    )
    factory = connector(temporal_address, namespace, task_queue)
    async with http_client(factory) as http:
        unfiltered = await http.get("/conversations")
        response = await http.get("/conversations", params={"status": "waiting_approval"})
    assert unfiltered.status_code == 200 and unfiltered.json()["conversations"] == []
    body = assert_error(response, 501, "filter_unavailable")
    assert "AgentName, ConversationStatus" in body["message"] and namespace in body["message"]


async def test_temporal_unavailable_is_503_with_retry_after(task_queue: str) -> None:
    async with http_client(connector("127.0.0.1:1", "default", task_queue)) as http:
        responses = [
            await http.get(f"/conversations/{new_id()}"),
            await post_message(http, new_id(), "hi", key()),
            await http.get("/conversations"),
        ]
    for response in responses:
        assert_error(response, 503, "temporal_unavailable")
        assert response.headers["retry-after"] == "5"


@pytest.mark.integration
async def test_temporal_going_away_is_503(task_queue: str) -> None:
    env = await start_dev_server()
    address = env.client.service_client.config.target_host
    lost = await Client.connect(address, retry_config=RetryConfig(max_retries=1))
    await env.shutdown()
    settings = GatewaySettings(retry_after=7)
    async with http_client(Conversations(lost, task_queue), settings) as http:
        response = await http.get(f"/conversations/{new_id()}")
    assert_error(response, 503, "temporal_unavailable")
    assert response.headers["retry-after"] == "7"


async def test_without_a_worker_a_message_is_accepted_and_state_times_out(
    conversations: Conversations,
) -> None:
    cid, mid = new_id(), key()
    settings = GatewaySettings(ask_timeout=0.5, query_timeout=0.5)
    async with http_client(conversations, settings) as http:
        accepted = await post_message(http, cid, CLAIM_QUESTION, mid)
        state = await http.get(f"/conversations/{cid}")
    assert accepted.status_code == 202 and accepted.json()["message_id"] == mid
    body = assert_error(state, 504, "temporal_timeout")
    assert conversations.task_queue in body["message"]


@pytest.mark.e2e
async def test_python_m_gateway_serves_it(
    db: Database,
    run_worker: WorkerFactory,
    temporal_address: str,
    task_queue: str,
    unused_tcp_port: int,
) -> None:
    clean = {k: v for k, v in os.environ.items() if k not in ENV.values()}
    env = {
        **clean,
        "PYTHONPATH": str(ROOT),
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "GATEWAY_PORT": str(unused_tcp_port),
        "GATEWAY_API_KEYS": KEY,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{unused_tcp_port}"
    try:
        http_client = httpx.AsyncClient(base_url=base, timeout=30, headers=BEARER)
        async with run_worker(db), http_client as http:
            await wait_until_serving(http)
            response = await post_message(http, new_id(), CLAIM_QUESTION, key())
    finally:
        process.terminate()
        # uvicorn shuts down cleanly, then re-raises the signal it caught
        assert await asyncio.wait_for(process.wait(), 30) in (0, -signal.SIGTERM)
    assert response.status_code == 200, response.text
    assert response.json()["reply"].startswith("Claim 123 is in_review")


async def wait_until_serving(http: httpx.AsyncClient) -> None:
    for _ in range(300):
        try:
            if (await http.get("/openapi.json")).status_code == 200:
                return
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    raise AssertionError("the gateway never started serving")


async def test_an_ended_conversation_is_409(
    db: Database, run_worker: WorkerFactory, http: httpx.AsyncClient
) -> None:
    cid, mid = new_id(), key()
    decision = {"tool_call_id": "call-1", "approve": True}
    async with run_worker(db):
        first = await post_message(http, cid, "!say one", mid)
        assert (await http.post(f"/conversations/{cid}/end")).status_code == 202
        state = await wait_for_state(http, cid, lambda s: s["status"] == "ended")
        responses = [
            await post_message(http, cid, "!say two", key()),
            await post_message(http, cid, "!say two", key(), mode="async"),
            await http.post(f"/conversations/{cid}/tool-decisions", json=decision),
            await http.post(f"/conversations/{cid}/end"),
        ]
        retried = await post_message(http, cid, "!say one", mid)
        final = (await http.get(f"/conversations/{cid}")).json()
    for response in responses:
        assert_error(response, 409, "conversation_ended")
    # Temporal still finds the closed run's update by its ID: the same answer, no new run
    assert retried.status_code == 200 and retried.json() == first.json()
    assert state["turn_count"] == 1 and final["turn_count"] == 1


async def test_approval_over_http_and_a_message_while_ending_is_409(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    agents = AgentRegistry(
        [claims_assistant(ScriptedChatCompletionClient(), db.sessions, email_needs_approval=True)]
    )
    cid, mid = new_id(), key()
    async with (
        run_worker(db, agents),
        http_client(conversations, GatewaySettings(ask_timeout=1)) as http,
    ):
        waiting = await post_message(http, cid, "email the customer about claim 123", mid)
        state = await wait_for_state(http, cid, lambda s: s["status"] == "waiting_approval")
        call_id = state["pending_approvals"][0]["tool_call_id"]
        assert (await http.post(f"/conversations/{cid}/end")).status_code == 202
        ending = await post_message(http, cid, "!say too late", key())
        decided = await http.post(
            f"/conversations/{cid}/tool-decisions",
            json={"tool_call_id": call_id, "approve": True, "reason": "ok"},
        )
        final = await wait_for_state(http, cid, lambda s: s["status"] == "ended")
    assert waiting.status_code == 202 and waiting.json()["message_id"] == mid  # ask_timeout
    assert_error(ending, 409, "conversation_ending")
    assert decided.status_code == 202 and decided.json()["tool_call_id"] == call_id
    assert final["turn_count"] == 1
    assert [(c["name"], c["status"]) for c in final["tool_calls"]] == [
        ("send_customer_email", "ok")
    ]
    assert await count(db, OutboxEmail, conversation_id=cid) == 1


async def test_cancel_interrupts_the_running_turn_and_answers_404_and_409(
    db: Database, run_worker: WorkerFactory, http: httpx.AsyncClient
) -> None:
    cid, mid = new_id(), key()
    agents = AgentRegistry([interruptible_agent(db, StreamingModel())])
    slow = '!call slow_transfer {"seconds": 60}'
    async with run_worker(db, agents):
        headers = {"Idempotency-Key": mid}
        body = {"text": slow, "agent": "interruptible"}
        started = await http.post(
            f"/conversations/{cid}/messages", json=body, headers=headers, params={"mode": "async"}
        )
        await until(lambda: ledger_shows(db, cid, {"slow_transfer": "claimed"}))
        cancelled = await http.post(
            f"/conversations/{cid}/cancel", json={"message_id": mid, "reason": "stop"}
        )
        turn = await http.post(f"/conversations/{cid}/messages", json=body, headers=headers)
        idle = await http.post(f"/conversations/{cid}/cancel")
        unknown = await http.post(f"/conversations/{new_id()}/cancel")
        assert (await http.post(f"/conversations/{cid}/end")).status_code == 202
        await wait_for_state(http, cid, lambda s: s["status"] == "ended")
        ended = await http.post(f"/conversations/{cid}/cancel", json={})
    assert started.status_code == 202
    assert cancelled.status_code == 200
    assert cancelled.json() == {"cancelled": True, "message_id": mid, "turn": 1}
    assert turn.status_code == 200 and turn.json()["status"] == "interrupted"
    assert turn.json()["error"] == {"type": "TurnInterrupted", "message": "stop"}
    assert [(c["name"], c["status"]) for c in turn.json()["tool_calls"]] == [
        ("slow_transfer", "unknown")
    ]
    assert idle.status_code == 200
    assert idle.json() == {"cancelled": False, "message_id": None, "turn": None}
    assert_error(unknown, 404, "conversation_not_found")
    assert_error(ended, 409, "conversation_ended")


async def test_an_unexpected_error_is_a_logged_json_502(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> Conversations:
        raise ValueError("a bug")

    with caplog.at_level(logging.ERROR, logger="gateway"):
        async with http_client(broken) as http:
            response = await http.get(f"/conversations/{new_id()}")
    body = assert_error(response, 502, "unexpected_error")
    assert "a bug" not in body["message"]
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [ValueError]


async def test_the_openapi_schema_documents_every_error(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert {op["operationId"] for op in operations} == {
        "post_message",
        "get_conversation",
        "post_tool_decision",
        "post_end",
        "post_cancel",
        "list_conversations",
        "get_events",
        "post_ui_session",
        "page_config",
        "healthz",
        "readyz",
    }
    for op in operations:
        if op["operationId"] in ("healthz", "readyz", "page_config"):
            # load balancers call them without a key; the page reads its config before one
            assert op.get("security") is None, op["operationId"]
            continue
        if op["operationId"] == "get_events":  # EventSource sends the page's session cookie
            assert op["security"] == [{"HTTPBearer": []}, {"APIKeyCookie": []}]
        else:
            assert op["security"] == [{"HTTPBearer": []}], op["operationId"]
        statuses = ["401", "403", "413", "415"]
        if op["operationId"] != "post_ui_session":  # it sets a cookie, no Temporal call
            statuses += ["422", "502", "503", "504"]
        for status in statuses:
            content = op["responses"][status]["content"]["application/json"]
            assert content["schema"] == error_ref, (op["operationId"], status)
        if "503" in statuses:
            assert "Retry-After" in op["responses"]["503"]["headers"]
    post = schema["paths"]["/conversations/{conversation_id}/messages"]["post"]
    header = next(p for p in post["parameters"] if p["in"] == "header")
    assert header["name"] == "Idempotency-Key" and header["required"] is True
    assert set(post["responses"]) >= {"200", "202", "409"}


def test_the_published_blank_text_pattern_is_the_workflows_rule() -> None:
    pattern = re.compile(NOT_BLANK)
    texts = [chr(code) for code in range(0x10000)]
    assert [t for t in texts if (pattern.search(t) is None) != (not t.strip())] == []
