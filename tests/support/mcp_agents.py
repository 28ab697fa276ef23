"""Agents using the test MCP server (support/mcp_server.py), for in-process and subprocess
workers: `AGENT_MODULES=support.mcp_agents` with tests/ on PYTHONPATH."""

from __future__ import annotations

import os
import sys
from datetime import timedelta

from agents.adapters.mcp import HttpServer, McpToolset, StdioServer, mcp_tools
from agents.definitions import AgentDefinition
from agents.registry import AgentRegistry
from demo.scripted_model import ScriptedChatCompletionClient
from support.paths import ROOT

__all__ = ["SERVER", "http_server", "mcp_agent", "register", "stdio_server"]

SERVER = ROOT / "tests" / "support" / "mcp_server.py"
PASSED = ("MCP_TEST_DB", "MCP_KILL_PARENT", "MCP_SECRET", "MCP_BAD_SCHEMA")


def stdio_server(**env: str) -> StdioServer:
    """The test server as a child of the worker; its variables come from the worker's."""
    names = {name: name for name in PASSED if name in os.environ} | env
    return StdioServer(
        command=sys.executable, args=[str(SERVER)], env_from_env=names, name="test-tools"
    )


def http_server(port: int) -> HttpServer:
    headers = {"Authorization": "MCP_HTTP_TOKEN"}
    return HttpServer(
        url=f"http://127.0.0.1:{port}/mcp", headers_from_env=headers, name="test-http"
    )


def mcp_agent(toolset: McpToolset, name: str = "mcp-agent") -> AgentRegistry:
    registry = AgentRegistry()
    registry.add(name, lambda: _definition(name), extra_tools=toolset)
    return registry


def _definition(name: str) -> AgentDefinition:
    return AgentDefinition(
        name=name, system_message="test", model_client=ScriptedChatCompletionClient(), max_steps=3
    )


def register(registry: AgentRegistry) -> None:
    """The worker subprocess's agent: the stdio server, discovered at start-up."""
    toolset = mcp_tools(stdio_server(), refresh_interval=timedelta(minutes=5))
    registry.add("mcp-agent", lambda: _definition("mcp-agent"), extra_tools=toolset)
