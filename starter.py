"""Talk to conversations from the command line: `python starter.py --help`.

Connects as the worker does (settings.py: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS, API
key, TOML profiles, TEMPORAL_TASK_QUEUE); its options override them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.status import Status as RichStatus
from rich.table import Table
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.db import Database
from activities.deltas import TextDeltas
from codec import KeyConfigError
from conversation_client import (
    ENCRYPTED_HINT,
    AcceptedTurn,
    Conversations,
    EncryptedConversation,
    Listed,
    encrypted_without_keys,
    run_then_exit,
)
from interface import (
    DEFAULT_TASK_QUEUE,
    ConversationState,
    ErrorType,
    StartConversation,
    ToolCallRecord,
    ToolDecision,
    TurnResult,
    UserMessage,
)
from interface.events import ConversationEvent
from observability import configure_tracing
from settings import WorkerSettings

T = TypeVar("T")
POLL_SECONDS = 0.2
"""How often `start` checks whether a worker took the conversation's first task."""
QUERY_TIMEOUT = 2.0
FINISHED_GRACE = 2.0
"""Seconds the live events may lag behind the turn's result before it prints anyway."""
NO_WORKER_SECONDS = 5.0
"""After this long without a worker's answer, the CLI asks whether one polls the queue."""

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
    settings: WorkerSettings
    address: str
    namespace: str
    task_queue: str


class Unreachable(Exception):
    """Connecting failed; the SDK raises RuntimeError, not RPCError, for that."""


class Ended(Exception):
    """The conversation exists but is closed: signals and queries find no running run."""


Address = Annotated[
    str | None,
    typer.Option(help="default: TEMPORAL_ADDRESS, the TEMPORAL_PROFILE's, localhost:7233"),
]
Namespace = Annotated[
    str | None, typer.Option(help="default: TEMPORAL_NAMESPACE, the profile's, default")
]
TaskQueue = Annotated[
    str | None, typer.Option(help=f"default: TEMPORAL_TASK_QUEUE, {DEFAULT_TASK_QUEUE}")
]


@app.callback()
def main(
    ctx: typer.Context,
    address: Address = None,
    namespace: Namespace = None,
    task_queue: TaskQueue = None,
) -> None:
    """Durable agent conversations on Temporal."""
    try:
        settings = WorkerSettings.from_env()  # connection settings as the worker reads them
    except ValueError as error:
        fail(f"settings: {error}", 2)
    ctx.obj = Target(
        settings,
        address or settings.temporal_address,
        namespace or settings.temporal_namespace,
        task_queue or settings.task_queue,
    )


def fail(message: str, code: int) -> NoReturn:
    err.print(f"error: {message}")
    raise typer.Exit(code)


async def _with_client(
    target: Target,
    action: Callable[[Conversations], Awaitable[T]],
    conversation_id: str | None = None,
) -> T:
    settings = target.settings
    try:
        plugin = settings.plugin()  # AGENT_CODEC_KEYS and tracing, as the worker
    except KeyConfigError as error:
        fail(f"payload encryption: {error}", 2)
    stop_tracing = configure_tracing(settings, "agent-cli")
    try:
        try:
            client = await settings.connect(
                plugin, target_host=target.address, namespace=target.namespace
            )
        except (OSError, ValueError) as error:
            fail(f"Temporal TLS: {error}", 2)
        except RuntimeError as error:
            raise Unreachable(str(error)) from error
        deltas = OptionalDeltas(TextDeltas(Database(settings.database_url)))
        conversations = Conversations(client, target.task_queue, deltas=deltas)
        try:
            return await action(conversations)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND and conversation_id:
                await _raise_if_closed(conversations, conversation_id)
            raise
    finally:
        stop_tracing()


