"""`./run server`: the dev server the CLI, worker and gateway find at 127.0.0.1:7233.

Runs `python -m devserver` (what `./run server` execs) on free ports, as a user would.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from devserver import DEV_SERVER_ARGS, SERVER_PORT, dev_server_command
from support.ids import new_id
from support.paths import ROOT
from worker import has_search_attributes

pytestmark = pytest.mark.e2e  # runs `./run server` and the demo as processes

EXPECTED_TYPES = {
    "AgentName": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "ConversationStatus": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "TurnCount": IndexedValueType.INDEXED_VALUE_TYPE_INT,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@asynccontextmanager
async def run_server(port: int, ui_port: int, db: Path, log: Path) -> AsyncIterator[str]:
    """`python -m devserver` until it prints its export line; stopped by PID with SIGTERM."""
    args = ["--port", str(port), "--ui-port", str(ui_port), "--db-filename", str(db)]
    with log.open("xb") as out:  # a fresh log per run: the wait reads it
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devserver", *args, cwd=ROOT, stdout=out, stderr=out
        )
    try:
        export = f"export TEMPORAL_ADDRESS=127.0.0.1:{port}"
        for _ in range(600):
            if export in log.read_text() or process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        assert export in log.read_text(), log.read_text()[-2000:]
        assert f"Web UI: http://127.0.0.1:{ui_port}" in log.read_text()
        yield f"127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0, log.read_text()[-2000:]
    assert not port_open(port), "the dev server outlived `./run server`"


async def registered(client: Client) -> dict[str, int]:
    request = ListSearchAttributesRequest(namespace=client.namespace)
    found = await client.operator_service.list_search_attributes(request)
    return {
        name: found.custom_attributes[name]
        for name in EXPECTED_TYPES.keys() & found.custom_attributes.keys()
    }


def test_the_command_is_the_documented_one(tmp_path: Path) -> None:
    command = dev_server_command(db=tmp_path / "t.db")
    assert command[1:3] == ["server", "start-dev"]
    assert command[command.index("--ip") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == str(SERVER_PORT) == "7233"
    assert command[command.index("--ui-port") + 1] == "8233"
    assert command[command.index("--db-filename") + 1] == str(tmp_path / "t.db")
    pairs = [command[i + 1] for i, arg in enumerate(command) if arg == "--search-attribute"]
    assert pairs == ["AgentName=Keyword", "ConversationStatus=Keyword", "TurnCount=Int"]
    assert " ".join(DEV_SERVER_ARGS) in " ".join(command)  # the poll cap is lifted
    run = (ROOT / "run").read_text()
    assert 'server)\n    ensure_venv\n    exec .venv/bin/python -m devserver "$@"' in run


async def test_run_server_registers_attributes_and_keeps_state_across_restarts(
    tmp_path: Path,
) -> None:
    port, ui_port = free_port(), free_port()
    db = tmp_path / ".data" / "temporal.db"
    workflow_id = new_id("kept")
    async with run_server(port, ui_port, db, tmp_path / "first.log") as address:
        client = await Client.connect(address)
        assert await registered(client) == EXPECTED_TYPES
        assert await has_search_attributes(client)
        # nobody polls this queue: the run stays open, stored in the db file
        await client.start_workflow(
            "NoSuchWorkflow", id=workflow_id, task_queue=f"nobody-{uuid.uuid4().hex}"
        )
    assert db.stat().st_size > 0
    async with run_server(port, ui_port, db, tmp_path / "second.log") as address:
        client = await Client.connect(address)
        described = await client.get_workflow_handle(workflow_id).describe()
        assert described.status == WorkflowExecutionStatus.RUNNING
        assert await registered(client) == EXPECTED_TYPES


async def test_a_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devserver", "--port", str(port), "--ui-port", str(free_port()),
            "--db-filename", str(tmp_path / "t.db"), cwd=ROOT, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1
    assert stderr.decode().strip() == (
        f"127.0.0.1:{port} is in use: is a Temporal server already running?"
    )


async def test_worker_warning_says_how_to_create_the_attributes(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A namespace without the attributes: the warning carries the commands that fix it."""
    namespace = new_id("bare")
    retention = Duration(seconds=86400)
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=retention)
    )
    bare = Client(client.service_client, namespace=namespace)
    for _ in range(50):  # the new namespace reaches the frontend's cache within a few seconds
        try:
            await registered(bare)
            break
        except RPCError:
            await asyncio.sleep(0.2)
    with caplog.at_level(logging.WARNING):
        assert not await has_search_attributes(bare)
    [record] = [r for r in caplog.records if "not registered" in r.getMessage()]
    address = client.service_client.config.target_host
    for name, type_ in [
        ("AgentName", "Keyword"),
        ("ConversationStatus", "Keyword"),
        ("TurnCount", "Int"),
    ]:
        command = (
            f"temporal operator search-attribute create --address {address} "
            f"--namespace {namespace} --name {name} --type {type_}"
        )
        assert command in record.getMessage()


async def test_demo_keep_running_says_where_its_server_is(tmp_path: Path) -> None:
    """`./run demo --keep-running` prints the export line for the server it started."""
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "AGENT_CODEC"))}
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path}/demo.db", "COLUMNS": "200"}
    with log.open("xb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "demo.run", "--keep-running", cwd=ROOT, env=env,
            stdout=out, stderr=out,
        )  # fmt: skip
    try:
        for _ in range(1200):
            if "Ctrl-C to stop" in log.read_text() or process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        [address] = re.findall(r"export TEMPORAL_ADDRESS=(\S+)", log.read_text())
        client = await Client.connect(address)
        assert await has_search_attributes(client)  # the demo's server, still up
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 60)
