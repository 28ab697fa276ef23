"""Multi-agent teams: round-robin, selector and handoff, run by the workflow.

The teams are examples/claims_team.py's, on the scripted model: each member follows the
`@name` lines of the user's message (demo/scripted_model.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.messages import BaseChatMessage
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat, Swarm
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.tools import FunctionTool as LlamaFunctionTool
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType

from activities.db import Database
from activities.tables import LedgerEntry, TranscriptMessage
from agents.adapters import from_autogen_team, team
from agents.errors import ConfigurationError
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.scripted_model import ScriptedChatCompletionClient, scripted_llamaindex_llm
from demo.tables import ClaimNote, OutboxEmail
from examples.claims_functions import TOOL_OPTIONS, claims_functions
from examples.claims_team import claims_agents, register_teams
from interface import Message, StartConversation
from support.databases import count
from support.histories import HISTORIES, load
from support.ids import new_id
from support.processes import worker_process
from support.teams import HANDOFF_TEXT, NOTE, RESTART_CASES, SELECTOR_SCRIPT
from support.workers import WorkerFactory


def teams(db: Database) -> AgentRegistry:
    registry = AgentRegistry()
    register_teams(registry, db.sessions)
    return registry


async def ledger(db: Database, cid: str) -> list[tuple[str, str, str]]:
    async with db.session() as session:
        query = select(LedgerEntry.tool, LedgerEntry.status, LedgerEntry.key).where(
            LedgerEntry.conversation_id == cid
        )
        return [tuple(row) for row in (await session.execute(query)).all()]  # type: ignore[misc]


async def transcript(db: Database, cid: str) -> list[Message]:
    async with db.session() as session:
        query = (
            select(TranscriptMessage.body)
            .where(TranscriptMessage.conversation_id == cid)
            .order_by(TranscriptMessage.seq)
        )
        return [Message.model_validate_json(b) for b in (await session.scalars(query)).all()]


async def test_round_robin_takes_turns_until_text_mention_or_max_messages(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    cid, start = new_id("rr"), StartConversation(agent="claims-round-robin")
    async with run_worker(db, teams(db)):
        first = await conversations.ask(
            cid, f"@claims_specialist {NOTE}\n@reviewer !say APPROVED", "m-1", start
        )
        second = await conversations.ask(cid, "@reviewer !say Checked.", "m-2", start)
        state = await conversations.state(cid)
    # text mention: the reviewer's APPROVED ends the first turn after two speakers
    assert first.speakers == ["claims_specialist", "reviewer"]
    assert (first.speaker, first.reply) == ("reviewer", "APPROVED")
    assert [(c.name, c.speaker, c.status) for c in first.tool_calls] == [
        ("create_claim_note", "claims_specialist", "ok")
    ]
    # max messages (5, the user's included): four speakers
    assert second.speakers == ["claims_specialist", "reviewer"] * 2
    assert (second.speaker, second.reply) == ("reviewer", "reviewer has nothing to add.")
    assert state.active_agent == "reviewer"
    spoken = [(m.speaker, m.content) for m in state.messages if m.role == "assistant"]
    assert ("reviewer", "Checked.") in spoken
    assert ("claims_specialist", "I added note #1 to claim 123.") in spoken
    assert await count(db, ClaimNote, conversation_id=cid) == 1
    [(tool, status, key)] = await ledger(db, cid)
    assert (tool, status) == ("create_claim_note", "succeeded")
    assert "/t1/s1/claims_specialist/c0" in key


async def test_round_robin_matches_autogen_in_process(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    """The same scripted members in AutoGen's own RoundRobinGroupChat speak in the same
    order and say the same, over two runs (the speaker order carries over)."""
    texts = [
        "@claims_specialist !say Looked at claim 123.\n@reviewer !say APPROVED",
        "@reviewer !say Checked.\n@claims_specialist !say Fine by me.",
    ]
    agents = claims_agents(db.sessions, ScriptedChatCompletionClient)
    reference = RoundRobinGroupChat(
        [agents["claims_specialist"], agents["reviewer"]],
        termination_condition=(
            TextMentionTermination("APPROVED", sources=["reviewer"]) | MaxMessageTermination(5)
        ),
    )
    expected = []
    for text in texts:
        result = await reference.run(task=text)
        messages = [m for m in result.messages if isinstance(m, BaseChatMessage)]
        expected.append([(m.source, m.to_text()) for m in messages if m.source != "user"])
    cid, start = new_id("rr"), StartConversation(agent="claims-round-robin")
    got = []
    async with run_worker(db, teams(db)):
        for number, text in enumerate(texts):
            await conversations.ask(cid, text, f"m-{number}", start)
        state = await conversations.state(cid)
    assistant = [(m.speaker, m.content) for m in state.messages if m.role == "assistant"]
    got = [assistant[:2], assistant[2:]]
    assert got == expected
    assert [s for s, _ in expected[1]] == ["claims_specialist", "reviewer"] * 2


async def test_selector_model_picks_each_speaker(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, client
) -> None:
    cid, start = new_id("sel"), StartConversation(agent="claims-selector")
    async with run_worker(db, teams(db)):
        result = await conversations.ask(cid, SELECTOR_SCRIPT, "m-1", start)
        state = await conversations.state(cid)
    # named in the user's message; no one named, so the first candidate (the specialist,
    # the previous speaker, may not repeat); named by triage; TERMINATE ends the turn
    assert result.speakers == ["claims_specialist", "triage", "reviewer"]
    assert (result.speaker, result.reply) == ("reviewer", "Approved. TERMINATE")
    assert state.active_agent == "reviewer"
    assert await count(db, ClaimNote, conversation_id=cid) == 1
    history = await client.get_workflow_handle(cid).fetch_history()
    selections = [
        e.activity_task_scheduled_event_attributes.activity_id
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_id.endswith("/select")
    ]
    assert selections == [f"{cid}/t1/a1/select", f"{cid}/t1/a2/select", f"{cid}/t1/a3/select"]


async def test_handoff_team_switches_the_active_agent(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    """examples/claims_team.py's team, unscripted: triage answers what it can and hands
    claim changes to the specialist, who keeps the conversation."""
    cid, start = new_id("team"), StartConversation(agent="claims-team")
    async with run_worker(db, teams(db)):
        status = await conversations.ask(cid, "Check policy status for claim 123", "m-1", start)
        note = await conversations.ask(cid, HANDOFF_TEXT, "m-2", start)
        email = await conversations.ask(cid, "email the customer an update", "m-3", start)
        state = await conversations.state(cid)
    assert status.speakers == ["triage"] and status.reply.startswith("Claim 123 is")
    assert note.speakers == ["triage", "claims_specialist"]
    assert [(c.speaker, c.name) for c in note.tool_calls] == [
        ("triage", "transfer_to_claims_specialist"),
        ("claims_specialist", "create_claim_note"),
    ]
    assert note.tool_calls[0].result == (
        "Transferred to claims_specialist, adopting the role of claims_specialist immediately."
    )
    assert (note.speaker, note.reply) == ("claims_specialist", "I added note #1 to claim 123.")
    assert email.speakers == ["claims_specialist"]  # the active agent carries over
    assert state.active_agent == "claims_specialist"
    assert await count(db, ClaimNote, conversation_id=cid) == 1
    assert await count(db, OutboxEmail, conversation_id=cid) == 1
    rows = sorted((tool, status) for tool, status, _ in await ledger(db, cid))
    assert rows == [("create_claim_note", "succeeded"), ("send_customer_email", "succeeded")]
    messages = await transcript(db, cid)
    transfer = [
        m for m in messages if m.role == "tool" and m.name == "transfer_to_claims_specialist"
    ]
    assert len(transfer) == 1  # recorded as a tool result, as AutoGen does


async def test_swarm_and_llamaindex_style_handoffs(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    """An AutoGen Swarm (termination by text mention) and the same agents with LlamaIndex's
    `handoff(to_agent, reason)` tool limited by `can_handoff_to`."""
    agents = claims_agents(db.sessions, ScriptedChatCompletionClient)
    swarm = Swarm(
        [agents["triage"], agents["claims_specialist"]],
        termination_condition=TextMentionTermination("TERMINATE", sources=["claims_specialist"]),
    )
    registry = AgentRegistry()
    registry.add("swarm", lambda: from_autogen_team(swarm, tools=TOOL_OPTIONS))
    plain = claims_agents(db.sessions, ScriptedChatCompletionClient)
    registry.add(
        "llama-style",
        lambda: team(
            "llama-style",
            [plain["triage"], plain["claims_specialist"], plain["reviewer"]],
            mode="handoff",
            handoff_style="llamaindex",
            can_handoff_to={"triage": ["claims_specialist"], "claims_specialist": None},
            stop_on_text_reply=True,
            tools=TOOL_OPTIONS,
        ),
    )
    script = (
        "@triage !handoff claims_specialist\n"
        f"@claims_specialist {NOTE}\n"
        "@claims_specialist !say Done. TERMINATE"
    )
    swarm_id, llama_id = new_id("swarm"), new_id("llama")
    async with run_worker(db, registry):
        swarm_turn = await conversations.ask(
            swarm_id, script, "m-1", StartConversation(agent="swarm")
        )
        llama = StartConversation(agent="llama-style")
        refused = await conversations.ask(llama_id, "@triage !handoff reviewer", "m-1", llama)
        handed = await conversations.ask(
            llama_id,
            "@triage !handoff claims_specialist the customer wants a note\n"
            "@claims_specialist !say I will add it.",
            "m-2",
            llama,
        )
    # Swarm: the specialist keeps speaking after its note until it says TERMINATE
    assert swarm_turn.speakers == ["triage", "claims_specialist", "claims_specialist"]
    assert swarm_turn.reply == "Done. TERMINATE"
    # LlamaIndex: triage may not hand off to the reviewer; the refusal is the tool's
    # result, and triage (an AssistantAgent: one tool round, then reflection) answers
    refusal = (
        "Agent reviewer cannot hand off to triage. Please select a valid agent to hand off to."
    )
    assert refused.speakers == ["triage"] and refused.reply == refusal
    assert refused.tool_calls[0].result == refusal
    assert handed.speakers == ["triage", "claims_specialist"]
    assert handed.tool_calls[0].result == (
        "Agent claims_specialist is now handling the request due to the following reason: "
        "the customer wants a note.\nPlease continue with the current request."
    )
    assert (handed.speaker, handed.reply) == ("claims_specialist", "I will add it.")
    assert await count(db, ClaimNote, conversation_id=swarm_id) == 1


async def test_llamaindex_agent_workflow_hands_off(
    db: Database, run_worker: WorkerFactory, conversations: Conversations
) -> None:
    """A LlamaIndex AgentWorkflow registered as it is: the root agent hands off with
    `handoff(to_agent, reason)`, and the specialist's text answer ends the turn."""
    functions = {f.__name__: f for f in claims_functions(db.sessions)}

    def agent(name: str, tools: list[str], **options: object) -> FunctionAgent:
        return FunctionAgent(
            name=name,
            description=f"The {name}.",
            llm=scripted_llamaindex_llm(),
            tools=[LlamaFunctionTool.from_defaults(async_fn=functions[t]) for t in tools],
            **options,  # type: ignore[arg-type]
        )

    def workflow() -> AgentWorkflow:
        return AgentWorkflow(
            agents=[
                agent("triage", ["get_claim_status"], can_handoff_to=["claims_specialist"]),
                agent("claims_specialist", ["create_claim_note"]),
            ],
            root_agent="triage",
        )

    registry = AgentRegistry()
    registry.add("claims-workflow", workflow, tools=TOOL_OPTIONS, fresh_per_call=True)
    cid, start = new_id("wf"), StartConversation(agent="claims-workflow")
    async with run_worker(db, registry):
        status = await conversations.ask(cid, "Check policy status for claim 123", "m-1", start)
        note = await conversations.ask(cid, HANDOFF_TEXT, "m-2", start)
        state = await conversations.state(cid)
    assert status.speakers == ["triage"] and status.reply.startswith("Claim 123 is")
    assert note.speakers == ["triage", "claims_specialist"]
    assert [(c.speaker, c.name) for c in note.tool_calls] == [
        ("triage", "handoff"),
        ("claims_specialist", "create_claim_note"),
    ]
    assert note.tool_calls[0].result == (
        "Agent claims_specialist is now handling the request due to the following reason: "
        "create_claim_note is needed.\nPlease continue with the current request."
    )
    assert note.reply == "I added note #1 to claim 123."
    assert state.active_agent == "claims_specialist"
    assert await count(db, ClaimNote, conversation_id=cid) == 1


