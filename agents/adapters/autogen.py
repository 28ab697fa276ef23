"""AutoGen agentchat's `AssistantAgent` and tools, as agent definitions.

The workflow runs the loop (DESIGN.md); from the agent we take the model client, the tools
with their schemas, the system message and the loop options, and refuse the options the
durable loop cannot honour yet rather than ignore them. The agent's `model_context`
(buffered, token-limited, head-and-tail) becomes the transcript window's bounds, and its
`output_content_type` the structured output the turn result carries.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_core import CancellationToken
from autogen_core.model_context import (
    BufferedChatCompletionContext,
    ChatCompletionContext,
    HeadAndTailChatCompletionContext,
    TokenLimitedChatCompletionContext,
    UnboundedChatCompletionContext,
)
from autogen_core.tools import BaseTool as AutoGenTool
from autogen_core.tools import FunctionTool as AutoGenFunctionTool
from autogen_core.tools import StaticStreamWorkbench
from pydantic import BaseModel

from agents.adapters.options import DEFAULT_KIND, ToolOptions, Unsupported, refuse_unsupported
from agents.definitions import AgentDefinition, Handoff
from agents.errors import ConfigurationError, UnsupportedOption
from agents.tools import Tool, ToolContext, ToolKind

__all__ = ["autogen_handoffs", "autogen_tool", "from_autogen", "function_tool"]

_ATTRIBUTES = (
    "_model_client",
    "_system_messages",
    "_tools",
    "_workbench",
    "_handoffs",
    "_model_context",
    "_memory",
    "_model_client_stream",
    "_output_content_type",
    "_output_content_type_format",
    "_reflect_on_tool_use",
    "_max_tool_iterations",
    "_tool_call_summary_format",
    "_tool_call_summary_formatter",
)
"""The agent's attributes we read; a release that renamed one is refused, not misread."""


def autogen_tool(tool: AutoGenTool[Any, Any], **options: Any) -> Tool:
    """An AutoGen tool (`FunctionTool` or any `BaseTool`), run by the ledger."""
    runner = _in_context(tool, options.get("kind", "read"))

    async def run(ctx: ToolContext, args: BaseModel) -> str:
        value = await runner.run_json(
            args.model_dump(), CancellationToken(), call_id=ctx.idempotency_key
        )
        return runner.return_value_as_string(value)

    schema = tool.schema
    return Tool(
        name=tool.name,
        description=tool.description,
        args_model=tool.args_type(),
        fn=run,
        parameters=dict(schema.get("parameters", {})),
        **options,
    )


def function_tool(fn: Callable[..., Any], *, kind: ToolKind = DEFAULT_KIND, **options: Any) -> Tool:
    """A plain typed Python function, made a tool through AutoGen's `FunctionTool`."""
    description = (fn.__doc__ or fn.__name__).strip()
    options.setdefault("dedupes_downstream", kind != "external")
    return autogen_tool(AutoGenFunctionTool(fn, description=description), kind=kind, **options)


def from_autogen(agent: AssistantAgent, *, tools: ToolOptions | None = None) -> AgentDefinition:
    """An `AssistantAgent`'s model client, tools, system message and loop options."""
    definition = autogen_definition(agent, tools, in_team=False)
    if tools is not None:
        tools.check([t.name for t in definition.tools], f"agent {agent.name!r}")
    return definition


def autogen_definition(
    agent: AssistantAgent, tools: ToolOptions | None, *, in_team: bool
) -> AgentDefinition:
    """`from_autogen` without the options check, which a team makes over all its members."""
    _check_supported(agent, in_team)
    options = tools or ToolOptions()
    return AgentDefinition(
        **context_window(agent._model_context),
        output_type=agent._output_content_type,
        name=agent.name,
        system_message="\n".join(str(m.content) for m in agent._system_messages),
        model_client=agent._model_client,
        tools=[autogen_tool(t, **options.for_tool(t.name)) for t in agent._tools],
        max_steps=agent._max_tool_iterations + 1,
        max_tool_iterations=agent._max_tool_iterations,
        reflect_on_tool_use=agent._reflect_on_tool_use,
        tool_call_summary_format=agent._tool_call_summary_format,
    )


