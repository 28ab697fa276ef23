"""Record workflow histories for the replay tests: `python -m tests.record_histories
[demo-kill] [features] [autogen-agent] [unknown-agent] [team] [rare-paths] [failures]
[lease-held] [versioned] [ag2] [burst] [reset] [closed] [model-failures] [long-id]
[cancel]` (all by default). tests/test_replay_coverage.py lists the paths each scenario covers.

Committed histories are never regenerated or deleted: conversations live for weeks, and
every history a release produced must keep replaying. This script writes new files only
(named with today's date) and refuses to overwrite one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import sys
import tempfile
import uuid
from dataclasses import replace
from pathlib import Path

from autogen import (
    AssistantAgent,
    GroupChat,
    GroupChatManager,
    UserProxyAgent,
    register_function,
)
from pydantic import BaseModel
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import (
    ResetWorkflowExecutionRequest,
)
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import Worker

from activities.db import Database
from activities.ledger import Claim
from agent_conversations import AgentConversationsPlugin
from agents.definitions import AgentDefinition
from agents.errors import ToolRetryableError
from agents.registry import AgentRegistry
from agents.tools import ToolContext, tool
from conversation_client import Conversations
from demo.agent import claims_assistant
from demo.scripted_model import ScriptedChatCompletionClient, scripted_llamaindex_llm
from devserver import start_dev_server, worker_process
from examples import register_examples
from interface import (
    WORKFLOW_TYPE,
    ConversationSettings,
    ModelPolicy,
    RetrySettings,
    StartConversation,
    ToolDecision,
    ToolPolicy,
)
from interface.contract import ACTIVITY_CALL_TOOL, MAX_CONVERSATION_ID_CHARS
from worker import build_worker, prepare_database

from .support import interrupts
from .support.fake_openai import API_KEY, FakeOpenAI, completion, serving, text, tool_call
from .support.teams import HANDOFF_TEXT, RESTART_CASES
from .support.temporal_cli import temporal
from .support.versioning import make_current

HISTORIES = Path(__file__).resolve().parent / "histories"
_FAST = RetrySettings(initial_interval=datetime.timedelta(milliseconds=50), maximum_attempts=3)


async def demo_with_kill(
    conversations: Conversations, address: str, db_url: str, work: Path
) -> str:
    """The README demo: three turns, the worker SIGKILLed after create_claim_note commits."""
    cid = f"replay-demo-{uuid.uuid4().hex[:6]}"
    options = dict(
        database_url=db_url,
        temporal_address=address,
        task_queue=conversations.task_queue,
        log=work / "worker.log",
        fault="after_commit:create_claim_note",
        fault_once=work / "fired",
    )
    async with worker_process(**options) as doomed:  # type: ignore[arg-type]
        await conversations.ask(cid, "Check policy status for claim 123", "m-1")
        turn = asyncio.create_task(
            conversations.ask(cid, "add a note that the customer called", "m-2")
        )
        await doomed.killed()
    async with worker_process(**options):  # type: ignore[arg-type]
        await turn
        await conversations.ask(cid, "email the customer an update", "m-3")
        await conversations.end(cid)
        await conversations.handle(cid).result()
    return cid


async def teams_with_kill(
    conversations: Conversations, address: str, db_url: str, work: Path
) -> dict[str, str]:
    """One conversation per team mode (examples/claims_team.py), each with the worker
    SIGKILLed after a member's create_claim_note commits, mid-turn."""
    recorded = {}
    for mode in RESTART_CASES:
        options = dict(
            database_url=db_url,
            temporal_address=address,
            task_queue=conversations.task_queue,
            log=work / "team-worker.log",
            fault="after_commit:create_claim_note",
            fault_once=work / f"fired-{mode}",
        )
        name = f"team-{mode.replace('_', '-')}"
        recorded[name] = await _team_with_kill(conversations, mode, name, options)
    return recorded


