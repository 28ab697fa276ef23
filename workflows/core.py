"""The conversation without Temporal: the turn queue, deduplication of message IDs,
approvals, the record of finished turns and the state carried across continue-as-new.

`AgentConversation` (the shell) calls these from its handlers and runs the actions of each
turn's `TurnMachine`. Nothing here awaits, reads a clock or imports Temporal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent_workflows.actions import Action, CallModel, RunTools, ToolTask
from agent_workflows.state import ConversationData, TurnProgress
from agent_workflows.summaries import shorten, tool_interrupted
from agent_workflows.turns import TurnMachine

from interface import (
    AgentSpec,
    CancelTurn,
    CancelTurnResult,
    CarriedState,
    ConversationState,
    ErrorType,
    PendingApproval,
    StartConversation,
    ToolCallOutput,
    ToolDecision,
    TurnError,
    TurnResult,
    UserMessage,
)
from interface.events import ConversationEvent, turn_finished

__all__ = ["RECENT_TOOL_CALLS", "ConversationCore", "Rejection", "forgotten"]

RECENT_TOOL_CALLS = 20
MESSAGE_ID_LIMIT = 200
REASON_LIMIT = 500
"""Characters of a `cancel_turn` reason kept in the turn's error."""


@dataclass(frozen=True)
class Rejection:
    """Why a message is refused; `type` is what the `ask` validator's error carries."""

    type: ErrorType
    reason: str


