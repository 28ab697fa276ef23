"""The HTTP gateway: conversations for front-ends that speak HTTP and JSON."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Header, Path, Query, Request, Response, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.exceptions import HTTPException
from temporalio.client import (
    RPCTimeoutOrCancelledError,
    WorkflowExecution,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from conversation_client import AcceptedTurn, Conversations
from gateway import _paging as paging
from gateway._auth import Caller
from gateway._errors import ApiError, from_exception, log
from gateway._guard import RequestGuard
from gateway._models import (
    AGENT_PATTERN,
    MAX_ID_CHARS,
    Accepted,
    ConversationItem,
    ConversationPage,
    ErrorBody,
    GatewaySettings,
    ListedStatus,
    SendMessage,
)
from gateway._pages import add_pages
from gateway._temporal import (
    ConversationsFactory,
    Temporal,
    conversation_agent,
    list_page,
    list_query,
    missing_or_ended,
    missing_search_attributes,
    scope_filters,
    why_closed,
)
from interface import (
    CancelTurn,
    CancelTurnResult,
    ConversationState,
    StartConversation,
    ToolDecision,
    TurnResult,
    UserMessage,
)
from interface.events import EVENT_TYPES, ConversationEvent, turn_finished
from interface.search_attributes import AGENT_NAME, CONVERSATION_STATUS, TURN_COUNT

DOCS_ASSETS = "/docs-assets"
"""Where Swagger UI's and ReDoc's scripts and styles are served (from fastapi-offline)."""
DESCRIPTION = """\
Durable agent conversations on Temporal, over HTTP. Each conversation is one
`AgentConversation` workflow; its ID is chosen by the caller. Every error is JSON:
`{"error": code, "message": ...}`; a 503 carries `Retry-After`.
"""

ConversationId = Annotated[
    str,
    Path(min_length=1, max_length=MAX_ID_CHARS, description="the conversation's workflow ID"),
]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="becomes the message ID: a retried request returns the same turn",
    ),
]
Mode = Annotated[
    Literal["sync", "async"],
    Query(description="sync: wait for the reply; async: 202 at once, then poll the state"),
]


def _error(description: str, retry: bool = False) -> dict[str, Any]:
    """An OpenAPI response entry with the error body, and `Retry-After` on a 503."""
    entry: dict[str, Any] = {"model": ErrorBody, "description": description}
    if retry:
        seconds = {"schema": {"type": "integer"}, "description": "seconds to wait"}
        entry["headers"] = {"Retry-After": seconds}
    return entry


Responses = dict[int | str, dict[str, Any]]
AUTH_ERRORS: Responses = {
    401: _error("no API key, or one the gateway does not accept"),
    403: _error("the key may not touch this conversation or agent, or a foreign Origin"),
    413: _error("the body is over the gateway's limit"),
    415: _error("a state-changing request whose body is not JSON"),
}
COMMON_ERRORS: Responses = {
    **AUTH_ERRORS,
    422: _error("invalid body, header or parameter, or a message the workflow rejected"),
    502: _error("Temporal refused the call, or the gateway failed unexpectedly (logged)"),
    503: _error("Temporal, or every worker, is unavailable: retry later", retry=True),
    504: _error("Temporal or its workers did not answer in time"),
}
NOT_FOUND: Responses = {404: _error("no conversation with this ID")}
ENDED: Responses = {409: _error("the conversation has ended, is ending, or was closed")}
BACKLOG: Responses = {429: _error("too many turns are waiting: retry later", retry=True)}
EVENT_STREAM_CONTENT: dict[str, Any] = {
    "schema": {
        "type": "object",
        "description": "one Server-Sent Event (comments such as `: ping` are not events)",
        "properties": {
            "event": {"type": "string", "enum": list(EVENT_TYPES)},
            "id": {"type": "string", "description": "the event ID, for Last-Event-ID"},
            "data": {"type": "string", "description": "the ConversationEvent, as JSON"},
        },
        "required": ["event", "id", "data"],
    },
}


class GuardedRoute(APIRoute):
    """A route whose every exception becomes a JSON error: never a bare 500."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handle(request)
            except (HTTPException, RequestValidationError):
                raise  # answered by the app's handlers below
            except Exception as error:
                return _error_response(request, error)

        return guarded


