"""MCP tools under the ledger, against a real MCP server (tests/support/mcp_server.py) over
stdio and streamable HTTP. Counts are read from the server's own SQLite file."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import mcp.types as mcp_types
import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_core.tools import StaticWorkbench
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.tools.mcp import BasicMCPClient, McpToolSpec
from sqlalchemy import select
from temporalio.client import Client

from activities.db import Database
from activities.mcp import SESSIONS
from activities.tables import TranscriptMessage
from activities.tools import MAX_RESULT_BYTES
from agents.adapters import team
from agents.adapters.mcp import InvalidMcpSchema, McpToolset, StdioServer, mcp_tools
from agents.adapters.options import ToolOptions
from agents.definitions import AgentDefinition
from agents.errors import ConfigurationError, UnsupportedOption
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.scripted_model import ScriptedChatCompletionClient, scripted_llamaindex_llm
from examples import mcp_claims
from interface import Message, StartConversation, ToolPolicy, TurnResult
from support.ids import new_id
from support.mcp_agents import SERVER, http_server, mcp_agent, stdio_server
from support.workers import WorkerFactory

pytestmark = pytest.mark.integration  # every test here talks to a real MCP server process

TRUNCATED = re.compile(r"\.\.\. \[truncated (\d+) characters\]$")


@pytest.fixture
def server_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "mcp-server.db"
    monkeypatch.setenv("MCP_TEST_DB", str(path))
    return path


def _server_tables(server_db: Path) -> sqlite3.Connection:
    """The server's file; its tables exist before its first call (as the server makes them)."""
    db = sqlite3.connect(server_db)
    db.execute("create table if not exists calls (tool text, key text, args text, pid int)")
    db.execute("create table if not exists effects (tool text, key text unique, args text)")
    return db


def calls(server_db: Path, tool: str) -> list[tuple[str | None, int]]:
    """The server's record of calls to `tool`: (idempotency key, server pid)."""
    with _server_tables(server_db) as db:
        return db.execute("select key, pid from calls where tool = ?", (tool,)).fetchall()


def effects(server_db: Path, tool: str) -> int:
    with _server_tables(server_db) as db:
        return db.execute("select count(*) from effects where tool = ?", (tool,)).fetchone()[0]


async def ask(conversations: Conversations, cid: str, text: str) -> TurnResult:
    start = StartConversation(agent="mcp-agent")
    return await asyncio.wait_for(conversations.ask(cid, text, new_id("m"), start), 90)


# --- discovery, kinds, schemas -----------------------------------------------------------


def test_annotations_choose_the_kind_and_options_override(server_db: Path) -> None:
    tools = {t.name: t for t in mcp_tools(stdio_server())}
    assert (tools["lookup"].kind, tools["lookup"].dedupes_downstream) == ("read", True)
    assert (tools["set_flag"].kind, tools["set_flag"].dedupes_downstream) == ("external", True)
    assert (tools["append_note"].kind, tools["append_note"].dedupes_downstream) == (
        "external",
        False,
    )
    assert tools["append_note"].schema["parameters"]["required"] == ["claim", "text"]
    overridden = mcp_tools(stdio_server(), options=ToolOptions(kinds={"append_note": "read"}))
    assert {t.name: t.kind for t in overridden}["append_note"] == "read"


def test_options_naming_no_tool_of_the_server_are_refused(server_db: Path) -> None:
    with pytest.raises(ConfigurationError, match="apend_note"):
        mcp_tools(stdio_server(), options=ToolOptions(kinds={"apend_note": "read"}))
    with pytest.raises(UnsupportedOption, match="database"):
        mcp_tools(stdio_server(), options=ToolOptions(kinds={"lookup": "database"}))


