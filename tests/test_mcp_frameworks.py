"""An MCP tool from the stdio test server (support/mcp_server.py), attached with
`extra_tools=mcp_tools(...)` to an agent of each framework, called by the fake OpenAI
endpoint's scripted model through a real worker; and each framework's own MCP objects,
refused with a pointer to `extra_tools=`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mcp.types as mcp_types
import pytest
from agent_framework import Agent, MCPStdioTool, MCPStreamableHTTPTool
from autogen import AssistantAgent, UserProxyAgent
from autogen.mcp.mcp_client import MCPClient
from autogen.tools import Toolkit
from autogen_ext.models.openai import OpenAIChatCompletionClient
from sqlalchemy import select

from activities.db import Database
from activities.tables import LedgerEntry
from agents.adapters.mcp import mcp_tools
from agents.definitions import AgentDefinition
from agents.errors import UnsupportedOption
from agents.registry import AgentRegistry
from conversation_client import Conversations
from interface import StartConversation
from support.fake_openai import API_KEY, FakeOpenAI, text, tool_call
from support.ids import new_id
from support.maf_agents import chat_client
from support.mcp_agents import stdio_server
from support.workers import WorkerFactory

RESULT = "flag vip set on claim 7"  # what the server answers set_flag(claim=7, flag=vip)
POINTER = r"extra_tools=mcp_tools\(StdioServer"


@pytest.fixture
def server_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "mcp-server.db"
    monkeypatch.setenv("MCP_TEST_DB", str(path))
    return path


def server_keys(server_db: Path, tool: str) -> list[str | None]:
    """The idempotency keys of the server's recorded calls to `tool`."""
    with sqlite3.connect(server_db) as db:
        db.execute("create table if not exists calls (tool text, key text, args text, pid int)")
        return [k for (k,) in db.execute("select key from calls where tool = ?", (tool,))]


async def ledger(db: Database, cid: str) -> list[tuple[str, str, str]]:
    async with db.session() as session:
        query = select(LedgerEntry.tool, LedgerEntry.status, LedgerEntry.key).where(
            LedgerEntry.conversation_id == cid
        )
        return [tuple(row) for row in (await session.execute(query)).all()]  # type: ignore[misc]


def ag2_pair(fake: FakeOpenAI) -> tuple[AssistantAgent, UserProxyAgent]:
    config = {"config_list": [{"model": "gpt-4o-mini", "api_key": API_KEY, "base_url": fake.url}]}
    assistant = AssistantAgent(name="mcp_bot", llm_config=config)
    user_proxy = UserProxyAgent(name="user", human_input_mode="NEVER", code_execution_config=False)
    return assistant, user_proxy


def maf_agent(fake: FakeOpenAI) -> Agent:
    return Agent(client=chat_client(fake.url), name="mcp_bot", instructions="Help with claims.")


def own_definition(fake: FakeOpenAI) -> AgentDefinition:
    model = OpenAIChatCompletionClient(model="gpt-4o-mini", api_key=API_KEY, base_url=fake.url)
    return AgentDefinition(name="mcp_bot", system_message="Help with claims.", model_client=model)


FACTORIES: dict[str, Callable[[FakeOpenAI], Any]] = {
    "ag2": ag2_pair,
    "agent_framework": maf_agent,
    "agent_definition": own_definition,
}


@pytest.mark.parametrize("framework", list(FACTORIES))
async def test_each_framework_calls_an_mcp_tool_durably(
    framework: str,
    server_db: Path,
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script = [
        tool_call("set_flag", json.dumps({"claim": "7", "flag": "vip"})),
        text("Flag set."),
    ]
    registry = AgentRegistry()
    build = FACTORIES[framework]
    registry.add("mcp-bot", lambda: build(fake_openai), extra_tools=mcp_tools(stdio_server()))
    cid = new_id()
    async with run_worker(db, registry):
        result = await conversations.ask(
            cid, "flag claim 7 as vip", "m-1", StartConversation(agent="mcp-bot")
        )
    assert result.status == "completed" and result.reply == "Flag set."
    [call] = result.tool_calls
    assert (call.name, call.status, call.result) == ("set_flag", "ok", RESULT)
    first, second = (body for _, body in fake_openai.requests)
    [offered] = [t["function"] for t in first["tools"] if t["function"]["name"] == "set_flag"]
    assert offered["parameters"]["required"] == ["claim", "flag"]  # the server's schema
    [answer] = [m for m in second["messages"] if m["role"] == "tool"]
    assert answer["tool_call_id"] == "call_1" and RESULT in json.dumps(answer["content"])
    [key] = server_keys(server_db, "set_flag")  # the server ran it once, with the ledger's key
    assert await ledger(db, cid) == [("set_flag", "succeeded", key)]


# --- each framework's own MCP objects are refused -----------------------------------------


class OldSpelling(mcp_types.Tool):
    """A listed tool as mcp 1.x spelled it (`inputSchema`), which autogen.mcp still reads."""

    @property
    def inputSchema(self) -> dict[str, Any]:  # noqa: N802
        return self.input_schema


def test_an_ag2_mcp_toolkit_is_refused_pointing_to_mcp_tools(fake_openai: FakeOpenAI) -> None:
    schema = {"type": "object", "properties": {"claim": {"type": "string"}}}
    with pytest.raises(AttributeError, match="inputSchema"):  # AG2 0.14's toolkit on mcp 2.x
        MCPClient.convert_tool(mcp_types.Tool(name="lookup", input_schema=schema), session=None)  # type: ignore[arg-type]
    listed = OldSpelling(name="lookup", input_schema=schema)
    toolkit = Toolkit([MCPClient.convert_tool(listed, session=None)])  # type: ignore[arg-type]
    assistant, user_proxy = ag2_pair(fake_openai)
    toolkit.register_for_llm(assistant)
    toolkit.register_for_execution(user_proxy)
    with pytest.raises(UnsupportedOption, match=POINTER):
        AgentRegistry().add("mcp-bot", lambda: (assistant, user_proxy))


@pytest.mark.parametrize(
    "server",
    [
        lambda: MCPStdioTool(name="docs", command="python", args=["server.py"]),
        lambda: MCPStreamableHTTPTool(name="docs", url="http://127.0.0.1:1/mcp"),
    ],
    ids=["stdio", "streamable-http"],
)
def test_agent_framework_mcp_tools_are_refused_pointing_to_mcp_tools(
    fake_openai: FakeOpenAI, server: Callable[[], Any]
) -> None:
    agent = Agent(client=chat_client(fake_openai.url), name="mcp_bot", tools=[server()])
    with pytest.raises(UnsupportedOption, match=POINTER):
        AgentRegistry().add("mcp-bot", lambda: agent)