def test_team_configuration_errors() -> None:
    client = ScriptedChatCompletionClient()
    one = AssistantAgent("one", model_client=client)
    two = AssistantAgent("two", model_client=client)
    with pytest.raises(ConfigurationError, match="needs a model_client"):
        team("t", [one, two], mode="selector")
    with pytest.raises(ConfigurationError, match="non-members"):
        team("t", [one, two], mode="handoff", handoffs={"one": ["three"]})
    with pytest.raises(ConfigurationError, match="repeat"):
        team("t", [one, AssistantAgent("one", model_client=client)])
    with pytest.raises(ConfigurationError, match="handoffs"):
        AgentRegistry().add("solo", lambda: AssistantAgent("a", client, handoffs=["b"]))
    both = TextMentionTermination("DONE") & MaxMessageTermination(3)
    with pytest.raises(ConfigurationError, match="only `|`"):
        from_autogen_team(RoundRobinGroupChat([one, two], termination_condition=both))
    picker = SelectorGroupChat([one, two], client, selector_func=lambda _: "one")
    with pytest.raises(ConfigurationError, match="selector_func"):
        from_autogen_team(picker)


def test_autogen_team_options_reach_the_spec() -> None:
    client = ScriptedChatCompletionClient()
    members = [AssistantAgent(n, model_client=client) for n in ("one", "two", "three")]
    condition = TextMentionTermination("DONE", sources=["two"]) | MaxMessageTermination(6)
    chat = SelectorGroupChat(
        members, client, termination_condition=condition, max_turns=4, allow_repeated_speaker=True
    )
    spec = from_autogen_team(chat, name="trio").spec()
    assert spec.team is not None
    assert spec.team.model_dump(
        exclude={"stop_on_text_reply", "transitions", "first_speakers"}
    ) == {
        "mode": "selector",
        "members": ["one", "two", "three"],
        "root": "one",
        "termination_text": "DONE",
        "termination_sources": ["two"],
        "max_messages": 6,
        "max_turns": 4,
        "allow_repeated_speaker": True,
    }
    assert [m.agent for m in spec.members.values()] == ["trio/one", "trio/two", "trio/three"]


