"""Structured output, the way each framework makes it.

- AutoGen agentchat (`output_content_type`): the model is asked with
  `create(json_output=<model>)`, and the final text is validated with
  `model_validate_json`, as `AssistantAgent` makes its `StructuredMessage`. An answer that
  does not validate fails the attempt (a bounded retry, `activities.errors`), before it is
  recorded.
- LlamaIndex (`output_cls`): after the final answer, one more call through
  `llm.as_structured_llm(output_cls)` on the conversation in LlamaIndex's XML form
  (`generate_structured_response`), as `BaseWorkflowAgent.parse_agent_output` does; a
  failure there is logged and leaves the output empty, as LlamaIndex only warns.
- AG2 (`response_format` in `llm_config` or one of its `config_list` entries) and Agent
  Framework (`default_options={"response_format": ...}`): the client asks the endpoint for
  the schema (AG2's and MAF's own `json_schema` request); the answer is validated with the
  user's pydantic model (`model_validate_json`, as MAF's `ChatResponse.value` does, so a
  field the model ignores is accepted), and a JSON-schema dict's answer is parsed as JSON,
  as MAF does. An answer that does not validate fails the attempt, as for agentchat.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, cast

from autogen_core.models import ChatCompletionClient
from llama_index.core.agent.utils import generate_structured_response
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.llms import LLM

from activities.convert import window_with_results
from activities.llamaindex_convert import to_llamaindex
from activities.react import react_history
from agents.adapters.ag2_client import AG2Client
from agents.adapters.agent_framework import AgentFrameworkModel
from agents.adapters.llamaindex import ReActDefinition
from agents.definitions import AgentDefinition
from interface import Message, SeqMessage

__all__ = ["structured_output"]

log = logging.getLogger(__name__)


async def structured_output(
    agent: AgentDefinition, history: list[SeqMessage], answer: Message
) -> dict[str, Any] | None:
    """The validated object of a final answer, as JSON; None without an output type."""
    if answer.tool_calls or (agent.output_type is None and agent.output_schema is None):
        return None
    if isinstance(agent.model_client, ChatCompletionClient | AG2Client | AgentFrameworkModel):
        if agent.output_type is None:
            return _parsed(agent, answer)
        value = agent.output_type.model_validate_json(answer.content)
        return value.model_dump(mode="json")
    if isinstance(agent.model_client, LLM) and agent.output_type is not None:
        return await _llamaindex_output(agent, history, answer)
    return None


def _parsed(agent: AgentDefinition, answer: Message) -> dict[str, Any] | None:
    """The answer to a JSON schema given as a dict, parsed (not validated), as MAF does."""
    client = agent.model_client
    if isinstance(client, AG2Client):
        response_format = client.response_format
    else:
        response_format = getattr(client, "options", {}).get("response_format")
    if not isinstance(response_format, Mapping):  # e.g. AG2's `format()` text: not JSON
        return None
    found = json.loads(answer.content)
    if not isinstance(found, dict):  # the API's json_schema format wants an object
        log.warning("agent %r: structured output is not an object", agent.name)
        return None
    return found


async def _llamaindex_output(
    agent: AgentDefinition, history: list[SeqMessage], answer: Message
) -> dict[str, Any] | None:
    assert agent.output_type is not None
    messages = _memory(agent, [*history, SeqMessage(seq=-1, message=answer)])
    if agent.system_message:
        messages = [ChatMessage(role=MessageRole.SYSTEM, content=agent.system_message), *messages]
    try:
        value = await generate_structured_response(
            messages=messages, llm=cast(LLM, agent.model_client), output_cls=agent.output_type
        )
    except Exception as exc:  # LlamaIndex warns and carries on without the output
        log.warning("agent %r: no structured output (%s)", agent.name, type(exc).__name__)
        return None
    return agent.output_type.model_validate(value).model_dump(mode="json")


def _memory(agent: AgentDefinition, history: list[SeqMessage]) -> list[ChatMessage]:
    """The conversation as the agent's memory holds it after the answer."""
    if isinstance(agent, ReActDefinition):
        chat, steps = react_history(window_with_results(history))
        text = "\n".join(step.get_content() for step in steps)
        return [*chat, ChatMessage(role=MessageRole.ASSISTANT, content=text)] if text else chat
    # without its history (a retry that found the answer recorded), the answer alone
    answer = ChatMessage(role=MessageRole.ASSISTANT, content=history[-1].message.content)
    return to_llamaindex("", history) or [answer]
