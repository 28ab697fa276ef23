"""The worker's MCP sessions: one connection per server (and event loop), reopened when lost.

A stdio server is spawned by the worker when its connection opens; if it dies, the call in
flight fails as retryable and the next call spawns it again. Each connection is owned by
one task for its whole life (anyio's scopes must be left by the task that entered them).
The tool activity heartbeats while a call runs; when Temporal cancels the activity, the
cancellation reaches the server as `notifications/cancelled`.

Errors: a result with `isError` goes to the model (McpToolError); JSON-RPC errors a retry
cannot fix (invalid params, method not found...) go to the model too, so they are not
retried; connection loss and timeouts are retryable under the tool's policy. A server that
cannot be reached raises `ToolNotStarted`: nothing was sent, so the ledger forgets the claim
and the retry is a first attempt, even for a tool that cannot dedupe downstream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from typing import Any

import anyio
import httpx2
import mcp.types as mcp_types
from mcp import Client, MCPError
from mcp.client.session import IncomingMessage

from agents.adapters.mcp import McpServer, McpToolError, McpToolset, connect, list_all_tools
from agents.errors import ToolInputError, ToolNotStarted, ToolRetryableError

__all__ = ["NON_RETRYABLE_CODES", "SESSIONS", "McpSessions", "result_text"]

log = logging.getLogger(__name__)

NON_RETRYABLE_CODES = frozenset(
    {
        mcp_types.PARSE_ERROR,
        mcp_types.INVALID_REQUEST,
        mcp_types.METHOD_NOT_FOUND,
        mcp_types.INVALID_PARAMS,
    }
)
"""JSON-RPC errors a retry of the same request cannot fix. INTERNAL_ERROR, CONNECTION_CLOSED,
REQUEST_TIMEOUT and unknown codes stay retryable (as in temporalio-mcp)."""

CONNECTION_ERRORS = (
    OSError,
    EOFError,
    TimeoutError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    httpx2.TransportError,
)


class _Connection:
    """One open client, owned by one task until closed or lost."""

    def __init__(self, server: McpServer, on_message: Any) -> None:
        self.server = server
        self._ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._own(on_message), name=f"mcp {server.label}")
        self.lost = False

    async def _own(self, on_message: Any) -> None:
        try:
            async with connect(self.server, on_message) as client:
                self._ready.set_result(client)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
        finally:
            self.lost = True

    async def client(self) -> Client:
        return await asyncio.shield(self._ready)

    async def close(self) -> None:
        self.lost = True
        self._stop.set()
        if not self._ready.done():
            self._task.cancel()
        try:
            await self._task
        except BaseException:  # a connection that failed or was cancelled is closed too
            pass


class McpSessions:
    """The worker's pool; installed by the plugin as `agents.adapters.mcp`'s caller."""

    def __init__(self) -> None:
        self._pools: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, _Connection]
        ] = weakref.WeakKeyDictionary()
        self._refreshing: set[asyncio.Task[None]] = set()

    async def call(
        self, toolset: McpToolset, tool: str, arguments: dict[str, Any], meta: dict[str, Any] | None
    ) -> str:
        label = toolset.server.label
        connection = self._connection(toolset)
        try:
            client = await connection.client()
        except Exception as exc:
            await self._drop(connection)
            raise ToolNotStarted(f"MCP server {label!r} cannot be reached: {_what(exc)}") from None
        if toolset.due():
            self._refresh_soon(toolset, client)
        try:
            result = await client.call_tool(tool, arguments, meta=meta)  # type: ignore[arg-type]
        except MCPError as exc:
            if exc.code in NON_RETRYABLE_CODES:
                raise ToolInputError(
                    f"MCP server {label!r} refused the call: {exc.message}"
                ) from None
            await self._drop(connection)
            raise ToolRetryableError(f"MCP server {label!r}: {exc.message}") from None
        except CONNECTION_ERRORS as exc:
            await self._drop(connection)
            raise ToolRetryableError(
                f"MCP server {label!r}: connection lost: {_what(exc)}"
            ) from None
        text = result_text(result)
        if result.is_error:
            raise McpToolError(text)
        return text

    async def close(self) -> None:
        """Close this loop's connections (a stdio server's process ends with its pipe)."""
        pool = self._pools.pop(asyncio.get_running_loop(), {})
        for connection in pool.values():
            await connection.close()

    def _connection(self, toolset: McpToolset) -> _Connection:
        pool = self._pools.setdefault(asyncio.get_running_loop(), {})
        key = repr(toolset.server)  # names of environment variables, never their values
        found = pool.get(key)
        if found is None or found.lost:
            found = pool[key] = _Connection(toolset.server, self._on_message(toolset))
        return found

    async def _drop(self, connection: _Connection) -> None:
        pool = self._pools.get(asyncio.get_running_loop(), {})
        key = repr(connection.server)
        if pool.get(key) is connection:
            del pool[key]
        await connection.close()

    def _on_message(self, toolset: McpToolset) -> Any:
        async def handle(message: IncomingMessage) -> None:
            if isinstance(message, mcp_types.ToolListChangedNotification):
                key = repr(toolset.server)
                connection = self._pools.get(asyncio.get_running_loop(), {}).get(key)
                if connection is not None and not connection.lost:
                    self._refresh_soon(toolset, await connection.client())

        return handle

    def _refresh_soon(self, toolset: McpToolset, client: Client) -> None:
        toolset.refreshed_at = time.monotonic()  # one refresh at a time, not one per call
        task = asyncio.create_task(_refresh(toolset, client))
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)


async def _refresh(toolset: McpToolset, client: Client) -> None:
    try:
        toolset.replace(await list_all_tools(client))
    except Exception as exc:  # the cached list stays; the next call or notice tries again
        log.warning(
            "MCP server %r: refreshing its tools failed: %s", toolset.server.label, _what(exc)
        )


def result_text(result: mcp_types.CallToolResult) -> str:
    """The result's text blocks; other blocks as JSON; the structured value if nothing else."""
    parts = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        else:
            parts.append(block.model_dump_json(exclude_none=True))
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, default=str))
    return "\n".join(parts)


def _what(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}"


SESSIONS = McpSessions()
"""The process's pool: connections are per event loop, so workers in one process share it."""