async def _team_with_kill(
    conversations: Conversations, mode: str, name: str, options: dict[str, object]
) -> str:
    agent, text, _ = RESTART_CASES[mode]
    later = {
        "round_robin": ["@reviewer !say Checked."],
        "handoff": ["email the customer an update"],
    }
    cid = f"replay-{name}-{uuid.uuid4().hex[:6]}"
    start = StartConversation(agent=agent)
    async with worker_process(**options) as doomed:  # type: ignore[arg-type]
        if text == HANDOFF_TEXT:
            await conversations.ask(cid, "Check policy status for claim 123", "t-0", start)
        turn = asyncio.create_task(conversations.ask(cid, text, "t-1", start))
        await doomed.killed()
    async with worker_process(**options):  # type: ignore[arg-type]
        await turn
        for number, more in enumerate(later.get(mode, []), 2):
            await conversations.ask(cid, more, f"t-{number}", start)
        await conversations.end(cid)
        await conversations.handle(cid).result()
    return cid


async def features(conversations: Conversations) -> str:
    """Tool errors, identical-call dedup, approval (approve and deny), step limit and
    continue-as-new, in one conversation."""
    cid = f"replay-features-{uuid.uuid4().hex[:6]}"
    start = StartConversation(
        settings=ConversationSettings(max_turns_per_run=3, max_steps_per_turn=2)
    )
    ask = lambda text, mid: conversations.ask(cid, text, mid, start)  # noqa: E731
    await ask(
        '!call get_claim_status {"claim_id": 123}\n!call get_claim_status {"claim_id":123}', "f-1"
    )
    await ask('!call no_such_tool {}\n!call create_claim_note {"claim_id": "x"}', "f-2")
    await ask('!loop get_claim_status {"claim_id": 124}', "f-3")
    for mid, approve in (("f-4", True), ("f-5", False)):
        turn = asyncio.create_task(ask("email the customer about claim 123", mid))
        await _decide_when_pending(conversations, cid, approve)
        await turn
    await conversations.end(cid)
    await conversations.handle(cid).result()
    return cid


async def framework_agents(conversations: Conversations) -> str:
    """The claims assistant as an AutoGen AssistantAgent (tool rounds, reflection)."""
    cid = f"replay-autogen-{uuid.uuid4().hex[:6]}"
    start = StartConversation(agent="claims-autogen")
    await conversations.ask(cid, "Check policy status for claim 123", "a-1", start)
    await conversations.ask(cid, "add a note that the customer called", "a-2", start)
    await conversations.ask(cid, '!loop get_claim_status {"claim_id": 124}', "a-3", start)
    await conversations.end(cid)
    await conversations.handle(cid).result()
    return cid


def ag2_agents(registry: AgentRegistry, fake: FakeOpenAI) -> None:
    """AG2 (AutoGen classic) on the fake endpoint: a support_bot pair whose executor ends
    the turn on TERMINATE, and a random GroupChat within its allowed transitions."""

    def config() -> dict[str, object]:
        return {"config_list": [{"model": "gpt-4o-mini", "api_key": API_KEY, "base_url": fake.url}]}

    def get_claim_status(claim_id: int) -> str:
        return f'{{"claim_id": {claim_id}, "status": "in review"}}'

    def pair() -> tuple[AssistantAgent, UserProxyAgent]:
        assistant = AssistantAgent("support_bot", llm_config=config())
        proxy = UserProxyAgent(
            "user",
            human_input_mode="NEVER",
            code_execution_config=False,
            is_termination_msg=lambda m: "TERMINATE" in (m.get("content") or ""),
        )
        register_function(
            get_claim_status, caller=assistant, executor=proxy, description="Claim status."
        )
        return assistant, proxy

    def group() -> GroupChatManager:
        a, b, c = (AssistantAgent(n, llm_config=config()) for n in ("intake", "review", "audit"))
        graph = {a: [b, c], b: [a], c: [a]}
        chat = GroupChat(
            [a, b, c],
            speaker_selection_method="random",
            allowed_or_disallowed_speaker_transitions=graph,
            speaker_transitions_type="allowed",
            max_round=4,
        )
        return GroupChatManager(chat, llm_config=False)

    registry.add("ag2-support-bot", pair)
    registry.add("ag2-random-group", group)


