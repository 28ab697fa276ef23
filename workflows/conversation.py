"""The `AgentConversation` workflow: a thin Temporal shell around the pure conversation core.

Handlers feed `ConversationCore`; `run` takes one queued turn at a time and performs the
actions of its `TurnMachine` as activities. The rules (turn loop, teams, summaries) live in
`agent_workflows.core`, `.turns` and `.teams`, which import no Temporal module.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.contrib.workflow_streams import WorkflowStream, WorkflowStreamState
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    # pydantic models and the pure core: no I/O and no module state, so one import serves
    # every run instead of re-importing pydantic per run
    from agent_workflows.actions import Action, CallModel, Finish, ModelFailure, RunTools, ToolTask
    from agent_workflows.core import ConversationCore, Rejection, forgotten
    from agent_workflows.summaries import tool_failure, tool_interrupted
    from agent_workflows.summaries import tool_summary as _tool_summary  # noqa: F401 (tests)
    from pydantic import BaseModel, TypeAdapter, ValidationError

    from interface import (
        AgentSpec,
        CancelTurn,
        CancelTurnResult,
        ConversationState,
        ConversationStatus,
        ConversationSummary,
        DescribeAgentInput,
        EndConversation,
        ErrorType,
        ModelCallOutput,
        ModelPolicy,
        PendingApproval,
        StartConversation,
        StreamState,
        ToolCallOutput,
        ToolDecision,
        ToolPolicy,
        TurnResult,
        UserMessage,
    )
    from interface.contract import (
        ACTIVITY_CALL_TOOL,
        ACTIVITY_DESCRIBE_AGENT,
        ACTIVITY_MODEL_CALL,
        EVENTS_TOPIC,
        MAX_CONVERSATION_ID_CHARS,
        QUERY_STATE,
        SIGNAL_DECIDE_TOOL,
        SIGNAL_END,
        SIGNAL_USER_MESSAGE,
        UPDATE_ASK,
        UPDATE_CANCEL_TURN,
        WORKFLOW_TYPE,
    )
    from interface.events import ConversationEvent
    from interface.search_attributes import AGENT_NAME, CONVERSATION_STATUS, TURN_COUNT

_Model = TypeVar("_Model", bound=BaseModel)
_Result = TypeVar("_Result")
_UPGRADE = workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE
CARRIED_EVENTS = 32
"""Events carried across continue-as-new: a few turns' worth, for subscribers catching up."""
RETAINED_EVENTS = 256
"""Events the stream keeps in workflow memory within a run; when it holds more, the older
half is dropped. A subscriber further behind reads from the oldest
kept event on."""


