"""LlamaIndex's `FunctionAgent`, `ReActAgent` and tools, as agent definitions.

The workflow runs the loop: from the agent we take its LLM, tools and system prompt (a
`ReActAgent` also gives its ReAct formatter and output parser, which the model activity
runs), its memory's token limit and its `output_cls`, and refuse the options the durable
loop cannot honour yet rather than ignore them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llama_index.core
from llama_index.core.agent.react.formatter import ReActChatFormatter
from llama_index.core.agent.react.output_parser import ReActOutputParser
from llama_index.core.agent.workflow import FunctionAgent, ReActAgent
from llama_index.core.memory import ChatMemoryBuffer, Memory
from llama_index.core.tools import BaseTool as LlamaTool
from llama_index.core.tools import FunctionTool as LlamaFunctionTool
from llama_index.core.tools.types import DefaultToolFnSchema, adapt_to_async_tool
from pydantic import BaseModel

from agents.adapters.mcp import spec_tool
from agents.adapters.options import ToolOptions, Unsupported, refuse_unsupported
from agents.definitions import AgentDefinition
from agents.errors import ToolBusinessError, UnsupportedOption
from agents.tools import Tool, ToolContext

__all__ = [
    "LLAMA_MAX_ITERATIONS",
    "ReActDefinition",
    "from_llamaindex",
    "memory_token_limit",
    "llamaindex_tool",
    "offline_defaults",
    "workflow_timeout",
]

LLAMA_MAX_ITERATIONS = 20  # AgentWorkflow.run's default max_iterations


@dataclass
class ReActDefinition(AgentDefinition):
    """A `ReActAgent`: the model activity builds the ReAct prompt with its formatter and
    parses the answer with its output parser; a parsed action is a tool call."""

    formatter: ReActChatFormatter = field(default_factory=ReActChatFormatter)
    output_parser: ReActOutputParser = field(default_factory=ReActOutputParser)


def llamaindex_tool(tool: LlamaTool, **options: Any) -> Tool:
    """A LlamaIndex tool (`FunctionTool`, `QueryEngineTool` or any `BaseTool`). LlamaIndex
    runs a sync function in a thread with a copy of the context, so
    `current_tool_context()` works in it."""
    meta = tool.metadata
    if options.get("kind") == "database" and _is_sync(tool):
        raise UnsupportedOption(
            f"tool {meta.get_name()!r}: a synchronous function cannot be a 'database' tool "
            "(its writes go through the ledger's AsyncSession); write it as `async def`"
        )
    async_tool = adapt_to_async_tool(tool)

    async def run(ctx: ToolContext, args: BaseModel) -> str:
        output = await async_tool.acall(**args.model_dump())
        if getattr(output, "is_error", False):
            raise ToolBusinessError(str(output.content))
        return str(output.content)

    return Tool(
        name=meta.get_name(),
        description=meta.description,
        args_model=meta.fn_schema or DefaultToolFnSchema,
        fn=run,
        parameters=meta.get_parameters_dict(),
        **options,
    )


def from_llamaindex(
    agent: FunctionAgent | ReActAgent,
    *,
    tools: ToolOptions | None = None,
    memory: object | None = None,
) -> AgentDefinition:
    """A `FunctionAgent`'s or `ReActAgent`'s LLM, tools and system prompt; it loops until a
    text answer. `memory` is what the user passes to `agent.run(memory=...)`: its token
    limit bounds the transcript window."""
    definition = llamaindex_definition(agent, tools, memory=memory)
    if tools is not None:
        tools.check([t.name for t in definition.tools], f"agent {agent.name!r}")
    return definition


def llamaindex_definition(
    agent: FunctionAgent | ReActAgent,
    tools: ToolOptions | None,
    *,
    memory: object | None = None,
    in_team: bool = False,
) -> AgentDefinition:
    """`from_llamaindex` without the options check, which a team makes over its members."""
    if isinstance(agent, ReActAgent) and in_team:
        raise UnsupportedOption(
            f"agent {agent.name!r}: a ReActAgent in a team is not supported yet; register "
            "it alone, or use FunctionAgents in the team"
        )
    _check_supported(agent)
    options = tools or ToolOptions()
    llama_tools = [t for t in agent.tools or [] if isinstance(t, LlamaTool)]
    if isinstance(agent, ReActAgent):
        _check_react_tools(agent, llama_tools)
    fields: dict[str, Any] = dict(
        name=agent.name,
        system_message=agent.system_prompt or "",
        model_client=agent.llm,
        tools=[_tool(t, options) for t in llama_tools],
        max_steps=LLAMA_MAX_ITERATIONS,
        context_tokens=memory_token_limit(memory, agent.name),
        output_type=agent.output_cls,
    )
    if isinstance(agent, ReActAgent):
        return ReActDefinition(
            **fields, formatter=agent.formatter, output_parser=agent.output_parser
        )
    return AgentDefinition(**fields)


def memory_token_limit(memory: object | None, agent: str) -> int | None:
    """The chat-history token limit of a `ChatMemoryBuffer` or a `Memory` (its
    `token_limit` times `chat_history_token_ratio`, what its chat history keeps)."""
    if memory is None:
        return None
    if isinstance(memory, ChatMemoryBuffer):
        if memory.get_all():
            raise UnsupportedOption(
                f"agent {agent!r}: a memory with chat_history= is not supported: the "
                "conversation's transcript is its history"
            )
        return memory.token_limit
    if isinstance(memory, Memory):
        if memory.memory_blocks:
            raise UnsupportedOption(
                f"agent {agent!r}: Memory(memory_blocks=...) is not supported yet: only the "
                "chat history's token limit is honoured"
            )
        return int(memory.token_limit * memory.chat_history_token_ratio)
    raise UnsupportedOption(
        f"agent {agent!r}: memory of type {type(memory).__name__} is not supported: pass a "
        "ChatMemoryBuffer or a Memory made with from_defaults(token_limit=...)"
    )


def _check_react_tools(agent: ReActAgent, tools: list[LlamaTool]) -> None:
    direct = [t.metadata.get_name() for t in tools if t.metadata.return_direct]
    if direct:
        raise UnsupportedOption(
            f"agent {agent.name!r}: ReActAgent tools with return_direct=True are not "
            f"supported yet: {direct}"
        )


def _tool(tool: LlamaTool, options: ToolOptions) -> Tool:
    """McpToolSpec's tools call through the worker's MCP pool; others run as they are."""
    return spec_tool(tool, options) or llamaindex_tool(
        tool, **options.for_tool(tool.metadata.get_name())
    )


def offline_defaults() -> None:
    """Point tiktoken at llama-index-core's bundled encodings: nothing downloads at run time."""
    bundled = Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(bundled))


