"""starter.py, run as a user runs it: a subprocess against the dev server and a worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from autogen_ext.models.openai import OpenAIChatCompletionClient
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from activities.db import Database
from agents.adapters import function_tool
from agents.registry import AgentRegistry
from conversation_client import Conversations
from demo.agent import claims_assistant
from demo.tables import OutboxEmail
from interface import ToolPolicy
from settings import ENV, WorkerSettings
from starter import PROMPT
from support.databases import count
from support.fake_openai import API_KEY, FakeOpenAI, error, text, tool_call
from support.ids import new_id
from support.paths import ROOT
from support.starter import Run, run_starter, start_starter
from support.workers import WorkerFactory

TIMEOUT = 60
CLAIM_QUESTION = "Check policy status for claim 123"


Starter = Callable[..., Awaitable[Run]]


@pytest.fixture
def starter(temporal_address: str, task_queue: str) -> Starter:
    """`await starter("state", "conv-1")`: the CLI against the test server and queue."""

    def run(*args: str) -> Awaitable[Run]:
        return run_starter("--address", temporal_address, "--task-queue", task_queue, *args)

    return run


async def poll_state(
    starter: Starter, conversation_id: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    for _ in range(40):
        run = await starter("state", conversation_id, "--json")
        assert run.code == 0, run
        state = json.loads(run.out)
        if done(state):
            return state
        await asyncio.sleep(0.25)
    raise AssertionError(f"state never got there: {state}")


@pytest.mark.e2e
async def test_ask_prints_the_reply(db, run_worker: WorkerFactory, starter: Starter):
    async with run_worker(db):
        run = await starter("ask", new_id(), CLAIM_QUESTION, "--message-id", "m-1")
    assert run.code == 0, run
    assert "Claim 123 is in_review" in run.out
    assert "get_claim_status" in run.out  # the tool-call table
    assert "turn 1: completed" in run.out


@pytest.mark.e2e
async def test_ask_resume_continues_a_failed_turn(
    db, run_worker: WorkerFactory, starter: Starter, fake_openai: FakeOpenAI
):
    fake_openai.script = [tool_call(), error(400), text("Claim 123 is in review.")]
    model = OpenAIChatCompletionClient(
        model="gpt-4o-mini", api_key=API_KEY, base_url=fake_openai.url
    )
    cid = new_id()
    async with run_worker(db, AgentRegistry([claims_assistant(model, db.sessions)])):
        failed = await starter("ask", cid, CLAIM_QUESTION, "--message-id", "m-1")
        resumed = await starter("ask", cid, "", "--message-id", "m-1", "--resume")
        unnamed = await starter("ask", cid, "", "--resume")
    assert "turn 1: failed" in failed.out and "error: ModelHTTP400" in failed.out, failed
    assert resumed.code == 0 and "Claim 123 is in review." in resumed.out, resumed
    assert "turn 1: completed" in resumed.out
    assert unnamed.code != 0 and "--message-id" in unnamed.err
    assert len(fake_openai.requests) == 3  # the tool ran once; the model was asked again once


@pytest.mark.e2e
async def test_send_then_state_json(db, run_worker: WorkerFactory, starter: Starter):
    conversation_id = new_id()
    async with run_worker(db):
        sent = await starter("send", conversation_id, CLAIM_QUESTION)
        assert sent.code == 0, sent
        assert "sent m-" in sent.out
        state = await poll_state(
            starter, conversation_id, lambda s: s["turn_count"] == 1 and s["status"] == "idle"
        )
    assert state["agent"] == "claims-assistant"
    replies = [m["content"] for m in state["messages"] if m["role"] == "assistant"]
    assert any("in_review" in reply for reply in replies)


@pytest.mark.e2e
async def test_ask_with_empty_text_is_rejected(db, run_worker: WorkerFactory, starter: Starter):
    async with run_worker(db):
        run = await starter("ask", new_id(), "  ")
    assert run.code == 1, run
    assert "text is empty" in run.err
    assert "Traceback" not in run.err


@pytest.mark.e2e
async def test_state_of_unknown_conversation(starter: Starter):
    conversation_id = new_id()
    run = await starter("state", conversation_id)
    assert run.code == 1, run
    assert f"no conversation {conversation_id}" in run.err
    assert "Traceback" not in run.err


@pytest.mark.e2e
async def test_unreachable_temporal():
    run = await run_starter("--address", "127.0.0.1:1", "state", new_id())
    assert run.code == 2, run
    assert "cannot reach Temporal at 127.0.0.1:1" in run.err
    assert "Traceback" not in run.err


@pytest.mark.e2e
async def test_address_from_the_environment():
    run = await run_starter("list", env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
    assert run.code == 2, run
    assert "cannot reach Temporal at 127.0.0.1:1" in run.err


@pytest.mark.e2e
async def test_list_and_end(
    db, run_worker: WorkerFactory, conversations: Conversations, starter: Starter
):
    conversation_id = new_id()
    async with run_worker(db):
        started = await starter("start", conversation_id)
        assert started.code == 0, started
        for _ in range(20):  # visibility is eventually consistent
            listed = await starter("list", "--query", f'WorkflowId="{conversation_id}"')
            assert listed.code == 0, listed
            if conversation_id in listed.out:
                break
            await asyncio.sleep(0.25)
        assert conversation_id in listed.out
        assert "RUNNING" in listed.out

        ended = await starter("end", conversation_id)
        assert ended.code == 0, ended
        handle = conversations.handle(conversation_id)
        summary = await asyncio.wait_for(handle.result(), TIMEOUT)
    assert summary.turn_count == 0
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


def agents_needing_approval(db: Database) -> AgentRegistry:
    """The demo agent, with `send_customer_email` waiting for a person's decision."""
    agent = claims_assistant(WorkerSettings().model_client(), db.sessions)
    approval = ToolPolicy(needs_approval=True)
    tools = [
        replace(t, policy=approval) if t.name == "send_customer_email" else t for t in agent.tools
    ]
    return AgentRegistry([replace(agent, tools=tools)])


