"""Talk to conversations from the command line: `python starter.py --help`.

Reads TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and TEMPORAL_TASK_QUEUE through its options.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from codec import KeyConfigError
from conversation_client import Conversations, connect, run_then_exit
from interface import (
    DEFAULT_TASK_QUEUE,
    ConversationState,
    StartConversation,
    ToolCallRecord,
    ToolDecision,
)
from settings import WorkerSettings

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
# plain text: replies, arguments and IDs may contain what rich reads as markup
out = Console(soft_wrap=True, markup=False, highlight=False)
err = Console(stderr=True, soft_wrap=True, markup=False, highlight=False)

ConversationId = Annotated[str, typer.Argument(metavar="ID", help="the conversation's ID")]
Text = Annotated[str, typer.Argument(metavar="TEXT", help="the user's message")]
MessageId = Annotated[str | None, typer.Option(help="defaults to a new m-<uuid4>")]
ToolCallId = Annotated[str, typer.Argument(metavar="TOOL_CALL_ID")]
Reason = Annotated[str, typer.Option(help="recorded with the decision")]


@dataclass
class Target:
    address: str
    namespace: str
    task_queue: str


class Unreachable(Exception):
    """Connecting failed; the SDK raises RuntimeError, not RPCError, for that."""


@app.callback()
def main(
    ctx: typer.Context,
    address: Annotated[str, typer.Option(envvar="TEMPORAL_ADDRESS")] = "localhost:7233",
    namespace: Annotated[str, typer.Option(envvar="TEMPORAL_NAMESPACE")] = "default",
    task_queue: Annotated[str, typer.Option(envvar="TEMPORAL_TASK_QUEUE")] = DEFAULT_TASK_QUEUE,
) -> None:
    """Durable agent conversations on Temporal."""
    ctx.obj = Target(address, namespace, task_queue)


def fail(message: str, code: int) -> NoReturn:
    err.print(f"error: {message}")
    raise typer.Exit(code)


async def _with_client(target: Target, action: Callable[[Conversations], Awaitable[T]]) -> T:
    try:
        converter = WorkerSettings.from_env().data_converter()  # AGENT_CODEC_KEYS, as the worker
    except KeyConfigError as error:
        fail(f"payload encryption: {error}", 2)
    try:
        client = await connect(target.address, target.namespace, converter)
    except RuntimeError as error:
        raise Unreachable(str(error)) from error
    return await action(Conversations(client, target.task_queue))


def call(
    ctx: typer.Context,
    action: Callable[[Conversations], Awaitable[T]],
    conversation_id: str | None = None,
) -> T:
    """Run one client call, turning Temporal's errors into a message and an exit code."""
    target: Target = ctx.obj
    try:
        return asyncio.run(_with_client(target, action))
    except Unreachable as error:
        fail(f"cannot reach Temporal at {target.address}: {error}", 2)
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        fail(f"rejected: {getattr(cause, 'message', None) or cause or error}", 1)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND and conversation_id:
            fail(f"no conversation {conversation_id}: {error.message}", 1)
        if error.status == RPCStatusCode.UNAVAILABLE:
            fail(f"cannot reach Temporal at {target.address}: {error.message}", 2)
        if error.status == RPCStatusCode.DEADLINE_EXCEEDED:
            hint = f"is a worker polling task queue {target.task_queue}?"
            fail(f"Temporal did not answer in time ({hint}): {error.message}", 1)
        fail(f"Temporal refused: {error.status.name if error.status else ''} {error.message}", 1)


def new_message_id() -> str:
    return f"m-{uuid.uuid4()}"


def short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tool_table(calls: list[ToolCallRecord]) -> Table:
    table = Table("id", "name", "arguments", "status", "result", title="tool calls")
    for record in calls:
        table.add_row(
            record.id,
            record.name,
            short(record.arguments),
            record.status,
            short(record.result),
        )
    return table


