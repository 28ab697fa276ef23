"""Worker processes seen from outside: start, wait until polling, CPU time and memory."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.host import READY, HostConfig

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Host:
    """A running `bench.host` process."""

    process: asyncio.subprocess.Process
    config: HostConfig
    log: Path

    @property
    def stats(self) -> psutil.Process:
        return psutil.Process(self.process.pid)

    def cpu_seconds(self) -> float:
        times = self.stats.cpu_times()
        return float(times.user + times.system)

    def rss_mb(self) -> float:
        return float(self.stats.memory_info().rss) / 2**20

    def peak_rss_mb(self) -> float:
        """The kernel's high-water mark of the process's RSS (VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return self.rss_mb()

    async def quiet(self, *, below: float = 0.03, window: float = 0.5, limit: float = 120) -> None:
        """Wait until the process uses less than `below` of a core over `window` seconds."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            before = self.cpu_seconds()
            await asyncio.sleep(window)
            if (self.cpu_seconds() - before) / window < below:
                return


@asynccontextmanager
async def host_process(config: HostConfig, log: Path) -> AsyncIterator[Host]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **config.env()}
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.host", cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        await wait_for_line(process, log, READY.encode())
        yield Host(process, config, log)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 60)


async def wait_for_line(process: asyncio.subprocess.Process, log: Path, marker: bytes) -> None:
    deadline = time.monotonic() + 90
    while marker not in log.read_bytes():
        if process.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{log.name}: worker did not start:\n{log.read_text()[-3000:]}")
        await asyncio.sleep(0.05)
