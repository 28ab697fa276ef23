"""A thin typed client for conversations, used by starter.py, the demo and the tests.

Any Temporal SDK can do the same with plain JSON; see the README's interface table.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

from agent_workflows.conversation import AgentConversation
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
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from interface import (
    DEFAULT_TASK_QUEUE,
    WORKFLOW_TYPE,
    ConversationState,
    StartConversation,
    ToolDecision,
    TurnResult,
    UserMessage,
)
from interface.contract import MAX_CONVERSATION_ID_CHARS, SIGNAL_USER_MESSAGE
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


@dataclass
class Conversations:
    client: Client
    task_queue: str = DEFAULT_TASK_QUEUE

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

    async def decide(self, conversation_id: str, decision: ToolDecision) -> None:
        await self.handle(conversation_id).signal(AgentConversation.decide_tool, decision)

    async def end(self, conversation_id: str) -> None:
        await self.handle(conversation_id).signal(AgentConversation.end)

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
