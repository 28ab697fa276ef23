"""The pages the gateway serves to a browser work offline: /docs, /redoc and the chat page
load nothing from another host, and every asset they name is served."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from conversation_client import Conversations
from gateway import GatewayAuth, GatewaySettings, create_app

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
URL = re.compile(r"""(?:https?:)?//[\w.-]+""")


async def no_temporal() -> Conversations:
    raise RuntimeError("these pages need no Temporal")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(auth=GatewayAuth())  # no keys: the pages need none
    transport = httpx.ASGITransport(app=create_app(no_temporal, settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


async def assets_of(http: httpx.AsyncClient, path: str) -> list[str]:
    """The page's own assets, each fetched; fails on any reference to another host."""
    page = await http.get(path)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert URL.findall(page.text) == [], f"{path} loads from another host"
    assets = ASSET.findall(page.text)
    for asset in assets:
        answer = await http.get(asset)
        assert answer.status_code == 200, f"{path} names {asset}: {answer.status_code}"
        assert answer.content, asset
    return assets


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_the_api_docs_load_nothing_from_a_cdn(http: httpx.AsyncClient, path: str) -> None:
    assets = await assets_of(http, path)
    assert any(a.endswith(".js") for a in assets), assets
    if path == "/docs":
        assert any(a.endswith(".css") for a in assets), assets
        assert (await http.get("/openapi.json")).json()["info"]["title"]


async def test_the_chat_page_and_its_settings_load_without_a_key(http: httpx.AsyncClient) -> None:
    assets = await assets_of(http, "/")
    assert sorted(assets) == ["/ui/chat.css", "/ui/chat.js"]
    script = (await http.get("/ui/chat.js")).text
    assert URL.findall(script) == []  # no fetch of another host either
    config = (await http.get("/ui/config")).json()
    # no keys configured: the API wants one; Temporal is away: the namespace falls back
    assert config == {
        "auth": True,
        "temporal_ui_url": "http://localhost:8233",
        "namespace": "default",
        "events": True,
        "cancel": True,
    }
    refused = await http.get("/conversations")
    assert refused.status_code == 401  # the page loads, the API still needs the key
