"""Checks made before a request reaches a route, as an ASGI middleware: a body-size limit
applied before anything is parsed, and, on state-changing requests, JSON bodies only and
an `Origin` (when a browser sends one) among the allowed ones, or the gateway's own (the
chat page it serves).

A cross-site form POST cannot send JSON without a CORS preflight, which the gateway does
not grant to origins it was not configured with; so the two checks together stop
cross-site requests even from a browser that holds a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway._errors import ApiError

__all__ = ["RequestGuard"]

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
JSON_TYPES = ("application/json",)


class RequestGuard:
    """Answers 413, 415 or 403 in the gateway's JSON error shape, before any parsing."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, allowed_origins: Sequence[str]) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.allowed_origins = set(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope["method"], headers)
        if refusal is None:
            body, refusal = await self._read_body(receive)
        if refusal is not None:
            await _answer(refusal, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _refusal(self, method: str, headers: dict[str, str]) -> ApiError | None:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return self._too_large()
        if method not in STATE_CHANGING:
            return None
        origin = headers.get("origin")
        if origin is not None and not self._allowed(origin, headers.get("host")):
            return ApiError(403, "origin_not_allowed", f"requests from {origin} are not allowed")
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media and media not in JSON_TYPES:
            return ApiError(415, "unsupported_media_type", "send the body as application/json")
        return None

    def _allowed(self, origin: str, host: str | None) -> bool:
        """A configured origin, or the gateway's own (its chat page): same-origin is not
        cross-site, so it needs no CORS entry."""
        return origin in self.allowed_origins or (
            host is not None and urlsplit(origin).netloc.lower() == host.lower()
        )

    async def _read_body(self, receive: Receive) -> tuple[bytes, ApiError | None]:
        """The whole body, read at most to the limit (a chunked body declares no length)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"", None  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return b"", self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None

    def _too_large(self) -> ApiError:
        limit = self.max_body_bytes
        return ApiError(413, "body_too_large", f"the body is over the limit of {limit:,} bytes")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then the client's own
    messages (its disconnect, which streaming responses listen for)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(error: ApiError, send: Send) -> None:
    response = error.response(retry_after=0)
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})
