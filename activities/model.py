"""Model activities: describe an agent, and call its model on the stored transcript."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import openai
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage
from autogen_core.tools import ToolSchema
from llama_index.core.base.llms.types import ChatResponse, ChatResponseAsyncGen
from llama_index.core.llms import LLM
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.tools import FunctionTool as LlamaFunctionTool
from llama_index.core.tools import ToolMetadata
from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.ag2_convert import complete_ag2, select_speaker_ag2, terminates
from activities.agent_framework_convert import complete_agent_framework
from activities.bounds import (
    MAX_ARGUMENT_BYTES,
    MAX_REPLY_BYTES,
    MAX_TOOL_CALLS,
    bounded,
    error_text,
    storable,
)
from activities.convert import from_create_result, to_autogen
from activities.deltas import DeltaSinks
from activities.errors import classified, unexpected
from activities.faults import during_model_call
from activities.heartbeat import heartbeating
from activities.interrupt import PartialText, cancel_requested
from activities.llamaindex_convert import message_from_llamaindex, to_llamaindex, usage_of
from activities.provider_errors import context_overflow, provider_failures
from activities.react import complete_react
from activities.streaming import TextSink, streaming_to, text_sink
from activities.structured import structured_output
from activities.teams import select_speaker
from activities.transcript import Prepared, Transcript
from activities.window import (
    DEFAULT_CONTEXT_WINDOW,
    TooLarge,
    budget_for,
    count,
    cut,
    load_encodings,
    model_name,
)
from agents.adapters.ag2_client import AG2Client
from agents.adapters.agent_framework import AgentFrameworkModel
from agents.adapters.llamaindex import ReActDefinition
from agents.definitions import AgentDefinition
from agents.errors import UnknownAgent
from agents.registry import AgentRegistry
from agents.tools import Tool
from interface import (
    AgentSpec,
    DescribeAgentInput,
    ErrorType,
    Message,
    ModelCallInput,
    ModelCallOutput,
    SeqMessage,
    Usage,
)

SHRINK_ATTEMPTS = 4
"""Model calls per activity attempt when the endpoint finds the prompt too long."""
SHRINK_FACTOR = 0.7
"""Each call after a context-length error gets at most this share of the last one's window."""
PARSE_ERRORS = (json.JSONDecodeError, ValidationError, openai.APIResponseValidationError)
"""What a client raises on an answer it cannot parse (a 200 that is not the expected JSON).
Other exceptions of a client (a TypeError) keep their own type: bounded the same way."""

__all__ = [
    "MAX_ARGUMENT_BYTES",  # re-exported: the bounds were defined here before activities.bounds
    "MAX_REPLY_BYTES",
    "MAX_TOOL_CALLS",
    "ModelActivities",
    "complete",
]


@dataclass
class _Call:
    """What one model call attempt has done so far, for its interruption."""

    chain_id: str
    partial: PartialText = field(default_factory=PartialText)