@pytest.mark.e2e
@pytest.mark.parametrize(("command", "status"), [("approve", "ok"), ("deny", "denied")])
async def test_decide_a_pending_tool_call(
    db, run_worker: WorkerFactory, starter: Starter, command: str, status: str
):
    conversation_id = new_id()
    async with run_worker(db, agents=agents_needing_approval(db)):
        sent = await starter("send", conversation_id, "Email the customer about claim 123")
        assert sent.code == 0, sent
        waiting = await poll_state(
            starter, conversation_id, lambda s: s["status"] == "waiting_approval"
        )
        [pending] = waiting["pending_approvals"]
        assert pending["name"] == "send_customer_email"
        shown = await starter("state", conversation_id)
        assert pending["tool_call_id"] in shown.out

        decided = await starter(command, conversation_id, pending["tool_call_id"], "--reason", "ok")
        assert decided.code == 0, decided
        idle = await poll_state(starter, conversation_id, lambda s: s["status"] == "idle")
    [record] = [t for t in idle["tool_calls"] if t["id"] == pending["tool_call_id"]]
    assert record["status"] == status


@pytest.mark.e2e
async def test_cancel_interrupts_a_turn_waiting_for_approval(
    db, run_worker: WorkerFactory, starter: Starter, conversations: Conversations
):
    cid, text = new_id(), "Email the customer about claim 123"
    async with run_worker(db, agents=agents_needing_approval(db)):
        turn = asyncio.create_task(conversations.ask(cid, text, "m-1"))
        await until_status(conversations, cid, "waiting_approval")
        other = await starter("cancel", cid, "--message-id", "m-2")
        cancelled = await starter("cancel", cid, "--message-id", "m-1", "--reason", "changed")
        result = await asyncio.wait_for(turn, TIMEOUT)
        again = await starter("cancel", cid)
        state = await conversations.state(cid)
    assert other.code == 1 and "no turn of m-2 is running" in other.err, other
    assert cancelled.code == 0 and "interrupted turn 1 (message m-1)" in cancelled.out, cancelled
    assert again.code == 1 and "nothing to interrupt" in again.err, again
    assert result.status == "interrupted" and result.error is not None
    assert result.error.message == "changed"
    [record] = result.tool_calls
    assert record.name == "send_customer_email" and record.status == "error"
    assert "TurnInterrupted" in record.result  # never sent
    assert state.status == "idle" and state.pending_approvals == []
    assert await count(db, OutboxEmail, conversation_id=cid) == 0


