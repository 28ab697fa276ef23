"""The pages the gateway serves to a browser: the chat page at `/` (plain HTML and
JavaScript from gateway/static/, shipped in the package) and its settings at `/ui/config`.

The page needs no key to load; it asks for one (kept in the browser's sessionStorage) when
the API answers 401, and sends it as `Authorization: Bearer` like any client.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from gateway._models import GatewaySettings

__all__ = ["PageConfig", "add_pages"]

STATIC = Path(__file__).parent / "static"
NAMESPACE_TIMEOUT = 2.0
EVENTS_PATH = "/conversations/{conversation_id}/events"
CANCEL_PATH = "/conversations/{conversation_id}/cancel"

pages = APIRouter(tags=["pages"])


class PageConfig(BaseModel):
    """What the chat page needs to know of the gateway; nothing secret."""

    auth: bool
    """Whether API calls need a key (false under --no-auth)."""
    temporal_ui_url: str | None
    """The Temporal Web UI the page links conversations to (TEMPORAL_UI_URL)."""
    namespace: str
    events: bool
    """Whether the gateway streams events (SSE), else the page polls the state."""
    cancel: bool
    """Whether the gateway can cancel a running turn."""


@pages.get("/", include_in_schema=False)
async def chat_page() -> FileResponse:
    return FileResponse(STATIC / "chat.html", media_type="text/html")


@pages.get("/ui/config", response_model=PageConfig, summary="The chat page's settings")
async def page_config(request: Request) -> PageConfig:
    settings: GatewaySettings = request.app.state.settings
    paths = request.app.openapi()["paths"]  # built once, then cached by FastAPI
    return PageConfig(
        auth=not settings.auth.anonymous,
        temporal_ui_url=settings.temporal_ui_url or None,
        namespace=await _namespace(request),
        events=EVENTS_PATH in paths,
        cancel=CANCEL_PATH in paths,
    )


async def _namespace(request: Request) -> str:
    """The connected client's namespace; `default` while Temporal cannot be reached."""
    try:
        conversations = await asyncio.wait_for(
            request.app.state.temporal.conversations(), NAMESPACE_TIMEOUT
        )
    except Exception:  # the page still loads; its API calls will say what is wrong
        return "default"
    return str(conversations.client.namespace)


def add_pages(app: FastAPI) -> None:
    app.include_router(pages)
    app.mount("/ui", StaticFiles(directory=STATIC), name="ui")
