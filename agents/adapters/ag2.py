"""AutoGen classic (AG2, the `autogen` package): `ConversableAgent`s as agent definitions.

AG2's two-agent chat, `user_proxy.initiate_chat(assistant, message=...)`, is one user turn:
the assistant's model answers; tool calls go to the executor, which runs the registered
functions (here: under the ledger) and sends the results back; the turn ends at a text
answer, when the executor's `is_termination_msg` holds for an answer (evaluated in the model
activity; that answer's tool calls are not run), or after `max_consecutive_auto_reply`
answers. The person is the user proxy's next input: their next message is the next turn.

Model calls go through AG2's own `OpenAIWrapper`, built from the assistant's `llm_config`
with the client's retries and AG2's cache off, so that Temporal owns retries.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable, Sequence
from typing import Any, cast

from autogen import ConversableAgent, GroupChat, GroupChatManager
from autogen.agentchat.contrib.capabilities.transform_messages import TransformMessages
from autogen.agentchat.contrib.capabilities.transforms import (
    MessageHistoryLimiter,
    MessageTokenLimiter,
)
from pydantic import BaseModel, ConfigDict, create_model

from agents.adapters.ag2_client import AG2Client, AG2Selection, TerminationRule
from agents.adapters.options import ToolOptions
from agents.definitions import AgentDefinition, TeamDefinition, TeamMode
from agents.errors import ConfigurationError, UnsupportedOption
from agents.tools import Tool, ToolContext

__all__ = [
    "AG2Client",
    "AG2Selection",
    "ag2_definition",
    "from_ag2",
    "from_ag2_groupchat",
    "from_ag2_source",
    "is_ag2_pair",
]

_DEFAULT_REPLIES = {
    f"ConversableAgent.{name}"
    for base in (
        "check_termination_and_human_reply",
        "generate_function_call_reply",
        "generate_tool_calls_reply",
        "generate_oai_reply",
    )
    for name in (base, f"a_{base}")
}
_DEFAULT_TERMINATION = "ConversableAgent.__init__.<locals>.<lambda>"


def from_ag2_source(source: object, name: str, tools: ToolOptions | None) -> AgentDefinition:
    """What a registry factory returned: a `GroupChatManager`, an `(assistant, executor)`
    pair (either order) or a lone `ConversableAgent`."""
    if isinstance(source, GroupChatManager):
        return from_ag2_groupchat(source, name=name, tools=tools)
    if is_ag2_pair(source):
        assistant, executor = cast(tuple[ConversableAgent, ConversableAgent], source)
        return from_ag2(assistant, executor, tools=tools)
    if isinstance(source, ConversableAgent):
        return from_ag2(source, tools=tools)
    raise ConfigurationError(
        f"agent {name!r}: an AG2 registration is a ConversableAgent, an (assistant, "
        f"user_proxy) pair or a GroupChatManager, got {type(source).__name__}"
    )


def is_ag2_pair(source: object) -> bool:
    """`(assistant, user_proxy)`, as a registry factory returns them."""
    return (
        isinstance(source, tuple)
        and len(source) == 2
        and all(isinstance(a, ConversableAgent) for a in source)
    )


def from_ag2(
    agent: ConversableAgent,
    executor: ConversableAgent | None = None,
    *,
    tools: ToolOptions | None = None,
) -> AgentDefinition:
    """An AG2 assistant (`AssistantAgent` or `ConversableAgent` with an `llm_config`) and
    the agent that executes its tools (a `UserProxyAgent(human_input_mode="NEVER")`); with
    no executor, the assistant runs the functions registered on itself."""
    if executor is not None and not _has_llm(agent) and _has_llm(executor):
        agent, executor = executor, agent  # (user_proxy, assistant) is the same pair
    definition = ag2_definition(agent, executor, tools, [agent, *([executor] if executor else [])])
    if tools is not None:
        tools.check([t.name for t in definition.tools], f"agent {agent.name!r}")
    return definition


def ag2_definition(
    agent: ConversableAgent,
    executor: ConversableAgent | None,
    tools: ToolOptions | None,
    executors: Sequence[ConversableAgent],
) -> AgentDefinition:
    """`from_ag2` without the options check; `executors` are the agents whose registered
    functions may run the assistant's tools (a group chat's members)."""
    _check_assistant(agent)
    if executor is not None:
        _check_executor(executor)
    config = _llm_config(agent)
    receiver = executor or agent
    rule = receiver._is_termination_msg
    client = AG2Client(
        llm_config=config,
        is_termination_msg=None if _is_default(rule) else rule,
        agent_name=agent.name,
    )
    options = tools or ToolOptions()
    context = _context_limits(agent)
    return AgentDefinition(
        name=agent.name,
        system_message=agent.system_message or "",
        model_client=client,
        tools=[
            ag2_tool(schema, _function(schema["name"], agent, executors), **options.for_tool(n))
            for n, schema in _tool_schemas(config).items()
        ],
        max_steps=_max_steps(agent, executor),
        output_schema=_output_schema(client.response_format),
        output_type=_output_type(client.response_format),
        **context,
    )


def ag2_tool(schema: dict[str, Any], fn: Callable[..., Any], **options: Any) -> Tool:
    """A function registered with `register_for_execution` (AG2 wraps it to serialize its
    result), run by the ledger. A synchronous one runs in a thread with the context
    carried, so `current_tool_context()` works in it."""
    name = schema["name"]
    _refuse_ag2_mcp(name, fn)
    is_async = inspect.iscoroutinefunction(fn)
    if options.get("kind") == "database" and not is_async:
        raise UnsupportedOption(
            f"tool {name!r}: a synchronous function cannot be a 'database' tool (its "
            "writes go through the ledger's AsyncSession); write it as `async def`"
        )

    async def run(ctx: ToolContext, args: BaseModel) -> str:
        kwargs = args.model_dump()
        value = await fn(**kwargs) if is_async else await asyncio.to_thread(fn, **kwargs)
        return value if isinstance(value, str) else str(value)

    arguments = create_model(f"{name}_arguments", __config__=ConfigDict(extra="allow"))
    return Tool(
        name=name,
        description=schema.get("description", name),
        args_model=arguments,
        fn=run,
        parameters=dict(schema.get("parameters") or {"type": "object", "properties": {}}),
        **options,
    )


def _refuse_ag2_mcp(name: str, fn: Callable[..., Any]) -> None:
    """AG2's MCP toolkit calls its own session from the function: no ledger, no key."""
    if getattr(inspect.unwrap(fn), "__module__", "") == "autogen.mcp.mcp_client":
        raise UnsupportedOption(
            f"tool {name!r}: AG2's MCP toolkit (autogen.mcp) is not supported: its session "
            "lives in one process; register the server with "
            "registry.add(..., extra_tools=mcp_tools(StdioServer(...)))"
        )


