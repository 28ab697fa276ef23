"""The Temporal CLI (Go) as another SDK's client: plain JSON in, plain JSON out."""

from __future__ import annotations

import asyncio

from devserver import binary

__all__ = ["temporal", "temporal_cli"]


async def temporal_cli(address: str, *args: str) -> tuple[int, str, str]:
    """Run the `temporal` CLI with JSON output: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        binary("temporal"),
        *args,
        "--address",
        address,
        "-o",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def temporal(address: str, *args: str) -> str:
    """The CLI's stdout, for a call that must succeed."""
    code, out, err = await temporal_cli(address, *args)
    assert code == 0, err
    return out
