"""The CLI's answers when a conversation has ended, no worker polls, a start fails, a message
ID repeats, or the conversation is encrypted (issue 15, findings 8 and 10): one line each,
never a traceback or a silent hang."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from activities.db import Database
from conversation_client import Conversations
from interface.contract import MAX_CONVERSATION_ID_CHARS
from support.ids import new_id
from support.starter import Run, run_starter, start_starter
from support.workers import WorkerFactory

pytestmark = pytest.mark.e2e

Starter = Callable[..., Awaitable[Run]]


@pytest.fixture
def starter(temporal_address: str, task_queue: str) -> Starter:
    def run(*args: str, env: dict[str, str] | None = None) -> Awaitable[Run]:
        return run_starter(
            "--address", temporal_address, "--task-queue", task_queue, *args, env=env
        )

    return run


def one_line_error(run: Run, code: int = 1) -> str:
    assert run.code == code, run
    assert "Traceback" not in run.err, run.err
    (line,) = run.err.strip().splitlines()
    return line


async def ended_conversation(starter: Starter, conversations: Conversations) -> str:
    cid = new_id()
    await conversations.ask(cid, "!say one", "m-1")
    assert (await starter("end", cid)).code == 0
    await conversations.handle(cid).result()
    return cid


async def test_an_ended_conversation_says_so_in_one_line(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, starter: Starter
) -> None:
    async with run_worker(db):
        cid = await ended_conversation(starter, conversations)
        asked = await starter("ask", cid, "hi")
        sent = await starter("send", cid, "hi")
        ended_again = await starter("end", cid)
        approved = await starter("approve", cid, "call-1")
    for run in (asked, sent, ended_again, approved):
        line = one_line_error(run)
        assert f"conversation {cid} has ended" in line, line
        assert "another ID" in line


async def test_with_no_worker_the_cli_asks_whether_one_polls(
    temporal_address: str, task_queue: str
) -> None:
    process = await start_starter(
        "--address", temporal_address, "--task-queue", task_queue, "ask", new_id(), "hi"
    )
    try:
        assert process.stderr is not None
        line = await asyncio.wait_for(_line_containing(process.stderr, "no worker"), 20)
    finally:
        process.kill()
        await process.wait()
    assert f"is a worker polling task queue {task_queue}?" in line


async def _line_containing(stream: asyncio.StreamReader, text: str) -> str:
    while line := (await stream.readline()).decode():
        if text in line:
            return line
    raise AssertionError(f"the CLI ended without saying {text!r}")


async def test_start_with_no_worker_says_so(starter: Starter, task_queue: str) -> None:
    run = await starter("start", new_id())
    assert run.code == 0, run
    assert "is running" not in run.out
    assert f"is a worker polling task queue {task_queue}?" in run.out


async def test_start_with_an_unknown_agent_fails_in_one_line(
    db: Database, run_worker: WorkerFactory, starter: Starter
) -> None:
    cid = new_id()
    async with run_worker(db):
        run = await starter("start", cid, "--agent", "nope")
    line = one_line_error(run)
    assert "is running" not in run.out
    assert f"conversation {cid} failed" in line and "nope" in line


async def test_send_with_a_repeated_message_id_says_it_was_a_duplicate(
    db: Database, run_worker: WorkerFactory, conversations: Conversations, starter: Starter
) -> None:
    cid = new_id()
    async with run_worker(db):
        await conversations.ask(cid, "!say one", "m-1")
        first = await starter("send", cid, "!say two", "--message-id", "m-2")
        again = await starter("send", cid, "!say two", "--message-id", "m-2")
        old = await starter("send", cid, "!say one", "--message-id", "m-1")
        await conversations.ask(cid, "!say three", "m-3")
        state = await conversations.state(cid)
    assert first.code == 0 and "sent m-2" in first.out, first
    assert again.code == 0 and "m-2 was a duplicate" in again.out, again
    assert old.code == 0 and "m-1 was a duplicate" in old.out, old
    assert state.turn_count == 3


async def test_list_shows_agent_status_and_turns(
    db: Database,
    run_worker: WorkerFactory,
    conversations: Conversations,
    starter: Starter,
    indexed: bool,
) -> None:
    if not indexed:
        pytest.skip("the dev server has no search attributes")
    cid = new_id()
    async with run_worker(db):
        await conversations.ask(cid, "!say one", "m-1")
        for _ in range(40):  # visibility is eventually consistent
            listed = await starter("list", "--query", f'WorkflowId="{cid}"')
            row = next((line for line in listed.out.splitlines() if cid in line), "")
            if "idle" in row and " 1 " in row:
                break
            await asyncio.sleep(0.25)
    assert "claims-assistant" in row and "idle" in row and " 1 " in row and "RUNNING" in row, listed


async def test_a_too_long_id_is_refused_in_one_line(starter: Starter) -> None:
    line = one_line_error(await starter("ask", "x" * (MAX_CONVERSATION_ID_CHARS + 1), "hi"), 2)
    assert f"at most {MAX_CONVERSATION_ID_CHARS}" in line