class ModelActivities:
    def __init__(
        self,
        agents: AgentRegistry,
        transcript: Transcript,
        search_attributes: bool = False,
        context_window: int = DEFAULT_CONTEXT_WINDOW,
        deltas: DeltaSinks | None = None,
    ) -> None:
        self._context_window = context_window
        self._deltas = deltas
        """Where model calls stream their text (None: they do not stream)."""
        """The context window of models whose client does not say."""
        self._agents = agents
        self._transcript = transcript
        self._search_attributes = search_attributes

    async def warm_up(self) -> None:
        """Load the agents' token encodings in a thread before the worker polls: the first
        model call of each kind would otherwise spend half a second of CPU on it."""
        models = {model_name(agent.model_client) for agent in self._agents}
        await asyncio.to_thread(load_encodings, models)

    @activity.defn(name="agent.describe-v1")
    async def describe_agent(self, request: DescribeAgentInput) -> AgentSpec:
        with classified():
            spec = self._describe(request)
            await self._refuse_closed(request)
            return spec

    async def _refuse_closed(self, request: DescribeAgentInput) -> None:
        """A terminated, cancelled or timed-out conversation is not restarted empty under its
        ID: its turns would lose their context and retried messages repeat their effects."""
        if request.conversation_id is None or request.chain_id is None:
            return
        conversation = storable(request.conversation_id)
        if await self._transcript.has_other_chains(conversation, request.chain_id):
            raise ApplicationError(
                "this conversation was closed (terminated, cancelled or timed out); "
                "start a new conversation with another ID",
                {"search_attributes": self._search_attributes},
                type=ErrorType.CONVERSATION_CLOSED.value,
                non_retryable=True,
            )

    def _describe(self, request: DescribeAgentInput) -> AgentSpec:
        try:
            agent = self._agents.get(request.agent)
        except UnknownAgent as exc:
            # the details tell the failing workflow whether it may upsert status "failed"
            details = {"search_attributes": self._search_attributes}
            raise ApplicationError(
                error_text(str(exc)),
                details,
                type=ErrorType.UNKNOWN_AGENT.value,
                non_retryable=True,
            ) from None
        spec = agent.spec()
        spec.search_attributes = self._search_attributes
        _check_converter(spec)
        return spec

    @activity.defn(name="agent.model_call-v1")
    async def model_call(self, request: ModelCallInput) -> ModelCallOutput:
        """Write the new messages, call the model on the transcript window, record its answer.

        A retry after the answer was recorded returns the recorded answer: a model call
        that Temporal did not hear back from is not paid for twice. If two attempts both
        called the model (one on a worker presumed dead), the first answer recorded is the
        one every attempt returns. The activity heartbeats while it waits for the model.
        With streaming on, the text goes to the text deltas as it comes (a retry first
        resets the step's text; a recorded answer is sent whole, as one delta). Cancelled by
        `cancel_turn`, it returns the text streamed so far, recorded as the call's answer and
        marked interrupted.
        """
        with classified():
            async with heartbeating(), self._streaming(request) as sink:
                call = _Call(chain_id=request.chain_id)
                try:
                    return await self._model_call(request, call, sink)
                except asyncio.CancelledError:
                    if not cancel_requested() or request.select_speaker is not None:
                        raise  # a speaker selection writes nothing: cancelled as it is
                    return await self._interrupted(request, call)

    async def _interrupted(self, request: ModelCallInput, call: _Call) -> ModelCallOutput:
        """The partial answer, written at the call's seq marked interrupted (nothing is
        written when no text came); the whole answer if it was recorded before the cancel."""
        message = Message(
            role="assistant", content=call.partial.written, source=request.agent, interrupted=True
        )
        forked = call.chain_id if call.chain_id != request.chain_id else None
        if not message.content:
            return ModelCallOutput(message=message, chain_id=forked)
        message = bounded(message)
        answer = SeqMessage(seq=request.output_seq, message=message)
        conversation = storable(request.conversation_id)
        stored = await self._transcript.record(conversation, call.chain_id, answer)
        if stored is not None:  # the answer was recorded just before the cancel landed
            return ModelCallOutput(message=bounded(stored), replayed=True, chain_id=forked)
        activity.logger.info("model call interrupted after %d characters", len(message.content))
        return ModelCallOutput(message=message, chain_id=forked)

    @asynccontextmanager
    async def _streaming(self, request: ModelCallInput) -> AsyncIterator[TextSink | None]:
        if self._deltas is None or request.select_speaker is not None:
            yield None
            return
        attempt = activity.info().attempt
        conversation = storable(request.conversation_id)
        async with self._deltas.writer(conversation, request.turn, request.step, attempt) as w:
            yield w  # None when nobody listens: the call does not stream

    async def _model_call(
        self, request: ModelCallInput, call: _Call, sink: TextSink | None = None
    ) -> ModelCallOutput:
        agent = self._agent(request.agent)
        conversation, chain = storable(request.conversation_id), request.chain_id
        found = await self._transcript.prepare(
            conversation,
            chain,
            [_storable(item) for item in request.new_messages],
            request.output_seq,
            agent.context_messages,
            branch_id=activity.info().workflow_run_id or chain,  # a reset run's own chain
            head=agent.context_head,
        )
        forked = found.chain_id if found.chain_id != chain else None
        chain = call.chain_id = found.chain_id
        if found.duplicate:
            return ModelCallOutput(
                message=Message(role="assistant"),
                duplicate_message_id=found.duplicate,
                chain_id=forked,
            )
        if found.recorded is not None:
            recorded = bounded(found.recorded)
            if sink is not None and recorded.content:
                await sink.text(recorded.content)
            output = await self._output(agent, [], found.recorded)
            terminate = terminates(agent, recorded)
            return ModelCallOutput(
                message=recorded,
                replayed=True,
                output=output,
                terminate=terminate,
                chain_id=forked,
            )
        if request.select_speaker is not None:  # a selector team picks its next speaker
            window = self._fitted(agent, found, False)
            if isinstance(agent.model_client, AG2Client):
                return await select_speaker_ag2(agent, window, request.select_speaker)
            return await select_speaker(agent, window, request.select_speaker)
        # nobody listening (or streaming off): a sink set around the activity still gets them
        with provider_failures(), invalid_responses(), streaming_to(sink or text_sink()):
            message, usage, history = await self._complete_within(
                agent, found, request.tools_enabled, call.partial
            )
        output = await self._output(agent, history, message)  # before it is recorded
        during_model_call(agent.name, f"{conversation}/t{request.turn}/s{request.step}")
        stored = await self._transcript.record(
            conversation, chain, SeqMessage(seq=request.output_seq, message=message)
        )
        if stored is not None:  # another attempt recorded its answer first
            output = await self._output(agent, history, stored)
            stored = bounded(stored)
            return ModelCallOutput(
                message=stored,
                usage=usage,
                replayed=True,
                output=output,
                terminate=terminates(agent, stored),
                chain_id=forked,
            )
        message = bounded(message)
        terminate = terminates(agent, message)
        return ModelCallOutput(
            message=message, usage=usage, output=output, terminate=terminate, chain_id=forked
        )

    async def _output(
        self, agent: AgentDefinition, history: list[SeqMessage], answer: Message
    ) -> dict[str, object] | None:
        """The answer's structured output (activities.structured), if the agent has one."""
        with provider_failures():
            output = await structured_output(agent, history, answer)
        if output is not None and len(json.dumps(output)) > MAX_REPLY_BYTES:
            activity.logger.warning("structured output over %d bytes: left out", MAX_REPLY_BYTES)
            return None  # it would ride in history; the reply (bounded) still carries the answer
        return output

    def _fitted(
        self,
        agent: AgentDefinition,
        found: Prepared,
        tools_enabled: bool,
        tokens: int | None = None,
    ) -> list[SeqMessage]:
        """The window within the agent's token budget (or `tokens`, if smaller)."""
        schemas = [t.schema for t in agent.tools] if tools_enabled else []
        budget = budget_for(
            agent.model_client,
            agent.system_message,
            schemas,
            agent.context_tokens,
            self._context_window,
        ).tokens
        if tokens is not None:
            budget = min(budget, tokens)
        try:
            return cut(found.head, found.window, budget, model_name(agent.model_client))
        except TooLarge as exc:
            raise ApplicationError(
                str(exc), type=ErrorType.CONTEXT_LENGTH_EXCEEDED.value, non_retryable=True
            ) from None

    async def _complete_within(
        self, agent: AgentDefinition, found: Prepared, tools_enabled: bool, partial: PartialText
    ) -> tuple[Message, Usage, list[SeqMessage]]:
        """Call the model on the fitted window; if the endpoint still finds it over the
        context window, shrink it and call again, a bounded number of times. Returns the
        answer, its usage and the window it was given. `partial` keeps the streamed text
        (innermost, around the sink of the call's deltas, if any)."""
        tokens: int | None = None
        for attempt in range(1, SHRINK_ATTEMPTS + 1):
            window = self._fitted(agent, found, tools_enabled, tokens)
            try:
                with streaming_to(partial.around(text_sink())):
                    message, usage = await complete(agent, window, tools_enabled)
                return message, usage, window
            except Exception as exc:
                if attempt == SHRINK_ATTEMPTS or not context_overflow(exc):
                    raise
                used = sum(count(m.message, model_name(agent.model_client)) for m in window)
                tokens = int(used * SHRINK_FACTOR)
                activity.logger.warning(
                    "the model found the prompt too long; shrinking its window to %s tokens",
                    tokens,
                )
        raise AssertionError("unreachable")

    def _agent(self, name: str) -> AgentDefinition:
        try:
            return self._agents.get(name)
        except UnknownAgent as exc:
            raise ApplicationError(
                error_text(str(exc)), type=ErrorType.UNKNOWN_AGENT.value, non_retryable=True
            ) from None


