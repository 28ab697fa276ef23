"""An agent module for worker subprocesses: the claims tools under a LlamaIndex ReActAgent
on the scripted ReAct LLM (`python worker.py --agents support.react_worker`)."""

from __future__ import annotations

from typing import cast

from llama_index.core.agent.workflow import ReActAgent
from llama_index.core.tools import FunctionTool

from activities.db import TableSet
from agents.registry import AgentRegistry
from demo import tables as demo_tables
from demo.claims import Sessions
from demo.scripted_model import scripted_react_llm
from examples.claims_functions import SYSTEM_MESSAGE, TOOL_OPTIONS, claims_functions

TABLES = TableSet(demo_tables.NAME, migrations=demo_tables.MIGRATIONS)


def claims_react() -> ReActAgent:
    # create_claim_note writes through the ledger's session; the other tools are not called
    functions = claims_functions(cast(Sessions, None))
    tools = [FunctionTool.from_defaults(async_fn=f) for f in functions]
    return ReActAgent(
        name="claims", llm=scripted_react_llm(), tools=tools, system_prompt=SYSTEM_MESSAGE
    )


def register(registry: AgentRegistry) -> None:
    registry.add("claims-react", claims_react, tools=TOOL_OPTIONS)
