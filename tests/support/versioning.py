"""Worker Deployment helpers for the versioning test and the history recorder."""

from __future__ import annotations

import asyncio

from temporalio.api.workflowservice.v1 import SetWorkerDeploymentCurrentVersionRequest
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.service import RPCError

__all__ = ["make_current"]


async def make_current(client: Client, version: WorkerDeploymentVersion) -> None:
    """`temporal worker deployment set-current-version`, once the build's worker polls."""
    request = SetWorkerDeploymentCurrentVersionRequest(
        namespace=client.namespace,
        deployment_name=version.deployment_name,
        build_id=version.build_id,
    )
    for _ in range(100):
        try:
            await client.workflow_service.set_worker_deployment_current_version(request)
            return
        except RPCError:  # the version is not registered until its worker has polled
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{version} never became current")