@contextmanager
def invalid_responses() -> Iterator[None]:
    """An answer the client cannot parse is `ModelResponseInvalid`: retried a few times (a
    proxy may have garbled one answer), then not, instead of for the call's whole timeout."""
    try:
        yield
    except PARSE_ERRORS as exc:
        failure = unexpected(exc, activity.info().attempt, ErrorType.MODEL_RESPONSE_INVALID.value)
        raise failure from None


def _check_converter(spec: AgentSpec) -> None:
    """Fail at once, and say why, on a worker whose data converter cannot carry our
    payloads: otherwise the SDK retries encoding the result for as long as it may."""
    try:
        activity.payload_converter().to_payloads([spec])
    except Exception as exc:
        raise ApplicationError(
            f"the worker's data converter cannot carry {type(spec).__name__} "
            f"({type(exc).__name__}); build the worker and its client with "
            "temporalio.contrib.pydantic.pydantic_data_converter",
            type=ErrorType.CONFIGURATION.value,
            non_retryable=True,
        ) from None


async def complete(
    agent: AgentDefinition, history: list[SeqMessage], tools_enabled: bool
) -> tuple[Message, Usage]:
    """One model call through the agent's own framework client."""
    if isinstance(agent.model_client, ChatCompletionClient):
        return await _complete_autogen(agent, history, tools_enabled)
    if isinstance(agent, ReActDefinition):  # ReAct parses tool calls out of the text
        return await complete_react(agent, history, [_llama_schema_tool(t) for t in agent.tools])
    if isinstance(agent.model_client, LLM):
        return await _complete_llamaindex(agent, history, tools_enabled)
    if isinstance(agent.model_client, AgentFrameworkModel):
        return await complete_agent_framework(agent, history, tools_enabled)
    if isinstance(agent.model_client, AG2Client):
        return await complete_ag2(agent, history, tools_enabled)
    raise TypeError(f"unsupported model client {type(agent.model_client).__name__}")


