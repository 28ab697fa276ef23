"""What the gateway asks of Temporal: a client connected on first use, and conversation calls.

Messages go through `Conversations` (update-with-start and signal-with-start), which never
restarts an ended conversation (`ALLOW_DUPLICATE_FAILED_ONLY`): a request retried after the
end cannot start a new run and repeat its turn. A conversation that failed (an unknown
agent) may be started again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, overload

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError, TemporalError
from temporalio.service import RPCError, RPCStatusCode

from conversation_client import Conversations, connect
from gateway._auth import Caller
from gateway._errors import ApiError, ended, not_found, unavailable
from interface import WORKFLOW_TYPE, StartConversation
from interface.contract import ErrorType
from interface.search_attributes import AGENT_NAME

log = logging.getLogger("gateway")

ConversationsFactory = Callable[[], Awaitable[Conversations]]
EXPLAIN_TIMEOUT = 5.0


def connector(
    address: str,
    namespace: str,
    task_queue: str,
    data_converter: DataConverter | None = None,
    **options: Any,
) -> ConversationsFactory:
    """A factory connecting to Temporal as `conversation_client.connect` does; `options`
    (TLS, API key, interceptors) go to `Client.connect`."""

    async def connect_now() -> Conversations:
        """Connect; the SDK raises RuntimeError when the server cannot be reached."""
        client = await connect(address, namespace, data_converter, **options)
        return Conversations(client, task_queue)

    return connect_now


class Temporal:
    """`Conversations`, connected on the first request and again after a failed connect."""

    def __init__(self, source: Conversations | ConversationsFactory) -> None:
        self._conversations = source if isinstance(source, Conversations) else None
        self._factory = None if isinstance(source, Conversations) else source
        self._lock = asyncio.Lock()

    async def conversations(self) -> Conversations:
        """The connected client; 503 while Temporal cannot be reached."""
        if self._conversations is None:
            async with self._lock:
                if self._conversations is None:
                    self._conversations = await self._connect()
        return self._conversations

    async def _connect(self) -> Conversations:
        assert self._factory is not None
        try:
            return await self._factory()
        except RuntimeError as error:
            raise unavailable(str(error)) from error


async def why_closed(conversations: Conversations, conversation_id: str) -> ApiError:
    """After a run closed under an accepted message: 422 for an unknown agent, else 409."""
    try:
        await asyncio.wait_for(conversations.handle(conversation_id).result(), EXPLAIN_TIMEOUT)
    except WorkflowFailureError as failure:
        cause = failure.cause
        if isinstance(cause, ApplicationError) and cause.type == ErrorType.UNKNOWN_AGENT:
            return ApiError(422, "unknown_agent", cause.message)
        if isinstance(cause, ApplicationError) and cause.type == ErrorType.CONVERSATION_CLOSED:
            return ApiError(409, "conversation_closed", cause.message)
    except (TemporalError, RPCError, TimeoutError) as error:
        log.warning("cannot tell why %s closed: %s", conversation_id, type(error).__name__)
    return ended(conversation_id)


@overload
async def missing_or_ended(conversations: Conversations, conversation_id: str) -> ApiError: ...
@overload
async def missing_or_ended(
    conversations: Conversations, conversation_id: str, running_ok: bool
) -> ApiError | None: ...
async def missing_or_ended(
    conversations: Conversations, conversation_id: str, running_ok: bool = False
) -> ApiError | None:
    """404 if the ID is unknown, 409 if its run has closed; for a running one, None with
    `running_ok`, else 404 (a signal's NOT_FOUND raced the run's close)."""
    try:
        description = await conversations.handle(conversation_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return not_found(conversation_id)
        raise
    if description.status == WorkflowExecutionStatus.RUNNING:
        return None if running_ok else not_found(conversation_id)
    return ended(conversation_id)


async def conversation_agent(conversations: Conversations, conversation_id: str) -> str | None:
    """The agent of a running conversation, or None if the ID has no running run: from the
    AgentName search attribute, else from the run's start input (no worker needed)."""
    handle = conversations.handle(conversation_id)
    try:
        description = await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return None
    agent = description.typed_search_attributes.get(AGENT_NAME)
    if agent:
        return agent
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        [start] = await conversations.client.data_converter.decode(payloads, [StartConversation])
        return str(start.agent)
    return None


def scope_filters(caller: Caller) -> list[str]:
    """List-query filters that keep a limited key to its agents and ID prefixes (both are
    validated to hold no quotes: gateway._models, gateway._auth)."""
    filters = []
    if caller.agents is not None:
        filters.append(
            f"{AGENT_NAME.name} IN ({', '.join(f'{chr(34)}{a}{chr(34)}' for a in caller.agents)})"
        )
    if caller.conversation_prefixes is not None:
        prefixes = [f'WorkflowId STARTS_WITH "{p}"' for p in caller.conversation_prefixes]
        filters.append(f"({' OR '.join(prefixes) or 'false'})")
    return filters


def list_query(filters: list[str]) -> str:
    """Conversations' runs, one per conversation (continued-as-new runs left out)."""
    base = [f'WorkflowType="{WORKFLOW_TYPE}"', 'ExecutionStatus!="ContinuedAsNew"']
    return " AND ".join([*base, *filters])


async def list_page(
    client: Client, query: str, page_size: int, token: bytes | None
) -> tuple[list[WorkflowExecution], bytes | None]:
    """One page of a list query, and the token of the next page (None on the last)."""
    pages = client.list_workflows(query, page_size=page_size, next_page_token=token)
    await pages.fetch_next_page()
    return list(pages.current_page or []), pages.next_page_token


async def missing_search_attributes(client: Client, names: list[str]) -> list[str]:
    """Those of `names` the namespace has not registered."""
    request = ListSearchAttributesRequest(namespace=client.namespace)
    found = await client.operator_service.list_search_attributes(request)
    return [name for name in names if name not in found.custom_attributes]