async def until_status(conversations: Conversations, cid: str, status: str) -> None:
    for _ in range(200):
        with contextlib.suppress(RPCError):  # not started yet
            if (await conversations.state(cid)).status == status:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{cid} never got to {status}")


class Session:
    """starter.py as a user runs it interactively: stdin written a line at a time, output
    read a line at a time (a pipe, not a terminal: progress comes as plain lines)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[str] = []

    async def expect(self, stream: asyncio.StreamReader | None, text: str) -> str:
        """The next line containing `text`; fails at EOF."""
        assert stream is not None
        while True:
            try:
                raw = await asyncio.wait_for(stream.readline(), TIMEOUT)
            except TimeoutError:
                raise AssertionError(
                    f"{text!r} did not come in {TIMEOUT} s; saw {self.seen}"
                ) from None
            assert raw, f"{text!r} never came; saw {self.seen}"
            line = raw.decode().rstrip("\n")
            self.seen.append(line)
            if text in line:
                return line

    async def stdout(self, text: str) -> str:
        return await self.expect(self.process.stdout, text)

    async def stderr(self, text: str) -> str:
        return await self.expect(self.process.stderr, text)

    async def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def close(self, timeout: float = TIMEOUT) -> int:
        """End of input; the exit code once the session has finished its turns."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        return await asyncio.wait_for(self.process.wait(), timeout)


@pytest.fixture
async def session(temporal_address: str, task_queue: str) -> AsyncIterator[Callable[..., Any]]:
    """`async with session("chat", "conv-1") as s:` starter.py with piped stdin."""
    started: list[asyncio.subprocess.Process] = []

    async def open_session(*args: str, env: dict[str, str] | None = None) -> Session:
        process = await start_starter(
            "--address",
            temporal_address,
            "--task-queue",
            task_queue,
            *args,
            env={"PYTHONUNBUFFERED": "1", **(env or {})},
            stdin=asyncio.subprocess.PIPE,
        )
        started.append(process)
        return Session(process)

    yield open_session
    for process in started:
        if process.returncode is None:
            process.kill()
            await process.wait()


def agents_with_a_gated_tool(db: Database, gate: asyncio.Event) -> AgentRegistry:
    """The approval agent, plus `wait_for_gate`: a tool that runs until the test opens it."""

    async def wait_for_gate(reason: str) -> str:
        """Waits until the test lets it finish."""
        await gate.wait()
        return f"done: {reason}"

    registry = agents_needing_approval(db)
    agent = registry.get("claims-assistant")
    tools = [*agent.tools, function_tool(wait_for_gate, kind="read")]
    return AgentRegistry([replace(agent, tools=tools)])


@pytest.mark.e2e
async def test_ask_shows_live_progress(db, run_worker: WorkerFactory, session):
    gate = asyncio.Event()
    conversation_id = new_id()
    async with run_worker(db, agents=agents_with_a_gated_tool(db, gate)):
        ask = await session("ask", conversation_id, '!call wait_for_gate {"reason": "slow"}')
        await ask.stderr("... calling wait_for_gate")  # while the tool runs
        gate.set()
        assert await ask.close() == 0
        out = (await ask.process.stdout.read()).decode()
        assert "turn 1: completed" in out

        ask = await session("ask", conversation_id, "Email the customer about claim 123")
        line = await ask.stderr("... waiting for approval of send_customer_email (")
        call_id = line.rsplit("(", 1)[1].rstrip(")")
        approved = await run_starter_in(session, "approve", conversation_id, call_id)
        assert approved == 0
        assert await ask.close() == 0
        out = (await ask.process.stdout.read()).decode()
    assert "I emailed" in out and "turn 2: completed" in out


async def run_starter_in(session, *args: str) -> int:
    other = await session(*args)
    return await other.close()