async def ag2_conversations(conversations: Conversations, fake: FakeOpenAI) -> dict[str, str]:
    """A tool round then text; an answer with a call that TERMINATE ends; a group turn."""
    call = tool_call()[2]["choices"][0]["message"]["tool_calls"]
    ending = {"role": "assistant", "content": "Done. TERMINATE", "tool_calls": call}
    fake.script = [tool_call(), text("Claim 123 is in review."), completion(ending, "tool_calls")]
    fake.script += [text("one"), text("two"), text("three")]
    recorded = {}
    for agent, turns in (
        ("ag2-support-bot", ["How is claim 123?", "Thanks, that is all."]),
        ("ag2-random-group", ["Review claim 123."]),
    ):
        cid = f"replay-{agent}-{uuid.uuid4().hex[:6]}"
        for number, message in enumerate(turns, 1):
            await conversations.ask(cid, message, f"g-{number}", StartConversation(agent=agent))
        await conversations.end(cid)
        await conversations.handle(cid).result()
        recorded[agent] = cid
    return recorded


async def unknown_agent(conversations: Conversations) -> str:
    """An ask to an agent the worker does not have: the ask fails, then the workflow."""
    cid = f"replay-unknown-{uuid.uuid4().hex[:6]}"
    with contextlib.suppress(WorkflowUpdateFailedError):
        await conversations.ask(cid, "hello", "u-1", StartConversation(agent="nobody"))
    with contextlib.suppress(WorkflowFailureError):
        await conversations.handle(cid).result()
    return cid


class _CrashOnFirstClaim:
    """Ledger hooks under which an external tool's first attempt dies holding its claim."""

    def __init__(self) -> None:
        self.crashed = asyncio.Event()

    def after_claim(self, claim: Claim) -> None:
        if not self.crashed.is_set():
            self.crashed.set()
            raise RuntimeError("recorded crash while holding the claim")

    def after_effect(self, claim: Claim) -> None:
        pass

    def after_commit(self, claim: Claim) -> None:
        pass


def rare_paths_agents(db: Database) -> AgentRegistry:
    """The claims assistant whose emails wait 2 s for an approval, then count as denied."""
    agent = claims_assistant(ScriptedChatCompletionClient(), db.sessions)
    policy = ToolPolicy(needs_approval=True, approval_timeout=datetime.timedelta(seconds=2))
    tools = [replace(t, policy=policy) if t.kind == "external" else t for t in agent.tools]
    return AgentRegistry([replace(agent, tools=tools)])


async def rare_paths(conversations: Conversations) -> str:
    """A turn from a signal, an approval that times out (timer fired), one decided in time
    (timer cancelled), and a tool that fails on every attempt."""
    cid = f"replay-rare-{uuid.uuid4().hex[:6]}"
    await conversations.send(cid, "Check policy status for claim 123", "r-1")
    for _ in range(200):
        if (await conversations.state(cid)).turn_count >= 1:
            break
        await asyncio.sleep(0.05)
    await conversations.ask(cid, "email the customer about claim 123", "r-2")
    turn = asyncio.create_task(conversations.ask(cid, "email the customer about claim 124", "r-3"))
    await _decide_when_pending(conversations, cid, True)
    await turn
    await conversations.ask(cid, "add a note that the customer called", "r-4")
    await conversations.end(cid)
    await conversations.handle(cid).result()
    return cid


class _Text(BaseModel):
    text: str


class _FailingModel(ScriptedChatCompletionClient):
    """The scripted model, which fails on every attempt when the user says `!fail`."""

    async def create(self, messages, **options):  # type: ignore[no-untyped-def,override]
        if "!fail" in str(messages[-1].content):
            raise RuntimeError("recorded model failure")
        return await super().create(messages, **options)


def failures_agents(db: Database) -> AgentRegistry:
    """`recorder`, whose model fails on `!fail` and whose `always_fails` tool fails on every
    attempt."""

    @tool(kind="read", policy=ToolPolicy(retry=_FAST))
    async def always_fails(ctx: ToolContext, args: _Text) -> str:
        """Fails on every attempt with a retryable error."""
        raise ToolRetryableError("service unavailable")

    recorder = AgentDefinition(
        name="recorder",
        system_message="record",
        model_client=_FailingModel(),
        tools=[always_fails],
        model_policy=ModelPolicy(retry=_FAST),
    )
    return AgentRegistry([recorder])