def _error_response(request: Request, error: Exception) -> Response:
    """Map, log (5xx only; never bodies or headers) and answer."""
    api_error = from_exception(error, request.path_params.get("conversation_id"))
    where = f"{request.method} {request.url.path}"
    if api_error.code == "unexpected_error":
        log.error("unexpected %s on %s", type(error).__name__, where, exc_info=error)
    elif api_error.status >= 500:
        log.warning("%s on %s: %s", api_error.code, where, api_error.message)
    return api_error.response(_settings(request).retry_after)


BEARER = HTTPBearer(auto_error=False, description="an API key of the gateway's")


Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]


async def _authenticate(request: Request, credentials: Credentials) -> Caller:
    """Every conversation route: a known key, and a conversation ID the key may touch."""
    token = credentials.credentials if credentials else None
    caller = _settings(request).auth.authenticate(token)
    if caller is None:
        challenge = {"WWW-Authenticate": "Bearer"}
        raise ApiError(
            401, "unauthenticated", "send an API key: Authorization: Bearer KEY", None, challenge
        )
    conversation_id = request.path_params.get("conversation_id")
    if conversation_id is not None and not caller.may_touch(conversation_id):
        raise ApiError(403, "forbidden", f"this key may not touch conversation {conversation_id!r}")
    request.state.caller = caller
    return caller


router = APIRouter(route_class=GuardedRoute, dependencies=[Security(_authenticate)])
health = APIRouter(route_class=GuardedRoute, tags=["health"])


def _caller(request: Request) -> Caller:
    caller: Caller = request.state.caller
    return caller


async def _check_agent(
    request: Request, conversations: Conversations, conversation_id: str, new_agent: str | None
) -> None:
    """For a key limited to some agents: the conversation's agent, or `new_agent` for one
    that does not exist yet, must be one of them."""
    caller = _caller(request)
    if caller.agents is None:
        return
    agent = await conversation_agent(conversations, conversation_id)
    agent = agent or new_agent
    if agent is None or not caller.may_use(agent):
        raise ApiError(403, "forbidden", f"this key may not talk to agent {agent!r}")


def _settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


async def _conversations(request: Request) -> Conversations:
    temporal: Temporal = request.app.state.temporal
    return await temporal.conversations()


def _accepted(request: Request, conversation_id: str, **ids: str) -> Accepted:
    quoted = quote(conversation_id, safe="")  # Location must be ASCII; IDs may be any text
    url = str(request.url_for("get_conversation", conversation_id=quoted))
    return Accepted(conversation_id=conversation_id, state_url=url, **ids)


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=TurnResult,
    responses={
        200: {
            "description": "the turn's result; with `Accept: text/event-stream`, the turn's "
            "events as Server-Sent Events until its `turn_finished`",
            "content": {"text/event-stream": EVENT_STREAM_CONTENT},
        },
        202: {"model": Accepted, "description": "accepted; the turn runs on (see Location)"},
        **ENDED,
        **BACKLOG,
        **COMMON_ERRORS,
    },
    summary="Send a user message; get the turn's result (or stream its events)",
)
async def post_message(
    request: Request,
    conversation_id: ConversationId,
    body: SendMessage,
    idempotency_key: IdempotencyKey,
    mode: Mode = "sync",
    resume: bool = False,
) -> TurnResult | JSONResponse | EventSourceResponse:
    """Start the conversation if needed and run one turn. Retries with the same
    Idempotency-Key return the same result and make no new turn. With `resume=true` and
    the Idempotency-Key of a failed turn, that turn continues where it failed, without
    repeating the tool calls it made. With `Accept: text/event-stream` the answer is the
    turn's events (as `GET .../events` sends them) from its acceptance to its
    `turn_finished`."""
    conversations = await _conversations(request)
    message = UserMessage(message_id=idempotency_key, text=body.text, resume=resume)
    start = StartConversation(agent=body.agent) if body.agent else StartConversation()
    await _check_agent(request, conversations, conversation_id, start.agent)
    if "text/event-stream" in request.headers.get("accept", ""):
        return await _stream_turn(request, conversations, conversation_id, message, start)
    if mode == "sync":
        result = await _wait_for_turn(request, conversations, conversation_id, message, start)
        if result is not None:
            return result
    await conversations.start(conversation_id, start, first_message=message)
    accepted = _accepted(request, conversation_id, message_id=message.message_id)
    headers = {"Location": accepted.state_url}
    return JSONResponse(accepted.model_dump(exclude_none=True), 202, headers)