class ConversationCore:
    """The conversation's rules over its one state model, `data`."""

    def __init__(
        self,
        start: StartConversation,
        conversation_id: str,
        chain_id: str,
        emit: Callable[[ConversationEvent], None] | None = None,
    ) -> None:
        self.emit = emit or (lambda _: None)
        """Where the conversation's durable events go (the shell publishes them)."""
        carried = start.carried or CarriedState()
        self.data = ConversationData(
            start=start,
            conversation_id=conversation_id,
            chain_id=carried.chain_id or chain_id,
            carried=carried,
        )
        self.data.seen = set(carried.recent_message_ids) | {m.message_id for m in carried.queue}

    # --- queue and dedup ---------------------------------------------------------------------

    def rejection(self, message: UserMessage) -> Rejection | None:
        """None if the message is taken (a retry of a known ID is, to be answered again)."""
        if message.message_id in self.data.seen:
            return None
        limit = self.data.start.settings.max_message_chars
        if not message.message_id.strip():
            return _rejected("message_id is empty")
        if len(message.message_id) > MESSAGE_ID_LIMIT:
            return _rejected(f"message_id is longer than {MESSAGE_ID_LIMIT} characters")
        if not message.text.strip():
            return _rejected("text is empty")
        if len(message.text) > limit:
            return _rejected(f"text is longer than {limit} characters")
        if self.data.carried.end_requested:
            return Rejection(ErrorType.CONVERSATION_ENDING, "the conversation is ending")
        return self._backlog_full(message)

    def _backlog_full(self, message: UserMessage) -> Rejection | None:
        """Refuses a turn the bounded queue has no room for (it is carried across runs)."""
        settings, queue = self.data.start.settings, self.data.carried.queue
        if len(queue) >= settings.max_queued_turns:
            reason = f"{len(queue)} turns are waiting (max_queued_turns)"
        elif sum(len(m.text) for m in queue) + len(message.text) > settings.max_queued_chars:
            reason = f"the waiting turns hold over {settings.max_queued_chars} characters"
        else:
            return None
        return Rejection(ErrorType.BACKLOG_FULL, f"backlog full: {reason}; send again later")

    def enqueue(self, message: UserMessage) -> None:
        if message.message_id in self.data.seen:
            return
        self.data.seen.add(message.message_id)
        self.data.carried.recent_message_ids.append(message.message_id)
        self.data.carried.queue.append(message)
        self._accepted(message)

    def _accepted(self, message: UserMessage) -> None:
        event = ConversationEvent(
            type="turn_accepted", message_id=message.message_id, text=message.text
        )
        self.emit(event)

    def resume(self, message: UserMessage) -> TurnResult | None:
        """Queue the failed turn of `message.message_id` to continue where it failed; returns
        the failure it replaces, or None if that turn did not fail (nothing is queued)."""
        failed = self.result_for(message.message_id)
        if failed is None or failed.status != "failed":
            return None
        queued = any(m.message_id == message.message_id for m in self.data.carried.queue)
        turn = self.data.turn
        running = turn is not None and turn.message.message_id == message.message_id
        if not queued and not running:
            self.data.carried.queue.append(message.model_copy(update={"resume": True}))
            self._accepted(message)
        return failed

    def result_for(self, message_id: str) -> TurnResult | None:
        """The kept result of that message's turn (the latest, if it ran twice)."""
        for result in reversed(self.data.carried.recent_results):
            if result.message_id == message_id:
                return result
        return None

    def answered_long_ago(self, message_id: str) -> bool:
        """Seen and answered, but the result is older than the kept window."""
        data = self.data
        if message_id not in data.seen or self.result_for(message_id) is not None:
            return False
        turn = data.turn
        in_progress = turn is not None and turn.message.message_id == message_id
        return not in_progress and all(m.message_id != message_id for m in data.carried.queue)

    def request_end(self) -> None:
        self.data.carried.end_requested = True

    def has_work(self) -> bool:
        """A queued turn, an end to honour, or a run long enough to continue as new."""
        data = self.data
        return (
            bool(data.carried.queue)
            or data.carried.end_requested
            or data.run_turns >= data.start.settings.max_turns_per_run
        )

    def run_is_long(self, suggested: bool) -> bool:
        """Time to continue as new, queued turns or not: Temporal suggests it, or the run
        reached its turn limit. Waiting for an empty queue could outgrow the history."""
        return suggested or self.data.run_turns >= self.data.start.settings.max_turns_per_run

    # --- turns -------------------------------------------------------------------------------

    def describe(self, spec: AgentSpec) -> None:
        self.data.spec = spec

    def start_turn(self) -> TurnMachine:
        """Takes the next queued message; its machine runs the turn."""
        data = self.data
        message = data.carried.queue.pop(0)
        failed = self.result_for(message.message_id) if message.resume else None
        if failed is not None and failed.status == "failed":
            attempts = sum(r.message_id == message.message_id for r in data.carried.recent_results)
            data.turn = _resumed(message, failed, attempts)
        else:
            data.turn = TurnProgress(number=data.carried.turn_count + 1, message=message)
        self.emit(
            ConversationEvent(
                type="turn_started", message_id=message.message_id, turn=data.turn.number
            )
        )
        return TurnMachine(data, data.turn)

    def performing(self, action: Action) -> int:
        """Emits the start of a model call or of tool calls; returns how many tool calls the
        turn had recorded before it, for `performed`."""
        turn = self.data.turn
        assert turn is not None
        if isinstance(action, CallModel) and action.purpose == "reply":
            request = action.request
            self.emit(
                ConversationEvent(
                    type="model_started", turn=request.turn, step=request.step, agent=request.agent
                )
            )
        elif isinstance(action, RunTools):
            for task in action.tasks:
                for call_id in task.request.call_ids:
                    self.emit(_tool_started(task.request.turn, call_id, task))
        return len(turn.tool_calls)

    def performed(self, recorded_before: int) -> None:
        """Emits the end of each tool call the turn recorded since `performing`."""
        turn = self.data.turn
        if turn is None:
            return
        for call in turn.tool_calls[recorded_before:]:
            self.emit(
                ConversationEvent(
                    type="tool_finished",
                    turn=call.turn or turn.number,
                    tool_call_id=call.id,
                    name=call.name,
                    status=call.status,
                    result=call.result,
                    agent=call.speaker,
                )
            )

    def finish_turn(self, result: TurnResult) -> None:
        """Records the turn's result and trims what is kept to its bounds."""
        data, carried, settings = self.data, self.data.carried, self.data.start.settings
        assert data.turn is not None
        carried.turn_count = max(carried.turn_count, data.turn.number)  # a resumed turn's is older
        data.run_turns += 1
        carried.recent_results = [*carried.recent_results, result][-settings.recent_results :]
        calls = [*carried.tool_calls, *data.turn.tool_calls]
        carried.tool_calls = calls[-RECENT_TOOL_CALLS:]
        ids = carried.recent_message_ids[-settings.recent_message_ids :]
        carried.recent_message_ids = ids
        data.seen = set(ids) | {m.message_id for m in carried.queue}
        data.turn = None
        self.emit(turn_finished(result))

    def interrupt(self, request: CancelTurn) -> CancelTurnResult:
        """Marks the running turn (if `request.message_id` names it, or names none) to end
        `interrupted`; the shell cancels its running activities. Queued turns go on."""
        turn = self.data.turn
        if turn is None or request.message_id not in (None, turn.message.message_id):
            return CancelTurnResult(cancelled=False, message_id=request.message_id)
        if turn.interrupt is None:  # a repeated cancel keeps the first reason
            reason = shorten(request.reason.strip(), REASON_LIMIT) or "interrupted by cancel_turn"
            turn.interrupt = TurnError(type=ErrorType.TURN_INTERRUPTED, message=reason)
        return CancelTurnResult(
            cancelled=True, message_id=turn.message.message_id, turn=turn.number
        )

    def interrupted(self) -> bool:
        return self.data.turn is not None and self.data.turn.interrupt is not None

    # --- approvals ---------------------------------------------------------------------------

    def request_approval(self, approval: PendingApproval) -> None:
        self.data.approvals[approval.tool_call_id] = approval
        self.emit(
            ConversationEvent(
                type="approval_needed",
                turn=approval.turn,
                tool_call_id=approval.tool_call_id,
                name=approval.name,
                arguments=approval.arguments,
            )
        )

    def decide(self, decision: ToolDecision) -> bool:
        """Takes a person's decision; False (ignored) if no such approval is pending."""
        if decision.tool_call_id not in self.data.approvals:
            return False
        self.data.decisions[decision.tool_call_id] = decision
        return True

    def decided(self, tool_call_id: str) -> bool:
        return tool_call_id in self.data.decisions

    def settle_approval(self, tool_call_id: str, timed_out: bool) -> ToolCallOutput | None:
        """None if approved (the tool runs); otherwise the denial the model sees (or, for a
        turn interrupted while it waited, the interruption)."""
        if tool_call_id not in self.data.decisions and self.interrupted():
            del self.data.approvals[tool_call_id]
            return tool_interrupted()
        if timed_out:
            decision = ToolDecision(
                tool_call_id=tool_call_id, approve=False, reason="approval timed out"
            )
        else:
            decision = self.data.decisions.pop(tool_call_id)
        approval = self.data.approvals.pop(tool_call_id)
        self.emit(
            ConversationEvent(
                type="approval_decided",
                turn=approval.turn,
                tool_call_id=tool_call_id,
                name=approval.name,
                status="ok" if decision.approve else "denied",
            )
        )
        if decision.approve:
            return None
        return ToolCallOutput(status="denied", content=f"Denied: {decision.reason or 'no reason'}")

    # --- queries and continue-as-new -----------------------------------------------------------

    def snapshot(self) -> ConversationState:
        data, carried = self.data, self.data.carried
        return ConversationState(
            agent=data.start.agent,
            status=data.status,
            turn_count=carried.turn_count,
            messages=carried.messages,
            tool_calls=carried.tool_calls,
            pending_approvals=list(data.approvals.values()),
            usage=carried.usage,
            queued_turns=len(carried.queue),
            run_turns=data.run_turns,
            active_agent=carried.speaker,
        )

    def carry(self) -> StartConversation:
        """The next run's input: the same start, with the bounded carried state."""
        self.data.carried.runs += 1
        return self.data.start.model_copy(update={"carried": self.data.carried})


def forgotten(message_id: str) -> TurnResult:
    """The answer to a retried `ask` whose result fell out of the kept window."""
    return TurnResult(
        message_id=message_id,
        turn=0,
        status="duplicate",
        reply="This message was answered earlier; its result is no longer kept.",
    )


def _resumed(message: UserMessage, failed: TurnResult, attempts: int) -> TurnProgress:
    """The failed turn again, from its failed model call: the same turn and step numbers,
    so the ledger keys of its tool calls are the ones it would have had."""
    return TurnProgress(
        number=failed.turn,
        message=message,
        tool_calls=list(failed.tool_calls),
        usage=failed.usage,
        steps=max(failed.steps - 1, 0),
        speaker=failed.speaker,
        speakers=list(failed.speakers),
        resumed=attempts,
    )


def _tool_started(turn: int, call_id: str, task: ToolTask) -> ConversationEvent:
    request = task.request
    return ConversationEvent(
        type="tool_started",
        turn=turn,
        tool_call_id=call_id,
        name=request.name,
        arguments=request.arguments,
        agent=request.agent,
    )


def _rejected(reason: str) -> Rejection:
    return Rejection(ErrorType.MESSAGE_REJECTED, reason)
