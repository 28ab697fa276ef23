"""An agent whose tools come from an MCP server: `python worker.py --agents examples.mcp_claims`.

The worker spawns examples/claim_documents_server.py over stdio, lists its tools at start-up
and runs each call as a tool activity under the ledger (docs/mcp.md). The documents live in
$CLAIM_DOCUMENTS_DB (default `.data/claim-documents.db`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from autogen_agentchat.agents import AssistantAgent

from agents.adapters.mcp import StdioServer, mcp_tools
from agents.registry import AgentRegistry
from demo.scripted_model import ScriptedChatCompletionClient

SERVER = Path(__file__).with_name("claim_documents_server.py")


def documents_server(db_path: str) -> StdioServer:
    return StdioServer(
        command=sys.executable, args=[str(SERVER), "--db", db_path], name="claim-documents"
    )


def register(registry: AgentRegistry) -> None:
    """`claims-documents`: an AutoGen agent using the claim-documents MCP server."""
    db_path = os.environ.get("CLAIM_DOCUMENTS_DB", ".data/claim-documents.db")
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    documents = mcp_tools(documents_server(db_path))
    model_client = ScriptedChatCompletionClient()  # yours: OpenAIChatCompletionClient(...)

    def agent() -> AssistantAgent:
        return AssistantAgent(
            "claims_documents",
            model_client=model_client,
            system_message="You find and attach the documents of insurance claims.",
        )

    registry.add("claims-documents", agent, extra_tools=documents)
