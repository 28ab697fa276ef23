"""Every command-producing path of the workflow has a committed history that exercises it.

`test_replay` only guards the paths some history went through: a change in a path no
history covers would pass it. `PATHS` names each path and how its events look in a history;
`CALL_SITES` maps every command-producing call in workflows/*.py to the paths through it,
and `TURN_ENDINGS` every way a turn can end. A new call site, patch or turn ending without
an entry, or an entry no history shows, fails here: record one with
`python -m tests.record_histories` (docs/upgrades.md).
"""

from __future__ import annotations

import ast
import base64
import json
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from interface import ErrorType
from interface.contract import (
    ACTIVITY_CALL_TOOL,
    ACTIVITY_MODEL_CALL,
    SIGNAL_DECIDE_TOOL,
    SIGNAL_USER_MESSAGE,
)
from support.histories import HISTORIES
from support.paths import ROOT

STREAM_POLL = "__temporal_workflow_stream_poll"
"""The Workflow Stream's poll update (temporalio.contrib.workflow_streams)."""
Event = dict[str, Any]
Run = list[Event]

COMMANDS = {
    "execute_activity",
    "execute_local_activity",
    "start_activity",
    "start_local_activity",
    "start_child_workflow",
    "execute_child_workflow",
    "start_timer",
    "sleep",
    "patched",
    "deprecate_patch",
    "continue_as_new",
    "upsert_search_attributes",
    "upsert_memo",
    "get_external_workflow_handle",
}
"""`workflow.<name>(...)` calls that write a command; `wait_condition` does with a timeout."""


def _decode(payloads: dict[str, Any] | None) -> list[Any]:
    values = []
    for payload in (payloads or {}).get("payloads", []):
        data = base64.b64decode(payload.get("data", ""))
        try:
            values.append(json.loads(data))
        except ValueError:
            values.append(data.decode(errors="replace"))
    return values


def _attributes(event: Event) -> dict[str, Any]:
    return next((v for k, v in event.items() if k.endswith("EventAttributes")), {})


def _of(run: Run, kind: str) -> Iterator[dict[str, Any]]:
    """The attributes of the run's events of type EVENT_TYPE_<kind>."""
    return (_attributes(e) for e in run if e["eventType"] == f"EVENT_TYPE_{kind}")


def _summary(event: Event) -> str:
    [summary] = _decode({"payloads": [event.get("userMetadata", {}).get("summary", {})]}) or [""]
    return summary if isinstance(summary, str) else ""


def _scheduled(run: Run, activity: str, summary: str = "") -> list[Event]:
    return [
        e
        for e in run
        if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
        and _attributes(e)["activityType"]["name"] == activity
        and _summary(e).startswith(summary)
    ]


def _failed(run: Run, activity: str) -> bool:
    ids = {e["eventId"] for e in _scheduled(run, activity)}
    return any(a["scheduledEventId"] in ids for a in _of(run, "ACTIVITY_TASK_FAILED"))


def _results(run: Run) -> list[dict[str, Any]]:
    """The run's `ask` results."""
    outcomes = [
        a["outcome"].get("success") for a in _of(run, "WORKFLOW_EXECUTION_UPDATE_COMPLETED")
    ]
    return [r for o in outcomes for r in _decode(o) if isinstance(r, dict)]


def _signals(run: Run, name: str) -> list[Any]:
    signals = (a for a in _of(run, "WORKFLOW_EXECUTION_SIGNALED") if a["signalName"] == name)
    return [value for a in signals for value in _decode(a.get("input"))]


def _patch(patch_id: str) -> Callable[[Run], bool]:
    def marked(run: Run) -> bool:
        markers = (a for a in _of(run, "MARKER_RECORDED") if a["markerName"] == "core_patch")
        found = (d for a in markers for d in _decode(a["details"].get("patch-data")))
        return any(isinstance(d, dict) and d.get("id") == patch_id for d in found)

    return marked


def _parallel_tools(run: Run) -> bool:
    tasks = [
        _attributes(e)["workflowTaskCompletedEventId"] for e in _scheduled(run, ACTIVITY_CALL_TOOL)
    ]
    return len(tasks) != len(set(tasks))


def _reflection(run: Run) -> bool:
    inputs = (
        v
        for e in _scheduled(run, ACTIVITY_MODEL_CALL)
        for v in _decode(_attributes(e).get("input"))
    )
    return any(isinstance(v, dict) and v.get("tools_enabled") is False for v in inputs)


def _handoff(run: Run) -> bool:
    calls = (c for r in _results(run) for c in r.get("tool_calls", []))
    return any(c["name"].startswith("transfer_to_") for c in calls)