async def _wait_for_turn(
    request: Request,
    conversations: Conversations,
    conversation_id: str,
    message: UserMessage,
    start: StartConversation,
) -> TurnResult | None:
    """The `ask` update's result, or None once `ask_timeout` has passed."""
    try:
        turn = conversations.ask_message(conversation_id, message, start)
        return await asyncio.wait_for(turn, _settings(request).ask_timeout)
    except (TimeoutError, RPCTimeoutOrCancelledError):
        return None  # the turn goes on; the caller's signal is a no-op if the update got there
    except WorkflowUpdateFailedError as error:
        if from_exception(error, conversation_id).code != "conversation_ended":
            raise
        raise await why_closed(conversations, conversation_id) from error


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationState,
    name="get_conversation",
    responses={**NOT_FOUND, **COMMON_ERRORS},
    summary="A conversation's state",
)
async def get_conversation(request: Request, conversation_id: ConversationId) -> ConversationState:
    """The `state` query: status, turns, recent messages, tool calls, pending approvals."""
    conversations = await _conversations(request)
    await _check_agent(request, conversations, conversation_id, None)
    return await _state(request, conversations, conversation_id)


async def _state(
    request: Request, conversations: Conversations, conversation_id: str
) -> ConversationState:
    timeout = _settings(request).query_timeout
    try:
        return await asyncio.wait_for(conversations.state(conversation_id), timeout)
    except TimeoutError:
        hint = f"is a worker polling task queue {conversations.task_queue!r}?"
        message = f"no worker answered the state query within {timeout:g} s; {hint}"
        raise ApiError(504, "temporal_timeout", message) from None


async def _signal(
    request: Request, conversation_id: str, send_signal: Callable[[Conversations], Awaitable[None]]
) -> None:
    """Send a signal; NOT_FOUND becomes 404 or, for a closed conversation, 409."""
    conversations = await _conversations(request)
    await _check_agent(request, conversations, conversation_id, None)
    try:
        await send_signal(conversations)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        raise await missing_or_ended(conversations, conversation_id) from error


@router.post(
    "/conversations/{conversation_id}/tool-decisions",
    status_code=202,
    response_model=Accepted,
    responses={**NOT_FOUND, **ENDED, **COMMON_ERRORS},
    summary="Approve or deny a tool call that waits for a person",
)
async def post_tool_decision(
    request: Request, conversation_id: ConversationId, decision: ToolDecision
) -> Accepted:
    """The `decide_tool` signal, for a call that waits for a decision (else 404)."""
    conversations = await _conversations(request)
    await _check_agent(request, conversations, conversation_id, None)
    closed = await missing_or_ended(conversations, conversation_id, running_ok=True)
    if closed is not None:
        raise closed
    state = await _state(request, conversations, conversation_id)
    if all(p.tool_call_id != decision.tool_call_id for p in state.pending_approvals):
        message = f"tool call {decision.tool_call_id!r} is not waiting for a decision"
        raise ApiError(404, "tool_call_not_pending", message)
    await _signal(request, conversation_id, lambda c: c.decide(conversation_id, decision))
    return _accepted(request, conversation_id, tool_call_id=decision.tool_call_id)


@router.post(
    "/conversations/{conversation_id}/cancel",
    response_model=CancelTurnResult,
    responses={**NOT_FOUND, **ENDED, **COMMON_ERRORS},
    summary="Interrupt the running turn",
)
async def post_cancel(
    request: Request, conversation_id: ConversationId, body: CancelTurn | None = None
) -> CancelTurnResult:
    """The `cancel_turn` update: the running turn (only the one of `message_id`, if given)
    stops; its partial reply is kept and its `ask` returns status "interrupted". Queued
    turns go on. `cancelled` is false when no such turn runs. The body is optional."""
    body = body or CancelTurn()
    conversations = await _conversations(request)
    await _check_agent(request, conversations, conversation_id, None)
    cancel = conversations.cancel_turn(conversation_id, body.message_id, body.reason)
    timeout = _settings(request).query_timeout
    try:
        return await asyncio.wait_for(cancel, timeout)
    except TimeoutError:
        hint = f"is a worker polling task queue {conversations.task_queue!r}?"
        message = f"no worker took the cancel within {timeout:g} s; {hint}"
        raise ApiError(504, "temporal_timeout", message) from None
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        raise await missing_or_ended(conversations, conversation_id) from error