def context_window(context: ChatCompletionContext) -> dict[str, Any]:
    """The `AgentDefinition` window fields a `model_context=` maps onto."""
    if isinstance(context, BufferedChatCompletionContext):
        return {"context_messages": context._buffer_size}
    if isinstance(context, TokenLimitedChatCompletionContext):
        return {"context_tokens": context._token_limit}  # None: the model's own window
    if isinstance(context, HeadAndTailChatCompletionContext):
        return {"context_head": context._head_size, "context_messages": context._tail_size}
    return {}


def autogen_handoffs(agent: AssistantAgent) -> list[Handoff]:
    """The agent's own `handoffs=`, for a team's handoff mode."""
    return [Handoff(h.target, h.description, h.name, h.message) for h in agent._handoffs.values()]


def _in_context(tool: AutoGenTool[Any, Any], kind: str) -> AutoGenTool[Any, Any]:
    """The tool, with a synchronous function run where `current_tool_context()` works.

    AutoGen's `FunctionTool` runs a sync function with `loop.run_in_executor`, which does
    not carry context variables into the thread; `asyncio.to_thread` does."""
    func = getattr(tool, "_func", None)
    if not isinstance(tool, AutoGenFunctionTool) or asyncio.iscoroutinefunction(func):
        return tool
    if kind == "database":
        raise UnsupportedOption(
            f"tool {tool.name!r}: a synchronous function cannot be a 'database' tool (its "
            "writes go through the ledger's AsyncSession); write it as `async def`"
        )
    assert func is not None

    async def in_thread(**kwargs: Any) -> Any:
        return await asyncio.to_thread(func, **kwargs)

    carrying = copy.copy(tool)
    carrying._func = in_thread  # the signature and argument model stay the original's
    return carrying


_UNSUPPORTED: list[Unsupported] = [
    (
        "output_content_type_format",
        lambda a: a._output_content_type_format,
        "the turn result carries the object as `output`",
    ),
    (
        "tool_call_summary_formatter",
        lambda a: a._tool_call_summary_formatter,
        "use tool_call_summary_format",
    ),
    ("memory", lambda a: a._memory, "memory is not queried by the durable loop yet"),
    (
        "model_context",
        lambda a: _custom_context(a),
        "Buffered-, TokenLimited- and HeadAndTailChatCompletionContext map onto the window",
    ),
    (
        "workbench",
        lambda a: _custom_workbench(a),
        "pass the tools as tools=; for an MCP server (McpWorkbench), register the agent with "
        "registry.add(name, factory, extra_tools=mcp_tools(StdioServer(...) or "
        "HttpServer(...))) from agents.adapters.mcp, which runs each call under the ledger",
    ),
]
"""Options set to anything but their default that the durable loop cannot honour yet."""


def _check_supported(agent: AssistantAgent, in_team: bool) -> None:
    missing = [a for a in _ATTRIBUTES if not hasattr(agent, a)]
    if missing:
        raise ConfigurationError(f"unsupported autogen-agentchat version: no {missing}")
    refuse_unsupported(
        agent, _UNSUPPORTED, lambda o: f"agent {agent.name!r}: AssistantAgent({o}=...)"
    )
    if agent._handoffs and not in_team:
        raise UnsupportedOption(
            f"agent {agent.name!r}: AssistantAgent(handoffs=...) needs a team: register a "
            "Swarm or agents.adapters.team(..., mode='handoff')"
        )


_CONTEXTS = (
    UnboundedChatCompletionContext,
    BufferedChatCompletionContext,
    TokenLimitedChatCompletionContext,
    HeadAndTailChatCompletionContext,
)
"""The model contexts whose windows the transcript window reproduces."""


def _custom_context(agent: AssistantAgent) -> bool:
    context = agent._model_context
    return type(context) not in _CONTEXTS or bool(context._initial_messages)


def _custom_workbench(agent: AssistantAgent) -> bool:
    """True unless the workbench is the one AssistantAgent builds over `tools=`."""
    benches = list(agent._workbench)
    if len(benches) != 1 or type(benches[0]) is not StaticStreamWorkbench:
        return True
    return benches[0]._tools is not agent._tools