async def failures(conversations: Conversations) -> list[str]:
    """A duplicate turn (a message re-sent after its ID left the kept window and the run
    continued as new), and a tool and a model call that fail for good."""
    cid = f"replay-failures-{uuid.uuid4().hex[:6]}"
    settings = ConversationSettings(max_turns_per_run=2, recent_message_ids=1, recent_results=1)
    start = StartConversation(agent="recorder", settings=settings)
    ask = lambda text, mid: conversations.ask(cid, text, mid, start)  # noqa: E731
    await ask("!say one", "x-1")
    await ask("!say two", "x-2")  # the run continues as new, keeping only x-2
    duplicate = await ask("!say one", "x-1")
    assert duplicate.status == "duplicate", duplicate
    await ask('!call always_fails {"text": "x"}', "x-3")
    failed = await ask("!fail now", "x-4")
    assert failed.status == "failed", failed
    await conversations.end(cid)
    await conversations.handle(cid).result()
    return cid


async def lease_held(conversations: Conversations, hooks: _CrashOnFirstClaim) -> str:
    """The email tool's first attempt dies holding its claim, and the conversation is reset
    to before the call: the new run's attempt meets LeaseHeld, then takes over."""
    cid = f"replay-lease-{uuid.uuid4().hex[:6]}"
    await conversations.send(cid, "email the customer about claim 123", "l-1")
    await hooks.crashed.wait()
    await _reset_before_last_tool_call(conversations, cid)
    for _ in range(1200):  # the held lease (the tool's start_to_close, 30 s) runs out first
        if (await conversations.state(cid)).turn_count >= 1:
            break
        await asyncio.sleep(0.05)
    await conversations.end(cid)
    await conversations.handle(cid).result()
    return cid


async def _reset_before_last_tool_call(conversations: Conversations, cid: str) -> None:
    """`temporal workflow reset` to the workflow task that scheduled the last tool call."""
    handle = conversations.handle(cid)
    history = await handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == ACTIVITY_CALL_TOOL
    ]
    client = conversations.client
    await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=cid),
            reason="record a LeaseHeld retry",
            workflow_task_finish_event_id=scheduled[-1].workflow_task_completed_event_id,
            request_id=str(uuid.uuid4()),
        )
    )


async def versioned(client: Client, db: Database) -> str:
    """Three turns on a versioned worker (pinned), continuing as new after two, onto the
    deployment's current build."""
    conversations = Conversations(client, f"record-versioned-{uuid.uuid4()}")
    version = WorkerDeploymentVersion(f"record-{uuid.uuid4().hex[:8]}", "b1")
    agents = AgentRegistry([claims_assistant(ScriptedChatCompletionClient(), db.sessions)])
    plugin = AgentConversationsPlugin(agents, db, search_attributes=False, deployment=version)
    cid = f"replay-versioned-{uuid.uuid4().hex[:6]}"
    start = StartConversation(settings=ConversationSettings(max_turns_per_run=2))
    async with Worker(client, task_queue=conversations.task_queue, plugins=[plugin]):
        await make_current(client, version)
        for number in (1, 2, 3):
            await conversations.ask(
                cid, f"Check policy status for claim 12{number}", f"v-{number}", start
            )
        await conversations.end(cid)
        await conversations.handle(cid).result()
    return cid


async def burst(conversations: Conversations) -> str:
    """A full bounded queue behind an approval: a signal over the bound is dropped, and the
    run continues as new at its turn limit with turns still queued."""
    cid = f"replay-burst-{uuid.uuid4().hex[:6]}"
    start = StartConversation(
        settings=ConversationSettings(max_turns_per_run=2, max_queued_turns=3)
    )
    blocked = asyncio.create_task(
        conversations.ask(cid, "email the customer about claim 123", "b-0", start)
    )
    await _wait_for_approval(conversations, cid)
    for n in range(1, 5):  # the fourth is over the bound
        await conversations.send(cid, f"!say b{n}", f"b-{n}", start)
    await _decide_when_pending(conversations, cid, True)
    await blocked
    await conversations.ask(cid, "!say last", "b-last", start)
    await conversations.end(cid)
    await conversations.handle(cid).result()
    return cid


