"""The codec server as the tests run it: test keys, a token, and the app on a free port."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from codec import EncryptionCodec, KeyRing, build_app, generate_key_entry

__all__ = ["K1", "K2", "NAMESPACE", "TOKEN", "UI_ORIGIN", "ring", "server_app", "serving"]

K1 = generate_key_entry("k1")
K2 = generate_key_entry("k2")
TOKEN = f"codec-test-{uuid.uuid4().hex}"
NAMESPACE = "default"
UI_ORIGIN = "http://localhost:8080"


def ring(*entries: str) -> KeyRing:
    return KeyRing.parse(",".join(entries))


def server_app(*origins: str) -> FastAPI:
    """The codec server with keys k2 (active) and k1, the test token and the UI's origin."""
    return build_app(
        EncryptionCodec(ring(K2, K1)),
        token=TOKEN,
        namespace=NAMESPACE,
        cors_origins=origins or (UI_ORIGIN,),
    )


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """The app on 127.0.0.1 (a free port) in this event loop; yields its URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
