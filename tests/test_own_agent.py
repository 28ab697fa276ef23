"""docs/own-agent.md's example runs as written, and `worker.py --agents` serves its agents."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from agent_conversations import AgentRegistry, ConfigurationError, module_names, register_modules
from conversation_client import Conversations
from interface import ErrorType, StartConversation
from settings import ENV
from support.paths import ROOT

DOC = ROOT / "docs" / "own-agent.md"
TIMEOUT = 120


README = ROOT / "README.md"


def example_code(page: Path = DOC) -> str:
    """The page's complete example, exactly as a reader copies it: its first python block
    (in the README, the first one of `## Your own agent`)."""
    text = page.read_text()
    if page == README:
        text = text[text.index("## Your own agent") :]
    return re.findall(r"^```python\n(.*?)^```$", text, re.S | re.M)[0]


def rows(database: Path, query: str) -> list[tuple]:
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(query))]
    finally:
        engine.dispose()


def clean_env(**extra: str) -> dict[str, str]:
    """The outer environment must not choose the server, queue or database."""
    env = {k: v for k, v in os.environ.items() if k not in ENV.values()}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}


async def run(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=cwd, env=env, stdout=-1, stderr=-1
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.e2e  # the example file runs as its own process
@pytest.mark.parametrize("page", [README, DOC], ids=["README", "own-agent.md"])
async def test_the_documented_example_runs_as_written(
    tmp_path: Path, temporal_address: str, page: Path
):
    (tmp_path / "my_agents.py").write_text(example_code(page))
    database = tmp_path / "mine.db"
    env = clean_env(TEMPORAL_ADDRESS=temporal_address, DATABASE_URL=f"sqlite:///{database}")
    code, out, err = await run("my_agents.py", cwd=tmp_path, env=env)
    assert code == 0, err[-3000:]
    greeted = rows(database, "SELECT id, conversation_id, name FROM my_greetings")
    tickets = rows(database, "SELECT id, conversation_id, subject FROM my_tickets")
    assert [(name, cid.startswith("greeter-")) for _, cid, name in greeted] == [("Ada", True)]
    assert [(s, cid.startswith("helpdesk-")) for _, cid, s in tickets] == [
        ("The printer is on fire", True)
    ]
    replies = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    assert f'"greeting_id": {greeted[0][0]}' in replies["greeter"]
    assert "Hello, Ada!" in replies["greeter"]
    assert f'"ticket_id": {tickets[0][0]}' in replies["helpdesk"]
    ledger = rows(database, "SELECT tool, status FROM tool_ledger ORDER BY tool")
    assert ledger == [("open_ticket", "succeeded"), ("record_greeting", "succeeded")]


@pytest.mark.e2e  # worker.py as a process
async def test_worker_py_serves_the_agents_of_a_named_module(
    tmp_path: Path, temporal_address: str, client: Client, task_queue: str
):
    (tmp_path / "my_agents.py").write_text(example_code())
    database = tmp_path / "mine.db"  # empty: the worker creates the module's TABLES
    log = tmp_path / "worker.log"
    env = clean_env(
        TEMPORAL_ADDRESS=temporal_address,
        TEMPORAL_TASK_QUEUE=task_queue,
        DATABASE_URL=f"sqlite:///{database}",
    )
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "worker.py"), "--agents", "my_agents",
            cwd=tmp_path, env=env, stdout=out, stderr=out,
        )  # fmt: skip
    try:
        await until_polling(process, log)
        assert "agents from my_agents" in log.read_text()
        conversations = Conversations(client, task_queue)
        result = await conversations.ask(
            "own-worker-1",
            '!call record_greeting {"name": "Grace"}',
            "own-worker-1-m1",
            StartConversation(agent="greeter"),
        )
        assert "Hello, Grace!" in result.reply
        with pytest.raises(WorkflowUpdateFailedError) as failed:  # the demo's are not served
            await conversations.ask("own-worker-2", "hi", "m-2", StartConversation())
        cause = failed.value.cause
        assert isinstance(cause, ApplicationError), repr(cause)
        assert cause.type == ErrorType.UNKNOWN_AGENT and "claims-assistant" in cause.message
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
    assert rows(database, "SELECT name FROM my_greetings") == [("Grace",)]
    assert rows(database, "SELECT name FROM sqlite_master WHERE name = 'claims'") == []


async def until_polling(process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + 60
    while b"worker polling" not in log.read_bytes():
        assert process.returncode is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        await asyncio.sleep(0.1)


@pytest.mark.e2e  # worker.py as a process
async def test_worker_py_names_a_missing_agent_module(tmp_path: Path):
    env = clean_env(DATABASE_URL=f"sqlite:///{tmp_path}/agents.db")
    code, _, err = await run(
        str(ROOT / "worker.py"), "--agents", "no_such_agents", cwd=tmp_path, env=env
    )
    assert code != 0
    assert "agent module 'no_such_agents' not found" in err


def test_register_modules_names_what_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "without_register.py").write_text("AGENTS = []\n")
    (tmp_path / "broken_import.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigurationError, match="'without_register' has no register"):
        register_modules(AgentRegistry(), ["without_register"])
    with pytest.raises(ConfigurationError, match="'nope.agents' not found"):
        register_modules(AgentRegistry(), ["nope.agents"])
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        register_modules(AgentRegistry(), ["broken_import"])  # its own import: not hidden
    (tmp_path / "bad_tables.py").write_text("TABLES = ['claims']\ndef register(r): pass\n")
    with pytest.raises(ConfigurationError, match="'bad_tables': TABLES must be a TableSet"):
        register_modules(AgentRegistry(), ["bad_tables"])


def test_register_modules_returns_the_modules_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "one_set.py").write_text(
        "from sqlalchemy import MetaData\nfrom activities.db import TableSet\n"
        "TABLES = TableSet('one', metadata=MetaData())\ndef register(r): pass\n"
    )
    (tmp_path / "no_tables.py").write_text("def register(r): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    tables = register_modules(AgentRegistry(), ["one_set", "no_tables"])
    assert [t.name for t in tables] == ["one"]


def test_module_names_from_options_and_environment():
    assert module_names(["a.b,c", " d ", "c"]) == ["a.b", "c", "d"]
    assert module_names([None]) == []
    assert module_names(["x, ,y"]) == ["x", "y"]