async def reset_fork(conversations: Conversations, address: str) -> str:
    """The reset repro: a note, a reset to before it, a new message forks the transcript."""
    cid = f"replay-reset-{uuid.uuid4().hex[:6]}"
    client = conversations.client
    await conversations.ask(cid, "!say one", "r-1")
    await conversations.ask(cid, "add a note to claim 123 that it rained", "r-2")
    completed, point = [], 0
    async for event in client.get_workflow_handle(cid).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            completed.append(event.event_id)
        accepted = event.workflow_execution_update_accepted_event_attributes
        if accepted.protocol_instance_id == "r-2":
            point = completed[-2]
            break
    await temporal(
        address, "workflow", "reset", "--workflow-id", cid, "--event-id", str(point),
        "--reason", "record", "--reapply-exclude", "All", "--yes",
    )  # fmt: skip
    await conversations.ask(cid, "!say three", "r-3")
    await conversations.ask(cid, "add a note to claim 123 that it snowed", "r-4")
    await conversations.end(cid)
    await conversations.handle(cid).result()
    return cid


async def closed(conversations: Conversations) -> str:
    """A terminated conversation's ID: the new run fails with ConversationClosed."""
    cid = f"replay-closed-{uuid.uuid4().hex[:6]}"
    await conversations.ask(cid, "!say one", "c-1")
    await conversations.handle(cid).terminate("record")
    with contextlib.suppress(WorkflowUpdateFailedError):
        await conversations.ask(cid, "!say two", "c-2")
    with contextlib.suppress(WorkflowFailureError):
        await conversations.handle(cid).result()
    return cid


async def streaming(conversations: Conversations, db: Database) -> str:
    """A subscriber of the event stream (its polls are updates in history) through two
    turns, one per run: the second run starts with the first's stream state."""
    from activities.deltas import TextDeltas

    watching = Conversations(conversations.client, conversations.task_queue, TextDeltas(db))
    cid = f"replay-streaming-{uuid.uuid4().hex[:6]}"
    start = StartConversation(settings=ConversationSettings(max_turns_per_run=1))
    await watching.start(cid, start)
    position = await watching.event_position(cid)

    async def watch() -> list[str]:
        finished, types = 0, []
        async for _, event in watching.events(cid, after=position):
            types.append(event.type)
            finished += event.type == "turn_finished"
            if finished == 2:
                return types
        return types

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.5)
    await watching.ask(cid, "what is the status of claim 123?", "s-1", start)
    await watching.ask(cid, "!say thanks", "s-2", start)
    types = await asyncio.wait_for(watcher, 30)
    assert types.count("turn_finished") == 2 and "text" in types, types
    await watching.end(cid)
    await watching.handle(cid).result()
    return cid


async def _wait_for_approval(conversations: Conversations, cid: str) -> None:
    for _ in range(200):
        with contextlib.suppress(Exception):  # not started yet
            if (await conversations.state(cid)).pending_approvals:
                return
        await asyncio.sleep(0.05)
    raise TimeoutError("no approval became pending")


async def model_failures(env_client, task_queue: str, db: Database) -> str:  # type: ignore[no-untyped-def]
    """Typed model failures against the enforcing fake endpoint: a 400 after a tool ran,
    that turn resumed (its tool not run again), a prompt too large for the window, and a
    turn after them that completes."""
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    from .support.fake_openai import API_KEY, error, serving, text, tool_call

    cid = f"replay-model-failures-{uuid.uuid4().hex[:6]}"
    conversations = Conversations(env_client, task_queue)
    start = StartConversation(settings=ConversationSettings(max_message_chars=60_000))
    with serving(context_window=8192) as fake:
        fake.script = [tool_call(), error(400), text("Claim 123 is in review."), text("Done.")]
        model = OpenAIChatCompletionClient(model="gpt-4o-mini", api_key=API_KEY, base_url=fake.url)
        agents = AgentRegistry([claims_assistant(model, db.sessions)])
        async with build_worker(env_client, task_queue, db, agents, search_attributes=True):
            await conversations.ask(cid, "How is claim 123?", "x-1", start)
            await conversations.ask(cid, "", "x-1", start, resume=True)
            await conversations.ask(cid, "claim " * 9000, "x-2", start)
            await conversations.ask(cid, "And now?", "x-3", start)
            await conversations.end(cid)
            await conversations.handle(cid).result()
    return cid


