"""Record workflow histories for the replay tests: `python -m tests.record_histories
[demo-kill] [features] [autogen-agent] [unknown-agent] [team] [long-id]` (all by default).

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
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError

from activities.db import Database
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.agent import claims_assistant
from demo.scripted_model import ScriptedChatCompletionClient, scripted_llamaindex_llm
from devserver import start_dev_server, worker_process
from examples import register_examples
from interface import WORKFLOW_TYPE, ConversationSettings, StartConversation, ToolDecision
from interface.contract import MAX_CONVERSATION_ID_CHARS
from worker import build_worker, prepare_database

from .support.teams import HANDOFF_TEXT, RESTART_CASES

HISTORIES = Path(__file__).resolve().parent / "histories"


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


async def unknown_agent(conversations: Conversations) -> str:
    """An ask to an agent the worker does not have: the ask fails, then the workflow."""
    cid = f"replay-unknown-{uuid.uuid4().hex[:6]}"
    with contextlib.suppress(WorkflowUpdateFailedError):
        await conversations.ask(cid, "hello", "u-1", StartConversation(agent="nobody"))
    with contextlib.suppress(WorkflowFailureError):
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
        "long-id",
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
    async with build_worker(
        env.client, conversations.task_queue, db, agents, search_attributes=True
    ):
        if "features" in wanted:
            recorded[f"features-{today}"] = await features(conversations)
        if "unknown-agent" in wanted:
            recorded[f"unknown-agent-{today}"] = await unknown_agent(conversations)
        if "long-id" in wanted:
            recorded[f"long-id-{today}"] = await long_id(env.client, conversations.task_queue)
        if "autogen-agent" in wanted:
            recorded[f"autogen-agent-{today}"] = await framework_agents(conversations)
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