@router.post(
    "/conversations/{conversation_id}/end",
    status_code=202,
    response_model=Accepted,
    responses={**NOT_FOUND, **ENDED, **COMMON_ERRORS},
    summary="End the conversation after its accepted turns",
)
async def post_end(request: Request, conversation_id: ConversationId) -> Accepted:
    """The `end` signal; later messages get 409."""
    await _signal(request, conversation_id, lambda c: c.end(conversation_id))
    return _accepted(request, conversation_id)


STREAM_COOKIE = "agent_gateway_key"
"""The HttpOnly cookie `POST /ui/session` sets for the chat page's EventSource, which cannot
send an Authorization header; only the events route reads it."""
TURN_POLL_SECONDS = 0.2
FINISHED_GRACE_SECONDS = 2.0
"""After the turn's result, how long its `turn_finished` event may take to arrive."""
LastEventId = Annotated[
    str,
    Header(
        alias="Last-Event-ID",
        max_length=100,
        pattern=r"^[0-9]+-[0-9]+$",
        description="an event's `id:` seen earlier: resume exactly after it (EventSource "
        "sends it when it reconnects)",
    ),
]
After = Annotated[
    str | None,
    Query(
        max_length=100,
        pattern=r"^(now|[0-9]+-[0-9]+)$",
        description="resume after this event ID; `now`: only events from now on. Without "
        "it (and without Last-Event-ID): from the oldest event the conversation keeps",
    ),
]
STREAM_KEY = APIKeyCookie(
    name=STREAM_COOKIE,
    auto_error=False,
    description="the API key as a cookie, for EventSource (set by `POST /ui/session`)",
)


async def _authenticate_stream(
    request: Request,
    credentials: Credentials,
    cookie: Annotated[str | None, Security(STREAM_KEY)] = None,
) -> Caller:
    """The events route: the bearer key, or the same key in the chat page's cookie."""
    if credentials is None and cookie:
        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=cookie)
    return await _authenticate(request, credentials)


streams = APIRouter(route_class=GuardedRoute, dependencies=[Security(_authenticate_stream)])


@router.post(
    "/ui/session",
    status_code=204,
    response_class=Response,
    responses={**AUTH_ERRORS},
    tags=["pages"],
    summary="Give this browser the stream cookie (the chat page's EventSource)",
)
async def post_ui_session(request: Request, credentials: Credentials) -> Response:
    """Sets the request's API key as an HttpOnly, SameSite=Strict cookie for `/conversations`:
    an EventSource sends it to the events route, the one route that reads it (a read, so a
    cross-site request could not change anything with it even if it were sent)."""
    response = Response(status_code=204)
    if credentials is not None:
        response.set_cookie(
            STREAM_COOKIE,
            credentials.credentials,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/conversations",
        )
    return response


def _sse(event_id: str, event: ConversationEvent) -> ServerSentEvent:
    return ServerSentEvent(
        data=event.model_dump_json(exclude_none=True), event=event.type, id=event_id
    )


