"""Model activities: describe an agent, and call its model on the stored transcript."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import cast

import anthropic
import openai
from autogen_core.models import ChatCompletionClient
from llama_index.core.llms import LLM
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.tools import FunctionTool as LlamaFunctionTool
from llama_index.core.tools import ToolMetadata
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.convert import from_create_result, to_autogen
from activities.faults import during_model_call
from activities.heartbeat import heartbeating
from activities.llamaindex_convert import message_from_llamaindex, to_llamaindex, usage_of
from activities.teams import select_speaker
from activities.tools import clip, storable
from activities.transcript import Transcript
from agents.definitions import AgentDefinition
from agents.errors import UnknownAgent
from agents.registry import AgentRegistry
from agents.tools import Tool
from interface import (
    AgentSpec,
    DescribeAgentInput,
    Message,
    ModelCallInput,
    ModelCallOutput,
    SeqMessage,
    ToolCall,
    Usage,
)

RETRYABLE_STATUS = {408, 409, 429}
MAX_REPLY_BYTES = 32_000
"""The model's text as it enters workflow history and the turn result, as UTF-8 JSON (32,000
ASCII characters); longer text is cut with a `... [truncated N characters]` marker. The SQL
transcript, and so the model's later context, keeps the full text."""
MAX_TOOL_CALLS = 50
"""Tool calls run per model response; the model's later context shows an error result
(`no_result`) for each call beyond it. With `MAX_RESULT_BYTES` per result, one model call's
input stays under Temporal's 2 MB payload limit."""
MAX_ARGUMENT_BYTES = 16_000
"""Longer tool-call arguments are cut, so they no longer parse and the tool activity
answers `invalid_json`."""
MAX_NAME_CHARS = 200
"""Tool names and call IDs, which the model chooses, are cut to this."""
_SECRET = re.compile(r"(sk-[A-Za-z0-9_\-*]{4,}|Bearer\s+\S+)")


class ModelActivities:
    def __init__(
        self, agents: AgentRegistry, transcript: Transcript, search_attributes: bool = False
    ) -> None:
        self._agents = agents
        self._transcript = transcript
        self._search_attributes = search_attributes

    @activity.defn(name="agent.describe-v1")
    async def describe_agent(self, request: DescribeAgentInput) -> AgentSpec:
        try:
            agent = self._agents.get(request.agent)
        except UnknownAgent as exc:
            # the details tell the failing workflow whether it may upsert status "failed"
            details = {"search_attributes": self._search_attributes}
            raise ApplicationError(
                str(exc), details, type="UnknownAgent", non_retryable=True
            ) from None
        spec = agent.spec()
        spec.search_attributes = self._search_attributes
        return spec

    @activity.defn(name="agent.model_call-v1")
    async def model_call(self, request: ModelCallInput) -> ModelCallOutput:
        """Write the new messages, call the model on the transcript window, record its answer.

        A retry after the answer was recorded returns the recorded answer: a model call
        that Temporal did not hear back from is not paid for twice. If two attempts both
        called the model (one on a worker presumed dead), the first answer recorded is the
        one every attempt returns. The activity heartbeats while it waits for the model.
        """
        async with heartbeating():
            return await self._model_call(request)

    async def _model_call(self, request: ModelCallInput) -> ModelCallOutput:
        agent = self._agent(request.agent)
        conversation, chain = storable(request.conversation_id), request.chain_id
        found = await self._transcript.prepare(
            conversation,
            chain,
            [_storable(item) for item in request.new_messages],
            request.output_seq,
            agent.context_messages,
        )
        if found.duplicate:
            return ModelCallOutput(
                message=Message(role="assistant"), duplicate_message_id=found.duplicate
            )
        if found.recorded is not None:
            return ModelCallOutput(message=bounded(found.recorded), replayed=True)
        history = found.window
        if request.select_speaker is not None:  # a selector team picks its next speaker
            return await select_speaker(agent, history, request.select_speaker)
        try:
            message, usage = await complete(agent, history, request.tools_enabled)
        except Exception as exc:
            raise model_error(exc) from None
        during_model_call(agent.name, f"{conversation}/t{request.turn}/s{request.step}")
        stored = await self._transcript.record(
            conversation, chain, SeqMessage(seq=request.output_seq, message=message)
        )
        if stored is not None:  # another attempt recorded its answer first
            return ModelCallOutput(message=bounded(stored), usage=usage, replayed=True)
        return ModelCallOutput(message=bounded(message), usage=usage)

    def _agent(self, name: str) -> AgentDefinition:
        try:
            return self._agents.get(name)
        except UnknownAgent as exc:
            raise ApplicationError(str(exc), type="UnknownAgent", non_retryable=True) from None