async def _complete_autogen(
    agent: AgentDefinition, history: list[SeqMessage], tools_enabled: bool
) -> tuple[Message, Usage]:
    messages = to_autogen(agent.system_message, history, agent.name)
    tools = [t.schema for t in agent.tools] if tools_enabled else []
    # AssistantAgent asks for its output_content_type in every call, tools or not
    sink = text_sink()
    if sink is None:
        result = await agent.model_client.create(
            messages, tools=tools, json_output=agent.output_type
        )
    else:
        result = await _stream_autogen(agent.model_client, sink, messages, tools, agent)
    usage = Usage(
        prompt_tokens=result.usage.prompt_tokens, completion_tokens=result.usage.completion_tokens
    )
    return from_create_result(result, agent.name), usage


async def _stream_autogen(
    client: ChatCompletionClient,
    sink: TextSink,
    messages: list[LLMMessage],
    tools: list[ToolSchema],
    agent: AgentDefinition,
) -> CreateResult:
    """`create_stream`: its text chunks to the sink, then its final `CreateResult`."""
    result: CreateResult | None = None
    # OpenAI sends usage in a stream only when asked; other clients take no such option
    extra = {"stream_options": {"include_usage": True}} if _is_openai(client) else {}
    stream = client.create_stream(
        messages, tools=tools, json_output=agent.output_type, extra_create_args=extra
    )
    async for chunk in stream:
        if isinstance(chunk, str):
            await sink.text(chunk)
        else:
            result = chunk
    if result is None:
        raise ApplicationError(
            "the model's stream ended without a final result",
            type=ErrorType.MODEL_RESPONSE_INVALID.value,
        )
    return result