class OptionalDeltas:
    """The conversation database's text deltas, for the live view: if it cannot be read
    (DATABASE_URL names no worker's database), replies print whole at each turn's end and
    the durable events still stream."""

    def __init__(self, source: TextDeltas) -> None:
        self.source = source
        self.failed = False

    def _fail(self, error: Exception) -> None:
        self.failed = True  # quietly: an error's answer stays one line (docs/cli.md)

    async def read(self, conversation_id: str, after: int) -> list[tuple[int, ConversationEvent]]:
        if not self.failed:
            try:
                return await self.source.read(conversation_id, after)
            except Exception as error:
                self._fail(error)
        return []

    async def wait(self, conversation_id: str, after: int, timeout: float = 1.0) -> None:
        if not self.failed:
            try:
                return await self.source.wait(conversation_id, after, timeout)
            except Exception as error:
                self._fail(error)
        await asyncio.sleep(timeout)

    async def position(self) -> int:
        if not self.failed:
            try:
                return await self.source.position()
            except Exception as error:
                self._fail(error)
        return 0


async def _raise_if_closed(c: Conversations, conversation_id: str) -> None:
    """Ended, if the conversation exists and is closed (completed, failed, terminated)."""
    try:
        status = (await c.handle(conversation_id).describe()).status
    except RPCError:
        return  # it does not exist: the caller's NOT_FOUND stands
    if status is not None and status != WorkflowExecutionStatus.RUNNING:
        raise Ended(ended(conversation_id, status.name.lower().replace("_", " ")))


def ended(conversation_id: str | None, how: str = "ended") -> str:
    return (
        f"conversation {conversation_id} has ended ({how}); "
        "start a new conversation with another ID"
    )


def rejection(error: WorkflowUpdateFailedError) -> str:
    """One line for a failed `ask`, chosen by the failure's type (interface.contract)."""
    cause = error.cause
    reason = getattr(cause, "message", None) or str(cause or error)
    kind = getattr(cause, "type", None)
    if kind == ErrorType.CONVERSATION_ENDING:
        return f"rejected: {reason}; start a new conversation with another ID"
    if kind in (ErrorType.UNKNOWN_AGENT, ErrorType.CONVERSATION_CLOSED):
        return f"failed: {reason}"
    if kind == ErrorType.ENCRYPTION_REQUIRED:  # its message is encrypted: we have no keys
        return f"rejected: {ENCRYPTED_HINT}"
    return f"rejected: {reason}"


def call(
    ctx: typer.Context,
    action: Callable[[Conversations], Awaitable[T]],
    conversation_id: str | None = None,
) -> T:
    """Run one client call, turning Temporal's errors into a message and an exit code."""
    target: Target = ctx.obj
    try:
        return asyncio.run(_with_client(target, action, conversation_id))
    except Exception as error:
        explained = explain(error, target, conversation_id)
        if explained is None:
            raise
        fail(*explained)


def explain(error: Exception, target: Target, cid: str | None) -> tuple[str, int] | None:
    """The one line and exit code for `error`, or None to let it surface as a bug."""
    if isinstance(error, Unreachable):
        return f"cannot reach Temporal at {target.address}: {error}", 2
    if isinstance(error, Ended | StartFailed):
        return str(error), 1
    if isinstance(error, WorkflowAlreadyStartedError):  # an ended ID is never restarted
        return ended(cid), 1
    if isinstance(error, WorkflowUpdateFailedError):
        return rejection(error), 1
    if isinstance(error, EncryptedConversation) or encrypted_without_keys(error):
        return ENCRYPTED_HINT, 2
    if isinstance(error, ValueError):  # the client's checks: the ID, the text's size
        return str(error), 2
    if isinstance(error, RPCError):
        return rpc_failure(error, target, cid)
    return None


def rpc_failure(error: RPCError, target: Target, cid: str | None) -> tuple[str, int]:
    if error.status == RPCStatusCode.NOT_FOUND and cid:
        return f"no conversation {cid}: {error.message}", 1
    if error.status == RPCStatusCode.UNAVAILABLE:
        return f"cannot reach Temporal at {target.address}: {error.message}", 2
    if error.status == RPCStatusCode.DEADLINE_EXCEEDED:
        hint = f"is a worker polling task queue {target.task_queue}?"
        return f"Temporal did not answer in time ({hint}): {error.message}", 1
    return f"Temporal refused: {error.status.name if error.status else ''} {error.message}", 1


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
    start = StartConversation(agent=agent)

    async def run(c: Conversations) -> str:
        handle = await c.start(conversation_id, start)
        if await first_task_done(c, handle):
            return f"conversation {conversation_id} is running (run {handle.result_run_id})"
        return (
            f"conversation {conversation_id} started (run {handle.result_run_id}), but no worker "
            f"has picked it up in {NO_WORKER_SECONDS:g} s: {no_worker_hint(c)}"
        )

    out.print(call(ctx, run, conversation_id))


