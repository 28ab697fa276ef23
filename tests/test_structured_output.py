"""Structured output as the frameworks make it: agentchat `output_content_type`, LlamaIndex
`output_cls`, AG2 `response_format` and Agent Framework `default_options["response_format"]`;
the turn result carries the validated object as `output`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agent_framework import Agent
from autogen import AssistantAgent as AG2Assistant
from autogen import LLMConfig
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import StructuredMessage
from autogen_core.tools import FunctionTool as AutoGenFunctionTool
from llama_index.core.agent.workflow import FunctionAgent, ReActAgent
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

from activities.db import Database
from agents.adapters import ToolOptions, from_autogen, from_llamaindex
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.scripted_model import (
    ScriptedChatCompletionClient,
    scripted_llamaindex_llm,
    scripted_react_llm,
)
from interface import StartConversation, TurnResult
from support.fake_openai import API_KEY, FakeOpenAI
from support.fake_openai import text as answer
from support.ids import new_id
from support.maf_agents import chat_client
from support.workers import WorkerFactory


class Verdict(BaseModel):
    claim_id: int
    approved: bool
    reason: str


VERDICT = {"claim_id": 123, "approved": True, "reason": "covered"}
WITH_TOOL = f'!call echo {{"text": "a"}}\n!output {json.dumps(VERDICT)}'
WITHOUT_TOOL = f"!say done\n!output {json.dumps(VERDICT)}"
OPTIONS = ToolOptions(kinds={"echo": "read"})


async def echo(text: str) -> str:
    """Echo the text."""
    return f"echo:{text}"


def assistant() -> AssistantAgent:
    tool = AutoGenFunctionTool(echo, description="Echo the text.")
    return AssistantAgent(
        "judge", ScriptedChatCompletionClient(), tools=[tool], output_content_type=Verdict
    )


def llama(kind: type[FunctionAgent] | type[ReActAgent]) -> Any:
    llm = scripted_react_llm() if kind is ReActAgent else scripted_llamaindex_llm()
    tools = [FunctionTool.from_defaults(async_fn=echo)]
    return kind(name="judge", llm=llm, tools=tools, output_cls=Verdict)


async def durable(
    registry: AgentRegistry,
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    texts: list[str],
) -> list[TurnResult]:
    cid, start = new_id("structured"), StartConversation(agent="judge")
    async with run_worker(db, registry):
        return [await conversations.ask(cid, t, f"m-{n}", start) for n, t in enumerate(texts)]


def test_the_output_schema_is_the_models_json_schema() -> None:
    assert from_autogen(assistant()).output_schema == Verdict.model_json_schema()
    for kind in (FunctionAgent, ReActAgent):
        definition = from_llamaindex(llama(kind))
        assert definition.output_type is Verdict
        assert definition.output_schema == Verdict.model_json_schema()


async def test_assistant_agent_structured_output_matches_in_process(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    expected = []
    for text in (WITH_TOOL, WITHOUT_TOOL):
        final = (await assistant().run(task=text)).messages[-1]
        assert isinstance(final, StructuredMessage)
        expected.append(final.content.model_dump(mode="json"))
    registry = AgentRegistry()
    registry.add("judge", assistant, tools=OPTIONS)
    turns = await durable(registry, db, run_worker, conversations, [WITH_TOOL, WITHOUT_TOOL])
    assert [t.output for t in turns] == expected == [VERDICT, VERDICT]
    assert [t.status for t in turns] == ["completed", "completed"]
    assert [c.name for c in turns[0].tool_calls] == ["echo"]
    assert Verdict.model_validate_json(turns[1].reply) == Verdict(**VERDICT)


async def test_an_answer_that_does_not_validate_fails_the_turn(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    registry = AgentRegistry()
    registry.add("judge", assistant, tools=OPTIONS)
    bad = '!say x\n!output {"claim_id": "not a number"}'
    [turn] = await durable(registry, db, run_worker, conversations, [bad])
    assert turn.status == "failed" and turn.output is None


async def test_llamaindex_output_cls_matches_in_process(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    for kind in (FunctionAgent, ReActAgent):
        expected = [
            (await llama(kind).run(t)).structured_response for t in (WITH_TOOL, WITHOUT_TOOL)
        ]
        registry = AgentRegistry()
        registry.add("judge", lambda kind=kind: llama(kind), tools=OPTIONS, fresh_per_call=True)
        turns = await durable(registry, db, run_worker, conversations, [WITH_TOOL, WITHOUT_TOOL])
        assert [t.output for t in turns] == expected == [VERDICT, VERDICT], kind.__name__
        assert [c.name for c in turns[0].tool_calls] == ["echo"]


async def test_agents_without_an_output_type_have_no_output(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    registry = AgentRegistry()
    registry.add("judge", lambda: FunctionAgent(name="judge", llm=scripted_llamaindex_llm()))
    [turn] = await durable(registry, db, run_worker, conversations, ["!say hi"])
    assert (turn.status, turn.reply, turn.output) == ("completed", "hi", None)


async def test_a_failed_llamaindex_structured_call_leaves_the_reply(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    registry = AgentRegistry()
    registry.add("judge", lambda: llama(FunctionAgent), tools=OPTIONS, fresh_per_call=True)
    # no `!output`: the structured call's arguments do not validate; LlamaIndex only warns
    [turn] = await durable(registry, db, run_worker, conversations, ["!say no verdict"])
    assert (turn.status, turn.reply, turn.output) == ("completed", "no verdict", None)


# --- AG2 and Agent Framework, against the fake endpoint -----------------------------------

# a field the model does not declare: pydantic ignores it, as AG2 and MAF accept it (a
# strict JSON-schema check, additionalProperties false, would refuse the answer)
ANSWER = json.dumps({**VERDICT, "confidence": 0.9})


def ag2_judge(fake: FakeOpenAI, where: str) -> AG2Assistant:
    entry: dict[str, Any] = {"model": "gpt-4o-mini", "api_key": API_KEY, "base_url": fake.url}
    if where == "entry":
        return AG2Assistant(
            "judge", llm_config={"config_list": [{**entry, "response_format": Verdict}]}
        )
    return AG2Assistant("judge", llm_config=LLMConfig(entry, response_format=Verdict))


def maf_judge(fake: FakeOpenAI) -> Agent:
    return Agent(
        client=chat_client(fake.url), name="judge", default_options={"response_format": Verdict}
    )


async def test_ag2_response_format_is_asked_for_and_validated(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = [answer(ANSWER)]
    question = [{"role": "user", "content": "Is claim 123 covered?"}]
    in_process = await asyncio.to_thread(ag2_judge(fake_openai, "entry").generate_reply, question)
    for where in ("entry", "llm_config"):
        fake_openai.script = [answer(ANSWER)]
        registry = AgentRegistry()
        registry.add("judge", lambda where=where: ag2_judge(fake_openai, where))
        [turn] = await durable(registry, db, run_worker, conversations, ["Is claim 123 covered?"])
        assert (turn.status, turn.reply, turn.output) == ("completed", in_process, VERDICT), where
        asked = fake_openai.requests[-1][1]["response_format"]
        assert asked["type"] == "json_schema" and asked["json_schema"]["name"] == "Verdict"
    assert fake_openai.requests[0][1]["response_format"] == asked  # as AG2 asks in-process


async def test_agent_framework_response_format_matches_in_process(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script = [answer(ANSWER)]
    in_process = await maf_judge(fake_openai).run("Is claim 123 covered?")
    fake_openai.script = [answer(ANSWER)]
    registry = AgentRegistry()
    registry.add("judge", lambda: maf_judge(fake_openai))
    [turn] = await durable(registry, db, run_worker, conversations, ["Is claim 123 covered?"])
    assert isinstance(in_process.value, Verdict)
    assert turn.output == in_process.value.model_dump(mode="json") == VERDICT
    assert (turn.status, turn.reply) == ("completed", in_process.text)
    first, second = (r[1]["response_format"] for r in fake_openai.requests)
    assert first == second and first["json_schema"]["name"] == "Verdict"


async def test_an_ag2_or_maf_answer_that_does_not_validate_fails_the_turn(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, fake_openai: FakeOpenAI
) -> None:
    fake_openai.responder = lambda body: answer('{"claim_id": "not a number"}')
    for factory in (lambda: ag2_judge(fake_openai, "entry"), lambda: maf_judge(fake_openai)):
        registry = AgentRegistry()
        registry.add("judge", factory)
        cid = new_id("structured")
        async with run_worker(db, registry):
            turn = await conversations.ask(
                cid, "Is it covered?", "m-1", StartConversation(agent="judge")
            )
        assert (turn.status, turn.output) == ("failed", None)
        assert turn.error is not None and "ValidationError" in turn.error.message
