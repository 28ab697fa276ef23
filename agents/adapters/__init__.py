"""Bring your own agent: AutoGen and LlamaIndex objects become agent definitions.

- `agents.adapters.autogen`: `AssistantAgent`, AutoGen tools and plain functions.
- `agents.adapters.ag2`: AutoGen classic (AG2): `(assistant, user_proxy)` pairs, group chats.
- `agents.adapters.llamaindex`: `FunctionAgent` and LlamaIndex tools.
- `agents.adapters.agent_framework`: Microsoft Agent Framework's `Agent` and function tools.
- `agents.adapters.teams`: AutoGen group chats, LlamaIndex's `AgentWorkflow`, `team()`.
- `agents.adapters.options`: `ToolOptions`, how each framework tool runs under the ledger.
"""

from typing import TYPE_CHECKING

from agents.adapters.agent_framework import agent_framework_tool, from_agent_framework
from agents.adapters.autogen import autogen_tool, from_autogen, function_tool
from agents.adapters.convert import definition_from
from agents.adapters.llamaindex import from_llamaindex, llamaindex_tool, offline_defaults
from agents.adapters.options import DEFAULT_KIND, ToolOptions
from agents.adapters.teams import from_autogen_team, from_llamaindex_workflow, team

__all__ = [
    "DEFAULT_KIND",
    "ToolOptions",
    "agent_framework_tool",
    "autogen_tool",
    "definition_from",
    "from_ag2",
    "from_ag2_groupchat",
    "from_agent_framework",
    "from_autogen",
    "from_autogen_team",
    "from_llamaindex",
    "from_llamaindex_workflow",
    "function_tool",
    "llamaindex_tool",
    "offline_defaults",
    "team",
]

if TYPE_CHECKING:
    from agents.adapters.ag2 import from_ag2, from_ag2_groupchat


def __getattr__(name: str) -> object:
    """`from_ag2` and `from_ag2_groupchat` import AG2 (slow) only when asked for."""
    if name in ("from_ag2", "from_ag2_groupchat"):
        from agents.adapters import ag2

        return getattr(ag2, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