@pytest.mark.e2e
async def test_chat_session(db, run_worker: WorkerFactory, session, conversations):
    conversation_id = new_id()
    async with run_worker(db, agents=agents_needing_approval(db)):
        chat = await session("chat", conversation_id)
        await chat.type(CLAIM_QUESTION)
        await chat.stdout("[tool] get_claim_status")
        reply = await chat.stdout("claims-assistant: ")
        assert "in_review" in reply

        await chat.type("/state")
        await chat.stdout("status idle, turns 1")

        await chat.type("Email the customer about claim 123")
        line = await chat.stderr("... waiting for approval of send_customer_email (")
        call_id = line.rsplit("(", 1)[1].rstrip(")")
        await chat.type("/approve")  # no ID: the only call that waits
        await chat.stdout(f"approved {call_id}")
        await chat.stdout("[tool] send_customer_email -> ok")
        await chat.stdout("claims-assistant: ")

        await chat.type("/nonsense")
        await chat.stdout("/approve [TOOL_CALL_ID]")  # the help
        await chat.type("")  # blank lines are ignored
        await chat.type("Check policy status for claim 123 again")
        assert await chat.close() == 0  # end of input: the turn already sent finishes first
        rest = (await chat.process.stdout.read()).decode()
        state = await conversations.state(conversation_id)
    assert "claims-assistant: " in rest
    assert state.turn_count == 3
    assert [t.status for t in state.tool_calls if t.name == "send_customer_email"] == ["ok"]


@pytest.mark.e2e
async def test_chat_quit_and_deny(db, run_worker: WorkerFactory, session, conversations):
    conversation_id = new_id()
    async with run_worker(db, agents=agents_needing_approval(db)):
        chat = await session("chat", conversation_id)
        await chat.type("Email the customer about claim 123")
        line = await chat.stderr("... waiting for approval of send_customer_email (")
        call_id = line.rsplit("(", 1)[1].rstrip(")")
        await chat.type(f"/deny {call_id} not now")
        await chat.stdout(f"denied {call_id}")
        await chat.stdout("-> denied")
        await chat.type("/deny")  # no ID, and no call waits
        await chat.stderr("error: no tool call is waiting for approval")
        await chat.type("/quit")
        assert await chat.close() == 0
        state = await conversations.state(conversation_id)
    [record] = [t for t in state.tool_calls if t.id == call_id]
    assert record.status == "denied"


@pytest.mark.e2e
async def test_chat_sends_piped_lines_in_order(
    db, run_worker: WorkerFactory, session, starter: Starter
):
    """Lines typed faster than turns are accepted still reach the conversation in order
    (each is sent once the one before was accepted), run after run."""
    lines = [f"Check policy status for claim 12{n}" for n in range(4)]

    async def chat_then_state() -> dict[str, Any]:
        conversation_id = new_id()
        chat = await session("chat", conversation_id)
        for line in lines:
            await chat.type(line)
        assert await chat.close(timeout=3 * TIMEOUT) == 0  # three CLIs start at once
        run = await starter("state", conversation_id, "--json")
        return json.loads(run.out)

    async with run_worker(db):
        states = await asyncio.gather(*(chat_then_state() for _ in range(3)))
    for state in states:
        assert [m["content"] for m in state["messages"] if m["role"] == "user"] == lines
        assert state["turn_count"] == 4


SPINNER = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
"""rich's default spinner frames."""


