"""Debian's Chromium for the browser tests (test_web_ui.py, test_chat_page.py), driven by
Playwright without its browser download: `apt-get install -y chromium` when it is missing."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

__all__ = ["CHROMIUM", "chromium_or_skip", "headless", "install_chromium", "new_page"]

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_LOCK = Path(tempfile.gettempdir()) / "durable-agents-chromium-install.lock"
"""Held while one test process installs: the suite's processes (`-n 3`) start their browser
tests at once, and a second `apt-get` fails on dpkg's lock instead of waiting."""


def install_chromium() -> str | None:
    """`apt-get install -y chromium` (after `apt-get update` if that fails); the reason when
    it cannot be done."""
    apt = shutil.which("apt-get")
    if apt is None:
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "installing it needs root: apt-get install chromium"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # wait for dpkg's lock if another apt-get (not one of ours) holds it
    install = [apt, "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "chromium"]
    problem = None
    for steps in ([install], [[apt, "update", "-q"], install]):  # the package list may be stale
        problem = None
        for step in steps:
            done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                problem = f"`{' '.join(step)}` failed: {done.stderr.strip()[-500:]}"
                break
        if problem is None:
            return None
    return problem


def chromium_or_skip(what: str) -> Path:
    """Debian's Chromium, installed if missing. Missing and not installable: a failure in
    CI, a skip elsewhere."""
    problem = None
    if not CHROMIUM.exists():
        with INSTALL_LOCK.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not CHROMIUM.exists():  # another process may have installed it meanwhile
                problem = install_chromium()
    if problem is None and not CHROMIUM.exists():
        problem = "the chromium package did not install /usr/bin/chromium"
    if problem is not None:
        reason = f"{what} needs Chromium at {CHROMIUM}: {problem}"
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@asynccontextmanager
async def headless(chromium: Path) -> AsyncIterator[Browser]:
    """That Chromium, launched headless by Playwright."""
    async with async_playwright() as playwright:
        # no sandbox: the tests run as root, where Chromium refuses its sandbox
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=["--no-sandbox"]
        )
        yield launched
        await launched.close()


@asynccontextmanager
async def new_page(
    browser: Browser, width: int, height: int, timeout_ms: int
) -> AsyncIterator[Page]:
    """A page in a context of its own, of that viewport, waiting at most `timeout_ms`."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(timeout_ms)
    yield await context.new_page()
    await context.close()
