"""Worker processes for the chaos harness, forked from a zygote that has imported worker.py.

A fresh `python worker.py` spends about 3 s of CPU importing AutoGen, LlamaIndex and the
SDK. The chaos run kills a worker every 1-3 s on a 2-core machine, so restarting by exec
would leave the machine busy importing. The zygote imports once (no threads, no Temporal
runtime yet) and forks a child per worker start; the child runs `worker.main()` unchanged,
with its own environment and log file.

The zygote speaks JSON lines. In: `{"spawn": id, "env": {...}, "log": path}`,
`{"kill": pid}`, `{"stop": true}`. Out: `{"ready": true}`, `{"spawned": id, "pid": pid}`,
`{"exited": pid, "code": code}` (negative: the signal). It signals only its own children
that it has not reaped yet, so a PID reused by another process is never hit.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODEL_TIMEOUT = "CHAOS_MODEL_START_TO_CLOSE"  # seconds; read by the child only


# --- the zygote process ----------------------------------------------------------------


def _send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _child(env: dict[str, str], log: str) -> None:
    """In the forked child: become a worker. Never returns."""
    code = 1
    try:
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(env)
        import worker

        timeout = env.get(MODEL_TIMEOUT)
        if timeout:
            _shorten_model_timeout(worker, float(timeout))
        asyncio.run(worker.main())
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _shorten_model_timeout(worker: Any, seconds: float) -> None:
    """The agents' model calls time out after `seconds` instead of their own setting
    (`--model-timeout`, for experiments; the default runs the product's settings)."""
    build = worker.default_agents

    def agents(settings: Any, db: Any) -> Any:
        registry = build(settings, db)
        for agent in registry:
            agent.model_policy = agent.model_policy.model_copy(
                update={"start_to_close": timedelta(seconds=seconds)}
            )
        return registry

    worker.default_agents = agents


def _reap(children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _send({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _stop(children: set[int]) -> None:
    for pid in children:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while children and time.monotonic() < deadline:
        _reap(children)
        time.sleep(0.05)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    while children:
        _reap(children)
        time.sleep(0.01)


def zygote() -> None:
    import worker  # noqa: F401  # the expensive imports, once, before any fork

    children: set[int] = set()
    pending = b""
    _send({"ready": True})
    while True:
        readable, _, _ = select.select([0], [], [], 0.05)
        _reap(children)
        if not readable:
            continue
        data = os.read(0, 65536)
        if not data:  # the harness is gone
            break
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            command = json.loads(line)
            if "spawn" in command:
                pid = os.fork()
                if pid == 0:
                    _child(command["env"], command["log"])
                children.add(pid)
                _send({"spawned": command["spawn"], "pid": pid})
            elif "kill" in command and command["kill"] in children:
                os.kill(command["kill"], signal.SIGKILL)
            elif "stop" in command:
                _stop(children)
                return
    _stop(children)


# --- the harness's side ----------------------------------------------------------------


@dataclass
class Child:
    pid: int
    log: Path
    exited: asyncio.Future[int] = field(repr=False)


class Zygote:
    """The zygote subprocess, seen from the harness's event loop."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self._process = process
        self._log = log
        self._spawning: dict[int, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._next = 0
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.get_running_loop().create_future()

    @classmethod
    async def start(cls, log: Path) -> Zygote:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with log.open("ab") as err:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.chaos_zygote",
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        zygote = cls(process, log)
        zygote._reader = asyncio.create_task(zygote._read())
        await asyncio.wait_for(zygote._ready, 120)
        return zygote

    async def spawn(self, env: dict[str, str], log: Path) -> Child:
        self._next += 1
        spawned = asyncio.get_running_loop().create_future()
        self._spawning[self._next] = spawned
        await self._write({"spawn": self._next, "env": env, "log": str(log)})
        pid = await asyncio.wait_for(spawned, 30)
        return Child(pid, log, self._exit_future(pid))

    async def kill(self, child: Child) -> None:
        """SIGKILL, sent by the zygote, which owns the process."""
        await self._write({"kill": child.pid})

    async def stop(self) -> None:
        if self._process.returncode is None:
            try:
                await self._write({"stop": True})
            except (BrokenPipeError, ConnectionResetError):
                pass
            await asyncio.wait_for(self._process.wait(), 60)
        if self._reader is not None:
            await self._reader

    def _exit_future(self, pid: int) -> asyncio.Future[int]:
        if pid not in self._exits:
            self._exits[pid] = asyncio.get_running_loop().create_future()
        return self._exits[pid]

    async def _write(self, message: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(message).encode() + b"\n")
        await self._process.stdin.drain()

    async def _read(self) -> None:
        assert self._process.stdout is not None
        async for line in self._process.stdout:
            message = json.loads(line)
            if "ready" in message:
                self._ready.set_result(True)
            elif "spawned" in message:
                self._spawning.pop(message["spawned"]).set_result(message["pid"])
            elif "exited" in message:
                exited = self._exit_future(message["exited"])
                if not exited.done():
                    exited.set_result(message["code"])
        # the zygote is gone: nothing more will start or exit
        gone = RuntimeError(f"the worker zygote exited; see {self._log}")
        if not self._ready.done():
            self._ready.set_exception(gone)
        for spawning in self._spawning.values():
            if not spawning.done():
                spawning.set_exception(gone)
        for exited in self._exits.values():
            if not exited.done():
                exited.set_result(0)


if __name__ == "__main__":
    zygote()
