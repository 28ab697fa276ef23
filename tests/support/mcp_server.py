"""A real MCP server for the tests (mcp's MCPServer, once FastMCP), over stdio or HTTP.

`python tests/support/mcp_server.py [http PORT]`. It counts what it did in the SQLite file
$MCP_TEST_DB, so tests read calls and effects from the server itself:
- `lookup` (readOnlyHint), `append_note` (no hints), `set_flag` (idempotentHint: deduped
  by the key in `_meta`), `big` (a result over the payload limit), `whoami` (the secret it
  was given, hashed), `slow` (records a cancellation), `grow` / `shrink` (change the tool
  list and notify), `crash`. `--db PATH` names the file where $MCP_TEST_DB cannot.
- $MCP_KILL_PARENT=<tool>:<marker file>: the first call of <tool> does its effect, then
  SIGKILLs the server's parent (the worker that spawned it) before answering.
- $MCP_BAD_SCHEMA=1: one tool's input schema is not valid JSON Schema.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

KEY = (
    "io.github.agent-conversations/idempotency-key"  # interface.contract, spelled as a server would
)
server = MCPServer("test-tools")


def _db() -> sqlite3.Connection:
    path = os.environ.get("MCP_TEST_DB") or sys.argv[sys.argv.index("--db") + 1]
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("create table if not exists calls (tool text, key text, args text, pid int)")
    db.execute("create table if not exists effects (tool text, key text unique, args text)")
    return db


def _record(tool: str, ctx: Context, args: str, *, dedupe: bool = False) -> bool:
    """Count the call; do the effect (unless deduped by key). True if the effect happened."""
    meta = ctx.request_context.meta or {}
    key = meta.get(KEY)
    with _db() as db:
        db.execute("insert into calls values (?, ?, ?, ?)", (tool, key, args, os.getpid()))
        if dedupe and key and db.execute("select 1 from effects where key = ?", (key,)).fetchone():
            return False
        db.execute("insert into effects values (?, ?, ?)", (tool, key if dedupe else None, args))
    _maybe_kill_parent(tool)
    return True


def _maybe_kill_parent(tool: str) -> None:
    target, _, marker = os.environ.get("MCP_KILL_PARENT", "").partition(":")
    if target != tool or Path(marker).exists():
        return
    Path(marker).write_text(f"killed {os.getppid()} in {tool}\n")
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(0.5)
    os._exit(0)  # never answer: the worker is gone


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
async def lookup(claim: str, ctx: Context) -> str:
    """Look up a claim's documents."""
    _record("lookup", ctx, claim)
    return f"claim {claim}: 2 documents"


@server.tool()
async def append_note(claim: str, text: str, ctx: Context) -> str:
    """Append a note to a claim (no downstream dedupe)."""
    _record("append_note", ctx, f"{claim}:{text}")
    return f"note added to claim {claim}"


@server.tool(annotations=ToolAnnotations(idempotent_hint=True))
async def set_flag(claim: str, flag: str, ctx: Context) -> str:
    """Set a flag on a claim (deduped by the idempotency key)."""
    done = _record("set_flag", ctx, f"{claim}:{flag}", dedupe=True)
    return f"flag {flag} {'set' if done else 'already set'} on claim {claim}"


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
async def big(ctx: Context) -> str:
    """A result far over the payload limit."""
    _record("big", ctx, "")
    return "x" * 3_000_000


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
async def whoami(ctx: Context) -> str:
    """A digest of the secret the server was given (env or header)."""
    secret = os.environ.get("MCP_SECRET", "")
    request = ctx.request_context.request
    if request is not None and hasattr(request, "headers"):
        secret = request.headers.get("authorization", secret)
    return "secret sha256 " + hashlib.sha256(secret.encode()).hexdigest()[:12]


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
async def slow(seconds: float, ctx: Context) -> str:
    """Takes `seconds`; records whether the client cancelled it."""
    _record("slow", ctx, "start")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        _record("slow", ctx, "cancelled")
        raise
    return f"slept {seconds}"


@server.tool()
async def fail(reason: str) -> str:
    """Fails with the reason (the result has isError)."""
    raise ValueError(reason)


@server.tool()
async def grow(ctx: Context) -> str:
    """Adds the tool `late_tool` and tells the client."""

    async def late_tool(word: str) -> str:
        """Echo a word (added at run time)."""
        return f"late {word}"

    server.add_tool(late_tool)
    await ctx.request_context.session.send_tool_list_changed()
    return "added late_tool"


@server.tool()
async def shrink(ctx: Context) -> str:
    """Removes the tool `lookup` and tells the client."""
    server.remove_tool("lookup")
    await ctx.request_context.session.send_tool_list_changed()
    return "removed lookup"


@server.tool()
async def crash(ctx: Context) -> str:
    """Exits the server process without answering."""
    _record("crash", ctx, "")
    os._exit(3)


def _bad_schema() -> None:
    @server.tool()
    async def broken(value: str) -> str:
        """Its schema is made invalid below."""
        return value

    tool = server._tool_manager.get_tool("broken")  # a hostile server's schema
    assert tool is not None
    tool.parameters = {"type": "object", "properties": {"value": {"type": "no-such-type"}}}


if __name__ == "__main__":
    if os.environ.get("MCP_BAD_SCHEMA"):
        _bad_schema()
    if sys.argv[1:2] == ["http"]:  # http PORT
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