class StartFailed(Exception):
    """The conversation failed in its first workflow task (an unknown agent, say)."""


async def first_task_done(c: Conversations, handle: WorkflowHandle) -> bool:
    """Whether a worker ran the conversation's first workflow task within
    NO_WORKER_SECONDS; StartFailed or Ended if the conversation closed meanwhile."""
    deadline = asyncio.get_running_loop().time() + NO_WORKER_SECONDS
    while True:
        description = await handle.describe()
        if description.status == WorkflowExecutionStatus.FAILED:
            try:
                await handle.result()
            except WorkflowFailureError as error:
                reason = getattr(error.cause, "message", None) or str(error.cause or error)
                raise StartFailed(f"conversation {handle.id} failed: {reason}") from None
        if description.status != WorkflowExecutionStatus.RUNNING:
            raise Ended(ended(handle.id))
        if not description.raw_description.HasField("pending_workflow_task"):
            return True  # a worker completed the workflow task: the conversation is served
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)


def no_worker_hint(c: Conversations) -> str:
    return f"is a worker polling task queue {c.task_queue}?"


@app.command()
def send(
    ctx: typer.Context, conversation_id: ConversationId, text: Text, message_id: MessageId = None
) -> None:
    """Send a message without waiting for the reply (signal-with-start)."""
    mid = message_id or new_message_id()

    async def run(c: Conversations) -> bool:
        before = await accepted_turns(c, conversation_id) if message_id else None
        await c.send(conversation_id, text, mid)
        return before is not None and await accepted_turns(c, conversation_id) == before

    if call(ctx, run, conversation_id):
        out.print(
            f"{mid} was a duplicate: {conversation_id} had it already, nothing was sent again"
        )
    else:
        out.print(f"sent {mid} to {conversation_id}")


async def accepted_turns(c: Conversations, conversation_id: str) -> int | None:
    """Turns the conversation took so far (done, running, queued), or None when it is not
    running or does not answer: a duplicate message ID leaves this unchanged."""
    try:
        state = await asyncio.wait_for(c.state(conversation_id), QUERY_TIMEOUT)
    except (RPCError, TimeoutError):
        return None
    running = state.status in ("thinking", "waiting_approval")
    return state.turn_count + state.queued_turns + int(running)