# --- what is read from the agents -------------------------------------------------------


def _has_llm(agent: ConversableAgent) -> bool:
    return bool(agent.llm_config)


def _llm_config(agent: ConversableAgent) -> dict[str, Any]:
    config = agent.llm_config
    if not config:
        raise ConfigurationError(
            f"agent {agent.name!r}: an AG2 assistant needs an llm_config (its model)"
        )
    found: dict[str, Any] = config.model_dump() if hasattr(config, "model_dump") else dict(config)
    if found.get("functions"):
        raise UnsupportedOption(
            f"agent {agent.name!r}: llm_config functions= (legacy function calling) is not "
            "supported: register tools with register_function or register_for_llm"
        )
    if found.get("stream") or any(e.get("stream") for e in found.get("config_list") or []):
        raise UnsupportedOption(f"agent {agent.name!r}: llm_config stream=True: not streamed")
    return found


def _tool_schemas(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The functions the model is offered (`register_for_llm`), by name."""
    schemas = [t["function"] for t in config.get("tools") or [] if t.get("type") == "function"]
    return {s["name"]: s for s in schemas}


def _function(
    name: str, caller: ConversableAgent, executors: Sequence[ConversableAgent]
) -> Callable[..., Any]:
    """The function that runs tool `name`: the executor's first, as AG2 routes a call."""
    for agent in [*[e for e in executors if e is not caller], caller]:
        fn = agent.function_map.get(name)
        if fn is not None:
            return fn
    raise ConfigurationError(
        f"agent {caller.name!r}: tool {name!r} is registered for the LLM but no agent executes "
        "it: register it with register_function(f, caller=..., executor=...) or "
        "register_for_execution"
    )


def _max_steps(agent: ConversableAgent, executor: ConversableAgent | None) -> int:
    """Model calls per turn: the assistant's `max_consecutive_auto_reply`, and one more than
    the executor's (each of its auto replies is a round of tool results)."""
    limit = agent.max_consecutive_auto_reply()
    if executor is not None:
        limit = min(limit, executor.max_consecutive_auto_reply() + 1)
    if limit < 1:
        raise UnsupportedOption(
            f"agent {agent.name!r}: max_consecutive_auto_reply=0 would never answer a turn"
        )
    return limit


def _context_limits(agent: ConversableAgent) -> dict[str, Any]:
    """AG2's `TransformMessages` capability: `MessageHistoryLimiter(max_messages=,
    keep_first_message=)` and `MessageTokenLimiter(max_tokens=)` bound the window."""
    found: dict[str, Any] = {}
    for hook in agent.hook_lists.get("process_all_messages_before_reply", []):
        capability = getattr(hook, "__self__", None)
        if not isinstance(capability, TransformMessages):
            raise UnsupportedOption(f"agent {agent.name!r}: hook {hook!r} is not supported")
        for transform in capability._transforms:
            found.update(_limit(agent, transform))
    return found


def _limit(agent: ConversableAgent, transform: object) -> dict[str, Any]:
    if isinstance(transform, MessageHistoryLimiter) and not transform._exclude_names:
        limits: dict[str, Any] = {}
        if transform._max_messages is not None:
            limits["context_messages"] = transform._max_messages
        if transform._keep_first_message:
            limits["context_head"] = 1
        return limits
    if isinstance(transform, MessageTokenLimiter) and _whole_messages(transform):
        return {"context_tokens": transform._max_tokens}
    raise UnsupportedOption(
        f"agent {agent.name!r}: {type(transform).__name__} with these options is not "
        "supported: MessageHistoryLimiter(max_messages=, keep_first_message=) and "
        "MessageTokenLimiter(max_tokens=) are"
    )


def _whole_messages(transform: MessageTokenLimiter) -> bool:
    """Only a total budget: truncating each message or filtering by role is not honoured."""
    unset = sys.maxsize  # what the limiter stores for None
    return (
        transform._max_tokens != unset
        and transform._max_tokens_per_message == unset
        and transform._filter_dict is None
    )


def _output_schema(response_format: Any) -> dict[str, Any] | None:
    """`llm_config(response_format=...)`: a pydantic model or a JSON schema dict."""
    if response_format is None:
        return None
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return response_format.model_json_schema()
    if isinstance(response_format, dict):
        return response_format
    raise UnsupportedOption(f"response_format {response_format!r}: a pydantic model or a dict")


def _output_type(response_format: Any) -> type[BaseModel] | None:
    """The pydantic model the answer is validated with. A model with a `format()` method
    makes AG2 reply with its formatted text, which is not JSON: no output for it."""
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return None if callable(getattr(response_format, "format", None)) else response_format
    return None


def _is_default(rule: TerminationRule) -> bool:
    return getattr(rule, "__qualname__", "") == _DEFAULT_TERMINATION


# --- what is refused ------------------------------------------------------------------


def _check_common(agent: ConversableAgent, role: str) -> None:
    where = f"{role} {agent.name!r}"
    if agent._code_execution_config:
        raise UnsupportedOption(
            f"{where}: code_execution_config is not supported: the durable loop runs "
            "registered functions only; pass code_execution_config=False"
        )
    if agent.human_input_mode == "ALWAYS":
        raise UnsupportedOption(
            f"{where}: human_input_mode='ALWAYS' is not supported: the person's next "
            "message is the next turn; use 'NEVER' (and tool approvals for a person's OK)"
        )
    custom = [
        f["reply_func"].__qualname__
        for f in agent._reply_func_list
        if f["reply_func"].__qualname__ not in _DEFAULT_REPLIES
    ]
    if any("nested_chats" in name for name in custom):
        raise UnsupportedOption(
            f"{where}: register_nested_chats is not supported: register the agents as a "
            "GroupChat, which maps onto a team"
        )
    if custom:
        raise UnsupportedOption(f"{where}: register_reply({custom[0]}) is not supported")
    if any(agent._oai_messages.values()):
        raise UnsupportedOption(f"{where}: chat_messages= (a preloaded history) is not supported")
    handoffs = agent.handoffs
    if handoffs.llm_conditions or handoffs.context_conditions or handoffs.after_works:
        raise UnsupportedOption(f"{where}: handoffs are not supported: use a GroupChat")
    hooks = [k for k, v in agent.hook_lists.items() if v]
    if [k for k in hooks if k != "process_all_messages_before_reply"]:
        raise UnsupportedOption(f"{where}: register_hook({hooks[0]!r}) is not supported")


def _check_assistant(agent: ConversableAgent) -> None:
    _check_common(agent, "agent")
    if not _is_default(agent._is_termination_msg):
        raise UnsupportedOption(
            f"agent {agent.name!r}: is_termination_msg on the assistant checks the messages it "
            "receives (the user's, tool results): not supported; set it on the executor "
            "(UserProxyAgent), which checks the assistant's answers"
        )


def _check_executor(executor: ConversableAgent) -> None:
    _check_common(executor, "executor")
    if executor.human_input_mode != "NEVER":
        raise UnsupportedOption(
            f"executor {executor.name!r}: human_input_mode={executor.human_input_mode!r} is not "
            "supported: it would ask a person mid-turn; use human_input_mode='NEVER'"
        )
    if _has_llm(executor):
        raise UnsupportedOption(
            f"executor {executor.name!r}: an executor with its own llm_config (two models "
            "talking) is not supported: register a GroupChat"
        )
    if executor.hook_lists.get("process_all_messages_before_reply"):
        raise UnsupportedOption(f"executor {executor.name!r}: TransformMessages on the executor")


# --- group chats ---------------------------------------------------------------------------

_SELECTION_MODES: dict[str, TeamMode] = {
    "auto": "selector",
    "round_robin": "round_robin",
    "random": "random",
}


def from_ag2_groupchat(
    manager: GroupChatManager, *, name: str | None = None, tools: ToolOptions | None = None
) -> TeamDefinition:
    """A `GroupChatManager` and its `GroupChat`: the agents with an `llm_config` speak in
    turn (`auto`: the manager's model picks, with AG2's prompts; `round_robin`; `random`,
    seeded by the conversation), within `allowed_or_disallowed_speaker_transitions`, until
    the manager's `is_termination_msg` holds for an answer or `max_round` messages (the
    person's included; a member's turn with its tool rounds counts as one). The agents
    without a model execute the members' functions and stand for the person."""
    chat = manager.groupchat
    _check_groupchat(chat)
    agents = _agents(chat)
    speakers = [a for a in agents if _has_llm(a)]
    if not speakers:
        raise ConfigurationError("an AG2 GroupChat needs at least one agent with an llm_config")
    for executor in (a for a in agents if not _has_llm(a)):
        _check_executor(executor)
    members = [_member(a, agents, manager, tools) for a in speakers]
    name = name or manager.name
    if tools is not None:
        tools.check({t.name for m in members for t in m.tools}, f"team {name!r}")
    names = [a.name for a in speakers]
    transitions = {
        agent.name: [a.name for a in allowed if a.name in names]
        for agent, allowed in _graph(chat).items()
        if agent.name in names
    }
    mode = _SELECTION_MODES[str(chat.speaker_selection_method)]
    return TeamDefinition(
        name=name,
        system_message="",
        model_client=_selector_client(manager) if mode == "selector" else None,
        members=members,
        mode=mode,
        descriptions={a.name: a.description for a in speakers},
        max_messages=chat.max_round,
        transitions=transitions,
        first_speakers=_first_speakers(chat, names),
    )


def _member(
    agent: ConversableAgent,
    agents: Sequence[ConversableAgent],
    manager: GroupChatManager,
    tools: ToolOptions | None,
) -> AgentDefinition:
    """A speaker: the manager receives every message, so its rule ends the turn."""
    definition = ag2_definition(agent, None, tools, agents)
    client = definition.model_client
    assert isinstance(client, AG2Client)
    client.is_termination_msg = manager._is_termination_msg
    return definition


def _agents(chat: GroupChat) -> list[ConversableAgent]:
    agents = list(chat.agents)
    others = [type(a).__name__ for a in agents if not isinstance(a, ConversableAgent)]
    if others:
        raise UnsupportedOption(f"GroupChat agents must be ConversableAgents, not {others[0]}")
    return cast(list[ConversableAgent], agents)


def _graph(chat: GroupChat) -> dict[ConversableAgent, list[ConversableAgent]]:
    """`allowed_speaker_transitions_dict`, which AG2 keys by agent (typed by name)."""
    return cast(
        dict[ConversableAgent, list[ConversableAgent]], chat.allowed_speaker_transitions_dict
    )


def _first_speakers(chat: GroupChat, names: list[str]) -> list[str]:
    """Who may follow the person: the transitions of the agents without a model."""
    graph = _graph(chat)
    people = [a for a in graph if not _has_llm(a)]
    if not people:
        return names
    allowed = {a.name for p in people for a in graph[p]}
    return [n for n in names if n in allowed] or names


def _selector_client(manager: GroupChatManager) -> AG2Client:
    chat = manager.groupchat
    source = chat.select_speaker_auto_llm_config or manager.llm_config
    if not source:
        raise ConfigurationError(
            f"GroupChatManager {manager.name!r}: speaker_selection_method='auto' needs the "
            "manager's llm_config (or select_speaker_auto_llm_config)"
        )
    config = source.model_dump() if hasattr(source, "model_dump") else dict(source)
    return AG2Client(
        llm_config=config,
        agent_name=manager.name,
        selector=AG2Selection(
            message_template=chat.select_speaker_message_template,
            prompt_template=chat.select_speaker_prompt_template,
            multiple_template=chat.select_speaker_auto_multiple_template,
            none_template=chat.select_speaker_auto_none_template,
            attempts=chat.max_retries_for_selecting_speaker + 1,
            role=chat.role_for_select_speaker_messages or "system",
        ),
    )


def _check_groupchat(chat: GroupChat) -> None:
    method = chat.speaker_selection_method
    if not isinstance(method, str) or method not in _SELECTION_MODES:
        raise UnsupportedOption(
            f"GroupChat(speaker_selection_method={method!r}) is not supported: use 'auto', "
            "'round_robin' or 'random' (a function of the chat cannot run in the workflow)"
        )
    unsupported = {
        "messages": bool(chat.messages),
        "send_introductions": chat.send_introductions,
        "select_speaker_transform_messages": chat.select_speaker_transform_messages is not None,
        "select_speaker_auto_model_client_cls": chat.select_speaker_auto_model_client_cls,
        "eligibility_policies": bool(getattr(chat, "eligibility_policies", [])),
    }
    for option, is_set in unsupported.items():
        if is_set:
            raise UnsupportedOption(f"GroupChat({option}=...) is not supported")
