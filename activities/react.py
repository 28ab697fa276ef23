"""LlamaIndex's `ReActAgent` step, run inside the model activity.

The agent's own `ReActChatFormatter` builds the prompt and its `ReActOutputParser` reads
the answer, as `ReActAgent.take_step` does. How ReAct's steps map onto the transcript:

- an action (`Thought:` / `Action:` / `Action Input:`) is an assistant message with one
  `ToolCall` (the action and its input as JSON) and the thought in `Message.thought`;
- its observation is the tool message the tool activity writes (`Observation: <content>`);
- the answer is an assistant message whose content is the reply (the text after `Answer:`,
  as `ReActAgent.finalize` leaves it), its thought in `Message.thought`.

The messages since the last user message are the turn's reasoning steps; an earlier turn's
steps become one assistant message of their joined text, as `finalize` puts them in memory.
A response that does not parse goes back to the model with LlamaIndex's own error message
(`retry_messages`), within the same activity: like LlamaIndex, the failed attempt is not
kept in the history.
"""

from __future__ import annotations

import json
from typing import Any, cast
from uuid import uuid4

from llama_index.core.agent.react.types import (
    ActionReasoningStep,
    BaseReasoningStep,
    ObservationReasoningStep,
    ResponseReasoningStep,
)
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.llms import LLM
from llama_index.core.tools import BaseTool as LlamaTool
from temporalio.exceptions import ApplicationError

from activities.convert import window_with_results
from activities.llamaindex_convert import usage_of
from agents.adapters.llamaindex import ReActDefinition
from interface import ErrorType, Message, SeqMessage, ToolCall, Usage

__all__ = ["IMPLICIT_THOUGHT", "complete_react", "react_prompt"]

IMPLICIT_THOUGHT = "(Implicit) I can answer without any more tools!"  # ReActOutputParser's

EMPTY_RESPONSE = (
    "FAILURE: Your previous response was empty.\n"
    "You must output a thought and an action/answer.\n\n"
    "Please follow this structure exactly:\n"
    "Thought: <what you are thinking>\n"
    "Action: <tool_name>\n"
    "Action Input: <json_params>\n\n"
    "OR:\n\n"
    "Thought: <what you are thinking>\n"
    "Answer: <your final response to the user>"
)  # ReActAgent.take_step's, verbatim

PARSE_ERROR = (
    "Error while parsing the output: {error}\n\n"
    "The output should be in one of the following formats:\n"
    "1. To call a tool:\n"
    "```\n"
    "Thought: <thought>\n"
    "Action: <action>\n"
    "Action Input: <action_input>\n"
    "```\n"
    "2. To answer the question:\n"
    "```\n"
    "Thought: <thought>\n"
    "Answer: <answer>\n"
    "```\n"
)  # ReActAgent.take_step's, verbatim


async def complete_react(
    agent: ReActDefinition, history: list[SeqMessage], tools: list[LlamaTool]
) -> tuple[Message, Usage]:
    """One ReAct step: prompt, answer, parse; unparsable answers are retried with
    LlamaIndex's error message, at most `max_steps` times in all."""
    llm = cast(LLM, agent.model_client)
    chat, reasoning = react_history(window_with_results(history))
    retry: list[ChatMessage] = []
    usage = Usage()
    for _ in range(max(1, agent.max_steps)):
        prompt = agent.formatter.format(
            tools, chat_history=[*chat, *retry], current_reasoning=reasoning
        )
        response = await llm.achat(prompt)
        usage = usage.plus(usage_of(response))
        text = response.message.content or ""
        step = _parse(agent, text)
        if isinstance(step, BaseReasoningStep):
            return _message(step, text, agent.name), usage
        retry = [_last_user(chat), response.message, ChatMessage(role="user", content=step)]
    raise ApplicationError(
        f"agent {agent.name!r}: no answer in ReAct form after {agent.max_steps} attempts",
        type=ErrorType.MODEL_RESPONSE_INVALID.value,
        non_retryable=True,
    )


def react_prompt(
    agent: ReActDefinition, history: list[SeqMessage], tools: list[LlamaTool]
) -> list[ChatMessage]:
    """The prompt the next ReAct step sends (for tests and the token budget)."""
    chat, reasoning = react_history(window_with_results(history))
    return agent.formatter.format(tools, chat_history=chat, current_reasoning=reasoning)


def react_history(messages: list[Message]) -> tuple[list[ChatMessage], list[BaseReasoningStep]]:
    """The chat history as ReActAgent's memory holds it, and the current turn's steps."""
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    chat: list[ChatMessage] = []
    steps: list[BaseReasoningStep] = []
    for message in messages[: last_user + 1]:
        if message.role == "user":
            chat += _joined(steps)
            steps = []
            chat.append(ChatMessage(role=MessageRole.USER, content=message.content))
        else:
            steps += _steps(message)
    chat += _joined(steps)
    current = [step for m in messages[last_user + 1 :] for step in _steps(m)]
    return chat, current


def _joined(steps: list[BaseReasoningStep]) -> list[ChatMessage]:
    if not steps:
        return []
    text = "\n".join(step.get_content() for step in steps)
    return [ChatMessage(role=MessageRole.ASSISTANT, content=text)]


def _steps(message: Message) -> list[BaseReasoningStep]:
    if message.role == "tool":
        return [ObservationReasoningStep(observation=message.content)]
    if message.role != "assistant":
        return []
    thought = message.thought if message.thought is not None else message.content
    if message.tool_calls:
        return [
            ActionReasoningStep(thought=thought, action=c.name, action_input=_input(c.arguments))
            for c in message.tool_calls
        ]
    return [
        ResponseReasoningStep(thought=message.thought or IMPLICIT_THOUGHT, response=message.content)
    ]


def _parse(agent: ReActDefinition, text: str) -> BaseReasoningStep | str:
    """The parsed step, or the message LlamaIndex sends back to the model."""
    if not text:
        return EMPTY_RESPONSE
    try:
        return agent.output_parser.parse(text, is_streaming=False)
    except ValueError as exc:
        return PARSE_ERROR.format(error=exc)


def _message(step: BaseReasoningStep, text: str, source: str) -> Message:
    if isinstance(step, ActionReasoningStep):
        call = ToolCall(
            id=f"call_{uuid4().hex[:24]}", name=step.action, arguments=json.dumps(step.action_input)
        )
        return Message(role="assistant", tool_calls=[call], thought=step.thought, source=source)
    thought = step.thought if isinstance(step, ResponseReasoningStep) else None
    return Message(role="assistant", content=_answer(text), thought=thought, source=source)


def _answer(text: str) -> str:
    """The reply as `ReActAgent.finalize` leaves it: the text after `Answer:`."""
    start = text.find("Answer:")
    return text[start + len("Answer:") :].strip() if start != -1 else text


def _last_user(chat: list[ChatMessage]) -> ChatMessage:
    """ReActAgent's retry input repeats the user's message before the failed answer."""
    users = [m for m in chat if m.role == MessageRole.USER]
    return ChatMessage(role=MessageRole.USER, content=users[-1].content if users else "")


def _input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
