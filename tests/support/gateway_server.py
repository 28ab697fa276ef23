"""The gateway served by uvicorn in the test's process, on a free port: for what an ASGI
transport cannot show (a browser, Server-Sent Events as they arrive)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

from conversation_client import Conversations
from gateway import GatewaySettings, create_app

__all__ = ["serving"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serving(conversations: Conversations, settings: GatewaySettings) -> AsyncIterator[str]:
    """The gateway's base URL while it serves."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(conversations, settings), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