@workflow.defn(name=WORKFLOW_TYPE)
class AgentConversation:
    @workflow.init
    def __init__(self, start: StartConversation) -> None:
        info = workflow.info()
        # publishing to the stream adds nothing to history; only subscribers' polls do
        self._stream = WorkflowStream(_stream_state(start.stream))
        self._events = self._stream.topic(EVENTS_TOPIC, type=ConversationEvent)
        carried_stream = start.stream
        self._base = carried_stream.base_offset if carried_stream else 0
        self._offset = self._base + len(carried_stream.log) if carried_stream else 0
        self._core = ConversationCore(
            start, info.workflow_id, info.first_execution_run_id, emit=self._publish
        )
        self._data = self._core.data
        self._broken: ApplicationError | None = None  # set when the agent cannot start
        self._asking: list[str] = []  # message IDs of the `ask` handlers still waiting
        self._refused = _refused_id(info.workflow_id)
        self._running: set[asyncio.Task[Any]] = set()  # what cancel_turn stops
        self._lean_upserts = False  # set by run() (a patch)

    @workflow.run
    async def run(self, start: StartConversation) -> ConversationSummary:
        # fail now: the ID would stick the first activity. Patched, and only for such an
        # ID, so that conversations started with a long ID before keep replaying
        if self._refused is not None and workflow.patched("conversation-id-limit"):
            raise self._refused
        # before any await: a marker recorded after a local activity's result may land in
        # a later workflow task than replay expects. Older histories have no marker.
        indexed = workflow.patched("search-attributes")
        failed_status = workflow.patched("failed-status")
        # histories before it upserted all three attributes every time
        self._lean_upserts = workflow.patched("lean-upserts")
        # histories before it carried every tool result to the next model call
        self._data.tools_write_results = workflow.patched("tool-results-written")
        spec = await self._describe_agent(indexed, failed_status)
        self._core.describe(spec)
        self._data.indexed = indexed and spec.search_attributes
        self._upsert()
        while True:
            await workflow.wait_condition(self._has_work)
            if self._data.carried.queue and await self._continue_mid_queue():
                await self._release_subscribers()
                workflow.continue_as_new(self._next_run())
            elif self._data.carried.queue:
                await self._run_turn()
            elif self._data.carried.end_requested:
                return await self._finish()
            else:
                await self._release_subscribers()
                await workflow.wait_condition(workflow.all_handlers_finished)
                # a pinned run moves to the deployment's current build here (unversioned
                # workers: no effect); not a command change, so no patch
                workflow.continue_as_new(self._next_run(), initial_versioning_behavior=_UPGRADE)

    # --- the event stream ----------------------------------------------------------------

    def _publish(self, event: ConversationEvent) -> None:
        """The core's events onto the stream's topic; the oldest dropped past the bound."""
        self._events.publish(event)
        self._offset += 1
        if self._offset - self._base > RETAINED_EVENTS:
            self._base = self._offset - RETAINED_EVENTS // 2
            self._stream.truncate(self._base)

    def _next_run(self) -> StartConversation:
        """The next run's input: the core's carried state and the stream's newest
        `CARRIED_EVENTS` events (the input is in history: carrying all retained events would
        add their bytes to every run, and history per turn would grow)."""
        if self._offset - self._base > CARRIED_EVENTS:
            self._base = self._offset - CARRIED_EVENTS
            self._stream.truncate(self._base)
        state = _STREAM_STATE.dump_python(self._stream.get_state(), mode="json")
        return self._core.carry().model_copy(update={"stream": StreamState.model_validate(state)})

    async def _release_subscribers(self) -> None:
        """Waiting polls return (their subscribers follow to the next run, or to the closed
        run's last events) before the run ends; they are update handlers still in flight."""
        self._stream.detach_pollers()
        await workflow.wait_condition(lambda: True)  # the released polls answer first

    # --- handlers ------------------------------------------------------------------------

    # Signals take `*args` and validate inside: a signal with no argument or several (the
    # CLI without --input, a client passing two) would otherwise raise TypeError in the
    # handler and fail the workflow task on every attempt. Malformed ones are logged and
    # dropped, as the SDK drops payloads it cannot decode.
    @workflow.signal(name=SIGNAL_USER_MESSAGE)
    def user_message(self, *args: object) -> None:
        message = _signal_arg(SIGNAL_USER_MESSAGE, UserMessage, args)
        if message is None:
            return
        if message.resume and self._core.resume(message) is not None:
            return
        rejection = self._core.rejection(message)
        if rejection and not self._unbounded_before_patch(rejection):
            workflow.logger.warning(
                "user_message %r dropped: %s", message.message_id, rejection.reason
            )
            return
        self._core.enqueue(message)

    # An ask still waiting for a queued turn when the run continues as new is abandoned:
    # the server fails it (AcceptedUpdateCompletedWorkflow) and the client asks again with
    # the same update ID; the next run, which carries the queue, answers it.
    @workflow.update(name=UPDATE_ASK, unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def ask(self, message: UserMessage) -> TurnResult:
        message_id = message.message_id
        if self._core.answered_long_ago(message_id):
            return forgotten(message_id)
        failed = self._core.resume(message) if message.resume else None
        if failed is None:
            self._core.enqueue(message)
        self._asking.append(message_id)
        try:
            await workflow.wait_condition(
                lambda: (
                    self._core.result_for(message_id) not in (None, failed)
                    or self._broken is not None
                )
            )
        finally:
            self._asking.remove(message_id)
        if self._broken is not None:
            raise self._broken
        result = self._core.result_for(message_id)
        assert result is not None
        return result

    @ask.validator
    def _validate_ask(self, message: UserMessage) -> None:
        # a rejected update never enters history, so the error's type is free to choose
        if self._refused is not None:
            raise self._refused
        rejection = self._core.rejection(message)
        if rejection:
            raise ApplicationError(rejection.reason, type=rejection.type)

    # Returns at once: the turn ends `interrupted` once its running activities have reported
    # (a cancel reaches an activity with its next heartbeat); `ask` callers get that result.
    @workflow.update(name=UPDATE_CANCEL_TURN)
    def cancel_turn(self, request: CancelTurn) -> CancelTurnResult:
        result = self._core.interrupt(request)
        if result.cancelled:
            for handle in list(self._running):
                handle.cancel()
        return result

    @workflow.signal(name=SIGNAL_DECIDE_TOOL)
    def decide_tool(self, *args: object) -> None:
        decision = _signal_arg(SIGNAL_DECIDE_TOOL, ToolDecision, args)
        if decision is not None and not self._core.decide(decision):
            workflow.logger.warning(
                "decide_tool for %r ignored: no pending approval", decision.tool_call_id
            )

    @workflow.signal(name=SIGNAL_END)
    def end(self, *args: object) -> None:
        if args not in ((), (None,)) and _signal_arg(SIGNAL_END, EndConversation, args) is None:
            return
        self._core.request_end()

    @workflow.query(name=QUERY_STATE)
    def state(self) -> ConversationState:
        return self._core.snapshot()

    def _has_work(self) -> bool:
        return self._core.has_work() or workflow.info().is_continue_as_new_suggested()

    async def _continue_mid_queue(self) -> bool:
        """Continue as new with turns still queued, when the run is long (histories before
        this change ran the whole queue first). Asks whose answer is ready return first."""
        if not self._core.run_is_long(workflow.info().is_continue_as_new_suggested()):
            return False
        if not workflow.patched("continue-as-new-mid-queue"):
            return False
        await workflow.wait_condition(self._asks_wait_for_queued_turns)
        return True

    def _asks_wait_for_queued_turns(self) -> bool:
        queued = {m.message_id for m in self._data.carried.queue}
        return all(m in queued for m in self._asking)

    def _unbounded_before_patch(self, rejection: Rejection) -> bool:
        """Histories from before the bounded queue took every turn a signal brought."""
        if rejection.type != ErrorType.BACKLOG_FULL:
            return False
        return not workflow.patched("bounded-queue")

    # --- one turn: perform the core's actions ----------------------------------------------

    async def _run_turn(self) -> None:
        machine = self._core.start_turn()
        turn = self._data.turn
        assert turn is not None
        self._set_status("thinking", f"turn {turn.number}: {turn.message.message_id}")
        action = machine.first()
        while not isinstance(action, Finish):
            recorded = self._core.performing(action)
            action = machine.send(await self._perform(action))
            self._core.performed(recorded)
        self._core.finish_turn(action.result)
        self._set_status("idle", f"idle after turn {turn.number}")

    async def _perform(self, action: Action) -> ModelCallOutput | list[ToolCallOutput] | None:
        if isinstance(action, CallModel):
            return await self._call_model(action)
        assert isinstance(action, RunTools)
        return list(await asyncio.gather(*(self._call_tool(task) for task in action.tasks)))

    async def _call_model(self, action: CallModel) -> ModelCallOutput | ModelFailure | None:
        try:
            handle = workflow.start_activity(
                ACTIVITY_MODEL_CALL,
                action.request,
                result_type=ModelCallOutput,
                **_config(action.activity_id, action.summary, action.policy),
            )
            return await self._cancellable(handle)
        except ActivityError as err:
            if isinstance(err.cause, CancelledError) and self._core.interrupted():
                return ModelFailure(ErrorType.TURN_INTERRUPTED, "cancelled before it answered")
            turn = action.request.turn
            if action.purpose == "select_speaker":
                workflow.logger.error("speaker selection failed for turn %s: %s", turn, err)
            else:
                workflow.logger.error("model call failed for turn %s: %s", turn, err.cause)
            if not workflow.patched("typed-model-failures"):
                return None  # recorded before turn results carried the error
            return _model_failure(err)

    async def _call_tool(self, task: ToolTask) -> ToolCallOutput:
        if task.approval is not None:
            denial = await self._await_approval(task.approval, task.policy.approval_timeout)
            if denial is not None:
                return denial
        if self._core.interrupted():  # approved, but the turn was interrupted meanwhile
            return tool_interrupted()
        try:
            handle = workflow.start_activity(
                ACTIVITY_CALL_TOOL,
                task.request,
                result_type=ToolCallOutput,
                **_config(task.activity_id, task.summary, task.policy),
            )
            return await self._cancellable(handle)
        except ActivityError as err:
            if isinstance(err.cause, CancelledError) and self._core.interrupted():
                return tool_interrupted()  # cancelled before an attempt ran
            cause = err.cause
            error_type = getattr(cause, "type", None) or type(cause).__name__
            return tool_failure(error_type, getattr(cause, "message", None) or str(cause))

    async def _await_approval(
        self, approval: PendingApproval, timeout: timedelta | None
    ) -> ToolCallOutput | None:
        call_id = approval.tool_call_id
        self._core.request_approval(approval)
        self._set_status("waiting_approval", f"turn {approval.turn}: approve {approval.name}?")
        timed_out = False
        try:
            await workflow.wait_condition(
                lambda: self._core.decided(call_id) or self._core.interrupted(), timeout=timeout
            )
        except TimeoutError:
            timed_out = True
        denial = self._core.settle_approval(call_id, timed_out)
        self._set_status("waiting_approval" if self._data.approvals else "thinking")
        return denial

    async def _cancellable(self, handle: workflow.ActivityHandle[_Result]) -> _Result:
        """Awaits the activity; `cancel_turn` cancels it meanwhile. Its cancellation type
        waits for the activity to report: an interrupted call writes its partial text and
        a tool reports what the ledger committed."""
        self._running.add(handle)
        try:
            return await handle
        finally:
            self._running.discard(handle)

    # --- status, search attributes, start and end -------------------------------------------

    def _set_status(self, status: ConversationStatus, details: str | None = None) -> None:
        self._data.status = status
        if details is not None:
            workflow.set_current_details(details)
        self._upsert()

    def _upsert(self) -> None:
        """Keep AgentName, ConversationStatus and TurnCount current, for list queries: all
        three at a run's first upsert, then only those that changed (an upsert rides in
        history twice a turn; unchanged attributes keep their values)."""
        data = self._data
        values = (data.status, data.carried.turn_count)
        if not data.indexed or values == data.upserted:
            return
        before, data.upserted = data.upserted, values
        status = CONVERSATION_STATUS.value_set(data.status)
        count = TURN_COUNT.value_set(data.carried.turn_count)
        updates: list[SearchAttributeUpdate[Any]]
        if before is None or not self._lean_upserts:
            updates = [AGENT_NAME.value_set(data.start.agent), status, count]
        else:
            updates = []
            if before[0] != data.status:
                updates.append(status)
            if before[1] != data.carried.turn_count:
                updates.append(count)
        workflow.upsert_search_attributes(updates)

    async def _finish(self) -> ConversationSummary:
        await self._release_subscribers()
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._set_status("ended", "ended")
        carried = self._data.carried
        return ConversationSummary(
            agent=self._data.start.agent, turn_count=carried.turn_count, usage=carried.usage
        )

    async def _describe_agent(self, indexed: bool, failed_status: bool) -> AgentSpec:
        agent = self._data.start.agent
        try:
            return await workflow.execute_local_activity(
                ACTIVITY_DESCRIBE_AGENT,
                self._describe_input(),
                result_type=AgentSpec,
                summary=f"describe agent: {agent}",
                start_to_close_timeout=timedelta(seconds=30),
            )
        except (ActivityError, ApplicationError) as err:
            # an unknown agent breaks the conversation: fail it rather than retry forever,
            # after failing the asks that wait for an answer with the same reason. A local
            # activity's non-retryable failure arrives as the ApplicationError itself.
            cause = err.cause if isinstance(err, ActivityError) else err
            self._broken = _start_failure(agent, cause)
            if failed_status:  # histories before it did not upsert here
                self._data.indexed = indexed and _reports_indexed(cause)
                self._set_status("failed", f"failed: {self._broken.message}")
            await self._release_subscribers()
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise self._broken from err

    def _describe_input(self) -> DescribeAgentInput:
        """A first run also asks whether an earlier, closed conversation holds its ID."""
        data = self._data
        if data.start.carried is not None:
            return DescribeAgentInput(agent=data.start.agent)
        return DescribeAgentInput(
            agent=data.start.agent, conversation_id=data.conversation_id, chain_id=data.chain_id
        )


_STREAM_STATE = TypeAdapter(WorkflowStreamState)


def _stream_state(carried: StreamState | None) -> WorkflowStreamState | None:
    """The carried stream state as the SDK's dataclass."""
    if carried is None:
        return None
    return _STREAM_STATE.validate_python(carried.model_dump())


def _start_failure(agent: str, cause: BaseException | None) -> ApplicationError:
    """The error a conversation that cannot start fails with, and its waiting asks too."""
    if getattr(cause, "type", None) == ErrorType.CONVERSATION_CLOSED:
        message = getattr(cause, "message", None) or str(cause)
        return ApplicationError(message, type=ErrorType.CONVERSATION_CLOSED, non_retryable=True)
    return ApplicationError(
        f"cannot start agent {agent!r}: {cause}", type=ErrorType.UNKNOWN_AGENT, non_retryable=True
    )


def _config(
    activity_id: str, summary: str, policy: ModelPolicy | ToolPolicy
) -> workflow.ActivityConfig:
    """A model or tool activity's ID, summary, timeouts and retry policy."""
    return workflow.ActivityConfig(
        activity_id=activity_id,
        summary=summary,
        start_to_close_timeout=policy.start_to_close,
        schedule_to_close_timeout=policy.schedule_to_close,
        heartbeat_timeout=policy.heartbeat,
        retry_policy=policy.retry.to_temporal(),
        # not part of the command (old histories replay unchanged): the SDK waits for the
        # activity's own report of a cancel instead of resolving at once
        cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    )


def _model_failure(err: ActivityError) -> ModelFailure:
    """The type and message of the failure that ended the model call: the activity's own,
    also when the call then timed out (its last attempt's failure is the timeout's cause)."""
    cause: BaseException | None = err.cause
    while isinstance(cause, ActivityTimeout) and isinstance(cause.cause, BaseException):
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return ModelFailure(cause.type or "ApplicationError", cause.message)
    return ModelFailure(type(cause).__name__, str(cause) if cause else "")


def _refused_id(workflow_id: str) -> ApplicationError | None:
    """The failure of a conversation whose ID is over the contract's limit: PostgreSQL's
    columns and Temporal's activity IDs (which start with it) would refuse it later."""
    if len(workflow_id) <= MAX_CONVERSATION_ID_CHARS:
        return None
    return ApplicationError(
        f"the conversation ID is {len(workflow_id):,} characters; "
        f"at most {MAX_CONVERSATION_ID_CHARS} are allowed",
        type=ErrorType.INVALID_CONVERSATION_ID,
        non_retryable=True,
    )


def _reports_indexed(error: BaseException | None) -> bool:
    """The describe activity's UnknownAgent failure says whether the search attributes exist."""
    details = getattr(error, "details", None) or ()
    return any(isinstance(d, dict) and d.get("search_attributes") is True for d in details)


def _signal_arg(signal: str, model: type[_Model], args: tuple[object, ...]) -> _Model | None:
    """The signal's one argument as `model`, or None (logged) for any other shape."""
    problem = f"expected one argument, got {len(args)}"
    if len(args) == 1:
        try:
            return model.model_validate(args[0])
        except ValidationError as err:
            problem = f"not a valid {model.__name__} ({err.error_count()} errors)"
    workflow.logger.warning("%s signal dropped: %s", signal, problem)
    return None