@app.command()
def start(
    ctx: typer.Context,
    conversation_id: ConversationId,
    agent: Annotated[str, typer.Option()] = "claims-assistant",
) -> None:
    """Start a conversation, or attach to it if it is already running."""
    handle = call(ctx, lambda c: c.start(conversation_id, StartConversation(agent=agent)))
    out.print(f"conversation {conversation_id} is running (run {handle.result_run_id})")


@app.command()
def send(
    ctx: typer.Context, conversation_id: ConversationId, text: Text, message_id: MessageId = None
) -> None:
    """Send a message without waiting for the reply (signal-with-start)."""
    mid = message_id or new_message_id()
    call(ctx, lambda c: c.send(conversation_id, text, mid))
    out.print(f"sent {mid} to {conversation_id}")


@app.command()
def ask(
    ctx: typer.Context, conversation_id: ConversationId, text: Text, message_id: MessageId = None
) -> None:
    """Send a message and wait for the turn's reply (update-with-start)."""
    mid = message_id or new_message_id()
    result = call(ctx, lambda c: c.ask(conversation_id, text, mid))
    out.print(result.reply)
    if result.tool_calls:
        out.print(tool_table(result.tool_calls))
    out.print(f"turn {result.turn}: {result.status} (message {result.message_id})")


def print_state(state: ConversationState) -> None:
    out.print(f"agent {state.agent}, status {state.status}, turns {state.turn_count}")
    usage = state.usage
    out.print(f"usage: {usage.prompt_tokens} prompt, {usage.completion_tokens} completion tokens")
    if state.pending_approvals:
        table = Table("tool call id", "name", "arguments", "turn", title="pending approvals")
        for pending in state.pending_approvals:
            table.add_row(
                pending.tool_call_id,
                pending.name,
                short(pending.arguments),
                str(pending.turn),
            )
        out.print(table)
    table = Table("seq", "role", "name", "content", title="recent messages")
    for message in state.messages:
        table.add_row(
            str(message.seq), message.role, message.name or "", short(message.content, 80)
        )
    out.print(table)


@app.command()
def state(
    ctx: typer.Context,
    conversation_id: ConversationId,
    as_json: Annotated[bool, typer.Option("--json", help="print the raw query result")] = False,
) -> None:
    """Show a conversation's status, usage, pending approvals and recent messages."""
    result = call(ctx, lambda c: c.state(conversation_id), conversation_id)
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        print_state(result)


def decide(
    ctx: typer.Context,
    conversation_id: str,
    tool_call_id: str,
    approve: bool,
    reason: str,
) -> None:
    decision = ToolDecision(tool_call_id=tool_call_id, approve=approve, reason=reason)
    call(ctx, lambda c: c.decide(conversation_id, decision), conversation_id)
    verb = "approved" if approve else "denied"
    out.print(f"{verb} {tool_call_id} in {conversation_id}")


@app.command()
def approve(
    ctx: typer.Context,
    conversation_id: ConversationId,
    tool_call_id: ToolCallId,
    reason: Reason = "",
) -> None:
    """Approve a tool call that waits for a person."""
    decide(ctx, conversation_id, tool_call_id, True, reason)


@app.command()
def deny(
    ctx: typer.Context,
    conversation_id: ConversationId,
    tool_call_id: ToolCallId,
    reason: Reason = "",
) -> None:
    """Deny a tool call that waits for a person."""
    decide(ctx, conversation_id, tool_call_id, False, reason)


@app.command()
def end(ctx: typer.Context, conversation_id: ConversationId) -> None:
    """Finish the conversation after its current turn."""
    call(ctx, lambda c: c.end(conversation_id), conversation_id)
    out.print(f"{conversation_id} will end after its current turn")


@app.command("list")
def list_(
    ctx: typer.Context,
    query: Annotated[str, typer.Option(help="a Temporal list filter")] = "",
) -> None:
    """List conversations, newest first."""

    async def collect(c: Conversations) -> list[tuple[str, str]]:
        return [row async for row in c.list(query)]

    table = Table("conversation", "status")
    for row in call(ctx, collect):
        table.add_row(*row)
    out.print(table)


if __name__ == "__main__":
    run_then_exit(app)
