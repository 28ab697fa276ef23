"""Durable AutoGen and LlamaIndex conversations on your own Temporal client and worker.

    plugin = AgentConversationsPlugin(registry, Database(url))
    client = await Client.connect(address, plugins=[plugin])
    worker = Worker(client, task_queue="agent-conversations")  # the plugin comes with the client

docs/own-agent.md has a complete example.
"""

from activities.db import Database, TableSet
from agent_conversations._modules import module_names, register_modules
from agent_conversations._plugin import (
    PLUGIN_NAME,
    AgentConversationsPlugin,
    IncompatibleDataConverter,
    WorkerTuning,
    has_search_attributes,
)
from agents.adapters import ToolOptions, from_autogen, from_llamaindex, team
from agents.adapters.mcp import HttpServer, StdioServer, mcp_tools
from agents.definitions import AgentDefinition
from agents.errors import ConfigurationError, ToolBusinessError, ToolInputError, UnknownAgent
from agents.registry import AgentRegistry
from agents.tools import Tool, ToolContext, current_tool_context, tool
from codec import KeyRing
from conversation_client import Conversations
from interface import StartConversation, TurnResult, UserMessage

__all__ = [
    "PLUGIN_NAME",
    "AgentConversationsPlugin",
    "AgentDefinition",
    "AgentRegistry",
    "ConfigurationError",
    "Conversations",
    "Database",
    "HttpServer",
    "IncompatibleDataConverter",
    "KeyRing",
    "StartConversation",
    "StdioServer",
    "TableSet",
    "Tool",
    "ToolBusinessError",
    "ToolContext",
    "ToolInputError",
    "ToolOptions",
    "TurnResult",
    "UnknownAgent",
    "UserMessage",
    "WorkerTuning",
    "current_tool_context",
    "from_autogen",
    "from_llamaindex",
    "has_search_attributes",
    "mcp_tools",
    "module_names",
    "register_modules",
    "team",
    "tool",
]
