"""The gateway's event streams (Server-Sent Events) over a real socket: a message sent with
`Accept: text/event-stream` streams its turn, `GET .../events` resumes from Last-Event-ID
or `?after=`, pings keep an idle stream open, and the chat page's cookie opens it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from activities.db import Database
from activities.deltas import TextDeltas
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.agent import claims_assistant
from demo.scripted_model import ScriptedChatCompletionClient
from gateway import ApiKey, GatewayAuth, GatewaySettings
from support.gateway_server import serving
from support.ids import new_id
from support.workers import WorkerFactory

KEY = "event-stream-key-0123456789"
BEARER = {"Authorization": f"Bearer {KEY}"}
DURABLE = {"turn_accepted", "turn_started", "model_started", "tool_started", "tool_finished"}
DURABLE |= {"approval_needed", "approval_decided", "turn_finished"}


@dataclass
class Sse:
    type: str
    id: str
    data: dict[str, Any]


async def read_events(
    response: httpx.Response, until: str | None = "turn_finished", comments: list[str] | None = None
) -> list[Sse]:
    """Events of an SSE body, up to the first `until` event (or the body's end)."""
    return await asyncio.wait_for(_read_events(response, until, comments), 30)


async def _read_events(
    response: httpx.Response, until: str | None, comments: list[str] | None
) -> list[Sse]:
    assert response.status_code == 200, await response.aread()
    assert response.headers["content-type"].startswith("text/event-stream")
    seen: list[Sse] = []
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            if comments is not None:
                comments.append(line)
                if until is None:
                    return seen
            continue
        if line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
            continue
        if "data" in fields:
            seen.append(
                Sse(fields.get("event", ""), fields.get("id", ""), json.loads(fields["data"]))
            )
            fields = {}
            if seen[-1].type == until:
                return seen
    return seen


def streaming_agents(db: Database) -> AgentRegistry:
    """The demo agent, its replies streamed word by word with a delay."""
    return AgentRegistry(
        [claims_assistant(ScriptedChatCompletionClient(token_delay=0.02), db.sessions)]
    )


@pytest.fixture
async def gateway(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> AsyncIterator[httpx.AsyncClient]:
    streaming = Conversations(conversations.client, conversations.task_queue, deltas=TextDeltas(db))
    auth = GatewayAuth(keys=[ApiKey(name="events", key=KEY)])
    settings = GatewaySettings(auth=auth, sse_ping_seconds=0.3)
    async with run_worker(db, agents=streaming_agents(db)), serving(streaming, settings) as url:
        async with httpx.AsyncClient(base_url=url, headers=BEARER, timeout=30) as http:
            yield http


async def test_a_message_streams_its_turn_and_the_stream_resumes_from_any_event(
    gateway: httpx.AsyncClient, conversations: Conversations
) -> None:
    cid = new_id()
    await conversations.start(cid)  # running: the message's stream subscribes before sending
    headers = {"Accept": "text/event-stream", "Idempotency-Key": "m-1"}
    body = {"text": "Check policy status for claim 123"}
    async with gateway.stream(
        "POST", f"/conversations/{cid}/messages", json=body, headers=headers
    ) as response:
        turn = await read_events(response, until=None)  # the body ends after turn_finished
    assert all(e.type == e.data["type"] and e.id for e in turn)
    types = [e.type for e in turn]
    assert types[-1] == "turn_finished" and types.count("turn_finished") == 1
    assert turn[-1].data["status"] == "completed" and turn[-1].data["message_id"] == "m-1"
    tool = [e for e in turn if e.type in ("tool_started", "tool_finished")]
    assert [(e.type, e.data["name"]) for e in tool] == [
        ("tool_started", "get_claim_status"),
        ("tool_finished", "get_claim_status"),
    ]
    assert tool[0].data["arguments"] == '{"claim_id": 123}'
    texts = [e for e in turn if e.type == "text"]
    assert len(texts) >= 2, types  # the reply arrived in pieces, before the turn ended
    last_step = texts[-1].data["step"]
    written = "".join(e.data["text"] for e in texts if e.data["step"] == last_step)
    assert written == turn[-1].data["text"]
    assert types.index("tool_finished") < types.index("turn_finished")

    # the same key again: the recorded turn, streamed as its turn_finished
    async with gateway.stream(
        "POST", f"/conversations/{cid}/messages", json=body, headers=headers
    ) as response:
        again = await read_events(response, until=None)
    assert again[-1].type == "turn_finished" and again[-1].data["text"] == turn[-1].data["text"]
    # resume after the tool's end: exactly the durable events that followed it (an ID's
    # durable part; replayed, text deltas may interleave with them differently)
    middle = types.index("tool_finished")

    def durable(events: list[Sse]) -> list[tuple[str, str]]:
        return [(e.type, e.id.split("-")[0]) for e in events if e.type in DURABLE]

    expected = durable(turn[middle + 1 :])
    for how in (
        {"headers": {"Last-Event-ID": turn[middle].id}},
        {"params": {"after": turn[middle].id}},
    ):
        async with gateway.stream("GET", f"/conversations/{cid}/events", **how) as response:  # type: ignore[arg-type]
            rest = await read_events(response)
        assert durable(rest) == expected, how

    state = (await gateway.get(f"/conversations/{cid}")).json()
    assert state["turn_count"] == 1


async def test_an_idle_stream_pings_and_the_page_cookie_opens_it(
    gateway: httpx.AsyncClient, conversations: Conversations
) -> None:
    cid = new_id()
    await conversations.start(cid)
    comments: list[str] = []
    async with gateway.stream("GET", f"/conversations/{cid}/events?after=now") as response:
        assert await read_events(response, until=None, comments=comments) == []
    assert comments and comments[0].startswith(": ping")

    session = await gateway.post("/ui/session", json={})
    assert session.status_code == 204
    cookie = session.headers["set-cookie"].lower()
    for part in ("agent_gateway_key=", "httponly", "samesite=strict", "path=/conversations"):
        assert part in cookie, cookie
    base = str(gateway.base_url)
    async with httpx.AsyncClient(base_url=base, timeout=30) as browser:
        refused = await browser.get(f"/conversations/{cid}/events")
        assert refused.status_code == 401
        browser.cookies.set("agent_gateway_key", KEY)
        async with browser.stream("GET", f"/conversations/{cid}/events?after=now") as response:
            assert await read_events(response, until=None, comments=[]) == []
        # the cookie opens only the event stream
        assert (await browser.get(f"/conversations/{cid}")).status_code == 401
    missing = await gateway.get(f"/conversations/{new_id()}/events")
    assert missing.status_code == 404 and missing.json()["error"] == "conversation_not_found"


async def test_the_openapi_schema_documents_both_streams(gateway: httpx.AsyncClient) -> None:
    paths = (await gateway.get("/openapi.json")).json()["paths"]
    events = paths["/conversations/{conversation_id}/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert {p["name"] for p in events["parameters"]} >= {"after", "Last-Event-ID"}
    message = paths["/conversations/{conversation_id}/messages"]["post"]
    assert "text/event-stream" in message["responses"]["200"]["content"]