async def long_id(client: Client, task_queue: str) -> str:
    """A conversation another SDK starts with an ID over the limit: it fails at once
    (patch `conversation-id-limit`), its ask rejected."""
    cid = f"replay-long-id-{uuid.uuid4().hex[:6]}-".ljust(MAX_CONVERSATION_ID_CHARS + 50, "x")
    handle = await client.start_workflow(
        WORKFLOW_TYPE, StartConversation(), id=cid, task_queue=task_queue
    )
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    return cid


async def cancelled_turns(client: Client, db: Database) -> str:
    """`cancel_turn`: a model call cancelled mid-stream, then parallel tool calls cancelled
    (one committed, one sent nothing, one stopped midway) with a turn queued behind them,
    and a cancel while no turn runs."""
    cid = f"replay-cancel-{uuid.uuid4().hex[:6]}"
    conversations = Conversations(client, f"record-cancel-{uuid.uuid4()}")
    deltas, start, until = interrupts.Deltas(), interrupts.START, interrupts.until
    model = interrupts.StreamingModel()
    watched = interrupts.watching_client(client, conversations.task_queue, db)
    async with interrupts.interruptible_worker(client, conversations.task_queue, db, model):
        await deltas.watching(watched, cid)
        streamed = asyncio.create_task(conversations.ask(cid, "!stream 60", "k-1", start))

        async def streaming() -> bool:
            return len(deltas.received) >= 3

        await until(streaming)
        await conversations.cancel_turn(cid, reason="recorded")
        await streamed
        tools = asyncio.create_task(conversations.ask(cid, interrupts.TOOLS, "k-2", start))
        running = {"create_claim_note": "succeeded", "slow_transfer": "claimed"}
        await until(lambda: interrupts.ledger_shows(db, cid, running))
        queued = asyncio.create_task(conversations.ask(cid, "!say after", "k-3", start))
        await asyncio.sleep(0.5)
        await conversations.cancel_turn(cid, message_id="k-2")
        await tools
        await queued
        await conversations.cancel_turn(cid)
        await conversations.end(cid)
        await conversations.handle(cid).result()
    return cid


async def _decide_when_pending(conversations: Conversations, cid: str, approve: bool) -> None:
    for _ in range(200):
        state = await conversations.state(cid)
        if state.pending_approvals:
            call = state.pending_approvals[0].tool_call_id
            decision = ToolDecision(tool_call_id=call, approve=approve, reason="recorded")
            return await conversations.decide(cid, decision)
        await asyncio.sleep(0.05)
    raise TimeoutError("no approval became pending")