class Progress:
    """Shows progress lines: a rich spinner on a terminal, plain lines otherwise."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._status: RichStatus | None = None
        self._last: str | None = None

    def show(self, line: str | None) -> None:
        if line is None or line == self._last:
            return
        self._last = line
        if not self._console.is_terminal:
            self._console.print(f"... {line}")
        elif self._status is None:
            self._status = self._console.status(line)
            self._status.start()
        else:
            self._status.update(line)

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        self._last = None


def warn_if_silent(
    c: Conversations, since: float | None, progress: Progress | None
) -> float | None:
    """Warn once that no worker answers; the time to warn from, None once warned."""
    if since is None or asyncio.get_running_loop().time() - since < NO_WORKER_SECONDS:
        return since
    if progress is not None:
        progress.stop()
    err.print(
        f"no worker has answered for {NO_WORKER_SECONDS:g} s: {no_worker_hint(c)} (still waiting)"
    )
    return None


def print_turn(result: TurnResult) -> None:
    if result.reply:
        out.print(result.reply)
    if result.tool_calls:
        out.print(tool_table(result.tool_calls))
    out.print(f"turn {result.turn}: {result.status} (message {result.message_id})")
    if result.error is not None:
        out.print(f"error: {result.error.type}: {result.error.message}")


class EventPrinter:
    """Prints a conversation's events as they come: the reply's text as the model writes
    it, tool calls as they start and end, approvals; progress (the spinner) in between."""

    def __init__(self, agent: str, progress: Progress | None, speakers: bool) -> None:
        self.agent, self.progress, self.speakers = agent, progress, speakers
        self.open: tuple[int, int] | None = None  # the (turn, step) whose text is on the line
        self.streamed: set[int] = set()  # turns whose text was printed as it came
        self.finished: dict[str, ConversationEvent] = {}  # turn_finished, by message ID

    def end_line(self) -> None:
        if self.open is not None:
            out.print()
            self.open = None

    def status(self, line: str) -> None:
        if self.progress is not None and self.open is None:
            self.progress.show(line)

    def show(self, event: ConversationEvent) -> None:
        kind = event.type
        who = event.agent or self.agent
        if kind == "text":
            self.text(event, who)
        elif kind == "text_reset" and self.open == (event.turn, event.step or 0):
            out.print(" [the model call is retried: its text starts again]")
            self.open = None
        elif kind == "model_started":
            self.status(f"{event.agent} is thinking" if event.agent else "thinking")
        elif kind == "tool_started":
            self.end_line()
            out.print(f"  [tool] {event.name}({short(event.arguments or '')}) ...")
            self.status(f"calling {event.name}")
        elif kind == "tool_finished":
            self.end_line()
            out.print(f"  [tool] {event.name} -> {event.status}")
        elif kind == "approval_needed":
            self.end_line()
            self.status(f"waiting for approval of {event.name} ({event.tool_call_id})")
        elif kind == "approval_decided":
            self.end_line()
            out.print(f"  [approval] {event.name or event.tool_call_id} -> {event.status}")
        elif kind == "turn_finished":
            self.turn_finished(event, who)

    def text(self, event: ConversationEvent, who: str) -> None:
        key = (event.turn, event.step or 0)
        if self.open != key:
            self.end_line()
            if self.progress is not None:
                self.progress.stop()
            if self.speakers:
                out.print(f"{who}: ", end="")
            self.open = key
        out.print(event.text or "", end="")
        self.streamed.add(event.turn)

    def turn_finished(self, event: ConversationEvent, who: str) -> None:
        self.end_line()
        if self.progress is not None:
            self.progress.stop()
        if event.message_id:
            self.finished[event.message_id] = event
        if self.speakers and event.turn not in self.streamed:
            out.print(f"{who}: {event.text or ''}")
        if self.speakers and event.status != "completed":
            out.print(f"  (turn {event.turn}: {event.status})")


async def position_now(c: Conversations, conversation_id: str) -> str | None:
    """Where to read the conversation's events from: now, or its start if it is new."""
    try:
        return await asyncio.wait_for(c.event_position(conversation_id), QUERY_TIMEOUT)
    except (RPCError, TimeoutError):
        return None


async def print_events(
    c: Conversations, conversation_id: str, after: str | None, printer: EventPrinter
) -> None:
    """Show the conversation's events until cancelled; a stream that fails only loses the
    live view (each turn's result still prints)."""
    try:
        async for _, event in c.events(conversation_id, after=after):
            printer.show(event)
    except Exception as error:  # the live view only: each turn's result still prints
        err.print(f"(no live events: {type(error).__name__})")


async def warn_until_done(c: Conversations, running: Awaitable[T], progress: Progress | None) -> T:
    """Await `running`, saying once on stderr when no worker has answered it for
    NO_WORKER_SECONDS (a turn is accepted only by a worker)."""
    task = asyncio.ensure_future(running)
    done, _ = await asyncio.wait({task}, timeout=NO_WORKER_SECONDS)
    if not done:
        warn_if_silent(c, asyncio.get_running_loop().time() - NO_WORKER_SECONDS, progress)
    return await task


