"""A thin typed client for conversations, used by starter.py, the demo and the tests.

Any Temporal SDK can do the same with plain JSON; see the README's interface table.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn, Protocol

from agent_workflows.conversation import AgentConversation
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.contrib.workflow_streams import (
    PollInput,
    PollResult,
    WorkflowStreamClient,
    WorkflowStreamItem,
)
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from interface import (
    DEFAULT_TASK_QUEUE,
    WORKFLOW_TYPE,
    CancelTurn,
    CancelTurnResult,
    ConversationState,
    StartConversation,
    ToolDecision,
    TurnResult,
    UserMessage,
)
from interface.contract import EVENTS_TOPIC, MAX_CONVERSATION_ID_CHARS, SIGNAL_USER_MESSAGE
from interface.events import ConversationEvent
from interface.search_attributes import AGENT_NAME, CONVERSATION_STATUS, TURN_COUNT


def run_then_exit(main: Callable[[], object]) -> NoReturn:
    """Run a short-lived client program, then leave without interpreter teardown.

    The Temporal client's Rust threads can abort CPython's finalization (exit 134,
    "PyGILState_Release: thread state ... must be current", temporalio/sdk-python#300);
    we saw it in 3 of 10 demo runs. All work is done and output flushed by then.
    """
    try:
        main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def connect(
    address: str,
    namespace: str = "default",
    data_converter: DataConverter | None = None,
    **options: Any,
) -> Client:
    """A client with the pydantic data converter, or `data_converter` (e.g. encrypting).

    `options` go to `Client.connect`. The entry points connect with `WorkerSettings.connect`
    instead: the environment's connection settings and `AgentConversationsPlugin`."""
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=data_converter or pydantic_data_converter,
        **options,
    )


NEVER_RESTART_ENDED = WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
"""A retried ask or send after a conversation ended must not start it again as a new,
empty run that would repeat the turn; only a failed conversation (say, an unknown agent)
may start again under its ID."""

CONTINUED_BEFORE_ANSWER = "AcceptedUpdateCompletedWorkflow"
"""The server's failure for an `ask` whose run continued as new with its turn still queued;
asked again with the same update ID, the next run (which carries the queue) answers it."""

CONTINUED_RETRIES = 10
"""A turn queued behind a long backlog may see several runs go by before its answer."""

MAX_SEND_BYTES = 1_000_000
"""Bigger text is refused here: over 2 MB, an update stalls the conversation."""


class TextDeltaSource(Protocol):
    """Where a client reads the text deltas of model calls (activities.deltas.TextDeltas,
    over the conversation database). Row IDs grow; a delta's event is `text` or
    `text_reset`."""

    async def read(
        self, conversation_id: str, after: int
    ) -> list[tuple[int, ConversationEvent]]: ...

    async def wait(self, conversation_id: str, after: int, timeout: float = 1.0) -> None:
        """Return once rows after `after` may exist, or after `timeout` seconds; it also
        tells writers that someone listens to the conversation."""

    async def position(self) -> int:
        """The newest row ID now: rows written later have greater IDs."""


EVENT_POLL_COOLDOWN = timedelta(milliseconds=20)
"""Between the stream's long polls once a batch has arrived (each poll is an update: two
history events, so they are only used while no turn runs)."""
TURN_POLL_INTERVAL = 0.1
"""Seconds between the stream's poll queries while a turn runs: queries add nothing to
history, and a turn's events come this often."""
IDLE_AFTER = ("turn_finished", "approval_needed")
"""After these, until the next event, the conversation may wait long: a long-poll update
waits for it, instead of a query every TURN_POLL_INTERVAL."""
STREAM_POLL = "__temporal_workflow_stream_poll"
HOLD_DELTAS = 0.5
"""Seconds a step's text deltas wait for its `model_started` before they go out anyway."""
IDLE_DELTA_POLL = 1.0
"""Seconds between checks for text deltas while no turn runs (during a turn: the source's
own interval, 20 ms for the database)."""


