"""The frameworks' memory and context settings, honoured at registration: LlamaIndex
`ChatMemoryBuffer` / `Memory` token limits and AutoGen's `model_context=` become the
transcript window's bounds (`AgentDefinition.context_*`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_core.model_context import (
    BufferedChatCompletionContext,
    HeadAndTailChatCompletionContext,
    TokenLimitedChatCompletionContext,
    UnboundedChatCompletionContext,
)
from autogen_core.models import CreateResult, LLMMessage, SystemMessage, UserMessage
from llama_index.core.agent.workflow import FunctionAgent, ReActAgent
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory import ChatMemoryBuffer, Memory, StaticMemoryBlock

from activities.db import Database
from agents.adapters import from_autogen, from_llamaindex
from agents.errors import ConfigurationError, UnsupportedOption
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.scripted_model import (
    ScriptedChatCompletionClient,
    scripted_llamaindex_llm,
    scripted_react_llm,
)
from interface import StartConversation
from support.ids import new_id
from support.workers import WorkerFactory


def llama(kind: type[FunctionAgent] | type[ReActAgent] = FunctionAgent) -> Any:
    llm = scripted_react_llm() if kind is ReActAgent else scripted_llamaindex_llm()
    return kind(name="memo", llm=llm, tools=[], system_prompt="Be brief.")


@pytest.mark.parametrize("kind", [FunctionAgent, ReActAgent], ids=["function", "react"])
def test_llamaindex_memory_token_limits_bound_the_window(kind: type[FunctionAgent]) -> None:
    buffer = ChatMemoryBuffer.from_defaults(token_limit=4000)
    assert from_llamaindex(llama(kind), memory=buffer).context_tokens == 4000
    memory = Memory.from_defaults(token_limit=4000)  # its chat history keeps 70%
    assert from_llamaindex(llama(kind), memory=memory).context_tokens == 2800
    assert from_llamaindex(llama(kind)).context_tokens is None  # the default budget


def test_the_registry_takes_the_memory_a_user_runs_the_agent_with() -> None:
    registry = AgentRegistry()
    memory = ChatMemoryBuffer.from_defaults(token_limit=1500)
    registry.add("memo", llama, memory=memory)  # as in `agent.run(msg, memory=memory)`
    assert registry.get("memo").context_tokens == 1500
    with pytest.raises(ConfigurationError, match="memory= is a LlamaIndex agent's memory"):
        registry.add(
            "other", lambda: AssistantAgent("a", ScriptedChatCompletionClient()), memory=memory
        )


def test_memory_settings_we_cannot_honour_are_refused() -> None:
    history = [ChatMessage(role="user", content="from another session")]
    refused: dict[str, object] = {
        "chat_history=": ChatMemoryBuffer.from_defaults(chat_history=history),
        r"Memory\(memory_blocks=": Memory.from_defaults(
            memory_blocks=[StaticMemoryBlock(name="facts", static_content="x")]
        ),
        "memory of type dict": {"token_limit": 10},
    }
    for match, memory in refused.items():
        with pytest.raises(UnsupportedOption, match=match):
            from_llamaindex(llama(), memory=memory)


def autogen(**options: Any) -> AssistantAgent:
    return AssistantAgent("ctx", ScriptedChatCompletionClient(), **options)


def test_autogen_model_contexts_map_onto_the_window() -> None:
    client = ScriptedChatCompletionClient()
    buffered = from_autogen(autogen(model_context=BufferedChatCompletionContext(5)))
    assert (buffered.context_messages, buffered.context_tokens, buffered.context_head) == (
        5,
        None,
        0,
    )
    limited = from_autogen(
        autogen(model_context=TokenLimitedChatCompletionContext(client, token_limit=1000))
    )
    assert (limited.context_tokens, limited.context_messages) == (1000, 60)
    unlimited = from_autogen(autogen(model_context=TokenLimitedChatCompletionContext(client)))
    assert unlimited.context_tokens is None  # AutoGen then uses the model's own window
    head_tail = from_autogen(autogen(model_context=HeadAndTailChatCompletionContext(2, 10)))
    assert (head_tail.context_head, head_tail.context_messages) == (2, 10)
    default = from_autogen(autogen(model_context=UnboundedChatCompletionContext()))
    assert (default.context_messages, default.context_tokens, default.context_head) == (60, None, 0)


class CustomContext(BufferedChatCompletionContext):
    """A user's own context: its windowing is code we cannot reproduce."""


def test_autogen_model_contexts_we_cannot_honour_are_refused() -> None:
    seeded = [UserMessage(content="hi", source="u")]
    refused = [
        CustomContext(3),
        BufferedChatCompletionContext(3, initial_messages=seeded),
        HeadAndTailChatCompletionContext(1, 3, initial_messages=seeded),
    ]
    for context in refused:
        with pytest.raises(UnsupportedOption, match=r"AssistantAgent\(model_context="):
            from_autogen(autogen(model_context=context))


class CountingClient(ScriptedChatCompletionClient):
    """The scripted model, counting the conversation messages of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    async def create(self, messages: Sequence[LLMMessage], **kwargs: Any) -> CreateResult:
        self.sizes.append(sum(not isinstance(m, SystemMessage) for m in messages))
        return await super().create(messages, **kwargs)


async def test_a_buffered_context_bounds_the_model_input(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    client = CountingClient()
    agent = AssistantAgent("ctx", client, model_context=BufferedChatCompletionContext(3))
    cid, start = new_id("ctx"), StartConversation(agent="ctx")
    async with run_worker(db, AgentRegistry([from_autogen(agent)])):
        for n in range(6):
            turn = await conversations.ask(cid, f"!say answer {n}", f"m-{n}", start)
            assert turn.status == "completed"
    assert client.sizes == [1, 3, 3, 3, 3, 3]  # unbounded, the sixth call would see 11