def _lease_held_retry(run: Run) -> bool:
    ids = {e["eventId"] for e in _scheduled(run, ACTIVITY_CALL_TOOL)}
    started = (a for a in _of(run, "ACTIVITY_TASK_STARTED") if a["scheduledEventId"] in ids)
    failures = (a.get("lastFailure", {}).get("applicationFailureInfo", {}) for a in started)
    return any(f.get("type") == ErrorType.LEASE_HELD for f in failures)


def _decided(approve: bool) -> Callable[[Run], bool]:
    def decided(run: Run) -> bool:
        return any(
            isinstance(d, dict) and d.get("approve") is approve
            for d in _signals(run, SIGNAL_DECIDE_TOOL)
        )

    return decided


def _pinned(run: Run) -> bool:
    behaviors = (a.get("versioningBehavior") for a in _of(run, "WORKFLOW_TASK_COMPLETED"))
    return "VERSIONING_BEHAVIOR_PINNED" in behaviors


def _upgrading_continue_as_new(run: Run) -> bool:
    """A run started by a continue-as-new that moved to the current build (the server
    records the behaviour in the new run's start, not in the continued-as-new event)."""
    started = (
        a.get("inheritedAutoUpgradeInfo", {}) for a in _of(run, "WORKFLOW_EXECUTION_STARTED")
    )
    behaviors = (info.get("continueAsNewInitialVersioningBehavior") for info in started)
    return "CONTINUE_AS_NEW_VERSIONING_BEHAVIOR_AUTO_UPGRADE" in behaviors


def _continued_with_queue(run: Run) -> bool:
    """A continue-as-new that carried turns still queued (wfharden: mid-queue)."""
    inputs = (
        v for a in _of(run, "WORKFLOW_EXECUTION_CONTINUED_AS_NEW") for v in _decode(a.get("input"))
    )
    return any(isinstance(v, dict) and (v.get("carried") or {}).get("queue") for v in inputs)


def _typed_failure(run: Run) -> bool:
    return any(r.get("status") == "failed" and r.get("error") for r in _results(run))


def _resumed(run: Run) -> bool:
    """A resumed turn's model calls carry `/r<n>` in their activity IDs."""
    return any(
        "/model/r" in _attributes(e)["activityId"] for e in _scheduled(run, ACTIVITY_MODEL_CALL)
    )


def _cancelled(activity: str) -> Callable[[Run], bool]:
    """`cancel_turn` cancelled the activity, and it reported (completed) what it had."""

    def cancelled(run: Run) -> bool:
        ids = {e["eventId"] for e in _scheduled(run, activity)}
        requested = {
            a["scheduledEventId"] for a in _of(run, "ACTIVITY_TASK_CANCEL_REQUESTED")
        } & ids
        completed = {a["scheduledEventId"] for a in _of(run, "ACTIVITY_TASK_COMPLETED")}
        return bool(requested & completed)

    return cancelled


def _stream_polled(run: Run) -> bool:
    accepted = _of(run, "WORKFLOW_EXECUTION_UPDATE_ACCEPTED")
    return any(
        a.get("acceptedRequest", {}).get("input", {}).get("name") == STREAM_POLL for a in accepted
    )


def _stream_carried(run: Run) -> bool:
    started = (v for a in _of(run, "WORKFLOW_EXECUTION_STARTED") for v in _decode(a.get("input")))
    return any(isinstance(v, dict) and v.get("stream") for v in started)


def _tool_wrote(run: Run) -> bool:
    results = (v for a in _of(run, "ACTIVITY_TASK_COMPLETED") for v in _decode(a.get("result")))
    return any(isinstance(v, dict) and v.get("written") is True for v in results)


def _lean_upsert(run: Run) -> bool:
    upserts = _of(run, "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES")
    fields = (a.get("searchAttributes", {}).get("indexedFields", {}) for a in upserts)
    return any("ConversationStatus" in f and "AgentName" not in f for f in fields)


def _status(status: str) -> Callable[[Run], bool]:
    return lambda run: any(r.get("status") == status for r in _results(run))


def _any(kind: str) -> Callable[[Run], bool]:
    return lambda run: any(True for _ in _of(run, kind))