# --- a worker SIGKILLed mid-turn --------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("mode", list(RESTART_CASES))
async def test_team_survives_worker_kill_mid_turn(
    db: Database,
    conversations: Conversations,
    temporal_address: str,
    task_queue: str,
    tmp_path: Path,
    mode: str,
) -> None:
    """SIGKILL right after a member's note commits, before Temporal hears of it: a new
    worker finishes the team's turn with the same speakers and one note."""
    agent, text, speakers = RESTART_CASES[mode]
    cid, marker = new_id(mode), tmp_path / "fired"
    options = dict(
        database_url=db.url,
        temporal_address=temporal_address,
        task_queue=task_queue,
        log=tmp_path / "worker.log",
        fault="after_commit:create_claim_note",
        fault_once=marker,
    )
    start = StartConversation(agent=agent)
    async with worker_process(**options) as doomed:  # type: ignore[arg-type]
        turn = asyncio.create_task(conversations.ask(cid, text, "m-1", start))
        assert await doomed.killed() == -9
    assert "/claims_specialist/" in marker.read_text()
    async with worker_process(**options):  # type: ignore[arg-type]
        result = await asyncio.wait_for(turn, 60)
        await conversations.end(cid)
        await conversations.handle(cid).result()
    assert result.status == "completed" and result.speakers == speakers
    assert await count(db, ClaimNote, conversation_id=cid) == 1
    assert [(t, s) for t, s, _ in await ledger(db, cid)] == [("create_claim_note", "succeeded")]


# --- committed histories ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["round-robin", "selector", "handoff"])
def test_team_histories_cover_each_mode_with_a_restart(mode: str) -> None:
    """tests/test_replay.py replays every committed history; these are the teams'
    (`python -m tests.record_histories team`), each with a tool call retried on a new
    worker after the kill."""
    paths = [p for p in HISTORIES if p.stem.startswith(f"team-{mode}-")]
    assert paths, f"no committed team-{mode} history"
    events = load(paths[0]).events
    started = EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    attempts = [
        e.activity_task_started_event_attributes.attempt for e in events if e.event_type == started
    ]
    assert max(attempts) >= 2
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_id
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert any("/claims_specialist/c0" in a for a in scheduled)
