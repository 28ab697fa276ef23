"""Streaming through each framework's own API (LlamaIndex `astream_chat_with_tools`, AG2's
`OpenAIWrapper.create(stream=True)`, Agent Framework `get_response(stream=True)`) against the
fake endpoint's `stream: true`: the text deltas reach the sink set by `streaming_to`, while
they are being sent, and the call returns the same message and usage as without a sink."""

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

import pytest
from agent_framework import Agent
from autogen import AssistantAgent, UserProxyAgent, register_function
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai import OpenAI
from pydantic import BaseModel
from temporalio.exceptions import ApplicationError

from activities.model import complete
from activities.provider_errors import context_overflow, provider_failures
from activities.streaming import streaming_to
from activities.structured import structured_output
from agents.adapters import ToolOptions
from agents.definitions import AgentDefinition
from agents.registry import AgentRegistry
from interface import ErrorType, Message, SeqMessage, Usage
from support.fake_openai import (
    API_KEY,
    FakeOpenAI,
    Reply,
    error,
    rate_limited,
    serving,
    text,
    tool_call,
)
from support.maf_agents import chat_client

ANSWER = "Claim 123 is approved: the water damage is covered, and the payment goes out Friday."
OPTIONS = ToolOptions(kinds={"get_claim_status": "read", "lookup_policy": "read"})
HISTORY = [SeqMessage(seq=0, message=Message(role="user", content="How is claim 123?"))]


def get_claim_status(claim_id: Annotated[int, "The claim's number"]) -> str:
    """The claim's status."""
    return "approved"


def lookup_policy(policy_id: Annotated[str, "The policy's ID"]) -> str:
    """The policy's terms."""
    return "water damage covered"


def two_calls() -> Reply:
    reply = tool_call(arguments='{"claim_id": 123}')
    second = {
        "id": "call_2",
        "type": "function",
        "function": {"name": "lookup_policy", "arguments": '{"policy_id": "P-77 (home)"}'},
    }
    reply[2]["choices"][0]["message"]["tool_calls"].append(second)
    return reply


def llamaindex(fake: FakeOpenAI) -> FunctionAgent:
    llm = OpenAI(model="gpt-4o-mini", api_key=API_KEY, api_base=fake.url, max_retries=0)
    tools = [FunctionTool.from_defaults(fn=f) for f in (get_claim_status, lookup_policy)]
    return FunctionAgent(name="claims", llm=llm, tools=tools)


def ag2(fake: FakeOpenAI) -> tuple[AssistantAgent, UserProxyAgent]:
    entry = {"model": "gpt-4o-mini", "api_key": API_KEY, "base_url": fake.url}
    assistant = AssistantAgent("claims", llm_config={"config_list": [entry]})
    proxy = UserProxyAgent("user", human_input_mode="NEVER", code_execution_config=False)
    for f in (get_claim_status, lookup_policy):
        register_function(f, caller=assistant, executor=proxy, description=f.__doc__ or "")
    return assistant, proxy


def agent_framework(fake: FakeOpenAI) -> Agent:
    tools = [get_claim_status, lookup_policy]
    return Agent(client=chat_client(fake.url), name="claims", tools=tools)


FRAMEWORKS: dict[str, Callable[[FakeOpenAI], Any]] = {
    "llamaindex": llamaindex,
    "ag2": ag2,
    "agent_framework": agent_framework,
}


def definition(fake: FakeOpenAI, framework: str) -> AgentDefinition:
    registry = AgentRegistry()
    registry.add("claims", lambda: FRAMEWORKS[framework](fake), tools=OPTIONS)
    return registry.get("claims")


class Recorder:
    """A sink that keeps each delta and when it arrived."""

    def __init__(self) -> None:
        self.deltas: list[str] = []
        self.times: list[float] = []

    async def text(self, delta: str) -> None:
        self.deltas.append(delta)
        self.times.append(time.time())