@pytest.mark.e2e
async def test_chat_on_a_terminal_prompts_only_when_the_spinner_is_off(
    db, run_worker: WorkerFactory, temporal_address: str, task_queue: str
):
    """On a terminal (a pty), `chat` shows `you> ` when no turn runs and the spinner while
    one does: the prompt's line never gets a spinner frame."""
    import os
    import pty
    import threading

    leader, follower = pty.openpty()
    screen = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                return
            if not chunk:
                return
            screen.extend(chunk)

    async def shown(text: str, count: int = 1, timeout: float = TIMEOUT) -> str:
        for _ in range(int(timeout * 10)):
            seen = screen.decode(errors="replace")
            if seen.count(text) >= count:
                return seen
            await asyncio.sleep(0.1)
        raise AssertionError(f"{text!r} never shown; saw {screen.decode(errors='replace')!r}")

    threading.Thread(target=read, daemon=True).start()
    clean = {k: v for k, v in os.environ.items() if k not in ENV.values()}
    args = ["--address", temporal_address, "--task-queue", task_queue, "chat", new_id()]
    gate = asyncio.Event()
    async with run_worker(db, agents=agents_with_a_gated_tool(db, gate)):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "starter.py"),
            *args,
            cwd=ROOT,
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env={**clean, "TERM": "xterm", "COLUMNS": "120", "PYTHONPATH": str(ROOT)},
        )
        os.close(follower)
        try:
            await shown(PROMPT, timeout=3 * TIMEOUT)  # the CLI's start, on a busy machine
            os.write(leader, b'!call wait_for_gate {"reason": "slow"}\n')
            await shown("calling wait_for_gate")  # the spinner, while the tool runs
            gate.set()
            await shown("claims-assistant: ")
            seen = await shown(PROMPT, 2)
            os.write(leader, b"/quit\n")
            assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            os.close(leader)
    assert SPINNER.intersection(seen)  # the spinner ran while the turn did
    assert seen.rindex(PROMPT) > seen.index("claims-assistant: ")  # a prompt after the reply
    for part in seen.split(PROMPT)[1:]:
        prompt_line = part.split("\n", 1)[0]
        assert not SPINNER.intersection(prompt_line), repr(prompt_line)


def test_live_events_print_text_tools_and_progress():
    """What `ask` and `chat` print of a turn's events; model text is never shown as a
    tool call, and a retried step says its text starts again."""
    import io

    from rich.console import Console

    import starter
    from interface.events import ConversationEvent as E
    from starter import EventPrinter, Progress

    lines = io.StringIO()
    printer = EventPrinter("claims-assistant", Progress(Console(file=lines)), speakers=True)
    events = [
        E(type="turn_started", turn=1, message_id="m-1"),
        E(type="model_started", turn=1, step=1, agent="triage"),
        E(type="text", turn=1, step=1, attempt=1, text="I can check ", agent="triage"),
        E(type="text_reset", turn=1, step=1, attempt=2),
        E(type="text", turn=1, step=1, attempt=2, text="Let me check.", agent="triage"),
        E(type="tool_started", turn=1, tool_call_id="c-1", name="get_claim_status", arguments="{}"),
        E(type="tool_finished", turn=1, tool_call_id="c-1", name="get_claim_status", status="ok"),
        E(type="approval_needed", turn=1, tool_call_id="c-2", name="send_email", arguments="{}"),
        E(type="approval_decided", turn=1, tool_call_id="c-2", name="send_email", status="denied"),
        E(type="turn_finished", turn=1, message_id="m-1", status="interrupted", text="Let me"),
    ]
    with starter.out.capture() as captured:
        for event in events:
            printer.show(event)
    assert captured.get().splitlines() == [
        "triage: I can check  [the model call is retried: its text starts again]",
        "triage: Let me check.",
        "  [tool] get_claim_status({}) ...",
        "  [tool] get_claim_status -> ok",
        "  [approval] send_email -> denied",
        "  (turn 1: interrupted)",
    ]
    assert lines.getvalue().splitlines() == [
        "... triage is thinking",
        "... calling get_claim_status",
        "... waiting for approval of send_email (c-2)",
    ]
    assert "m-1" in printer.finished


def test_approve_without_an_id_needs_exactly_one_pending_call():
    from interface import ConversationState, PendingApproval
    from starter import NotOnePending, only_pending

    def waiting(*ids: str) -> ConversationState:
        calls = [
            PendingApproval(tool_call_id=i, name="send_email", arguments="{}", turn=1) for i in ids
        ]
        return ConversationState(
            agent="a", status="waiting_approval", turn_count=1, pending_approvals=calls
        )

    assert only_pending(waiting("call-1")) == "call-1"
    with pytest.raises(NotOnePending, match="no tool call is waiting"):
        only_pending(waiting())
    with pytest.raises(
        NotOnePending, match=r"2 tool calls are waiting, name one: call-1 \(send_email\), call-2"
    ):
        only_pending(waiting("call-1", "call-2"))