async def complete(
    agent: AgentDefinition, history: list[SeqMessage], tools_enabled: bool
) -> tuple[Message, Usage]:
    """One model call through the agent's own framework client."""
    if isinstance(agent.model_client, ChatCompletionClient):
        return await _complete_autogen(agent, history, tools_enabled)
    if isinstance(agent.model_client, LLM):
        return await _complete_llamaindex(agent, history, tools_enabled)
    raise TypeError(f"unsupported model client {type(agent.model_client).__name__}")


async def _complete_autogen(
    agent: AgentDefinition, history: list[SeqMessage], tools_enabled: bool
) -> tuple[Message, Usage]:
    messages = to_autogen(agent.system_message, history, agent.name)
    tools = [t.schema for t in agent.tools] if tools_enabled else []
    result = await agent.model_client.create(messages, tools=tools)
    usage = Usage(
        prompt_tokens=result.usage.prompt_tokens, completion_tokens=result.usage.completion_tokens
    )
    return from_create_result(result, agent.name), usage


async def _complete_llamaindex(
    agent: AgentDefinition, history: list[SeqMessage], tools_enabled: bool
) -> tuple[Message, Usage]:
    llm = cast(LLM, agent.model_client)
    messages = to_llamaindex(agent.system_message, history)
    if tools_enabled and agent.tools and isinstance(llm, FunctionCallingLLM):
        tools = [_llama_schema_tool(t) for t in agent.tools]
        response = await llm.achat_with_tools(
            tools, chat_history=messages, allow_parallel_tool_calls=True
        )
    else:
        response = await llm.achat(messages)
    return message_from_llamaindex(response.message, agent.name), usage_of(response)


def _llama_schema_tool(tool: Tool) -> LlamaFunctionTool:
    """A stand-in carrying only the tool's schema: tools run in the tool activity."""
    metadata = ToolMetadata(name=tool.name, description=tool.description, fn_schema=tool.args_model)
    return LlamaFunctionTool(fn=_not_called, metadata=metadata)


def _not_called(**_: object) -> None:
    raise RuntimeError("tools run in the tool activity, not in the model activity")


def bounded(message: Message) -> Message:
    """The model's message as it may enter workflow history: a hostile or runaway model
    cannot produce a result over Temporal's payload limit, which would fail the call on
    every retry (or, as the next call's input, fail the workflow task on every attempt)."""
    if len(message.tool_calls) > MAX_TOOL_CALLS:
        activity.logger.warning(
            "model asked for %d tool calls; running the first %d",
            len(message.tool_calls),
            MAX_TOOL_CALLS,
        )
    calls = [
        ToolCall(
            id=clip(call.id, MAX_NAME_CHARS),
            name=call.name[:MAX_NAME_CHARS],
            arguments=clip(call.arguments, MAX_ARGUMENT_BYTES),
        )
        for call in message.tool_calls[:MAX_TOOL_CALLS]
    ]
    content = clip(message.content, MAX_REPLY_BYTES)
    return message.model_copy(update={"content": content, "tool_calls": calls})


def _storable(item: SeqMessage) -> SeqMessage:
    """A user's message ID is a column of its own (the body is JSON, where NUL is escaped):
    unchanged, an ID with NUL would fail every later model call on PostgreSQL."""
    message_id = item.message.message_id
    if message_id is None or "\x00" not in message_id:
        return item
    message = item.message.model_copy(update={"message_id": storable(message_id)})
    return SeqMessage(seq=item.seq, message=message)


def model_error(exc: Exception) -> Exception:
    """Temporal owns retries: 408/409/429/5xx and lost connections retry, honouring
    `retry-after`; other 4xx do not. Messages are scrubbed of anything key-like."""
    if isinstance(exc, openai.APIStatusError | anthropic.APIStatusError):
        status = exc.status_code
        return ApplicationError(
            f"model endpoint answered HTTP {status}: {scrub(exc.message)}",
            type=f"ModelHTTP{status}",
            non_retryable=not (status in RETRYABLE_STATUS or status >= 500),
            next_retry_delay=retry_after(exc.response.headers.get("retry-after")),
        )
    if isinstance(
        exc,
        openai.APIConnectionError | anthropic.APIConnectionError | TimeoutError | ConnectionError,
    ):
        return ApplicationError(
            f"model endpoint unreachable: {scrub(str(exc))}", type="ModelUnavailable"
        )
    return ApplicationError(scrub(f"{type(exc).__name__}: {exc}"), type=type(exc).__name__)


def retry_after(value: str | None) -> timedelta | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date; Temporal's backoff applies instead
    return timedelta(seconds=min(max(seconds, 0), 300)) if seconds is not None else None


def scrub(text: str) -> str:
    return _SECRET.sub("[redacted]", text)
