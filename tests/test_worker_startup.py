"""worker.py waits for a database or Temporal that is not up yet, and starts when they are;
an operator's fault is one line and an exit (issue 15, finding 6)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter

from conversation_client import Conversations
from devserver import start_dev_server
from settings import ENV
from support.databases import HAS_POSTGRES
from support.ids import new_id
from support.paths import ROOT

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def worker(log: Path, **env: str) -> AsyncIterator[asyncio.subprocess.Process]:
    clean = {k: v for k, v in os.environ.items() if k not in ENV.values()}
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "worker.py"),
            cwd=ROOT,
            env={**clean, "PYTHONPATH": str(ROOT), **env},
            stdout=out,
            stderr=out,
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def until_logged(log: Path, text: str, process: asyncio.subprocess.Process, count: int = 1):
    deadline = time.monotonic() + 60
    while log.read_text().count(text) < count:
        assert process.returncode is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        await asyncio.sleep(0.1)


async def test_a_worker_started_before_temporal_serves_once_it_is_up(tmp_path: Path) -> None:
    port, task_queue, log = free_port(), f"tq-{new_id()}", tmp_path / "worker.log"
    address = f"127.0.0.1:{port}"
    env = {
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'agents.db'}",
    }
    async with worker(log, **env) as process:
        await until_logged(log, f"Temporal at {address} is not reachable", process, count=2)
        assert "Traceback" not in log.read_text()
        server = await start_dev_server(port=port)
        try:
            await until_logged(log, "worker polling", process)
            client = server.client
            assert client.data_converter is pydantic_data_converter
            conversations = Conversations(client, task_queue)
            result = await asyncio.wait_for(conversations.ask(new_id(), "!say up", "m-1"), 60)
        finally:
            process.kill()
            await process.wait()
            await server.shutdown()
    assert result.reply == "up"
    retries = [line for line in log.read_text().splitlines() if "is not reachable" in line]
    assert all("retrying in" in line for line in retries)


async def test_a_worker_waits_for_a_database_that_is_not_up(
    tmp_path: Path, temporal_address: str
) -> None:
    log = tmp_path / "worker.log"
    env = {
        "TEMPORAL_ADDRESS": temporal_address,
        "DATABASE_URL": f"postgresql://app:hunter2secret@127.0.0.1:{free_port()}/agents",
    }
    async with worker(log, **env) as process:
        await until_logged(log, "the database at", process, count=2)
    text = log.read_text()
    assert "is not reachable (attempt 2: OperationalError" in text
    assert "Traceback" not in text and "hunter2secret" not in text


async def run_to_exit(tmp_path: Path, **env: str) -> tuple[int, str]:
    log = tmp_path / "worker.log"
    async with worker(log, **env) as process:
        code = await asyncio.wait_for(process.wait(), 60)
    return code, log.read_text()


async def test_a_bad_database_scheme_is_one_line(tmp_path: Path) -> None:
    code, text = await run_to_exit(tmp_path, DATABASE_URL="mysqlx://app:hunter2secret@db/agents")
    assert code != 0
    (line,) = text.strip().splitlines()
    assert "DATABASE_URL: scheme 'mysqlx' is not supported" in line
    assert "hunter2secret" not in text


@pytest.mark.skipif(not HAS_POSTGRES, reason="needs PostgreSQL")
async def test_bad_database_credentials_are_one_line(tmp_path: Path) -> None:
    code, text = await run_to_exit(
        tmp_path, DATABASE_URL="postgresql://no_such_role:pw12345678@127.0.0.1:5432/test"
    )
    assert code != 0
    assert "Traceback" not in text
    (line,) = [line for line in text.strip().splitlines() if "the database at" in line]
    assert "no_such_role" in line and "pw12345678" not in text