@dataclass
class Conversations:
    client: Client
    task_queue: str = DEFAULT_TASK_QUEUE
    deltas: TextDeltaSource | None = None
    """Text deltas for `events()`; without it `events()` yields the durable events only."""

    @staticmethod
    def _summary(start: StartConversation) -> str:
        return f"conversation with {start.agent}"

    @staticmethod
    def _details(start: StartConversation) -> str:
        """The Web UI's static details (markdown): what the conversation is and how to
        drive it. Metadata values stay out: only their names are shown."""
        lines = [
            f"**Agent:** `{start.agent}`",
            "Turns: the `ask` update or the `user_message` signal; approvals: `decide_tool`;"
            " the transcript: the `state` query.",
            "Search attributes: `AgentName`, `ConversationStatus`, `TurnCount`.",
        ]
        if start.metadata:
            lines.append("**Metadata:** " + ", ".join(f"`{k}`" for k in sorted(start.metadata)))
        return "\n\n".join(lines)

    async def start(
        self,
        conversation_id: str,
        start: StartConversation | None = None,
        *,
        first_message: UserMessage | None = None,
    ) -> WorkflowHandle:
        """Start the conversation, or attach to it if it is already running; with a first
        message, signal-with-start delivers it in the same request."""
        start = start or StartConversation()
        return await self.client.start_workflow(
            AgentConversation.run,
            start,
            **self._start_options(conversation_id, start),
            start_signal=SIGNAL_USER_MESSAGE if first_message else None,
            start_signal_args=[first_message] if first_message else [],
        )

    def _start_options(self, conversation_id: str, start: StartConversation) -> dict[str, Any]:
        """What every start sends: attach to a running conversation, never restart an ended
        one, and the Web UI's summary and details."""
        check_conversation_id(conversation_id)
        return dict(
            id=conversation_id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=NEVER_RESTART_ENDED,
            static_summary=self._summary(start),
            static_details=self._details(start),
        )

    async def ask(
        self,
        conversation_id: str,
        text: str,
        message_id: str,
        start: StartConversation | None = None,
        resume: bool = False,
    ) -> TurnResult:
        """Send a user turn and wait for its result; starts the conversation if needed.

        The update ID is the message ID, so a retried call returns the recorded result.
        With `resume`, the failed turn of `message_id` continues where it failed, without
        repeating the tool calls it made (its result, if it did not fail).
        Text over 1 MB raises ValueError before sending: the workflow refuses anything over
        its `max_message_chars` (32,000 by default), and an update of over 2 MB stalls the
        conversation until the server drops it (README, Known limits)."""
        message = UserMessage(message_id=message_id, text=text, resume=resume)
        return await self.ask_message(conversation_id, message, start)

    async def ask_message(
        self, conversation_id: str, message: UserMessage, start: StartConversation | None = None
    ) -> TurnResult:
        """`ask` with the message already built (the gateway's)."""
        start = start or StartConversation()
        _check_size(message.text)
        for _ in range(CONTINUED_RETRIES):
            try:
                return await self._ask_once(conversation_id, message, start)
            except WorkflowUpdateFailedError as err:
                if not _continued_before_answer(err):
                    raise
        return await self._ask_once(conversation_id, message, start)

    async def _ask_once(
        self, conversation_id: str, message: UserMessage, start: StartConversation
    ) -> TurnResult:
        operation = WithStartWorkflowOperation(
            AgentConversation.run, start, **self._start_options(conversation_id, start)
        )
        try:
            with _encrypted_hint():
                return await self.client.execute_update_with_start_workflow(
                    AgentConversation.ask,  # type: ignore[arg-type]  # the SDK types async updates loosely
                    message,
                    start_workflow_operation=operation,
                    id=_update_id(message),
                )
        except BaseException:
            _retrieve_start_error(operation)
            raise

    async def start_ask(
        self,
        conversation_id: str,
        message: UserMessage,
        start: StartConversation | None = None,
    ) -> AcceptedTurn:
        """`ask_message`, returning once the workflow accepted the turn (it is queued, in
        order, behind the turns accepted before it) instead of once it is answered: a client
        that sends several turns in a row sends the next only after this returns."""
        start = start or StartConversation()
        _check_size(message.text)
        operation = WithStartWorkflowOperation(
            AgentConversation.run, start, **self._start_options(conversation_id, start)
        )
        try:
            with _encrypted_hint():
                handle = await self.client.start_update_with_start_workflow(
                    AgentConversation.ask,  # type: ignore[arg-type]  # the SDK types async updates loosely
                    message,
                    start_workflow_operation=operation,
                    id=_update_id(message),
                    wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                )
        except BaseException:
            _retrieve_start_error(operation)
            raise
        return AcceptedTurn(self, conversation_id, message, start, handle)

    async def send(
        self,
        conversation_id: str,
        text: str,
        message_id: str,
        start: StartConversation | None = None,
    ) -> WorkflowHandle:
        """Send a user turn without waiting (signal-with-start)."""
        _check_size(text)
        message = UserMessage(message_id=message_id, text=text)
        return await self.start(conversation_id, start, first_message=message)

    def handle(self, conversation_id: str) -> WorkflowHandle:
        return self.client.get_workflow_handle_for(AgentConversation.run, conversation_id)

    async def state(self, conversation_id: str) -> ConversationState:
        with _encrypted_hint():
            return await self.handle(conversation_id).query(AgentConversation.state)

    async def cancel_turn(
        self, conversation_id: str, message_id: str | None = None, reason: str = ""
    ) -> CancelTurnResult:
        """Interrupt the running turn (only if it is `message_id`'s, when given): its
        running model or tool call is cancelled, its partial text kept, and it ends
        `interrupted`; queued turns go on. `cancelled` is False when no such turn runs.
        Returns once the cancel is requested; `ask` for the turn returns its result."""
        request = CancelTurn(message_id=message_id, reason=reason)
        with _encrypted_hint():
            return await self.handle(conversation_id).execute_update(
                AgentConversation.cancel_turn, request
            )

    async def decide(self, conversation_id: str, decision: ToolDecision) -> None:
        await self.handle(conversation_id).signal(AgentConversation.decide_tool, decision)

    async def end(self, conversation_id: str) -> None:
        await self.handle(conversation_id).signal(AgentConversation.end)

    async def events(
        self, conversation_id: str, *, after: str | None = None
    ) -> AsyncIterator[tuple[str, ConversationEvent]]:
        """The conversation's events as (event ID, event), until the caller stops or the
        conversation is closed and every event is delivered.

        `after` is an event ID yielded earlier (or `event_position`'s): resuming with it
        yields exactly the events after it, none twice. None: from the oldest event the
        conversation still keeps. Follows continue-as-new. An event ID is opaque to clients:
        `"<durable>-<delta>"`, the next offset of the workflow's event stream and the last
        text-delta row yielded. A step's text deltas come after that step's
        `model_started` (resumed mid-step, at once); they carry turn, step and attempt, and
        a `text_reset` (or a delta of a newer attempt) replaces the step's partial text.
        Deltas of an older attempt than one already seen are dropped here."""
        reader = _EventReader(self.client, conversation_id, self.deltas, after)
        async for item in reader.run():
            yield item

    async def event_position(self, conversation_id: str) -> str:
        """The event ID of now: `events(after=...)` from it yields only later events, so a
        client can subscribe and then send a turn without missing its first event."""
        stream = WorkflowStreamClient.create(self.client, conversation_id)
        durable = await stream.get_offset()
        delta = 0
        if self.deltas is not None:
            delta = await self.deltas.position()
            # the caller is about to subscribe and send: marked listened now, its next model
            # call streams, not only those that start after `events()` has begun to read
            await self.deltas.wait(conversation_id, delta, timeout=0)
        return event_id(durable, delta)

    async def list(self, query: str = "") -> AsyncIterator[tuple[str, str]]:
        """(conversation ID, Temporal status) of conversations, newest first."""
        async for row in self.listing(query):
            yield row.conversation_id, row.status

    async def listing(self, query: str = "") -> AsyncIterator[Listed]:
        """Conversations, newest first, with what their search attributes say."""
        full = f'WorkflowType="{WORKFLOW_TYPE}"' + (f" AND ({query})" if query else "")
        async for execution in self.client.list_workflows(full):
            found = execution.typed_search_attributes
            yield Listed(
                conversation_id=execution.id,
                status=execution.status.name if execution.status else "UNKNOWN",
                agent=found.get(AGENT_NAME),
                conversation_status=found.get(CONVERSATION_STATUS),
                turns=found.get(TURN_COUNT),
            )


