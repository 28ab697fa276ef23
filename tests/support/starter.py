"""starter.py as a user runs it: a subprocess, with a clean environment."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from settings import ENV
from support.paths import ROOT
from support.processes import python_command

__all__ = ["Run", "run_starter", "start_starter"]

TIMEOUT = 60


@dataclass
class Run:
    code: int
    out: str
    err: str


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    # the outer environment must not choose the server, namespace, queue or keys
    clean = {k: v for k, v in os.environ.items() if k not in ENV.values()}
    return {**clean, "PYTHONPATH": str(ROOT), **(extra or {})}


async def start_starter(
    *args: str, env: dict[str, str] | None = None, stdin: int | None = None
) -> asyncio.subprocess.Process:
    """starter.py started with piped output (and stdin, with `stdin=PIPE`), through the
    fork server (support/processes.py)."""
    environment = _env(env)
    return await asyncio.create_subprocess_exec(
        *await python_command(ROOT / "starter.py", *args, env=environment),
        cwd=ROOT,
        env=environment,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_starter(*args: str, env: dict[str, str] | None = None) -> Run:
    process = await start_starter(*args, env=env)
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())
