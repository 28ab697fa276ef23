"""Encrypted conversations: the AES-GCM codec, its keys, rotation, the codec server, the CLI.

The session's `client` fixture has no codec: it sees what the Temporal server stores.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from google.protobuf import json_format
from sqlalchemy import select
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes
from temporalio.worker import Worker

from activities.db import Database
from codec import (
    ENCODING,
    KEY_ID_METADATA,
    CodecServerSettings,
    DecryptionError,
    EncryptionCodec,
    KeyConfigError,
    KeyRing,
    encrypted_data_converter,
    generate_key_entry,
)
from codec._session import SESSION_COOKIE, session_value
from conversation_client import Conversations, connect
from demo.tables import ClaimNote
from interface import StartConversation
from settings import ENV, WorkerSettings
from support.codec_server import K1, K2, NAMESPACE, TOKEN, UI_ORIGIN, ring, server_app, serving
from support.ids import new_id
from support.paths import ROOT
from support.payloads import payloads_in
from support.temporal_cli import temporal_cli
from worker import build_worker, default_agents

SECRET_TURN = "add a note to claim 123 that the secret word is pineapple"


def plain(text: str) -> Payload:
    return pydantic_data_converter.payload_converter.to_payloads([text])[0]


# the codec and its keys


async def test_payloads_are_sealed_under_the_active_key_id() -> None:
    codec = EncryptionCodec(ring(K1))
    original = plain(SECRET_TURN)
    [sealed] = await codec.encode([original])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    assert b"pineapple" not in sealed.SerializeToString()
    assert (await codec.decode([sealed])) == [original]
    [again] = await codec.encode([original])
    assert again.data != sealed.data, "a nonce was reused"


async def test_old_payloads_decode_after_rotation() -> None:
    [old] = await EncryptionCodec(ring(K1)).encode([plain("from before")])
    rotated = EncryptionCodec(ring(K2, K1))
    [new] = await rotated.encode([plain("from after")])
    assert new.metadata[KEY_ID_METADATA] == b"k2"
    assert await rotated.decode([old, new]) == [plain("from before"), plain("from after")]
    with pytest.raises(DecryptionError, match="unknown key ID 'k1'"):
        await EncryptionCodec(ring(K2)).decode([old])


async def test_tampered_or_foreign_payloads_are_refused_and_plain_ones_pass() -> None:
    codec = EncryptionCodec(ring(K1))
    [sealed] = await codec.encode([plain("x")])
    tampered = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + b"\0")
    with pytest.raises(DecryptionError, match="failed authentication"):
        await codec.decode([tampered])
    other_k1 = generate_key_entry("k1")
    with pytest.raises(DecryptionError, match="failed authentication"):
        await EncryptionCodec(ring(other_k1)).decode([sealed])
    assert await codec.decode([plain("legacy")]) == [plain("legacy")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no keys"),
        ("# only a comment\n", "no keys"),
        ("k1", "expected KEY_ID:BASE64_KEY"),
        ("k 1:" + K1.split(":")[1], "key ID must match"),
        ("k1:not base64!", "not valid base64"),
        ("k1:c2hvcnQ=", "5 bytes; expected 32"),
        (f"{K1},{K1}", "appears twice"),
    ],
    ids=["empty", "comment", "no-colon", "bad-id", "not-base64", "short", "twice"],  # no key
)
def test_bad_key_config_is_a_clear_error_without_the_key(text: str, message: str) -> None:
    with pytest.raises(KeyConfigError, match=message) as raised:
        KeyRing.parse(text)
    assert K1.split(":")[1] not in str(raised.value)


def test_keys_from_variable_and_file(tmp_path: Path) -> None:
    key_file = tmp_path / "codec-keys"
    key_file.write_text(f"# rotated in 2025\n{K2}\n{K1}\n")
    from_file = KeyRing.from_config(key_file=key_file)
    assert from_file is not None and from_file.ids == ["k2", "k1"]
    k3 = generate_key_entry("k3")
    both = KeyRing.from_config(k3, key_file)
    assert both is not None and both.ids == ["k3", "k2", "k1"]
    assert KeyRing.from_config(None, None) is None
    with pytest.raises(KeyConfigError, match="cannot read"):
        KeyRing.from_config(key_file=tmp_path / "missing")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(KeyConfigError, match="AGENT_CODEC_KEY_FILE: no keys"):
        KeyRing.from_config(key_file=tmp_path / "empty")
    assert K1.split(":")[1] not in repr(from_file)


def test_worker_settings_choose_the_converter(tmp_path: Path) -> None:
    assert {"AGENT_CODEC_KEYS", "AGENT_CODEC_KEY_FILE"} <= set(ENV.values())
    assert WorkerSettings.from_env({}).data_converter() is pydantic_data_converter
    converter = WorkerSettings.from_env({"AGENT_CODEC_KEYS": f"{K2},{K1}"}).data_converter()
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert converter.payload_codec.ring.ids == ["k2", "k1"]
    assert isinstance(converter.failure_converter, DefaultFailureConverterWithEncodedAttributes)
    assert K1.split(":")[1] not in repr(WorkerSettings.from_env({"AGENT_CODEC_KEYS": K1}))
    with pytest.raises(KeyConfigError):
        WorkerSettings.from_env({"AGENT_CODEC_KEY_FILE": str(tmp_path / "nope")}).data_converter()


@pytest.mark.e2e
async def test_worker_refuses_to_start_with_bad_keys() -> None:
    bad_key = "k1:" + K1.split(":")[1][:20]
    env = {k: v for k, v in os.environ.items() if k not in ENV.values()}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "worker.py"),
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT), "AGENT_CODEC_KEYS": bad_key},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert "payload encryption: AGENT_CODEC_KEYS, entry 1 (k1)" in err.decode()
    assert bad_key.split(":")[1] not in (out + err).decode()


# conversations on the dev server


EncryptedWorker = Callable[[Client, Database], AbstractAsyncContextManager[Worker]]


@pytest.fixture
def encrypted_worker(task_queue: str) -> EncryptedWorker:
    """`async with encrypted_worker(client, db):` a worker on a client with a codec."""

    @asynccontextmanager
    async def start(client: Client, db: Database) -> AsyncIterator[Worker]:
        agents = default_agents(WorkerSettings(), db)
        async with build_worker(client, task_queue, db, agents) as worker:
            yield worker

    return start


async def encrypted_client(address: str, key_ring: KeyRing) -> Client:
    return await connect(address, NAMESPACE, data_converter=encrypted_data_converter(key_ring))


async def raw_history(client: Client, cid: str) -> tuple[list[Payload], bytes]:
    """The history as the server stores it: its payloads, and all its bytes."""
    history = await client.get_workflow_handle(cid).fetch_history()
    payloads = []
    for event in history.events:
        # the SDK's own bookkeeping bypasses the codec: a local-activity marker's "data"
        # (sequence, activity type, times; its "result" is encoded) and a patch marker's
        # details (the patch ID, here "search-attributes")
        marker = event.marker_recorded_event_attributes
        sdk_data = list(marker.details["data"].payloads) if "data" in marker.details else []
        if marker.marker_name == "core_patch":
            sdk_data += [p for details in marker.details.values() for p in details.payloads]
        payloads += [p for p in payloads_in(event) if p not in sdk_data]
    return payloads, b"".join(event.SerializeToString() for event in history.events)


async def test_history_without_the_codec_has_no_plaintext(
    client: Client,
    temporal_address: str,
    task_queue: str,
    db: Database,
    encrypted_worker: EncryptedWorker,
) -> None:
    secure = await encrypted_client(temporal_address, ring(K1))
    conversations = Conversations(secure, task_queue)
    cid = new_id("enc")
    async with encrypted_worker(secure, db):
        result = await conversations.ask(cid, SECRET_TURN, "m-1")
        state = await conversations.state(cid)
    [call] = result.tool_calls
    assert call.name == "create_claim_note" and call.status == "ok"
    assert "pineapple" in json.dumps(call.arguments) and result.reply.startswith("I added note")
    assert any("pineapple" in m.content for m in state.messages if m.role == "user")
    async with db.session() as session:
        notes = await session.scalars(select(ClaimNote.text).where(ClaimNote.claim_id == 123))
        assert any("pineapple" in text for text in notes.all())

    payloads, stored = await raw_history(client, cid)
    assert len(payloads) >= 6  # start input, update, 2 model calls, tool call, results
    assert {p.metadata["encoding"] for p in payloads} == {ENCODING}
    assert {p.metadata[KEY_ID_METADATA] for p in payloads} == {b"k1"}
    for plaintext in (b"pineapple", b"secret word", b"claim_id", b"note_id", b"I added note"):
        assert plaintext not in stored, f"{plaintext!r} is readable in the stored history"


async def test_failure_messages_are_encrypted(
    client: Client,
    temporal_address: str,
    task_queue: str,
    db: Database,
    encrypted_worker: EncryptedWorker,
) -> None:
    secure = await encrypted_client(temporal_address, ring(K1))
    conversations = Conversations(secure, task_queue)
    cid = new_id("enc-fail")
    async with encrypted_worker(secure, db):
        handle = await conversations.start(cid, StartConversation(agent="pineapple-agent"))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    assert "pineapple-agent" in str(failed.value.cause)
    _, stored = await raw_history(client, cid)
    assert b"pineapple" not in stored
    assert b"Encoded failure" in stored


async def test_a_conversation_started_under_k1_goes_on_under_k2(
    client: Client,
    temporal_address: str,
    task_queue: str,
    db: Database,
    encrypted_worker: EncryptedWorker,
) -> None:
    cid = new_id("rotate")
    before = await encrypted_client(temporal_address, ring(K1))
    async with encrypted_worker(before, db):
        first = await Conversations(before, task_queue).ask(cid, "Check claim 123", "m-1")
    after = await encrypted_client(temporal_address, ring(K2, K1))
    # a fresh worker replays the whole history, written under k1, before the next turn
    async with encrypted_worker(after, db):
        second = await Conversations(after, task_queue).ask(cid, SECRET_TURN, "m-2")
        state = await Conversations(after, task_queue).state(cid)
    assert first.status == second.status == "completed"
    assert state.turn_count == 2
    payloads, stored = await raw_history(client, cid)
    assert {p.metadata[KEY_ID_METADATA] for p in payloads} == {b"k1", b"k2"}
    assert b"pineapple" not in stored


# the codec server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=server_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://codec") as client:
        yield client


def as_json(payloads: list[Payload]) -> str:
    return json_format.MessageToJson(Payloads(payloads=payloads))


def from_json(text: str) -> list[Payload]:
    return list(json_format.Parse(text, Payloads()).payloads)


GOOD = {"Authorization": f"Bearer {TOKEN}", "X-Namespace": NAMESPACE}


async def test_codec_server_decodes_with_the_token(http: httpx.AsyncClient) -> None:
    originals = [plain(SECRET_TURN), plain("second")]
    sealed = await EncryptionCodec(ring(K1)).encode(originals)
    body = as_json(sealed)
    assert json.loads(body)["payloads"][0]["metadata"]["encryption-key-id"]  # proto JSON
    response = await http.post("/decode", content=body, headers=GOOD)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert from_json(response.text) == originals
    under_path = await http.post(f"/{NAMESPACE}/decode", content=body, headers=GOOD)
    assert from_json(under_path.text) == originals


async def test_codec_server_encodes_with_the_active_key(http: httpx.AsyncClient) -> None:
    response = await http.post("/encode", content=as_json([plain("hello")]), headers=GOOD)
    assert response.status_code == 200, response.text
    [sealed] = from_json(response.text)
    assert sealed.metadata[KEY_ID_METADATA] == b"k2"
    assert await EncryptionCodec(ring(K2)).decode([sealed]) == [plain("hello")]


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/decode", {"X-Namespace": NAMESPACE}, 401),
        (
            "/decode",
            {"Authorization": "Bearer wrong-token-0123456789", "X-Namespace": NAMESPACE},
            401,
        ),
        ("/decode", {"Authorization": TOKEN, "X-Namespace": NAMESPACE}, 401),
        ("/encode", {"X-Namespace": NAMESPACE}, 401),
        ("/decode", {"Authorization": f"Bearer {TOKEN}", "X-Namespace": "other"}, 403),
        ("/decode", {"Authorization": f"Bearer {TOKEN}"}, 403),
        ("/other/decode", GOOD, 403),
    ],
)
async def test_codec_server_refuses(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], status: int
) -> None:
    [sealed] = await EncryptionCodec(ring(K1)).encode([plain(SECRET_TURN)])
    response = await http.post(path, content=as_json([sealed]), headers=headers)
    assert response.status_code == status
    assert "pineapple" not in response.text
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


async def test_codec_server_reports_bad_input(http: httpx.AsyncClient) -> None:
    assert (await http.post("/decode", content=b"{not json", headers=GOOD)).status_code == 400
    [foreign] = await EncryptionCodec(ring(generate_key_entry("k9"))).encode([plain("x")])
    response = await http.post("/decode", content=as_json([foreign]), headers=GOOD)
    assert response.status_code == 400 and "unknown key ID 'k9'" in response.text


def sealed_json(data: bytes, key_id: str = "k1") -> str:
    """A payload that claims to be encrypted under `key_id`, with `data` as its bytes."""
    metadata = {"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()}
    return as_json([Payload(metadata=metadata, data=data)])


def sealed_garbage() -> bytes:
    """Authentic AES-GCM under K1 whose plaintext is not a serialized Payload."""
    nonce = os.urandom(12)
    return nonce + ring(K1).cipher("k1").encrypt(nonce, b"\xff\xff\xff not protobuf", None)


UNDECRYPTABLE = [
    (sealed_json(b"abc"), "too few to be encrypted"),
    (sealed_json(b""), "too few to be encrypted"),
    (sealed_json(b"0123456789"), "too few to be encrypted"),
    (sealed_json(b"\0" * 40), "failed authentication"),
    (sealed_json(sealed_garbage()), "not a Payload"),
]
"""Well-formed requests whose payloads claim encryption but cannot be opened."""
MALFORMED = [
    ('{"payloads": [{"data": "!!!"}]}', "payloads[0].data is not valid base64"),
    ('{"payloads": [{"metadata": {"encoding": "%%"}}]}', "metadata.encoding is not valid"),
    ("[]", "expected Payloads"),
    ("null", "expected Payloads"),
    ('"payloads"', "expected Payloads"),
    ('{"payloads": 5}', "expected Payloads"),
    ('{"payloads": [null]}', "expected Payloads"),
    ('{"payloads": [{"data": 5}]}', "expected Payloads"),
    ('{"unknown": 1}', "expected Payloads"),
    ("", "not JSON"),
    (b"\xff\xfe\x00", "not JSON"),
    ("[" * 100_000, "not JSON"),
]
"""Bodies that are not `Payloads` as proto JSON."""


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [("/decode", body, reason) for body, reason in UNDECRYPTABLE + MALFORMED]
    + [("/encode", body, reason) for body, reason in MALFORMED],
)
async def test_codec_server_answers_malformed_payloads_with_a_400(
    path: str, body: str | bytes, reason: str
) -> None:
    """Before: bare 500s (a short nonce, non-protobuf plaintext), bad base64 taken as empty."""
    transport = httpx.ASGITransport(app=server_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://codec") as http:
        response = await http.post(path, content=body, headers=GOOD)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert reason in response.json()["detail"]


async def test_codec_server_allows_the_ui_origin_only(http: httpx.AsyncClient) -> None:
    def preflight(origin: str) -> dict[str, str]:
        return {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        }

    allowed = await http.options("/decode", headers=preflight(UI_ORIGIN))
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == UI_ORIGIN
    assert "x-namespace" in allowed.headers["access-control-allow-headers"].lower()
    refused = await http.options("/decode", headers=preflight("http://evil.example"))
    assert "access-control-allow-origin" not in refused.headers
    response = await http.post(
        "/encode", content=as_json([plain("x")]), headers={**GOOD, "Origin": UI_ORIGIN}
    )
    assert response.headers["access-control-allow-origin"] == UI_ORIGIN


async def test_codec_server_health_needs_no_token(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def ui_request(cookie: str | None, **headers: str) -> dict[str, str]:
    """The headers of the Web UI's decode fetch (data-encoder.ts), with credentials."""
    sent = {"Content-Type": "application/json", "X-Namespace": NAMESPACE, "Origin": UI_ORIGIN}
    return sent | ({"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else {}) | headers


async def signed_in(http: httpx.AsyncClient) -> str:
    page = await http.get("/login")
    assert page.status_code == 200 and 'name="token"' in page.text
    response = await http.post("/login", data={"token": TOKEN})
    assert response.status_code == 200, response.text
    set_cookie = response.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie
    cookie = response.cookies[SESSION_COOKIE]
    assert TOKEN not in cookie  # the cookie is a MAC, not the token
    http.cookies.clear()  # each request below sends exactly the cookie it names
    return cookie


async def test_the_web_ui_decodes_after_an_operator_signs_in(http: httpx.AsyncClient) -> None:
    """The UI sends no bearer token: a session cookie from /login lets it decode."""
    [sealed] = await EncryptionCodec(ring(K1)).encode([plain(SECRET_TURN)])
    body, path = as_json([sealed]), "/decode?preserveStorageRefs=true"
    assert (await http.post(path, content=body, headers=ui_request(None))).status_code == 401
    wrong = await http.post("/login", data={"token": "not-the-token-0123456789"})
    assert wrong.status_code == 401 and SESSION_COOKIE not in wrong.cookies
    cookie = await signed_in(http)
    response = await http.post(path, content=body, headers=ui_request(cookie))
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == UI_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert from_json(response.text) == [plain(SECRET_TURN)]


async def test_a_session_is_refused_off_the_ui_or_when_forged(http: httpx.AsyncClient) -> None:
    [sealed] = await EncryptionCodec(ring(K1)).encode([plain(SECRET_TURN)])
    body = as_json([sealed])
    cookie = await signed_in(http)
    expires = int(cookie.split(".")[0])
    refused = {
        # a form or text/plain POST needs no CORS preflight, so any page could send it
        "text/plain": (ui_request(cookie, **{"Content-Type": "text/plain"}), 403),
        "other origin": (ui_request(cookie, Origin="http://evil.example"), 403),
        "other namespace": (ui_request(cookie, **{"X-Namespace": "other"}), 403),
        "expired": (ui_request(session_value(TOKEN.encode(), int(time.time()) - 1)), 401),
        "another token": (ui_request(session_value(b"another-token-0123456789", expires)), 401),
        "edited expiry": (ui_request(f"{expires + 9999}.{cookie.split('.')[1]}"), 401),
        "garbage": (ui_request("garbage"), 401),
    }
    for case, (headers, status) in refused.items():
        response = await http.post("/decode", content=body, headers=headers)
        assert response.status_code == status, case
        assert "pineapple" not in response.text, case


def test_codec_server_settings_need_a_token_and_keys() -> None:
    with pytest.raises(KeyConfigError, match="AGENT_CODEC_SERVER_TOKEN is not set"):
        CodecServerSettings.from_env({"AGENT_CODEC_KEYS": K1})
    with pytest.raises(KeyConfigError, match="at least 16") as short:
        CodecServerSettings.from_env({"AGENT_CODEC_SERVER_TOKEN": "hunter2"})
    assert "hunter2" not in str(short.value)
    with pytest.raises(KeyConfigError, match="AGENT_CODEC_KEYS or AGENT_CODEC_KEY_FILE"):
        CodecServerSettings.from_env({"AGENT_CODEC_SERVER_TOKEN": TOKEN}).app()
    settings = CodecServerSettings.from_env(
        {
            "AGENT_CODEC_SERVER_TOKEN": TOKEN,
            "AGENT_CODEC_KEYS": K1,
            "TEMPORAL_NAMESPACE": "claims",
            "AGENT_CODEC_CORS_ORIGINS": "https://ui.example, http://localhost:8080",
        }
    )
    assert settings.namespace == "claims"
    assert settings.cors_origins == ["https://ui.example", "http://localhost:8080"]
    assert TOKEN not in repr(settings) and K1 not in repr(settings)
    assert isinstance(settings.app(), FastAPI)


# the temporal CLI through the codec server


def payload_data(value: object) -> Iterator[str]:
    """The decoded `data` of every payload in the CLI's JSON output (base64 there)."""
    if isinstance(value, dict):
        if isinstance(value.get("data"), str) and "metadata" in value:
            yield base64.b64decode(value["data"]).decode(errors="replace")
        for item in value.values():
            yield from payload_data(item)
    elif isinstance(value, list):
        for item in value:
            yield from payload_data(item)


async def test_temporal_cli_reads_an_encrypted_conversation_through_the_server(
    temporal_address: str, task_queue: str, db: Database, encrypted_worker: EncryptedWorker
) -> None:
    secure = await encrypted_client(temporal_address, ring(K1))
    conversations = Conversations(secure, task_queue)
    cid = new_id("enc-cli")
    async with encrypted_worker(secure, db):
        await conversations.ask(cid, SECRET_TURN, "m-1")
        await conversations.end(cid)
        await conversations.handle(cid).result()
    wf = ("--workflow-id", cid)
    async with serving(server_app()) as url:
        codec = ("--codec-endpoint", url, "--codec-auth", f"Bearer {TOKEN}")
        code, shown, err = await temporal_cli(temporal_address, "workflow", "show", *wf, *codec)
        assert code == 0, err
        assert any("pineapple" in data for data in payload_data(json.loads(shown)))
        code, result, err = await temporal_cli(temporal_address, "workflow", "result", *wf, *codec)
        assert code == 0, err
        assert json.loads(result)["result"]["turn_count"] == 1
        wrong = ("--codec-endpoint", url, "--codec-auth", "Bearer wrong-token-0123456789")
        code, out, err = await temporal_cli(temporal_address, "workflow", "show", *wf, *wrong)
        assert code != 0 and "pineapple" not in out + err
    code, raw, err = await temporal_cli(temporal_address, "workflow", "show", *wf)
    assert code == 0, err
    assert not any("pineapple" in data for data in payload_data(json.loads(raw)))