def workflow_timeout(workflow: object) -> object:
    """A LlamaIndex workflow's (or agent's) `timeout=`; None is the agents' default."""
    return getattr(workflow, "_timeout", None)


_UNSUPPORTED: list[Unsupported] = [
    ("tool_retriever", lambda a: a.tool_retriever, "pass the tools as tools="),
    ("initial_state", lambda a: a.initial_state, "agent state is not carried yet"),
    (
        "structured_output_fn",
        lambda a: a.structured_output_fn,
        "give output_cls=, which the turn result carries as `output`",
    ),
    (
        "early_stopping_method",
        lambda a: a.early_stopping_method != "force",
        "a turn that reaches the step limit ends with status step_limit",
    ),
    (
        "timeout",
        lambda a: workflow_timeout(a) is not None,
        "Temporal's timeouts bound each model call (ModelPolicy)",
    ),
    (
        "initial_tool_choice",
        lambda a: getattr(a, "initial_tool_choice", None),
        "the model chooses its tools",
    ),
    (
        "allow_parallel_tool_calls",
        lambda a: getattr(a, "allow_parallel_tool_calls", True) is not True,
        "the model may always call tools in parallel",
    ),
]
"""Options set to anything but their default that the durable loop cannot honour yet."""


def _check_supported(agent: FunctionAgent | ReActAgent) -> None:
    kind = type(agent).__name__
    refuse_unsupported(agent, _UNSUPPORTED, lambda o: f"agent {agent.name!r}: {kind}({o}=...)")


def _is_sync(tool: LlamaTool) -> bool:
    """A `FunctionTool` made from a plain function (LlamaIndex wraps it to run in a thread)."""
    if not isinstance(tool, LlamaFunctionTool):
        return False
    return tool.async_fn.__qualname__.startswith("sync_to_async.")
