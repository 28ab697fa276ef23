"""Browser sign-in for the codec server, so the Temporal Web UI can decode through it.

The Web UI sends no bearer token of its own (only an OIDC access token, and only over
HTTPS), but with `TEMPORAL_CODEC_INCLUDE_CREDENTIALS=true` its fetches carry cookies. An
operator opens `/login` once, types the server token, and gets a session cookie: an expiry
and its HMAC under the token, so the cookie is not the token, and changing the token ends
every session. Cookie-authenticated requests must be JSON from an allowed origin: a JSON
body forces the browser's CORS preflight, so no other page can send one.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from collections.abc import Sequence
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

SESSION_COOKIE = "agent_codec_session"
SESSION_SECONDS = 12 * 3600


def session_value(token: bytes, expires: int) -> str:
    """The cookie for a session that ends at `expires` (Unix seconds)."""
    mac = hmac.new(token, f"web-ui-session:{expires}".encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{mac}"


def valid_session(token: bytes, cookie: str | None, now: float | None = None) -> bool:
    """Whether `cookie` is an unexpired session made with `token`."""
    expires, _, _ = (cookie or "").partition(".")
    if not expires.isdigit() or int(expires) <= (now or time.time()):
        return False
    return hmac.compare_digest((cookie or "").encode(), session_value(token, int(expires)).encode())


def cookie_request_allowed(request: Request, origins: Sequence[str]) -> bool:
    """A cookie-authenticated call must be JSON and, from a browser, from an allowed origin."""
    is_json = request.headers.get("content-type", "").startswith("application/json")
    origin = request.headers.get("origin")
    return is_json and (origin is None or origin in origins)


def login_router(token: bytes, namespace: str) -> APIRouter:
    """GET /login shows a form; POST /login with the right token sets the session cookie."""
    router = APIRouter()

    @router.get("/login", response_class=HTMLResponse)
    async def form() -> HTMLResponse:
        return _page(namespace, "Sign in to decode payloads in the Temporal Web UI.")

    @router.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> HTMLResponse:
        sent = parse_qs((await request.body()).decode(errors="replace")).get("token", [""])[0]
        if not hmac.compare_digest(sent.strip().encode(), token):
            return _page(namespace, "Wrong token.", status=401)
        expires = int(time.time()) + SESSION_SECONDS
        hours = SESSION_SECONDS // 3600
        page = _page(namespace, f"Signed in for {hours} hours: the Web UI now decodes.", form=False)
        page.set_cookie(
            SESSION_COOKIE,
            session_value(token, expires),
            max_age=SESSION_SECONDS,
            httponly=True,  # scripts, the Web UI's among them, never read it
            samesite="strict",  # sent only with requests from the same site (localhost)
            secure=request.url.scheme == "https",
        )
        return page

    return router


def _page(namespace: str, message: str, *, status: int = 200, form: bool = True) -> HTMLResponse:
    fields = (
        '<form method="post" action="login"><label>Codec server token '
        '<input type="password" name="token" autocomplete="current-password" required></label> '
        '<button type="submit">Sign in</button></form>'
    )
    body = (
        f"<!doctype html><title>codec server</title><h1>Codec server for namespace "
        f"{html.escape(namespace)}</h1><p>{html.escape(message)}</p>{fields if form else ''}"
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
