"""The type of conftest's `run_worker` fixture."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from temporalio.worker import Worker

__all__ = ["WorkerFactory"]

WorkerFactory = Callable[..., AbstractAsyncContextManager[Worker]]
