"""Bring your own agent: AutoGen and LlamaIndex objects become agent definitions.

The workflow runs the loop (DESIGN.md); from the framework objects we take the model
client, the tools with their schemas, the system message and the loop options.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_core import CancellationToken
from autogen_core.tools import BaseTool as AutoGenTool
from autogen_core.tools import FunctionTool as AutoGenFunctionTool
from llama_index.core.agent.workflow import FunctionAgent, ReActAgent
from llama_index.core.tools import BaseTool as LlamaTool
from llama_index.core.tools.types import DefaultToolFnSchema, adapt_to_async_tool
from pydantic import BaseModel

from agents.errors import ConfigurationError, ToolBusinessError
from agents.registry import AgentDefinition
from agents.tools import Tool, ToolContext, ToolKind
from interface import ToolPolicy

__all__ = [
    "DEFAULT_KIND",
    "autogen_tool",
    "definition_from",
    "from_autogen",
    "from_llamaindex",
    "function_tool",
    "llamaindex_tool",
    "offline_defaults",
]

DEFAULT_KIND: ToolKind = "external"
"""A framework tool's side effects are unknown: by default it runs under the ledger as an
external tool that cannot dedupe downstream, so a crashed call is surfaced as `unknown`
instead of being repeated. Declare `read` or `database` per tool with `tool_kinds`."""

LLAMA_MAX_ITERATIONS = 20  # AgentWorkflow.run's default max_iterations


class ToolOptions:
    """How each of an agent's tools runs: kind, policy, downstream dedup, by tool name."""

    def __init__(
        self,
        kinds: Mapping[str, ToolKind] | None = None,
        policies: Mapping[str, ToolPolicy] | None = None,
        dedupes_downstream: Mapping[str, bool] | None = None,
    ) -> None:
        self.kinds, self.policies = dict(kinds or {}), dict(policies or {})
        self.dedupes = dict(dedupes_downstream or {})

    def for_tool(self, name: str) -> dict[str, Any]:
        kind = self.kinds.get(name, DEFAULT_KIND)
        return {
            "kind": kind,
            "policy": self.policies.get(name, ToolPolicy()),
            "dedupes_downstream": self.dedupes.get(name, kind != "external"),
        }


def autogen_tool(tool: AutoGenTool[Any, Any], **options: Any) -> Tool:
    """An AutoGen tool (`FunctionTool` or any `BaseTool`), run by the ledger."""

    async def run(ctx: ToolContext, args: BaseModel) -> str:
        value = await tool.run_json(
            args.model_dump(), CancellationToken(), call_id=ctx.idempotency_key
        )
        return tool.return_value_as_string(value)

    schema = tool.schema
    return Tool(
        name=tool.name,
        description=tool.description,
        args_model=tool.args_type(),
        fn=run,
        parameters=dict(schema.get("parameters", {})),
        **options,
    )


def llamaindex_tool(tool: LlamaTool, **options: Any) -> Tool:
    """A LlamaIndex tool (`FunctionTool`, `QueryEngineTool` or any `BaseTool`)."""
    meta = tool.metadata
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


def function_tool(fn: Callable[..., Any], *, kind: ToolKind = DEFAULT_KIND, **options: Any) -> Tool:
    """A plain typed Python function, made a tool through AutoGen's `FunctionTool`."""
    description = (fn.__doc__ or fn.__name__).strip()
    options.setdefault("dedupes_downstream", kind != "external")
    return autogen_tool(AutoGenFunctionTool(fn, description=description), kind=kind, **options)


def from_autogen(agent: AssistantAgent, *, tools: ToolOptions | None = None) -> AgentDefinition:
    """An `AssistantAgent`'s model client, tools, system message and loop options."""
    _check_autogen_supported(agent)
    options = tools or ToolOptions()
    return AgentDefinition(
        name=agent.name,
        system_message="\n".join(str(m.content) for m in agent._system_messages),
        model_client=agent._model_client,
        tools=[autogen_tool(t, **options.for_tool(t.name)) for t in agent._tools],
        max_steps=agent._max_tool_iterations + 1,
        max_tool_iterations=agent._max_tool_iterations,
        reflect_on_tool_use=agent._reflect_on_tool_use,
        tool_call_summary_format=agent._tool_call_summary_format,
    )


def from_llamaindex(
    agent: FunctionAgent | ReActAgent, *, tools: ToolOptions | None = None
) -> AgentDefinition:
    """A `FunctionAgent`'s LLM, tools and system prompt; it loops until a text answer."""
    if isinstance(agent, ReActAgent):
        raise ConfigurationError(
            "ReActAgent parses tool calls out of text; register a FunctionAgent instead"
        )
    options = tools or ToolOptions()
    llama_tools = [t for t in agent.tools or [] if isinstance(t, LlamaTool)]
    return AgentDefinition(
        name=agent.name,
        system_message=agent.system_prompt or "",
        model_client=agent.llm,
        tools=[llamaindex_tool(t, **options.for_tool(t.metadata.get_name())) for t in llama_tools],
        max_steps=LLAMA_MAX_ITERATIONS,
    )


def definition_from(source: object, name: str, tools: ToolOptions | None = None) -> AgentDefinition:
    """Normalize what a factory returned into an `AgentDefinition` called `name`."""
    if isinstance(source, AgentDefinition):
        definition = source
    elif isinstance(source, AssistantAgent):
        definition = from_autogen(source, tools=tools)
    elif isinstance(source, FunctionAgent | ReActAgent):
        definition = from_llamaindex(source, tools=tools)
    else:
        raise ConfigurationError(
            f"agent {name!r}: expected an AssistantAgent, a FunctionAgent or an "
            f"AgentDefinition, got {type(source).__name__}"
        )
    definition.name = name
    return definition


def offline_defaults() -> None:
    """Point tiktoken at llama-index-core's bundled encodings: nothing downloads at run time."""
    import llama_index.core

    bundled = Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(bundled))


def _check_autogen_supported(agent: AssistantAgent) -> None:
    missing = [a for a in ("_model_client", "_system_messages", "_tools") if not hasattr(agent, a)]
    if missing:
        raise ConfigurationError(f"unsupported autogen-agentchat version: no {missing}")
    formatter = agent._tool_call_summary_formatter
    unsupported = {
        "tool_call_summary_formatter (use tool_call_summary_format)": formatter,
        "structured output (output_content_type)": agent._output_content_type,
        "memory": agent._memory,
        "handoffs (register a team instead)": agent._handoffs,
    }
    for what, value in unsupported.items():
        if value:
            raise ConfigurationError(f"agent {agent.name!r}: {what} is not supported yet")
    custom = [
        w
        for w in agent._workbench
        if type(w).__name__ not in ("StaticWorkbench", "StaticStreamWorkbench")
    ]
    if custom:
        raise ConfigurationError(
            f"agent {agent.name!r}: workbenches other than tools= are not supported yet"
        )