@streams.get(
    "/conversations/{conversation_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "Server-Sent Events: `event:` the type, `id:` the event ID, "
            "`data:` the ConversationEvent as JSON; a `: ping` comment every 15 s",
            "content": {"text/event-stream": EVENT_STREAM_CONTENT},
        },
        **NOT_FOUND,
        **COMMON_ERRORS,
    },
    summary="The conversation's live events (Server-Sent Events), resumable",
)
async def get_events(
    request: Request,
    conversation_id: ConversationId,
    after: After = None,
    last_event_id: LastEventId = "",
) -> EventSourceResponse:
    """Turns accepted, started and finished, model calls, the reply's text as it is written
    (`text`, and `text_reset` when a retried model call starts its step again), tool calls
    and approvals. `Last-Event-ID` (or `after`) resumes exactly after that event. The
    stream ends once the conversation has closed and its events are delivered."""
    conversations = await _conversations(request)
    await _check_agent(request, conversations, conversation_id, None)
    missing = await missing_or_ended(conversations, conversation_id, running_ok=True)
    if missing is not None and missing.code == "conversation_not_found":
        raise missing
    position = last_event_id or after
    if position == "now":
        position = await conversations.event_position(conversation_id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for event_id, event in conversations.events(conversation_id, after=position):
            yield _sse(event_id, event)

    return EventSourceResponse(events(), ping=_settings(request).sse_ping_seconds)


EventQueue = asyncio.Queue[tuple[str, ConversationEvent] | None]


async def _pump(events: AsyncIterator[tuple[str, ConversationEvent]], queue: EventQueue) -> None:
    """The conversation's events into `queue`, then None (closed, or the stream failed)."""
    try:
        async for item in events:
            await queue.put(item)
    except Exception as error:
        log.warning("event stream failed: %s", type(error).__name__)
    finally:
        queue.put_nowait(None)


async def _stream_turn(
    request: Request,
    conversations: Conversations,
    conversation_id: str,
    message: UserMessage,
    start: StartConversation,
) -> EventSourceResponse:
    """Send the turn (refusals answer as errors, before any event), then stream the
    conversation's events from just before it until the turn's `turn_finished`. A running
    conversation is subscribed to before the turn is sent, so its text streams."""
    try:
        position: str | None = await conversations.event_position(conversation_id)
    except RPCError as error:  # a new conversation: everything it will have is this turn's
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        position = None
    queue: EventQueue = asyncio.Queue()
    reader = None
    if position is not None:
        reader = asyncio.create_task(
            _pump(conversations.events(conversation_id, after=position), queue)
        )
    try:
        turn = await conversations.start_ask(conversation_id, message, start)
    except WorkflowUpdateFailedError as error:
        if reader is not None:
            reader.cancel()
        if from_exception(error, conversation_id).code != "conversation_ended":
            raise
        raise await why_closed(conversations, conversation_id) from error
    except BaseException:
        if reader is not None:
            reader.cancel()
        raise
    if reader is None:
        reader = asyncio.create_task(_pump(conversations.events(conversation_id), queue))
    events = _turn_events(queue, reader, turn, position or "0-0")
    return EventSourceResponse(events, ping=_settings(request).sse_ping_seconds)


async def _turn_events(
    queue: EventQueue, reader: asyncio.Task[None], turn: AcceptedTurn, last: str
) -> AsyncIterator[ServerSentEvent]:
    """The turn's events until its `turn_finished`. A retried request whose turn finished
    long ago gets one `turn_finished` made from the recorded result."""
    message_id = turn.message.message_id
    result = asyncio.ensure_future(turn.result())
    loop = asyncio.get_running_loop()
    answered_at: float | None = None
    try:
        while True:
            # a short poll, not asyncio.wait on `result`: inside sse-starlette's anyio task
            # group that wait was seen to miss the result's completion
            try:
                item = await asyncio.wait_for(queue.get(), TURN_POLL_SECONDS)
            except TimeoutError:
                if result.done():
                    answered_at = answered_at or loop.time()
                    if loop.time() - answered_at > FINISHED_GRACE_SECONDS:
                        break  # answered, and no turn_finished came: it finished long ago
                continue
            if item is None:
                break  # the conversation closed, or its stream failed
            last, event = item
            yield _sse(last, event)
            if event.type == "turn_finished" and event.message_id == message_id:
                return
        for _ in range(int(FINISHED_GRACE_SECONDS / TURN_POLL_SECONDS)):
            if result.done():
                break
            await asyncio.sleep(TURN_POLL_SECONDS)
        if result.done() and not result.cancelled() and result.exception() is None:
            yield _sse(last, turn_finished(result.result()))
    finally:
        reader.cancel()
        result.cancel()


@router.get(
    "/conversations",
    response_model=ConversationPage,
    responses={501: _error("filters need search attributes this namespace lacks"), **COMMON_ERRORS},
    summary="List conversations, newest first",
)
async def list_conversations(
    request: Request,
    agent: Annotated[str | None, Query(pattern=AGENT_PATTERN)] = None,
    status: ListedStatus | None = None,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
    page_token: Annotated[
        str | None,
        Query(
            max_length=4096, pattern=paging.PAGE_TOKEN, description="`next_page_token` of a page"
        ),
    ] = None,
) -> ConversationPage:
    """A Temporal list query; `agent` and `status` filter on the search attributes
    AgentName and ConversationStatus."""
    filters = [f'{AGENT_NAME.name}="{agent}"'] if agent else []
    filters += [f'{CONVERSATION_STATUS.name}="{status}"'] if status else []
    filters += scope_filters(_caller(request))
    query = list_query(filters)
    token = paging.decode(query, page_token)
    client = (await _conversations(request)).client
    try:
        page, next_token = await list_page(client, query, page_size, token)
    except RPCError as error:
        if error.status not in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.UNKNOWN):
            raise
        raise await _list_refused(request, error, filters, page_token) from error
    return ConversationPage(
        conversations=[_item(e) for e in page], next_page_token=paging.encode(query, next_token)
    )