async def main() -> None:
    env = await start_dev_server()
    work = Path(tempfile.mkdtemp(prefix="record-"))
    db_url = f"sqlite:///{work}/agents.db"
    db = Database(db_url)
    await prepare_database(db)
    conversations = Conversations(env.client, f"record-{uuid.uuid4()}")
    today = datetime.date.today().isoformat()
    wanted = set(sys.argv[1:]) or {
        "demo-kill",
        "features",
        "autogen-agent",
        "unknown-agent",
        "team",
        "rare-paths",
        "failures",
        "lease-held",
        "versioned",
        "ag2",
        "burst",
        "reset",
        "closed",
        "model-failures",
        "long-id",
        "cancel",
        "streaming",
    }
    recorded: dict[str, str] = {}
    if "demo-kill" in wanted:
        address = env.client.service_client.config.target_host
        recorded[f"demo-kill-{today}"] = await demo_with_kill(conversations, address, db_url, work)
    if "team" in wanted:
        address = env.client.service_client.config.target_host
        for name, cid in (await teams_with_kill(conversations, address, db_url, work)).items():
            recorded[f"{name}-{today}"] = cid
    agents = AgentRegistry(
        [claims_assistant(ScriptedChatCompletionClient(), db.sessions, email_needs_approval=True)]
    )
    register_examples(
        agents, db.sessions, ScriptedChatCompletionClient(), scripted_llamaindex_llm()
    )
    stack = contextlib.ExitStack()
    fake = stack.enter_context(serving())  # AG2's model: the fake endpoint
    ag2_agents(agents, fake)
    async with build_worker(
        env.client, conversations.task_queue, db, agents, search_attributes=True
    ):
        if "ag2" in wanted:
            for name, cid in (await ag2_conversations(conversations, fake)).items():
                recorded[f"{name}-{today}"] = cid
        if "features" in wanted:
            recorded[f"features-{today}"] = await features(conversations)
        if "unknown-agent" in wanted:
            recorded[f"unknown-agent-{today}"] = await unknown_agent(conversations)
        if "long-id" in wanted:
            recorded[f"long-id-{today}"] = await long_id(env.client, conversations.task_queue)
        if "autogen-agent" in wanted:
            recorded[f"autogen-agent-{today}"] = await framework_agents(conversations)
        if "burst" in wanted:
            recorded[f"burst-{today}"] = await burst(conversations)
        if "reset" in wanted:
            address = env.client.service_client.config.target_host
            recorded[f"reset-{today}"] = await reset_fork(conversations, address)
        if "closed" in wanted:
            recorded[f"closed-{today}"] = await closed(conversations)
        if "streaming" in wanted:
            recorded[f"streaming-{today}"] = await streaming(conversations, db)
    stack.close()
    if "rare-paths" in wanted:
        rare = Conversations(env.client, f"record-rare-{uuid.uuid4()}")
        agents = rare_paths_agents(db)
        async with build_worker(env.client, rare.task_queue, db, agents, None, True):
            recorded[f"rare-paths-{today}"] = await rare_paths(rare)
    if "failures" in wanted:
        failing = Conversations(env.client, f"record-failures-{uuid.uuid4()}")
        async with build_worker(env.client, failing.task_queue, db, failures_agents(db)):
            recorded[f"failures-{today}"] = await failures(failing)
    if "lease-held" in wanted:
        leasing, hooks = (
            Conversations(env.client, f"record-lease-{uuid.uuid4()}"),
            _CrashOnFirstClaim(),
        )
        assistant = AgentRegistry([claims_assistant(ScriptedChatCompletionClient(), db.sessions)])
        async with build_worker(env.client, leasing.task_queue, db, assistant, hooks):
            recorded[f"lease-held-{today}"] = await lease_held(leasing, hooks)
    if "versioned" in wanted:
        recorded[f"versioned-{today}"] = await versioned(env.client, db)
    if "model-failures" in wanted:
        queue = f"record-{uuid.uuid4()}"
        recorded[f"model-failures-{today}"] = await model_failures(env.client, queue, db)
    if "cancel" in wanted:
        recorded[f"cancel-{today}"] = await cancelled_turns(env.client, db)
    for name, cid in recorded.items():
        await _save(env, name, cid)
    await db.dispose()
    await env.shutdown()


async def _save(env, name: str, cid: str) -> None:  # type: ignore[no-untyped-def]
    async for execution in env.client.list_workflows(f'WorkflowId="{cid}"'):
        handle = env.client.get_workflow_handle(cid, run_id=execution.run_id)
        history = await handle.fetch_history()
        path = HISTORIES / f"{name}-run-{execution.run_id}.json"
        if path.exists():
            sys.exit(f"{path} exists: committed histories are never overwritten")
        record = {
            "workflow_id": cid,
            "run_id": execution.run_id,
            "history": json.loads(history.to_json()),
        }
        path.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {path.relative_to(HISTORIES.parent.parent)} ({len(history.events)} events)")


if __name__ == "__main__":
    asyncio.run(main())
