"""The tool activity: validate, then run the tool under the ledger."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from agent_workflows.summaries import tool_interrupted, tool_message
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.bounds import MAX_RESULT_BYTES, clip, error_text, scrub, storable
from activities.errors import classified, describe
from activities.heartbeat import heartbeating
from activities.interrupt import cancel_requested
from activities.ledger import (
    Claim,
    LeaseHeld,
    LeaseLost,
    Ledger,
    LedgerKeyConflict,
    Then,
    args_hash,
)
from activities.transcript import Transcript
from agents.errors import ToolError, ToolNotStarted, ToolRetryableError, UnknownAgent
from agents.registry import AgentRegistry
from agents.tools import Tool, ToolContext, running
from interface import ErrorType, SeqMessage, ToolCall, ToolCallInput, ToolCallOutput

__all__ = ["MAX_RESULT_BYTES", "RETRYABLE", "ToolActivities", "error_output", "invoke", "render"]

RETRYABLE = (ToolRetryableError, TimeoutError, ConnectionError, OperationalError)


class ToolActivities:
    def __init__(
        self, agents: AgentRegistry, ledger: Ledger, transcript: Transcript | None = None
    ) -> None:
        self._agents = agents
        self._ledger = ledger
        self._transcript = transcript
        """Where a tool with effects writes its result messages, with its ledger row."""

    @activity.defn(name="agent.call_tool-v1")
    async def call_tool(self, request: ToolCallInput) -> ToolCallOutput:
        """Unknown tools and invalid arguments come back as error results for the model;
        retryable failures raise, so Temporal retries them under the tool's policy; what
        else escapes is a bug, retried a few times (activities.errors)."""
        with classified():
            return await self._call_tool(request)

    async def _call_tool(self, request: ToolCallInput) -> ToolCallOutput:
        try:
            tool = self._agents.get(request.agent).tool(request.name)
        except UnknownAgent as exc:
            raise ApplicationError(
                error_text(str(exc)), type=ErrorType.UNKNOWN_AGENT.value, non_retryable=True
            ) from None
        if tool is None:
            return _unknown_tool(request, self._agents.get(request.agent).tools)
        args = _parse_arguments(tool, request.arguments)
        if isinstance(args, ToolCallOutput):
            return args
        request = _storable_ids(request)
        async with heartbeating():
            try:
                return await self._run(tool, args, request)
            except (asyncio.CancelledError, ApplicationError):
                if not cancel_requested():
                    raise
                return await self._interrupted(tool, args, request)

    async def _interrupted(
        self, tool: Tool, args: BaseModel, request: ToolCallInput
    ) -> ToolCallOutput:
        """Cancelled by `cancel_turn`: what the ledger holds for the call. A committed
        effect is reported with its result; none means no effect; an external call stopped
        midway is closed as unknown, never run again."""
        if tool.kind == "read":
            return tool_interrupted()
        recorded = await self._ledger.interrupted(_claim(tool, args, request))
        return recorded or tool_interrupted()

    async def _run(self, tool: Tool, args: BaseModel, request: ToolCallInput) -> ToolCallOutput:
        ctx = ToolContext(request.conversation_id, request.turn, idempotency_key=request.key)
        claim = _claim(tool, args, request)
        written: list[ToolCallOutput] = []  # the output whose messages were written
        then = self._writer(request, written)
        try:
            if tool.kind == "read":
                return await invoke(tool, ctx, args)
            if tool.kind == "database":
                output = await self._ledger.run_database(
                    claim, lambda session: invoke(tool, ctx, args, session), then
                )
            else:
                output = await self._ledger.run_external(
                    claim,
                    lambda _: invoke(tool, ctx, args),
                    dedupes_downstream=tool.dedupes_downstream,
                    then=then,
                )
            # only if the output returned is the one written for (not an earlier attempt's)
            if any(item is output for item in written):
                return output.model_copy(update={"written": True})
            return output
        except LedgerKeyConflict as exc:
            raise ApplicationError(
                error_text(str(exc)), type=ErrorType.LEDGER_KEY_CONFLICT.value, non_retryable=True
            ) from None
        except LeaseHeld as exc:
            delay = min(exc.retry_after, timedelta(seconds=10))
            raise ApplicationError(
                error_text(str(exc)), type=ErrorType.LEASE_HELD.value, next_retry_delay=delay
            ) from None
        except LeaseLost as exc:
            raise ApplicationError(error_text(str(exc)), type=ErrorType.LEASE_LOST.value) from None
        except ToolNotStarted as exc:
            raise ApplicationError(
                error_text(f"{tool.name}: {exc}"), type="ToolNotStarted"
            ) from None

    def _writer(self, request: ToolCallInput, written: list[ToolCallOutput]) -> Then | None:
        """The result messages at `request.result_seqs`, in the ledger's transaction that
        records the result: the next model call's transaction then only reads. Not for a
        read tool (it has no transaction of its own) nor a result an earlier attempt
        recorded (the model call writes those, as it did before)."""
        transcript, seqs = self._transcript, request.result_seqs
        if transcript is None or len(seqs) != len(request.call_ids):
            return None

        async def write(session: AsyncSession, output: ToolCallOutput) -> None:
            messages = [
                SeqMessage(
                    seq=seq, message=tool_message(ToolCall(id=call, name=request.name), output)
                )
                for seq, call in zip(seqs, request.call_ids, strict=True)
            ]
            chain = request.chain_id
            if await transcript.write_on(session, request.conversation_id, chain, messages):
                written.append(output)

        return write


async def invoke(
    tool: Tool, ctx: ToolContext, args: BaseModel, session: AsyncSession | None = None
) -> ToolCallOutput:
    """Run the tool and classify what it raises. A database tool runs in the ledger's
    transaction, which rolls its writes back if it fails, and records the failure."""
    ctx.session = session
    try:
        with running(ctx):
            value = await tool.fn(ctx, args)
    except ToolNotStarted:
        raise  # the ledger forgets the claim, then _run makes it a retryable failure
    except RETRYABLE as exc:
        raise ApplicationError(
            error_text(f"{tool.name}: {describe(exc)}"), type=type(exc).__name__
        ) from None
    except (ToolError, ValidationError) as exc:
        return error_output(type(exc).__name__, str(exc))
    except Exception as exc:  # a tool bug on odd input: the model hears of it, the turn goes on
        activity.logger.warning("tool %s raised %s", tool.name, error_text(describe(exc)))
        return error_output(type(exc).__name__, str(exc))
    return ToolCallOutput(status="ok", content=render(value))


def render(value: Any) -> str:
    if isinstance(value, BaseModel):
        text = value.model_dump_json()
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str)
    return clip(text, MAX_RESULT_BYTES)


def _storable_ids(request: ToolCallInput) -> ToolCallInput:
    if "\x00" not in request.key:  # the key starts with the conversation ID
        return request
    return request.model_copy(
        update={"conversation_id": storable(request.conversation_id), "key": storable(request.key)}
    )


def error_output(error_type: str, message: str) -> ToolCallOutput:
    content = json.dumps({"error": error_type, "message": scrub(message)[:4000]})
    return ToolCallOutput(status="error", content=content, error_type=error_type)


def _claim(tool: Tool, args: BaseModel, request: ToolCallInput) -> Claim:
    info = activity.info()
    return Claim(
        key=request.key,
        conversation_id=request.conversation_id,
        tool=tool.name,
        args_hash=args_hash(tool.name, args.model_dump(mode="json")),
        owner=storable(f"{info.workflow_run_id}/{info.activity_id}"),
        attempt=info.attempt,
        lease=tool.policy.start_to_close,
    )


def _parse_arguments(tool: Tool, arguments: str) -> BaseModel | ToolCallOutput:
    try:
        raw = json.loads(arguments or "{}")
    except ValueError as exc:
        return error_output("invalid_json", f"arguments are not valid JSON: {exc}")
    try:
        return tool.args_model.model_validate(raw)
    except ValidationError as exc:
        detail = exc.errors(include_url=False, include_input=False)
        return error_output("invalid_arguments", json.dumps(detail, default=str))


def _unknown_tool(request: ToolCallInput, tools: Any) -> ToolCallOutput:
    names = sorted(t.name for t in tools)
    return error_output("unknown_tool", f"no tool named {request.name!r}; available: {names}")