async def _list_refused(
    request: Request, error: RPCError, filters: list[str], page_token: str | None
) -> ApiError:
    """Temporal's INVALID_ARGUMENT (or UNKNOWN, its answer to a bad token): 501 if the
    filters' search attributes are not registered, else 422 for the token or the query."""
    client = (await _conversations(request)).client
    names = [AGENT_NAME.name, CONVERSATION_STATUS.name]
    missing = await missing_search_attributes(client, names) if filters else []
    if missing:
        message = (
            f"filtering by agent or status needs the search attributes {', '.join(missing)}, "
            f"which namespace {client.namespace!r} has not registered (see the README)"
        )
        return ApiError(501, "filter_unavailable", message)
    if page_token:
        return paging.bad_page_token()
    if error.status == RPCStatusCode.UNKNOWN:
        return from_exception(error)
    return ApiError(422, "invalid_request", f"Temporal refused the list query: {error.message}")


def _item(execution: WorkflowExecution) -> ConversationItem:
    attributes = execution.typed_search_attributes
    return ConversationItem(
        conversation_id=execution.id,
        run_id=execution.run_id,
        workflow_status=execution.status.name if execution.status else "UNKNOWN",
        started_at=execution.start_time,
        closed_at=execution.close_time,
        agent=attributes.get(AGENT_NAME),
        status=attributes.get(CONVERSATION_STATUS),
        turn_count=attributes.get(TURN_COUNT),
    )


@health.get("/healthz", summary="Liveness: the gateway process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get(
    "/readyz",
    summary="Readiness: Temporal is reachable",
    responses={503: _error("Temporal cannot be reached", retry=True)},
)
async def readyz(request: Request) -> dict[str, str]:
    conversations = await _conversations(request)
    if not await conversations.client.service_client.check_health():
        raise ApiError(503, "temporal_unavailable", "Temporal reports that it is not serving")
    return {"status": "ready"}


def _validation_error(request: Request, error: Exception) -> Response:
    """422 with each problem's location and message (never the input, which may be large)."""
    assert isinstance(error, RequestValidationError)
    details = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]
    message = "; ".join(f"{'.'.join(str(part) for part in d['loc'])}: {d['msg']}" for d in details)
    body = ErrorBody(error="invalid_request", message=message, details=jsonable_encoder(details))
    return JSONResponse(body.model_dump(exclude_none=True), 422)


def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own errors (unknown path, wrong method) in the gateway's shape."""
    assert isinstance(error, HTTPException)
    if error.status_code == 400:  # FastAPI's "error parsing the body": not UTF-8, say
        return ApiError(422, "invalid_request", str(error.detail)).response(0)
    codes = {404: "not_found", 405: "method_not_allowed"}
    body = ErrorBody(error=codes.get(error.status_code, "http_error"), message=str(error.detail))
    return JSONResponse(body.model_dump(exclude_none=True), error.status_code, error.headers)


def _unexpected(request: Request, error: Exception) -> Response:
    """The last resort, outside any route: still JSON, still not a 500."""
    return _error_response(request, error)


def create_app(
    conversations: Conversations | ConversationsFactory,
    settings: GatewaySettings | None = None,
) -> FastAPI:
    """The gateway's ASGI app, on a connected `Conversations` or a factory of one
    (`connector(...)`), called on the first request and again while connecting fails."""
    # Swagger UI and ReDoc from the fastapi-offline package, not a CDN: /docs works offline
    app = FastAPIOffline(
        title="Agent conversations gateway",
        version="1",
        description=DESCRIPTION,
        generate_unique_id_function=lambda route: route.name,
        static_url=DOCS_ASSETS,
    )
    settings = settings or GatewaySettings()
    app.state.temporal = Temporal(conversations)
    app.state.settings = settings
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    app.include_router(router)
    app.include_router(streams)
    app.include_router(health)
    add_pages(app)
    # outermost last: CORS answers preflights, then the guard checks size, type and Origin
    app.add_middleware(
        RequestGuard, max_body_bytes=settings.max_body_bytes, allowed_origins=settings.cors_origins
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    if settings.auth.anonymous:
        log.warning("authentication is OFF (--no-auth): anyone who reaches the gateway may use it")
    elif not settings.auth.keys:
        log.warning("no API keys configured: every request will be refused with 401")
    return app
