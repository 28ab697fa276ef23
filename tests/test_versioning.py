"""Worker Deployment versioning: an old and a new build serve their conversations at once.

Build A is today's workflow; build B is a workflow change that adds a command (a timer at
each turn's start), which would break A's runs with a nondeterminism error if they replayed
on B. Pinned, A's runs stay on A until they continue as new, then move to B.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from agent_workflows.conversation import AgentConversation
from temporalio import common, workflow
from temporalio.api.enums.v1 import EventType, VersioningBehavior
from temporalio.client import Client, WorkflowHistory
from temporalio.common import WorkerDeploymentVersion
from temporalio.plugin import SimplePlugin
from temporalio.worker import Worker

from activities.db import Database
from agent_conversations import AgentConversationsPlugin
from conversation_client import Conversations
from interface import ConversationSettings, ConversationSummary, StartConversation
from interface.contract import WORKFLOW_TYPE
from settings import WorkerSettings
from support.processes import worker_process
from support.versioning import make_current
from worker import configured, default_agents


@workflow.defn(name=WORKFLOW_TYPE)
class ConversationB(AgentConversation):
    """A new release whose turns start with a timer: a command build A's histories lack."""

    @workflow.run
    async def run(self, start: StartConversation) -> ConversationSummary:
        return await super().run(start)

    async def _run_turn(self) -> None:
        await workflow.sleep(timedelta(milliseconds=1))
        await super()._run_turn()


def _build_b(existing: Sequence[type] | None) -> Sequence[type]:
    return [ConversationB if w is AgentConversation else w for w in existing or []]


@asynccontextmanager
async def _build(
    client: Client, task_queue: str, db: Database, version: WorkerDeploymentVersion
) -> AsyncIterator[None]:
    """A versioned worker of `version`; build "b" runs `ConversationB`."""
    agents = default_agents(WorkerSettings(), db)
    plugins = [AgentConversationsPlugin(agents, db, search_attributes=False, deployment=version)]
    if version.build_id == "b":
        plugins.append(SimplePlugin("build-b", workflows=_build_b))
    async with Worker(client, task_queue=task_queue, plugins=plugins):
        yield


def _builds(history: WorkflowHistory) -> set[str]:
    """The builds that completed the run's workflow tasks."""
    return {
        e.workflow_task_completed_event_attributes.deployment_version.build_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    }


def _timers(history: WorkflowHistory) -> int:
    return sum(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in history.events)


def _failed_tasks(history: WorkflowHistory) -> int:
    return sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED for e in history.events)


async def _runs(client: Client, cid: str) -> list[WorkflowHistory]:
    """The conversation's runs' histories, oldest first."""
    runs = [e.run_id async for e in client.list_workflows(f'WorkflowId="{cid}"')]
    histories = [await client.get_workflow_handle(cid, run_id=r).fetch_history() for r in runs]
    return sorted(histories, key=lambda h: h.events[0].event_time.ToDatetime())


@pytest.mark.timeout(120)
async def test_old_and_new_build_serve_their_conversations_at_once(
    client: Client, task_queue: str, db: Database
) -> None:
    deployment = f"agents-{uuid.uuid4().hex[:8]}"
    a, b = (WorkerDeploymentVersion(deployment, build) for build in ("a", "b"))
    conversations = Conversations(client, task_queue)
    start = StartConversation(settings=ConversationSettings(max_turns_per_run=2))
    c1, c2 = f"c1-{uuid.uuid4().hex[:6]}", f"c2-{uuid.uuid4().hex[:6]}"
    async with AsyncExitStack() as workers:
        await workers.enter_async_context(_build(client, task_queue, db, a))
        await make_current(client, a)
        await conversations.ask(c1, "Check policy status for claim 123", "m-1", start)

        await workers.enter_async_context(_build(client, task_queue, db, b))
        await make_current(client, b)
        await conversations.ask(c2, "Check policy status for claim 123", "m-1", start)
        # c1's second turn is answered by build A: B would replay its run and fail
        second = await conversations.ask(c1, "Check policy status for claim 124", "m-2", start)
        assert second.status == "completed" and second.reply
        # the second turn ended the run: c1 continued as new, onto build B
        third = await conversations.ask(c1, "Check policy status for claim 125", "m-3", start)
        assert third.status == "completed" and third.reply

        described = await client.get_workflow_handle(c1).describe()
        versioning = described.raw_description.workflow_execution_info.versioning_info
        assert versioning.deployment_version.build_id == "b"
        assert versioning.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_PINNED

    first_run, second_run = await _runs(client, c1)
    assert _builds(first_run) == {"a"} and _timers(first_run) == 0
    assert first_run.events[-1].event_type == (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    )
    assert _builds(second_run) == {"b"} and _timers(second_run) == 1
    [c2_run] = await _runs(client, c2)
    assert _builds(c2_run) == {"b"} and _timers(c2_run) == 1
    assert not any(_failed_tasks(h) for h in (first_run, second_run, c2_run))