def _is_openai(client: ChatCompletionClient) -> bool:
    from autogen_ext.models.openai import BaseOpenAIChatCompletionClient

    return isinstance(client, BaseOpenAIChatCompletionClient)


async def _complete_llamaindex(
    agent: AgentDefinition, history: list[SeqMessage], tools_enabled: bool
) -> tuple[Message, Usage]:
    llm = cast(LLM, agent.model_client)
    messages = to_llamaindex(agent.system_message, history)
    sink = text_sink()
    if tools_enabled and agent.tools and isinstance(llm, FunctionCallingLLM):
        tools = [_llama_schema_tool(t) for t in agent.tools]
        if sink is None:
            response = await llm.achat_with_tools(
                tools, chat_history=messages, allow_parallel_tool_calls=True
            )
        else:
            response = await _streamed_llamaindex(
                await llm.astream_chat_with_tools(
                    tools,
                    chat_history=messages,
                    allow_parallel_tool_calls=True,
                    **_stream_usage(llm),
                ),
                sink,
            )
    elif sink is None:
        response = await llm.achat(messages)
    else:
        response = await _streamed_llamaindex(
            await llm.astream_chat(messages, **_stream_usage(llm)), sink
        )
    return message_from_llamaindex(response.message, agent.name), usage_of(response)


async def _streamed_llamaindex(stream: ChatResponseAsyncGen, sink: TextSink) -> ChatResponse:
    """The last of LlamaIndex's streamed responses (it holds the whole message, its tool
    calls assembled from the deltas, and the usage chunk), each text delta to `sink`."""
    last: ChatResponse | None = None
    async for last in stream:
        if last.delta:
            await sink.text(last.delta)
    if last is None:
        raise ValueError("the model's stream ended without a response")
    return last


def _stream_usage(llm: LLM) -> dict[str, Any]:
    """LlamaIndex's OpenAI clients (and OpenAILike, Azure) stream no usage unless asked; the
    non-streaming call reports it, so the streamed one asks for the final usage chunk."""
    if any(c.__module__.startswith("llama_index.llms.openai.") for c in type(llm).__mro__):
        return {"stream_options": {"include_usage": True}}
    return {}


def _llama_schema_tool(tool: Tool) -> LlamaFunctionTool:
    """A stand-in carrying only the tool's schema: tools run in the tool activity."""
    metadata = ToolMetadata(name=tool.name, description=tool.description, fn_schema=tool.args_model)
    return LlamaFunctionTool(fn=_not_called, metadata=metadata)


def _not_called(**_: object) -> None:
    raise RuntimeError("tools run in the tool activity, not in the model activity")


def _storable(item: SeqMessage) -> SeqMessage:
    """A user's message ID is a column of its own (the body is JSON, where NUL is escaped):
    unchanged, an ID with NUL would fail every later model call on PostgreSQL."""
    message_id = item.message.message_id
    if message_id is None or "\x00" not in message_id:
        return item
    message = item.message.model_copy(update={"message_id": storable(message_id)})
    return SeqMessage(seq=item.seq, message=message)
