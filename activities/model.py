"""Model activities: describe an agent, and call its model on the stored transcript."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import cast

import openai
from autogen_core.models import ChatCompletionClient
from llama_index.core.llms import LLM
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.tools import FunctionTool as LlamaFunctionTool
from llama_index.core.tools import ToolMetadata
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.convert import from_create_result, to_autogen
from activities.llamaindex_convert import message_from_llamaindex, to_llamaindex, usage_of
from activities.transcript import Transcript
from agents.errors import UnknownAgent
from agents.registry import AgentDefinition, AgentRegistry
from agents.tools import Tool
from interface import (
    AgentSpec,
    DescribeAgentInput,
    Message,
    ModelCallInput,
    ModelCallOutput,
    SeqMessage,
    Usage,
)

RETRYABLE_STATUS = {408, 409, 429}
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
        spec = self._agent(request.agent).spec()
        spec.search_attributes = self._search_attributes
        return spec

    @activity.defn(name="agent.model_call-v1")
    async def model_call(self, request: ModelCallInput) -> ModelCallOutput:
        """Write the new messages, call the model on the transcript window, record its answer.

        A retry after the answer was recorded returns the recorded answer: a model call
        that Temporal did not hear back from is not paid for twice.
        """
        agent = self._agent(request.agent)
        conversation, chain = request.conversation_id, request.chain_id
        duplicate = await self._transcript.append(conversation, chain, request.new_messages)
        if duplicate:
            return ModelCallOutput(
                message=Message(role="assistant"), duplicate_message_id=duplicate
            )
        recorded = await self._transcript.get(chain, request.output_seq)
        if recorded is not None:
            return ModelCallOutput(message=recorded, replayed=True)
        history = await self._transcript.recent(chain, request.output_seq, agent.context_messages)
        try:
            message, usage = await complete(agent, history, request.tools_enabled)
        except Exception as exc:
            raise model_error(exc) from None
        await self._transcript.append(
            conversation, chain, [SeqMessage(seq=request.output_seq, message=message)]
        )
        return ModelCallOutput(message=message, usage=usage)

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


def model_error(exc: Exception) -> Exception:
    """Temporal owns retries: 408/409/429/5xx and lost connections retry, honouring
    `retry-after`; other 4xx do not. Messages are scrubbed of anything key-like."""
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return ApplicationError(
            f"model endpoint answered HTTP {status}: {scrub(exc.message)}",
            type=f"ModelHTTP{status}",
            non_retryable=not (status in RETRYABLE_STATUS or status >= 500),
            next_retry_delay=retry_after(exc.response.headers.get("retry-after")),
        )
    if isinstance(exc, openai.APIConnectionError | TimeoutError | ConnectionError):
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