@dataclass
class AcceptedTurn:
    """A turn the workflow accepted (`Conversations.start_ask`); `result()` waits for it."""

    conversations: Conversations
    conversation_id: str
    message: UserMessage
    start: StartConversation
    handle: WorkflowUpdateHandle[TurnResult]

    async def result(self) -> TurnResult:
        """The turn's result; if its run continued as new first, the next run's answer."""
        try:
            with _encrypted_hint():
                return await self.handle.result()
        except WorkflowUpdateFailedError as err:
            if not _continued_before_answer(err):
                raise
        return await self.conversations.ask_message(self.conversation_id, self.message, self.start)


def event_id(durable: int, delta: int) -> str:
    """The opaque event ID: the next durable offset and the last text-delta row."""
    return f"{durable}-{delta}"


def parse_event_id(value: str | None) -> tuple[int, int]:
    """(next durable offset, last delta row) of an event ID; ValueError if it is not one."""
    if not value:
        return 0, 0
    durable, sep, delta = value.partition("-")
    if not sep or not durable.isdigit() or not delta.isdigit():
        raise ValueError(f"not an event ID: {value[:40]!r}")
    return int(durable), int(delta)


class _EventReader:
    """One `events()` subscription: the workflow stream's durable events merged with the
    database's text deltas, in the order they happened. Before each durable event it reads
    the deltas written so far, so a step's text comes before the events that follow the
    step (the model activity writes its deltas before it returns); and a step's deltas wait
    for that step's `model_started` (published before its activity is scheduled, but read
    up to a poll later), so its text never comes before the tool calls of the step before.
    After `HOLD_DELTAS` seconds held deltas go out anyway (a resumed subscription may
    never see the `model_started` of the step it resumed in)."""

    def __init__(
        self,
        client: Client,
        conversation_id: str,
        deltas: TextDeltaSource | None,
        after: str | None,
    ) -> None:
        self._durable, self._delta = parse_event_id(after)
        self._client = client
        self._stream = WorkflowStreamClient.create(client, conversation_id)
        self._next = self._durable
        self._idle = True
        self._conversation_id = conversation_id
        self._deltas = deltas
        self._queue: asyncio.Queue[WorkflowStreamItem[ConversationEvent] | None] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._read = asyncio.Event()
        self._busy = asyncio.Event()
        self._failure: BaseException | None = None
        self._attempts: dict[tuple[int, int | None], int] = {}
        self._delta_read = self._delta  # the last row read; `_delta`: the last one yielded
        self._held: list[tuple[int, ConversationEvent]] = []
        self._held_since = 0.0
        self._started = (0, 0)  # (turn, step) of the newest model_started seen
        self._resumed = after is not None

    async def run(self) -> AsyncIterator[tuple[str, ConversationEvent]]:
        if self._deltas is not None:  # marked listened before anything else: see
            await self._deltas.wait(self._conversation_id, self._delta, timeout=0)  # position
        tasks = [asyncio.create_task(self._pump_durable())]
        if self._deltas is not None:
            tasks.append(asyncio.create_task(self._pump_deltas(self._deltas)))
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                for item in await self._read_deltas():
                    yield item
                while not self._queue.empty():
                    durable = self._queue.get_nowait()
                    if durable is None:  # the stream ended: closed and drained
                        for item in await self._read_deltas(release=True):
                            yield item
                        if self._failure is not None:
                            raise self._failure
                        return
                    if durable.data.type == "turn_finished":  # its text comes before it
                        for item in await self._read_deltas(through=(durable.data.turn, 1 << 30)):
                            yield item
                    self._durable = durable.offset + 1
                    if durable.data.type == "model_started":
                        self._started = max(self._started, (durable.data.turn, _step(durable.data)))
                    yield event_id(self._durable, self._delta), durable.data
                    for item in await self._read_deltas():
                        yield item
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError, Exception):
                    await task

    async def _pump_durable(self) -> None:
        """Long-poll (updates) while the conversation is idle, poll queries while a turn
        runs: a listener costs about one update per turn in history, not one per event."""
        try:
            while await self._long_poll():
                await self._query_while_busy()
        except Exception as failure:
            self._failure = failure
        self._queue.put_nowait(None)
        self._wake.set()

    def _take(self, item: WorkflowStreamItem[ConversationEvent]) -> None:
        if item.offset < self._next:
            return
        self._next = item.offset + 1
        self._idle = item.data.type in IDLE_AFTER
        if self._idle:
            self._busy.clear()
        else:
            self._busy.set()
        self._queue.put_nowait(item)
        self._wake.set()

    async def _long_poll(self) -> bool:
        """Until a turn is running (True) or the closed stream is drained (False)."""
        async for item in self._stream.subscribe(
            [EVENTS_TOPIC],
            from_offset=self._next,
            result_type=ConversationEvent,
            poll_cooldown=EVENT_POLL_COOLDOWN,
        ):
            self._take(item)
            if not self._idle:
                return True
        return False

    async def _query_while_busy(self) -> None:
        handle = self._client.get_workflow_handle(self._conversation_id)  # the latest run
        converter = self._client.data_converter.payload_converter
        while not self._idle:
            try:
                result = await handle.query(
                    STREAM_POLL,
                    PollInput(topics=[EVENTS_TOPIC], from_offset=self._next),
                    result_type=PollResult,
                )
            except Exception:  # closed, between runs, no worker: the long poll copes
                return
            for wire in result.items:
                payload = Payload()
                payload.ParseFromString(base64.b64decode(wire.data))
                event = converter.from_payload(payload, ConversationEvent)
                self._take(WorkflowStreamItem(topic=wire.topic, data=event, offset=wire.offset))
            if not result.more_ready:
                await asyncio.sleep(TURN_POLL_INTERVAL)

    async def _pump_deltas(self, deltas: TextDeltaSource) -> None:
        while True:
            if self._idle:  # no turn runs: no deltas come, poll seldom until one starts
                await deltas.wait(self._conversation_id, self._delta, timeout=0)
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._busy.wait(), IDLE_DELTA_POLL)
            else:
                await deltas.wait(self._conversation_id, self._delta)
            self._read.clear()
            self._wake.set()
            await self._read.wait()  # until the reader took them

    async def _read_deltas(
        self, release: bool = False, through: tuple[int, int] = (0, 0)
    ) -> list[tuple[str, ConversationEvent]]:
        """The deltas to yield now: those of steps up to the newest `model_started` seen
        (or `through`); all of them when `release`, or once held for `HOLD_DELTAS`."""
        if self._deltas is None:
            return []
        rows = await self._deltas.read(self._conversation_id, self._delta_read)
        now = asyncio.get_running_loop().time()
        if rows:
            self._delta_read = rows[-1][0]
            if not self._held:
                self._held_since = now
            self._held.extend(rows)
        self._read.set()
        if self._resumed and self._started == (0, 0) and self._held:
            # resumed mid-turn: the step it resumed in started before the resume point
            self._started = _position(self._held[0][1])
        until = max(self._started, through)
        release = release or now - self._held_since >= HOLD_DELTAS
        found = []
        while self._held and (release or _position(self._held[0][1]) <= until):
            row_id, event = self._held.pop(0)
            self._delta = row_id  # IDs name the last delta yielded: a resume re-reads the held
            if self._current(event):
                found.append((event_id(self._durable, row_id), event))
        return found

    def _current(self, event: ConversationEvent) -> bool:
        """False for a delta of an attempt older than one already seen for its step."""
        key, attempt = (event.turn, event.step), event.attempt or 0
        seen = self._attempts.get(key, 0)
        if attempt < seen:
            return False
        self._attempts[key] = attempt
        return True


