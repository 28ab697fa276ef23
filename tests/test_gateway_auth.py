"""The gateway lets no one in without a key: API keys and their scopes, Origin and content
type on state-changing requests, a body-size limit before parsing, CORS, health checks."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from activities.db import Database
from conversation_client import Conversations
from gateway import ApiKey, AuthConfigError, GatewayAuth, GatewaySettings, create_app
from support.ids import new_id
from support.workers import WorkerFactory

FULL = "full-access-key-0123456789"
WEB = "web-scoped-key-0123456789"
AUTH = GatewayAuth(
    keys=[
        ApiKey(name="full", key=FULL),
        ApiKey(
            name="web",
            key=WEB,
            agents=["claims-assistant"],
            conversation_prefixes=["web-"],
        ),
    ]
)


@asynccontextmanager
async def gateway(
    conversations: Conversations, key: str | None = FULL, **settings: object
) -> AsyncIterator[httpx.AsyncClient]:
    options = {"auth": AUTH, **settings}
    app = create_app(conversations, GatewaySettings.model_validate(options))
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw", headers=headers) as c:
        yield c


def message(text: str = "!say hello", **extra: str) -> dict[str, object]:
    return {"json": {"text": text, **extra}, "headers": {"Idempotency-Key": f"m-{uuid.uuid4()}"}}


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    code: str = response.json()["error"]
    return code


async def test_without_a_key_or_with_a_wrong_one_everything_is_401(
    conversations: Conversations,
) -> None:
    cid = new_id()
    for key in (None, "wrong-key-0123456789abc", FULL[:-1]):
        async with gateway(conversations, key) as http:
            responses = [
                await http.get("/conversations"),
                await http.get(f"/conversations/{cid}"),
                await http.post(f"/conversations/{cid}/messages", **message()),  # type: ignore[arg-type]
                await http.post(f"/conversations/{cid}/end"),
                await http.post(f"/conversations/{cid}/cancel"),
            ]
        for response in responses:
            assert error_of(response, 401) == "unauthenticated"
            assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_the_default_settings_accept_no_key_at_all(
    conversations: Conversations, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway"):
        app = create_app(conversations)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        refused = await http.get("/conversations", headers={"Authorization": "Bearer anything"})
        health = await http.get("/healthz")
    assert error_of(refused, 401) == "unauthenticated"
    assert health.json() == {"status": "ok"}
    assert "no API keys configured" in caplog.text


async def test_no_auth_must_be_asked_for_and_is_warned_about(
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway"):
        app = create_app(conversations, GatewaySettings(auth=GatewayAuth(anonymous=True)))
    assert "authentication is OFF" in caplog.text
    transport = httpx.ASGITransport(app=app)
    async with run_worker(db), httpx.AsyncClient(transport=transport, base_url="http://gw") as h:
        response = await h.post(f"/conversations/{new_id()}/messages", **message())  # type: ignore[arg-type]
    assert response.status_code == 200 and response.json()["reply"] == "hello"


async def test_a_scoped_key_touches_only_its_prefixes_and_agents(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    mine, other, foreign_agent = new_id("web"), new_id("crm"), new_id("web")
    async with run_worker(db), gateway(conversations, FULL) as admin:
        assert (
            await admin.post(f"/conversations/{other}/messages", **message())
        ).status_code == 200  # type: ignore[arg-type]
        started = await admin.post(
            f"/conversations/{foreign_agent}/messages",
            **message(agent="claims-autogen"),  # type: ignore[arg-type]
        )
        assert started.status_code == 200, started.text
    async with run_worker(db), gateway(conversations, WEB) as web:
        ok = await web.post(f"/conversations/{mine}/messages", **message())  # type: ignore[arg-type]
        outside = [
            await web.post(f"/conversations/{other}/messages", **message()),  # type: ignore[arg-type]
            await web.get(f"/conversations/{other}"),
            await web.post(f"/conversations/{other}/end"),
        ]
        other_agent = [
            await web.post(f"/conversations/{new_id('web')}/messages", **message(agent="x")),  # type: ignore[arg-type]
            await web.get(f"/conversations/{foreign_agent}"),
            await web.post(f"/conversations/{foreign_agent}/messages", **message()),  # type: ignore[arg-type]
        ]
        listed = await web.get("/conversations", params={"page_size": 1000})
    assert ok.status_code == 200, ok.text
    for response in outside + other_agent:
        assert error_of(response, 403) == "forbidden"
    ids = {c["conversation_id"] for c in listed.json()["conversations"]}
    assert mine in ids and other not in ids and foreign_agent not in ids
    assert all(i.startswith("web-") for i in ids)


async def test_state_changes_refuse_forms_and_foreign_origins(
    conversations: Conversations,
) -> None:
    cid = new_id()
    form = {"content": b"text=hi", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}
    async with gateway(conversations, FULL, cors_origins=["https://app.example"]) as http:
        end_as_form = await http.post(f"/conversations/{cid}/end", **form)  # type: ignore[arg-type]
        text_plain = await http.post(
            f"/conversations/{cid}/end", content=b"{}", headers={"Content-Type": "text/plain"}
        )
        evil = await http.post(
            f"/conversations/{cid}/end", headers={"Origin": "http://evil.example"}
        )
        allowed = await http.post(
            f"/conversations/{cid}/end", headers={"Origin": "https://app.example"}
        )
        preflight = await http.options(
            f"/conversations/{cid}/messages",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
            },
        )
    assert error_of(end_as_form, 415) == "unsupported_media_type"
    assert error_of(text_plain, 415) == "unsupported_media_type"
    assert error_of(evil, 403) == "origin_not_allowed"
    assert error_of(allowed, 404) == "conversation_not_found"  # past the guard, to Temporal
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"


async def test_no_cors_by_default(conversations: Conversations) -> None:
    async with gateway(conversations, FULL) as http:
        preflight = await http.options(
            "/conversations",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
        )
        evil = await http.post(
            f"/conversations/{new_id()}/end", headers={"Origin": "https://app.example"}
        )
        # the gateway's own origin (its chat page's fetch sends one) is not cross-site
        own = await http.post(f"/conversations/{new_id()}/end", headers={"Origin": "http://gw"})
        spoofed = await http.post(
            f"/conversations/{new_id()}/end", headers={"Origin": "http://gw.evil.example"}
        )
    assert "access-control-allow-origin" not in preflight.headers
    assert error_of(evil, 403) == "origin_not_allowed"
    assert error_of(own, 404) == "conversation_not_found"
    assert error_of(spoofed, 403) == "origin_not_allowed"


async def test_bodies_over_the_limit_are_413_before_parsing(conversations: Conversations) -> None:
    cid = new_id()
    big = json.dumps({"text": "x" * 10_000}).encode()

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    headers = {"Idempotency-Key": "m-1", "Content-Type": "application/json"}
    async with gateway(conversations, FULL, max_body_bytes=4096) as http:
        declared = await http.post(f"/conversations/{cid}/messages", content=big, headers=headers)
        streamed = await http.post(
            f"/conversations/{cid}/messages", content=chunked(), headers=headers
        )
        unauthenticated = await httpx.AsyncClient(
            transport=http._transport, base_url="http://gw"
        ).post(f"/conversations/{cid}/messages", content=big, headers=headers)
    assert "content-length" not in {k.lower() for k in streamed.request.headers}
    for response in (declared, streamed, unauthenticated):
        assert error_of(response, 413) == "body_too_large"
        assert "4,096 bytes" in response.json()["message"]


async def test_a_decision_for_a_call_that_is_not_pending_is_404(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid = new_id()
    async with run_worker(db), gateway(conversations) as http:
        await http.post(f"/conversations/{cid}/messages", **message())  # type: ignore[arg-type]
        decided = await http.post(
            f"/conversations/{cid}/tool-decisions", json={"tool_call_id": "nope", "approve": True}
        )
    assert error_of(decided, 404) == "tool_call_not_pending"


async def test_health_and_readiness_need_no_key(
    conversations: Conversations, task_queue: str
) -> None:
    async with gateway(conversations, key=None) as http:
        live, ready = await http.get("/healthz"), await http.get("/readyz")
    assert live.json() == {"status": "ok"} and ready.json() == {"status": "ready"}

    async def unreachable() -> Conversations:
        raise RuntimeError("Failed client connect: connection refused")

    app = create_app(unreachable, GatewaySettings(auth=AUTH))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        down = await http.get("/readyz")
    assert error_of(down, 503) == "temporal_unavailable" and "Retry-After" in down.headers


def test_keys_from_the_environment_and_a_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    entry = {"name": "web", "key": "k" * 20, "agents": ["a"], "conversation_prefixes": ["w-"]}
    path.write_text(json.dumps([entry]))
    auth = GatewayAuth.from_env(
        {"GATEWAY_API_KEYS": f"{'e' * 16}, ", "GATEWAY_API_KEY_FILE": str(path)}
    )
    env_caller, file_caller = auth.authenticate("e" * 16), auth.authenticate("k" * 20)
    assert env_caller is not None and env_caller.agents is None
    assert file_caller is not None and file_caller.name == "web" and file_caller.agents == ["a"]
    assert auth.authenticate("k" * 19) is None and auth.authenticate("") is None
    assert not GatewayAuth.from_env({}).anonymous
    assert GatewayAuth.from_env({"GATEWAY_NO_AUTH": "1"}).anonymous


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"key": "a" * 20}),
        json.dumps([{"name": "short", "key": "secret-but-short"[:10]}]),
        json.dumps(
            [{"name": "bad", "key": "s3cr3t-value-long-enough", "conversation_prefixes": ['a"b']}]
        ),
    ],
)
def test_bad_key_files_are_refused_without_echoing_keys(tmp_path: Path, content: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content)
    with pytest.raises(AuthConfigError) as refused:
        GatewayAuth.from_env({"GATEWAY_API_KEY_FILE": str(path)})
    assert "secret" not in str(refused.value) and "s3cr3t" not in str(refused.value)
    assert str(path) in str(refused.value)


def test_a_short_key_in_the_environment_is_refused() -> None:
    with pytest.raises(AuthConfigError, match="shorter than 16"):
        GatewayAuth.from_env({"GATEWAY_API_KEYS": "short"})