PATHS: dict[str, Callable[[Run], bool]] = {
    "patch search-attributes": _patch("search-attributes"),
    "patch failed-status": _patch("failed-status"),
    "patch continue-as-new-mid-queue": _patch("continue-as-new-mid-queue"),
    "patch bounded-queue": _patch("bounded-queue"),
    "patch typed-model-failures": _patch("typed-model-failures"),
    "patch conversation-id-limit": _patch("conversation-id-limit"),
    "conversation ID over the limit: workflow fails": lambda run: any(
        (a.get("failure") or {}).get("applicationFailureInfo", {}).get("type")
        == ErrorType.INVALID_CONVERSATION_ID
        for a in _of(run, "WORKFLOW_EXECUTION_FAILED")
    ),
    "describe agent": lambda run: any(
        a["markerName"] == "core_local_activity" for a in _of(run, "MARKER_RECORDED")
    ),
    "describe agent fails: workflow fails": _any("WORKFLOW_EXECUTION_FAILED"),
    "search attributes upserted": _any("UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"),
    "patch lean-upserts": _patch("lean-upserts"),
    "patch tool-results-written": _patch("tool-results-written"),
    "tool result written with its ledger row (not carried)": _tool_wrote,
    "upsert of the changed attributes only (lean-upserts)": _lean_upsert,
    "model call": lambda run: bool(_scheduled(run, ACTIVITY_MODEL_CALL, "model:")),
    "model call fails for good": lambda run: _failed(run, ACTIVITY_MODEL_CALL),
    "model call interrupted mid-stream (cancel_turn)": _cancelled(ACTIVITY_MODEL_CALL),
    "reflection (model call without tools)": _reflection,
    "select speaker": lambda run: bool(_scheduled(run, ACTIVITY_MODEL_CALL, "select speaker:")),
    "tool call": lambda run: bool(_scheduled(run, ACTIVITY_CALL_TOOL, "call tool:")),
    "tool call fails for good": lambda run: _failed(run, ACTIVITY_CALL_TOOL),
    "tool call interrupted (cancel_turn)": _cancelled(ACTIVITY_CALL_TOOL),
    "parallel tool calls": _parallel_tools,
    "tool retried after LeaseHeld": _lease_held_retry,
    "handoff": _handoff,
    "approval approved": _decided(True),
    "approval denied": _decided(False),
    "approval times out (timer)": _any("TIMER_FIRED"),
    "approval decided before its timeout (timer cancelled)": _any("TIMER_CANCELED"),
    "turn from a user_message signal": lambda run: bool(_signals(run, SIGNAL_USER_MESSAGE)),
    "turn completed": _status("completed"),
    "turn at the step limit": _status("step_limit"),
    "turn failed (model unreachable)": _status("failed"),
    "turn failed with a typed error": _typed_failure,
    "failed turn resumed": _resumed,
    "duplicate turn": _status("duplicate"),
    "turn interrupted": _status("interrupted"),
    "continue-as-new": _any("WORKFLOW_EXECUTION_CONTINUED_AS_NEW"),
    "continue-as-new with turns queued": _continued_with_queue,
    "continue-as-new onto the current build (auto-upgrade)": _upgrading_continue_as_new,
    "run on a versioned worker (pinned)": _pinned,
    "end": _any("WORKFLOW_EXECUTION_COMPLETED"),
    "event stream polled by a subscriber (update)": _stream_polled,
    "event stream carried across continue-as-new": _stream_carried,
}
"""Each path of the workflow, and how a history that went through it shows it."""

CALL_SITES: dict[str, list[str]] = {
    "conversation.AgentConversation.run: patched(search-attributes)": ["patch search-attributes"],
    "conversation.AgentConversation.run: patched(failed-status)": ["patch failed-status"],
    "conversation.AgentConversation.run: patched(lean-upserts)": ["patch lean-upserts"],
    "conversation.AgentConversation.run: patched(tool-results-written)": [
        "patch tool-results-written"
    ],
    "conversation.AgentConversation.run: patched(conversation-id-limit)": [
        "patch conversation-id-limit",
        "conversation ID over the limit: workflow fails",
    ],
    "conversation.AgentConversation._continue_mid_queue: patched(continue-as-new-mid-queue)": [
        "patch continue-as-new-mid-queue",
        "continue-as-new with turns queued",
    ],
    "conversation.AgentConversation._unbounded_before_patch: patched(bounded-queue)": [
        "patch bounded-queue"
    ],
    "conversation.AgentConversation.run: continue_as_new": [
        "continue-as-new",
        "continue-as-new onto the current build (auto-upgrade)",
        "run on a versioned worker (pinned)",
        "event stream polled by a subscriber (update)",
        "event stream carried across continue-as-new",
    ],
    "conversation.AgentConversation._describe_agent: execute_local_activity": [
        "describe agent",
        "describe agent fails: workflow fails",
    ],
    "conversation.AgentConversation._upsert: upsert_search_attributes": [
        "search attributes upserted",
        "upsert of the changed attributes only (lean-upserts)",
    ],
    "conversation.AgentConversation._call_model: start_activity": [
        "model call",
        "model call fails for good",
        "model call interrupted mid-stream (cancel_turn)",
        "reflection (model call without tools)",
        "select speaker",
        "failed turn resumed",
    ],
    "conversation.AgentConversation._call_model: patched(typed-model-failures)": [
        "patch typed-model-failures",
        "turn failed with a typed error",
    ],
    "conversation.AgentConversation._call_tool: start_activity": [
        "tool call",
        "tool call fails for good",
        "tool call interrupted (cancel_turn)",
        "parallel tool calls",
        "tool retried after LeaseHeld",
        "tool result written with its ledger row (not carried)",
    ],
    "conversation.AgentConversation._await_approval: wait_condition(timeout)": [
        "approval approved",
        "approval denied",
        "approval times out (timer)",
        "approval decided before its timeout (timer cancelled)",
    ],
}
"""Every command-producing call in workflows/*.py -> the paths that go through it."""