def test_readable_state_shows_the_speaker_and_the_active_agent():
    import starter
    from interface import ConversationState, RecentMessage

    state = ConversationState(
        agent="claims-team",
        status="thinking",
        turn_count=2,
        active_agent="writer",
        messages=[
            RecentMessage(seq=1, role="user", content="hello"),
            RecentMessage(seq=2, role="assistant", content="triaged", speaker="triage"),
        ],
    )
    with starter.out.capture() as captured:
        starter.print_state(state)
    shown = captured.get()
    assert "agent claims-team, status thinking, turns 2, speaking: writer" in shown
    [row] = [line for line in shown.splitlines() if "triaged" in line]
    assert "triage" in row.replace("triaged", "")


def test_progress_on_a_terminal_uses_a_spinner():
    import io

    from rich.console import Console

    from starter import Progress

    screen = io.StringIO()
    progress = Progress(Console(file=screen, force_terminal=True, width=80))
    progress.show("thinking")
    progress.show("calling get_claim_status")
    progress.stop()
    assert "calling get_claim_status" in screen.getvalue()
    assert "... thinking" not in screen.getvalue()  # the plain form is for pipes only


def slow_streaming_agents(db: Database, delay: float) -> AgentRegistry:
    """The demo agent on the scripted model, its replies streamed a word every `delay` s."""
    from demo.scripted_model import ScriptedChatCompletionClient

    return AgentRegistry(
        [claims_assistant(ScriptedChatCompletionClient(token_delay=delay), db.sessions)]
    )


async def read_timed(stream: asyncio.StreamReader, until: str) -> list[tuple[float, str]]:
    """(arrival time, chunk) of everything `stream` gives until its text contains `until`."""
    loop = asyncio.get_running_loop()
    chunks: list[tuple[float, str]] = []
    while until not in "".join(c for _, c in chunks):
        chunk = await asyncio.wait_for(stream.read(4096), 3 * TIMEOUT)
        assert chunk, f"{until!r} never came: {chunks}"
        chunks.append((loop.time(), chunk.decode()))
    return chunks


@pytest.mark.e2e
async def test_ask_prints_the_reply_as_it_is_written_and_ctrl_c_cancels(
    db, run_worker: WorkerFactory, session, conversations
):
    """`ask` prints the tool call as it starts and the reply's words as they come (the
    reply takes seconds to write, and arrives in several pieces); Ctrl-C interrupts it."""
    import signal

    env = {"DATABASE_URL": db.url}
    conversation_id = new_id()
    async with run_worker(db, agents=slow_streaming_agents(db, 0.4)):
        await conversations.start(conversation_id)  # running: `ask` subscribes, then sends
        ask = await session("ask", conversation_id, CLAIM_QUESTION, env=env)
        chunks = await read_timed(ask.process.stdout, "turn 1: completed")
        assert await ask.close() == 0
        out = "".join(c for _, c in chunks)
        assert out.index("[tool] get_claim_status(") < out.index("Claim 123 is in_review")
        assert "-> ok" in out
        pieces = [t for t, c in chunks if c.strip() and "turn 1:" not in c and "[tool]" not in c]
        assert len(pieces) >= 3, chunks  # the words came in several writes
        assert pieces[-1] - pieces[0] > 1.0, chunks  # over the seconds the model took

        ask = await session("ask", conversation_id, CLAIM_QUESTION + " again", env=env)
        await read_timed(ask.process.stdout, "Claim 123")  # the reply is being written
        ask.process.send_signal(signal.SIGINT)
        rest = await read_timed(ask.process.stdout, "turn 2: interrupted")
        assert await ask.close() == 0
        assert "POL-1001" not in "".join(c for _, c in rest)  # it stopped before the end
        await ask.stderr("cancelling the turn")
        state = await conversations.state(conversation_id)  # a worker answers the query
    assert state.turn_count == 2 and state.status == "idle"