def _step(event: ConversationEvent) -> int:
    return event.step or 0


def _position(event: ConversationEvent) -> tuple[int, int]:
    """Where a text delta belongs: its (turn, step)."""
    return event.turn, _step(event)


@dataclass(frozen=True)
class Listed:
    """A listed conversation: its Temporal status, and its search attributes (None on a
    namespace without them)."""

    conversation_id: str
    status: str
    agent: str | None
    conversation_status: str | None
    turns: int | None


ENCRYPTED_ENCODING = "binary/encrypted"
"""codec.ENCODING, the payload encoding of an encrypted conversation (codec sits above this
module in the layers)."""
ENCRYPTED_HINT = "this conversation is encrypted: set AGENT_CODEC_KEYS (or AGENT_CODEC_KEY_FILE)"
"""What our clients say when they hold no key for a conversation's payloads."""


class EncryptedConversation(Exception):
    """The conversation's payloads are encrypted and this client has no codec for them."""


@contextmanager
def _encrypted_hint() -> Iterator[None]:
    """EncryptedConversation in place of the SDK's KeyError for an encrypted payload."""
    try:
        yield
    except KeyError as error:
        if encrypted_without_keys(error):
            raise EncryptedConversation(ENCRYPTED_HINT) from None
        raise


def encrypted_without_keys(error: BaseException | None) -> bool:
    """Whether `error` (or what caused it) is the converter meeting an encrypted payload it
    has no codec for: the SDK raises KeyError "Unknown payload encoding binary/encrypted"."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, KeyError) and ENCRYPTED_ENCODING in str(error):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def check_conversation_id(conversation_id: str) -> None:
    """ValueError unless the ID is one a conversation may start with (interface.contract)."""
    if not conversation_id.strip():
        raise ValueError("the conversation ID is empty")
    if len(conversation_id) > MAX_CONVERSATION_ID_CHARS:
        raise ValueError(
            f"the conversation ID is {len(conversation_id):,} characters; "
            f"at most {MAX_CONVERSATION_ID_CHARS} are allowed"
        )


def _update_id(message: UserMessage) -> str:
    """A resume is a new update (the first ask's ID answers with its recorded failure); the
    workflow makes a repeated resume harmless, so its ID need not repeat."""
    if not message.resume:
        return message.message_id
    return f"{message.message_id}/resume/{uuid.uuid4().hex[:12]}"


def _check_size(text: str) -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SEND_BYTES:
        raise ValueError(
            f"text is {size:,} bytes; a conversation takes at most its max_message_chars "
            f"(32,000 by default), and this client sends at most {MAX_SEND_BYTES:,} bytes"
        )


def _continued_before_answer(err: WorkflowUpdateFailedError) -> bool:
    cause = err.cause
    return isinstance(cause, ApplicationError) and cause.type == CONTINUED_BEFORE_ANSWER


def _retrieve_start_error(operation: WithStartWorkflowOperation) -> None:
    """The SDK also puts a failed start's error in a future nobody awaits; retrieve it, or
    asyncio logs "Future exception was never retrieved" with a traceback."""
    started = operation._workflow_handle
    if started.done() and not started.cancelled():
        started.exception()