class Interrupts:
    """Ctrl-C while a turn runs: the first cancels the turn (`cancel_turn`), which then
    ends `interrupted`; a second one leaves at once."""

    def __init__(
        self, cancel: Callable[[], Awaitable[object]], idle: Callable[[], bool] = lambda: False
    ) -> None:
        self.cancel, self.idle = cancel, idle
        self.pressed = 0
        self.tasks: set[asyncio.Task[object]] = set()

    def __enter__(self) -> Interrupts:
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, self.interrupt)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)

    def interrupt(self) -> None:
        if self.idle():  # no turn to cancel: Ctrl-C leaves, as it would anywhere
            os._exit(130)
        self.pressed += 1
        if self.pressed > 1:
            err.print("interrupted again: leaving; the turn goes on in Temporal")
            os._exit(130)
        err.print("cancelling the turn (Ctrl-C again to leave) ...")
        task: asyncio.Task[object] = asyncio.ensure_future(self.cancel())
        self.tasks.add(task)
        task.add_done_callback(self.done)

    def done(self, task: asyncio.Task[object]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            err.print(f"error: the cancel failed: {task.exception()}")


async def ask_streaming(
    c: Conversations, conversation_id: str, message: UserMessage, progress: Progress | None
) -> TurnResult:
    """The turn, its text and tool calls printed as they happen; Ctrl-C cancels it."""
    printer = EventPrinter("", progress, speakers=False)
    after = await position_now(c, conversation_id)
    events = None
    if after is not None:  # running: subscribe first, so the model call knows to stream
        events = asyncio.create_task(print_events(c, conversation_id, after, printer))
    try:
        turn = await warn_until_done(c, c.start_ask(conversation_id, message), progress)
    except BaseException:
        if events is not None:
            events.cancel()
        raise
    if events is None:  # a new conversation: its events from its first
        events = asyncio.create_task(print_events(c, conversation_id, None, printer))
    try:
        with Interrupts(lambda: c.cancel_turn(conversation_id, message.message_id)):
            result = await turn.result()
        await wait_for_finished(printer, message.message_id, events)
    finally:
        events.cancel()
        printer.end_line()
        if progress is not None:
            progress.stop()
    if result.turn in printer.streamed:
        result = result.model_copy(update={"reply": ""})  # printed already, as it came
    return result


async def wait_for_finished(
    printer: EventPrinter, message_id: str, events: asyncio.Task[None]
) -> None:
    """Let the stream catch up with the turn's end (its last text and tool events)."""
    deadline = asyncio.get_running_loop().time() + FINISHED_GRACE
    while message_id not in printer.finished and not events.done():
        if asyncio.get_running_loop().time() > deadline:
            return
        await asyncio.sleep(0.02)


@app.command()
def ask(
    ctx: typer.Context,
    conversation_id: ConversationId,
    text: Text,
    message_id: MessageId = None,
    progress: Annotated[
        bool, typer.Option(help="show what the turn is doing on stderr while it runs")
    ] = True,
    resume: Annotated[
        bool,
        typer.Option(
            help="continue the failed turn of --message-id where it failed; the tools it "
            "already ran are not run again"
        ),
    ] = False,
) -> None:
    """Send a message and print the reply as it is written (update-with-start, then the
    conversation's events); Ctrl-C cancels the turn."""
    if resume and not message_id:
        raise typer.BadParameter("--resume needs the failed turn's --message-id")
    mid = message_id or new_message_id()

    async def run(c: Conversations) -> TurnResult:
        message = UserMessage(message_id=mid, text=text, resume=resume)
        return await ask_streaming(c, conversation_id, message, Progress(err) if progress else None)

    print_turn(call(ctx, run, conversation_id))


CHAT_HELP = (
    "type a message, or: /state, /approve [TOOL_CALL_ID] [reason], /deny [TOOL_CALL_ID]"
    " [reason], /cancel (the running turn; or Ctrl-C), /help, /quit"
)
PROMPT = "you> "
"""Shown on a terminal when no turn is in flight; the spinner shows otherwise."""


async def stdin_lines() -> AsyncIterator[str]:
    """Lines of standard input, read in a thread so turns and progress go on meanwhile."""
    while line := await asyncio.to_thread(sys.stdin.readline):
        yield line


def print_chat_turn(agent: str, result: TurnResult) -> None:
    for record in result.tool_calls:
        out.print(f"  [tool] {record.name}({short(record.arguments)}) -> {record.status}")
    out.print(f"{result.speaker or agent}: {result.reply}")
    if result.status != "completed":
        out.print(f"  (turn {result.turn}: {result.status})")


class NotOnePending(Exception):
    """`/approve` or `/deny` without an ID, and not exactly one call waits for a decision."""


def only_pending(state: ConversationState) -> str:
    """The ID of the one tool call that waits for a decision; NotOnePending otherwise."""
    pending = state.pending_approvals
    if not pending:
        raise NotOnePending("no tool call is waiting for approval")
    if len(pending) > 1:
        listed = ", ".join(f"{p.tool_call_id} ({p.name})" for p in pending)
        raise NotOnePending(f"{len(pending)} tool calls are waiting, name one: {listed}")
    return pending[0].tool_call_id


class ChatSession:
    """`starter.py chat`: each line is a turn; replies print as they come.

    Turns are sent strictly in order: line N+1 goes out only once the workflow accepted
    line N (the `ask` update's ACCEPTED stage), so the conversation answers them in the
    order typed. Reading goes on meanwhile, so `/approve` can unblock a waiting turn."""

    def __init__(
        self,
        c: Conversations,
        conversation_id: str,
        start: StartConversation,
        prompt: bool = False,
    ) -> None:
        self.c, self.id, self.start = c, conversation_id, start
        self.outbox: asyncio.Queue[str] = asyncio.Queue()
        self.turns: set[asyncio.Task[None]] = set()
        self.progress = Progress(err)
        self.printer = EventPrinter(start.agent, self.progress, speakers=True)
        self.events: asyncio.Task[None] | None = None
        self.unsent = 0  # typed, not yet accepted
        self.unanswered = 0  # accepted, not yet answered
        self.prompt = prompt
        self.prompted = False

    async def run(self, lines: AsyncIterator[str]) -> None:
        if out.is_terminal:
            out.print(f"conversation {self.id} with {self.start.agent}; {CHAT_HELP}")
        after = await position_now(self.c, self.id)
        if after is not None:  # a running conversation: its events from now on
            self.follow(after)
        sender = asyncio.create_task(self.send_in_order())
        try:
            with Interrupts(lambda: self.c.cancel_turn(self.id), idle=lambda: not self.busy()):
                await self.read(lines)
        finally:
            sender.cancel()
            if self.events is not None:
                self.events.cancel()
            self.printer.end_line()
            self.progress.stop()

    async def read(self, lines: AsyncIterator[str]) -> None:
        self.show_prompt()
        async for line in lines:
            self.prompted = False
            if not await self.handle(line.strip()):
                return  # /quit: turns in flight go on in Temporal
            self.show_prompt()
        await self.outbox.join()  # end of input: send what was typed, in order,
        if self.turns:  # and let those turns finish and print
            await asyncio.wait(self.turns)

    def follow(self, after: str | None) -> None:
        """Print the conversation's events from `after` (None: from its first)."""
        self.events = asyncio.create_task(print_events(self.c, self.id, after, self.printer))

    def busy(self) -> bool:
        """Whether a typed turn is not yet accepted, or accepted and not yet answered."""
        return self.unanswered > 0 or self.unsent > 0

    def show_prompt(self) -> None:
        """The prompt, on a terminal, when nothing runs: it never shares the spinner's line."""
        if self.prompt and not self.prompted and not self.busy():
            self.progress.stop()
            out.print(PROMPT, end="")
            self.prompted = True

    async def handle(self, line: str) -> bool:
        command, _, rest = line.partition(" ")
        if not line:
            return True
        if command in ("/quit", "/exit"):
            return False
        try:
            if command == "/state":
                print_state(await self.c.state(self.id))
            elif command in ("/approve", "/deny"):
                await self.decide(command == "/approve", rest.strip())
            elif command == "/cancel":
                cancelled = await self.c.cancel_turn(self.id)
                out.print(
                    f"cancelled turn {cancelled.turn}"
                    if cancelled.cancelled
                    else "no turn is running"
                )
            elif command.startswith("/"):
                out.print(CHAT_HELP)
            else:
                self.send(line)
        except NotOnePending as error:
            err.print(f"error: {error}")
        except RPCError as error:
            err.print(f"error: {error.message}")
        return True

    async def decide(self, approve: bool, rest: str) -> None:
        """`/approve ID reason`, or `/approve` alone for the only call that waits."""
        call_id, _, reason = rest.partition(" ")
        if not call_id:
            call_id = only_pending(await self.c.state(self.id))
        decision = ToolDecision(tool_call_id=call_id, approve=approve, reason=reason.strip())
        await self.c.decide(self.id, decision)
        out.print(f"{'approved' if approve else 'denied'} {call_id}")

    def send(self, text: str) -> None:
        self.unsent += 1
        self.outbox.put_nowait(text)

    async def send_in_order(self) -> None:
        """Send each typed line once the one before it was accepted."""
        while True:
            text = await self.outbox.get()
            try:
                turn = await self.accept(text, new_message_id())
                if turn is not None and self.events is None:
                    self.follow(None)  # a new conversation: its events from the first
                if turn is not None:
                    self.unanswered += 1
                    task = asyncio.create_task(self.finish(turn))
                    self.turns.add(task)
                    task.add_done_callback(self.turns.discard)
            finally:
                self.unsent -= 1
                self.outbox.task_done()
            if not self.busy():
                self.show_prompt()

    async def accept(self, text: str, message_id: str) -> AcceptedTurn | None:
        """The turn, once the workflow accepted it; None (and the reason on stderr) if not."""
        message = UserMessage(message_id=message_id, text=text)
        return await self.reporting(self.c.start_ask(self.id, message, self.start))

    async def finish(self, turn: AcceptedTurn) -> None:
        result = await self.reporting(turn.result())
        if result is not None and self.events is not None:
            await wait_for_finished(self.printer, result.message_id, self.events)
        self.unanswered -= 1
        if result is not None and result.message_id not in self.printer.finished:
            self.printer.end_line()  # the live events lag or failed: the result instead
            self.progress.stop()
            print_chat_turn(self.start.agent, result)
        if not self.busy():
            self.show_prompt()

    async def reporting(self, running: Awaitable[T]) -> T | None:
        """`running`'s result, or None after printing why it failed."""
        try:
            return await running
        except WorkflowUpdateFailedError as error:
            err.print(rejection(error))
        except WorkflowAlreadyStartedError:
            err.print(f"error: {ended(self.id)}")
        except (EncryptedConversation, ValueError) as error:
            err.print(f"error: {error}")
        except RPCError as error:
            err.print(f"error: {error.message}")
        return None


@app.command()
def chat(
    ctx: typer.Context,
    conversation_id: ConversationId,
    agent: Annotated[str, typer.Option(help="the agent of a new conversation")] = (
        "claims-assistant"
    ),
) -> None:
    """An interactive session: each line is a turn; /state, /approve, /deny, /quit."""
    start = StartConversation(agent=agent)
    prompt = sys.stdin.isatty() and out.is_terminal
    call(ctx, lambda c: ChatSession(c, conversation_id, start, prompt).run(stdin_lines()))


def print_state(state: ConversationState) -> None:
    speaking = f", speaking: {state.active_agent}" if state.active_agent else ""
    out.print(f"agent {state.agent}, status {state.status}, turns {state.turn_count}{speaking}")
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
    table = Table("seq", "role", "speaker", "name", "content", title="recent messages")
    for message in state.messages:
        speaker = message.speaker or (state.agent if message.role == "assistant" else "")
        table.add_row(
            str(message.seq),
            message.role,
            speaker,
            message.name or "",
            short(message.content, 80),
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


@app.command()
def cancel(
    ctx: typer.Context,
    conversation_id: ConversationId,
    message_id: Annotated[
        str | None, typer.Option(help="only if this message's turn is the running one")
    ] = None,
    reason: Annotated[str, typer.Option(help="recorded in the turn's error")] = "",
) -> None:
    """Interrupt the running turn: its partial reply is kept; queued turns go on."""
    result = call(
        ctx, lambda c: c.cancel_turn(conversation_id, message_id, reason), conversation_id
    )
    if not result.cancelled:
        which = f"turn of {message_id}" if message_id else "turn"
        fail(f"no {which} is running in {conversation_id}: nothing to interrupt", 1)
    out.print(f"interrupted turn {result.turn} (message {result.message_id}) of {conversation_id}")


@app.command("list")
def list_(
    ctx: typer.Context,
    query: Annotated[str, typer.Option(help="a Temporal list filter")] = "",
) -> None:
    """List conversations, newest first."""

    async def collect(c: Conversations) -> list[Listed]:
        return [row async for row in c.listing(query)]

    table = Table("conversation", "agent", "status", "turns", "run")
    for row in call(ctx, collect):
        turns = "" if row.turns is None else str(row.turns)
        table.add_row(
            row.conversation_id, row.agent or "", row.conversation_status or "", turns, row.status
        )
    out.print(table)


if __name__ == "__main__":
    run_then_exit(app)