def test_versioning_is_off_without_the_environment_variables() -> None:
    assert WorkerSettings.from_env({}).deployment() is None


def test_the_environment_names_the_deployment_and_build() -> None:
    env = {"WORKER_DEPLOYMENT_NAME": "agents", "WORKER_BUILD_ID": "2026-12-01.1"}
    version = WorkerSettings.from_env(env).deployment()
    assert version == WorkerDeploymentVersion("agents", "2026-12-01.1")


@pytest.mark.parametrize(
    "env",
    [
        {"WORKER_BUILD_ID": "b1"},
        {"WORKER_DEPLOYMENT_NAME": "agents"},
        {"WORKER_DEPLOYMENT_NAME": "my.agents", "WORKER_BUILD_ID": "b1"},
    ],
)
def test_a_half_configured_deployment_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="WORKER_"):
        WorkerSettings.from_env(env).deployment()


async def test_the_plugin_versions_the_worker_only_when_given_a_deployment(
    client: Client, task_queue: str, db: Database
) -> None:
    agents = default_agents(WorkerSettings(), db)
    version = WorkerDeploymentVersion("agents", "b1")
    plain, versioned = (
        Worker(
            client,
            task_queue=task_queue,
            plugins=[AgentConversationsPlugin(agents, db, deployment=deployment)],
        ).config(active_config=True)
        for deployment in (None, version)
    )
    assert plain.get("deployment_config") is None
    config = versioned["deployment_config"]  # type: ignore[typeddict-item]
    assert config.version == version and config.use_worker_versioning
    assert config.default_versioning_behavior == common.VersioningBehavior.PINNED


def test_the_worker_refuses_a_half_configured_deployment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORKER_BUILD_ID", "b1")
    monkeypatch.delenv("WORKER_DEPLOYMENT_NAME", raising=False)
    with pytest.raises(SystemExit, match="WORKER_DEPLOYMENT_NAME and WORKER_BUILD_ID"):
        configured([])


@pytest.mark.e2e
@pytest.mark.timeout(180)
async def test_worker_processes_of_two_builds_from_the_environment(
    client: Client, temporal_address: str, task_queue: str, db: Database, tmp_path: Path
) -> None:
    deployment = f"agents-{uuid.uuid4().hex[:8]}"
    conversations = Conversations(client, task_queue)
    c1, c2 = f"c1-{uuid.uuid4().hex[:6]}", f"c2-{uuid.uuid4().hex[:6]}"
    options = dict(database_url=db.url, temporal_address=temporal_address, task_queue=task_queue)
    async with AsyncExitStack() as workers:
        for build, cid in (("a", c1), ("b", c2)):
            env = {"WORKER_DEPLOYMENT_NAME": deployment, "WORKER_BUILD_ID": build}
            log = tmp_path / f"worker-{build}.log"
            await workers.enter_async_context(worker_process(log=log, extra_env=env, **options))
            assert f"deployment {deployment}, build {build}" in log.read_text()
            await make_current(client, WorkerDeploymentVersion(deployment, build))
            await conversations.ask(cid, "Check policy status for claim 123", "m-1")
        await conversations.ask(c1, "Check policy status for claim 124", "m-2")
        for cid, build in ((c1, "a"), (c2, "b")):
            described = await client.get_workflow_handle(cid).describe()
            info = described.raw_description.workflow_execution_info.versioning_info
            assert info.deployment_version.build_id == build
            assert info.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_PINNED
