"""starter.py and worker.py as subprocesses, started through the fork server.

`python_command(script, ...)` is the argv of `python <script> ...`: a small launcher
process (support/launcher.py) whose child is forked from support/forkserver.py, which
imported the project once for the session. The test sees a process of its own with the
script's exit code, stdout and stderr; the script's module body runs in it as `__main__`
with the test's environment. It saves about 6 s of CPU per start (the imports).
`TESTS_FORKSERVER=0` runs `python <script>` itself instead. Some tests always run the real
interpreter (test_own_agent, test_envconfig, the AG2 import check, the gateway and bench).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import devserver
from devserver import WorkerProcess
from support.paths import ROOT

__all__ = ["python_command", "worker_process"]

HERE = Path(__file__).resolve().parent
ENABLED = os.environ.get("TESTS_FORKSERVER", "1") != "0"
READY_TIMEOUT = 300  # the first start imports everything, on a loaded machine


class _Server:
    """One fork server per PYTHONPATH, so its children's sys.path is what a fresh
    `python <script>` with that PYTHONPATH has."""

    def __init__(self, python_path: str) -> None:
        self.folder = tempfile.mkdtemp(prefix="forkserver-")
        self.socket = os.path.join(self.folder, "sock")
        script = str(HERE / "forkserver.py")
        bootstrap = f"import runpy; runpy.run_path({script!r}, run_name='__main__')"
        self.process = subprocess.Popen(
            [sys.executable, "-c", bootstrap, self.socket],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": python_path},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.ready: Future[None] = Future()
        threading.Thread(target=self._wait_ready, daemon=True).start()
        atexit.register(self.stop)

    def _wait_ready(self) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() == b"ready":
            self.ready.set_result(None)
        else:
            self.ready.set_exception(RuntimeError(f"the fork server did not start: {line!r}"))

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # the server exits, killing any children left
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_servers: dict[str, _Server] = {}


async def python_command(script: Path, *args: str, env: dict[str, str]) -> list[str]:
    """The argv that runs `python script args` in `env`, with the project root as the
    working directory (as the callers here do) and on PYTHONPATH."""
    python_path = env.get("PYTHONPATH", "")
    if not ENABLED or str(ROOT) not in python_path.split(os.pathsep):
        return [sys.executable, str(script), *args]
    server = _servers.get(python_path)
    if server is None or server.process.poll() is not None:
        server = _servers[python_path] = _Server(python_path)
    await asyncio.wait_for(asyncio.wrap_future(server.ready), READY_TIMEOUT)
    launcher = [sys.executable, "-I", "-S", str(HERE / "launcher.py"), server.socket]
    return [*launcher, str(script), *args]


def worker_process(**options: Any) -> AbstractAsyncContextManager[WorkerProcess]:
    """devserver.worker_process (a `python worker.py` until it polls), through the fork
    server: the same environment, log file, readiness and SIGTERM at the end."""
    return devserver.worker_process(**options, launch=_forked)


async def _forked(script: Path, env: dict[str, str]) -> list[str]:
    return await python_command(script, env=env)