def test_invalid_schema_is_refused_at_discovery_naming_server_and_tool(
    server_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_BAD_SCHEMA", "1")
    with pytest.raises(InvalidMcpSchema, match=r"MCP server 'test-tools': tool 'broken'"):
        mcp_tools(stdio_server())


def test_unreachable_server_fails_registration() -> None:
    missing = StdioServer(command=sys.executable, args=["-c", "raise SystemExit(2)"], name="gone")
    with pytest.raises(ConfigurationError, match="MCP server 'gone': listing its tools failed"):
        mcp_tools(missing, timeout=20)


def test_arguments_are_validated_against_the_server_schema(server_db: Path) -> None:
    tool = {t.name: t for t in mcp_tools(stdio_server())}["append_note"]
    assert tool.args_model.model_validate({"claim": "1", "text": "t"}).model_dump() == {
        "claim": "1",
        "text": "t",
    }
    with pytest.raises(ValueError, match="'text' is a required property"):
        tool.args_model.model_validate({"claim": "1"})


# --- calls through a worker -------------------------------------------------------------


async def test_agent_calls_an_mcp_tool_over_stdio(
    server_db: Path, db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    async with run_worker(db, mcp_agent(mcp_tools(stdio_server()))):
        result = await ask(conversations, new_id(), '!call lookup {"claim": "7"}')
        failed = await ask(conversations, new_id(), '!call fail {"reason": "no such claim"}')
    call = result.tool_calls[0]
    assert (call.status, call.result) == ("ok", "claim 7: 2 documents")
    assert "claim 7: 2 documents" in result.reply  # the scripted model summarizes what it saw
    assert len(calls(server_db, "lookup")) == 1
    assert failed.tool_calls[0].status == "error"
    assert json.loads(failed.tool_calls[0].result)["error"] == "McpToolError"


async def test_idempotency_key_reaches_the_server_in_meta(
    server_db: Path, db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid = new_id()
    async with run_worker(db, mcp_agent(mcp_tools(stdio_server()))):
        result = await ask(conversations, cid, '!call set_flag {"claim": "7", "flag": "vip"}')
    assert result.tool_calls[0].status == "ok"
    [(key, _)] = calls(server_db, "set_flag")
    assert key is not None and key.startswith(cid)  # the ledger's key for this call


async def test_result_over_the_payload_limit_is_truncated(
    server_db: Path, db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid = new_id()
    async with run_worker(db, mcp_agent(mcp_tools(stdio_server()))):
        result = await ask(conversations, cid, "!call big {}")
    assert result.tool_calls[0].status == "ok"
    async with db.session() as session:
        bodies = await session.scalars(
            select(TranscriptMessage.body).where(TranscriptMessage.conversation_id == cid)
        )
        (seen,) = [m for m in map(Message.model_validate_json, bodies) if m.role == "tool"]
    marker = TRUNCATED.search(seen.content)  # what the model saw of the 3 MB result
    assert marker is not None and len(seen.content.encode()) <= MAX_RESULT_BYTES
    assert int(marker.group(1)) == 3_000_000 - seen.content.index("...")


async def test_a_crashed_server_is_restarted_for_the_next_call(
    server_db: Path, db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid = new_id()
    async with run_worker(db, mcp_agent(mcp_tools(stdio_server()))):
        crashed = await ask(conversations, cid, "!call crash {}")
        after = await ask(conversations, cid, '!call lookup {"claim": "8"}')
    # crash has no hints: the call that lost its connection is not run again
    assert crashed.tool_calls[0].status == "unknown"
    assert len(calls(server_db, "crash")) == 1
    assert after.tool_calls[0].status == "ok"
    [(_, crashed_pid)] = calls(server_db, "crash")
    [(_, new_pid)] = calls(server_db, "lookup")
    assert new_pid != crashed_pid


async def test_a_long_call_heartbeats_and_a_cancelled_call_reaches_the_server(
    server_db: Path, db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    toolset = mcp_tools(stdio_server())
    async with run_worker(db, mcp_agent(toolset)):  # the tool policy's heartbeat: 2 s
        slow = await ask(conversations, new_id(), '!call slow {"seconds": 5}')
    assert (slow.tool_calls[0].status, slow.tool_calls[0].result) == ("ok", "slept 5.0")
    call = asyncio.create_task(SESSIONS.call(toolset, "slow", {"seconds": 30}, None))
    await _until(lambda: len(calls(server_db, "slow")) == 2)
    call.cancel()  # what Temporal's activity cancellation does to the call
    with pytest.raises(asyncio.CancelledError):
        await call
    await _until(lambda: _args(server_db, "slow")[-1] == "cancelled")
    await SESSIONS.close()


def _args(server_db: Path, tool: str) -> list[str]:
    with _server_tables(server_db) as db:
        return [a for (a,) in db.execute("select args from calls where tool = ?", (tool,))]


async def test_a_changed_tool_list_reaches_the_model(
    server_db: Path, db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    toolset = mcp_tools(stdio_server())
    cid = new_id()
    async with run_worker(db, mcp_agent(toolset)):
        assert (await ask(conversations, cid, "!call grow {}")).tool_calls[0].status == "ok"
        await _until(lambda: "late_tool" in toolset)
        late = await ask(conversations, cid, '!call late_tool {"word": "hi"}')
        assert (await ask(conversations, cid, "!call shrink {}")).tool_calls[0].status == "ok"
        await _until(lambda: "lookup" not in toolset)
        gone = await ask(conversations, cid, '!call lookup {"claim": "1"}')
    assert (late.tool_calls[0].status, late.tool_calls[0].result) == ("ok", "late hi")
    assert gone.tool_calls[0].status == "error"
    assert json.loads(gone.tool_calls[0].result)["error"] in ("unknown_tool", "McpToolUnavailable")


async def _until(condition: object, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.05)


# --- streamable HTTP, secrets, a server that is down ------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def http_mcp_server(port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The test server over streamable HTTP, in a subprocess stopped by its PID."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, str(SERVER), "http", str(port)], stdout=out, stderr=out
        )
    try:
        _wait_for_port(port, process, log)
        yield process
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(10)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"MCP server exited:\n{log.read_text()[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("MCP server did not listen")


async def test_agent_calls_an_mcp_tool_over_http_with_a_secret_header(
    server_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    client: Client,
) -> None:
    secret = f"Bearer s3cret-{new_id()}"
    monkeypatch.setenv("MCP_HTTP_TOKEN", secret)
    port, cid = free_port(), new_id()
    caplog.set_level(logging.DEBUG)
    with http_mcp_server(port, tmp_path / "http.log"):
        toolset = mcp_tools(http_server(port))
        async with run_worker(db, mcp_agent(toolset)):
            result = await ask(conversations, cid, "!call whoami {}")
            noted = await ask(conversations, cid, '!call append_note {"claim": "3", "text": "x"}')
    digest = hashlib.sha256(secret.encode()).hexdigest()[:12]
    assert result.tool_calls[0].result == f"secret sha256 {digest}"
    assert noted.tool_calls[0].status == "ok" and effects(server_db, "append_note") == 1
    handle = client.get_workflow_handle(cid)
    history = (await handle.fetch_history()).to_json()
    description = await handle.describe()
    assert "s3cret" not in history
    assert "s3cret" not in str(description.memo) + str(description.search_attributes)
    assert "s3cret" not in caplog.text
    assert "s3cret" not in repr(toolset.server)


async def test_a_down_server_is_retried_under_the_tool_policy(
    server_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
) -> None:
    monkeypatch.setenv("MCP_HTTP_TOKEN", "Bearer t")
    port, cid = free_port(), new_id()
    # a generous heartbeat: an attempt cancelled between claim and call (a loaded machine)
    # would rightly leave the call `unknown`, which is not what this test is about
    patient = ToolPolicy(heartbeat=timedelta(seconds=20))
    options = ToolOptions(policies={"append_note": patient})
    with http_mcp_server(port, tmp_path / "http.log"):
        toolset = mcp_tools(http_server(port), options=options)
    async with run_worker(db, mcp_agent(toolset)):
        turn = asyncio.create_task(
            ask(conversations, cid, '!call append_note {"claim": "4", "text": "later"}')
        )
        await asyncio.sleep(3)  # attempts fail: nothing listens
        assert effects(server_db, "append_note") == 0 and not turn.done()
        with http_mcp_server(port, tmp_path / "http.log"):
            result = await turn
    # nothing was sent while it was down, so even a tool without dedupe ran (once)
    assert result.tool_calls[0].status == "ok"
    assert effects(server_db, "append_note") == 1


def test_listing_is_what_the_model_sees(server_db: Path) -> None:
    toolset = mcp_tools(stdio_server())
    assert isinstance(toolset, McpToolset) and len(toolset) >= 8
    listed = mcp_types.Tool(
        name="only", input_schema={"type": "object", "properties": {"q": {"type": "string"}}}
    )
    version = toolset.version
    toolset.replace([listed])
    assert [t.name for t in toolset] == ["only"] and toolset.version == version + 1
    assert next(iter(toolset)).schema["parameters"]["properties"] == {"q": {"type": "string"}}


async def test_llamaindex_mcp_tool_spec_runs_through_the_worker_pool(
    server_db: Path, db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    spec = McpToolSpec(BasicMCPClient(sys.executable, args=[str(SERVER), "--db", str(server_db)]))
    tools = await spec.to_tool_list_async()  # as a LlamaIndex user writes it

    def agent() -> FunctionAgent:
        return FunctionAgent(name="mcp-agent", tools=tools, llm=scripted_llamaindex_llm())

    registry = AgentRegistry()
    registry.add("mcp-agent", agent, tools=ToolOptions(kinds={"lookup": "read"}))
    definition = registry.get("mcp-agent")
    assert definition.tool("set_flag").dedupes_downstream  # the annotations, not "external"
    cid = new_id()
    async with run_worker(db, registry):
        result = await ask(conversations, cid, '!call set_flag {"claim": "5", "flag": "x"}')
    assert result.tool_calls[0].status == "ok"
    [(key, _)] = calls(server_db, "set_flag")
    assert key is not None and key.startswith(cid)  # sent by our pool, in _meta


async def test_claims_documents_example(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
) -> None:
    documents = tmp_path / "documents.db"
    monkeypatch.setenv("CLAIM_DOCUMENTS_DB", str(documents))
    registry = AgentRegistry()
    mcp_claims.register(registry)
    kinds = {t.name: (t.kind, t.dedupes_downstream) for t in registry.get("claims-documents").tools}
    assert kinds == {"search_documents": ("read", True), "attach_document": ("external", False)}
    start, cid = StartConversation(agent="claims-documents"), new_id()
    attach = '!call attach_document {"claim": "123", "name": "letter.pdf", "summary": "Letter"}'
    async with run_worker(db, registry):
        found = await conversations.ask(
            cid, '!call search_documents {"claim": "123"}', "m-1", start
        )
        attached = await conversations.ask(cid, attach, "m-2", start)
    assert "police-report.pdf" in found.tool_calls[0].result
    assert attached.tool_calls[0].status == "ok"
    with sqlite3.connect(documents) as rows:
        assert rows.execute("select count(*) from documents where claim = '123'").fetchone() == (3,)


def test_an_autogen_workbench_is_refused_pointing_to_mcp_tools() -> None:
    with pytest.raises(ImportError, match="RequestContext"):  # autogen-ext 0.7.5 on mcp 2.x
        import autogen_ext.tools.mcp  # noqa: F401
    agent = AssistantAgent(
        "bench", model_client=ScriptedChatCompletionClient(), workbench=StaticWorkbench([])
    )
    with pytest.raises(UnsupportedOption, match=r"extra_tools=mcp_tools\(StdioServer"):
        AgentRegistry().add("bench", lambda: agent)


async def test_extra_tools_on_a_team_are_refused(server_db: Path) -> None:
    members = [
        AgentDefinition(name=n, system_message="", model_client=ScriptedChatCompletionClient())
        for n in ("a", "b")
    ]
    with pytest.raises(ConfigurationError, match="extra_tools= belong to one agent"):
        AgentRegistry().add("t", lambda: team("t", members), extra_tools=mcp_tools(stdio_server()))


async def test_a_stdio_server_gets_its_secret_from_the_worker_environment(
    server_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    client: Client,
) -> None:
    secret = f"env-s3cret-{new_id()}"
    monkeypatch.setenv("WORKER_DOCS_KEY", secret)
    caplog.set_level(logging.DEBUG)
    toolset = mcp_tools(stdio_server(MCP_SECRET="WORKER_DOCS_KEY"))
    cid = new_id()
    async with run_worker(db, mcp_agent(toolset)):
        result = await ask(conversations, cid, "!call whoami {}")
    digest = hashlib.sha256(secret.encode()).hexdigest()[:12]
    assert result.tool_calls[0].result == f"secret sha256 {digest}"
    history = (await client.get_workflow_handle(cid).fetch_history()).to_json()
    assert "s3cret" not in history + caplog.text + repr(toolset.server)