TURN_ENDINGS: dict[str, list[str]] = {
    "completed": ["turn completed", "handoff"],
    "step_limit": ["turn at the step limit"],
    "failed": ["turn failed (model unreachable)"],
    "duplicate": ["duplicate turn"],
    "interrupted": ["turn interrupted"],
}
"""Every status `TurnMachine._result` is given in workflows/turns.py -> its paths."""


def _call_sites() -> set[str]:
    """`module.Class.function: command` for each command-producing call in workflows/."""
    paths = sorted((ROOT / "workflows").glob("*.py"))
    return {site for path in paths for site in _sites_in(path.read_text(), path.stem)}


def _sites_in(source: str, module: str) -> set[str]:
    sites = set()
    for scope, call in _calls(ast.parse(source), module):
        name = call.func.attr  # type: ignore[attr-defined]
        if call.func.value.id == "asyncio":  # type: ignore[attr-defined]
            name = f"asyncio.{name}"
        elif name in ("patched", "deprecate_patch"):
            name = f"{name}({ast.literal_eval(call.args[0])})"
        elif name == "wait_condition":
            if not any(k.arg == "timeout" for k in call.keywords):
                continue
            name = "wait_condition(timeout)"
        elif name not in COMMANDS:
            continue
        sites.add(f"{scope}: {name}")
    return sites


def _calls(tree: ast.AST, scope: str) -> Iterator[tuple[str, ast.Call]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _calls(node, f"{scope}.{node.name}")
        elif isinstance(node, ast.Call) and _on_workflow(node.func):
            yield scope, node
            yield from _calls(node, scope)
        else:
            yield from _calls(node, scope)


def _on_workflow(func: ast.expr) -> bool:
    """`workflow.x(...)`, or `asyncio.sleep` / `asyncio.wait_for`, which start timers too."""
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
        return False
    return func.value.id == "workflow" or (
        func.value.id == "asyncio" and func.attr in ("sleep", "wait_for")
    )


def _turn_endings() -> set[str]:
    source = (ROOT / "workflows" / "turns.py").read_text()
    return set(re.findall(r'_result\(\s*"(\w+)"', source))


@cache
def _runs() -> dict[str, Run]:
    return {p.stem: json.loads(Path(p).read_text())["history"]["events"] for p in HISTORIES}


def test_every_command_producing_call_is_listed() -> None:
    assert _call_sites() == set(CALL_SITES), (
        "a command-producing call in workflows/ changed: list it in CALL_SITES with the "
        "paths through it, and record a history of each"
    )


def test_the_scan_finds_new_commands() -> None:
    source = """
class C:
    async def run(self):
        if workflow.patched("x"):
            await workflow.sleep(1)
        await workflow.wait_condition(lambda: True)
        await workflow.wait_condition(lambda: True, timeout=5)
        await asyncio.wait_for(f(), 3)
        workflow.logger.info("no command")
"""
    assert _sites_in(source, "m") == {
        "m.C.run: patched(x)",
        "m.C.run: sleep",
        "m.C.run: wait_condition(timeout)",
        "m.C.run: asyncio.wait_for",
    }


def test_every_turn_ending_is_listed() -> None:
    assert _turn_endings() == set(TURN_ENDINGS)


def test_listed_paths_are_known() -> None:
    listed = {p for paths in (*CALL_SITES.values(), *TURN_ENDINGS.values()) for p in paths}
    assert listed <= set(PATHS)


@pytest.mark.parametrize("path", list(PATHS))
def test_some_committed_history_goes_through(path: str) -> None:
    covering = [name for name, run in _runs().items() if PATHS[path](run)]
    assert covering, f"no committed history goes through {path!r}: record one"