async def call(agent: AgentDefinition, sink: Recorder | None) -> tuple[Message, Usage]:
    with streaming_to(sink), provider_failures():
        return await complete(agent, HISTORY, tools_enabled=True)


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
async def test_deltas_reach_the_sink_and_the_result_is_unchanged(framework: str) -> None:
    with serving(token_interval=0.01) as fake:
        agent = definition(fake, framework)
        fake.script = [text(ANSWER), two_calls()]
        plain = [await call(agent, None), await call(agent, None)]
        fake.script = [text(ANSWER), two_calls()]
        answer, calls = Recorder(), Recorder()
        streamed = [await call(agent, answer), await call(agent, calls)]
    bodies = [r[1] for r in fake.requests]
    assert [bool(b.get("stream")) for b in bodies] == [False, False, True, True]
    assert bodies[2]["stream_options"] == {"include_usage": True}
    assert streamed == plain  # the same messages (text, tool calls) and usage
    message, usage = streamed[0]
    assert message.content == ANSWER == "".join(answer.deltas)
    assert len(answer.deltas) > 10 and all(answer.deltas)
    assert len(answer.deltas) == len(fake.token_times[0])  # one delta per token sent
    assert usage == Usage(prompt_tokens=11, completion_tokens=7)
    # the first delta arrived while the endpoint was still sending the rest
    assert answer.times[0] < fake.token_times[0][-1]
    called = streamed[1][0]
    assert [(c.id, c.name, c.arguments) for c in called.tool_calls] == [
        ("call_1", "get_claim_status", '{"claim_id": 123}'),
        ("call_2", "lookup_policy", '{"policy_id": "P-77 (home)"}'),
    ]
    assert calls.deltas == [] and called.content == ""


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
async def test_streamed_errors_are_classified_as_before(framework: str) -> None:
    with serving(context_window=2000) as fake:
        agent = definition(fake, framework)
        fake.script = [rate_limited(3), error(503)]
        failures = []
        for _ in range(2):
            with pytest.raises(ApplicationError) as raised:
                await call(agent, Recorder())
            failures.append(raised.value)
        long = [SeqMessage(seq=0, message=Message(role="user", content="claim " * 3000))]
        with streaming_to(Recorder()), pytest.raises(Exception) as overflow:
            await complete(agent, long, tools_enabled=True)
        with (
            streaming_to(Recorder()),
            pytest.raises(ApplicationError) as typed,
            provider_failures(),
        ):
            await complete(agent, long, tools_enabled=True)
    limited, unavailable = failures
    assert (limited.type, limited.non_retryable) == ("ModelHTTP429", False)
    assert limited.next_retry_delay == timedelta(seconds=3)
    assert (unavailable.type, unavailable.non_retryable) == ("ModelHTTP503", False)
    assert context_overflow(overflow.value)
    assert typed.value.type == ErrorType.CONTEXT_LENGTH_EXCEEDED.value
    assert typed.value.non_retryable
    assert fake.token_times == []  # nothing was streamed
    assert all(r[1]["stream"] for r in fake.requests)


class Verdict(BaseModel):
    claim_id: int
    approved: bool


async def test_a_streamed_structured_output_is_the_same() -> None:
    """AG2's client does not stream a `response_format` call (no deltas); MAF streams it."""
    verdict = '{"claim_id": 123, "approved": true}'
    entry = {"model": "gpt-4o-mini", "api_key": API_KEY, "response_format": Verdict}
    with serving() as fake:
        registry = AgentRegistry()
        registry.add(
            "ag2",
            lambda: AssistantAgent(
                "ag2", llm_config={"config_list": [{**entry, "base_url": fake.url}]}
            ),
        )
        registry.add(
            "maf",
            lambda: Agent(
                client=chat_client(fake.url),
                name="maf",
                default_options={"response_format": Verdict},
            ),
        )
        sinks = {"ag2": Recorder(), "maf": Recorder()}
        for name, sink in sinks.items():
            fake.script = [text(verdict)]
            agent = registry.get(name)
            message, _ = await call(agent, sink)
            assert message.content == verdict
            assert await structured_output(agent, HISTORY, message) == {
                "claim_id": 123,
                "approved": True,
            }
    assert [bool(r[1].get("stream")) for r in fake.requests] == [False, True]
    assert sinks["ag2"].deltas == [] and "".join(sinks["maf"].deltas) == verdict


class Failing(Recorder):
    async def text(self, delta: str) -> None:
        await super().text(delta)
        if len(self.deltas) == 2:
            raise RuntimeError("the sink is gone")


async def test_a_failing_sink_ends_an_ag2_call_without_waiting_for_its_thread() -> None:
    with serving(token_interval=0.01) as fake:
        agent = definition(fake, "ag2")
        fake.script = [text("word " * 100)]
        sink = Failing()
        with pytest.raises(RuntimeError, match="the sink is gone"):
            await call(agent, sink)
        raised = time.time()
    assert sink.deltas == ["word", " word"]
    assert raised - sink.times[-1] < 0.5  # the rest of the stream takes 1 s
