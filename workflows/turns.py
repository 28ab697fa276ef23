"""One user turn as a step machine: the agent loop of the frameworks we run, and teams.

`TurnMachine` yields actions (`agent_workflows.actions`) and takes their outcomes; it never
awaits anything and imports no Temporal module, so unit tests drive it with scripted model
outputs. Loop strategies: until text (the neutral loop, LlamaIndex's agents), AutoGen's
tool rounds (`max_tool_iterations`, then reflection or a summary), and team turns.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from agent_workflows import teams
from agent_workflows.actions import Action, CallModel, Finish, ModelFailure, RunTools, ToolTask
from agent_workflows.state import ConversationData, TurnProgress
from agent_workflows.summaries import (
    STATE_TEXT_LIMIT,
    canonical,
    record,
    tool_interrupted,
    tool_message,
    tool_summary,
)

from interface import (
    AgentSpec,
    ErrorType,
    Message,
    ModelCallInput,
    ModelCallOutput,
    PendingApproval,
    RecentMessage,
    SeqMessage,
    SpeakerSelection,
    TeamSpec,
    ToolCall,
    ToolCallInput,
    ToolCallOutput,
    ToolCallRecord,
    TurnError,
    TurnResult,
)

__all__ = ["MAX_UNSENT", "TurnMachine", "failure_reply", "written_before"]

MAX_UNSENT = 64
"""Messages carried for the next model call after a failed one that may not have written
them: the oldest beyond this are dropped (the window repairs a call left without result)."""
ModelOutcome: TypeAlias = ModelCallOutput | ModelFailure | None
"""None: a failure in a history recorded before failures were typed."""

_T = TypeVar("_T")
Steps = Generator[Action, Any, _T]
"""A step of the loop: yields actions, receives each one's outcome, returns a value."""


class _Interrupted(Exception):
    """Raised in the loop after the action that `cancel_turn` interrupted: the turn ends
    with `reply`, the text written so far."""

    def __init__(self, reply: str = "") -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True)
class _Speaker:
    """Whose loop runs: the single agent, or a team member (`name` set)."""

    spec: AgentSpec
    agent: str
    """The agent name its activities use."""
    name: str | None = None

    @property
    def label(self) -> str | None:
        """The member shown as the speaker of its messages in `state`."""
        return self.spec.agent.rpartition("/")[2] if self.name else None


class TurnMachine:
    """Runs one user turn on `data`: `first()` gives the first action, `send(outcome)` the
    next; the last action is `Finish`."""

    def __init__(self, data: ConversationData, turn: TurnProgress) -> None:
        assert data.spec is not None
        self._data, self._spec, self._turn = data, data.spec, turn
        self._carried = data.carried
        self._terminated = False  # an answer's own termination rule held (AG2)
        self._steps = self._run()

    def first(self) -> Action:
        return self._advance(None)

    def send(self, outcome: object) -> Action:
        return self._advance(outcome)

    def _advance(self, outcome: object) -> Action:
        try:
            return self._steps.send(outcome)
        except StopIteration as stop:
            return Finish(stop.value)

    def _run(self) -> Steps[TurnResult]:
        message = self._turn.message
        user = Message(role="user", content=message.text, message_id=message.message_id)
        # a resumed turn's message is in the transcript already (or still unsent)
        pending = [] if self._turn.resumed else [self._seq(user, None)]
        try:
            if self._spec.team is not None:
                return (yield from self._team_turn(self._spec.team, pending))
            single = _Speaker(self._spec, self._data.start.agent)
            return (yield from self._agent_loop(single, pending))
        except _Interrupted as stop:
            return self._result("interrupted", stop.reply, self._turn.interrupt)

    def _stop_if_interrupted(self, reply: str = "") -> None:
        if self._turn.interrupt is not None:
            raise _Interrupted(reply)

    # --- one agent's loop ------------------------------------------------------------------

    def _agent_loop(self, who: _Speaker, pending: list[SeqMessage]) -> Steps[TurnResult]:
        """Until text: model, tools, model... until a reply without tool calls."""
        if who.spec.max_tool_iterations is not None:
            return (yield from self._tool_rounds(who, pending, who.spec.max_tool_iterations))
        turn = self._turn
        max_steps = self._data.start.settings.max_steps_per_turn or who.spec.max_steps
        first = turn.steps  # a team member's steps count from its own first model call
        while turn.steps - first < max_steps:
            output = yield from self._call_model(who, pending)
            if not _calls_tools(output):
                return self._answer(output)
            assert isinstance(output, ModelCallOutput)
            pending = yield from self._run_tools(who, output.message.tool_calls)
            if turn.handoff is not None:
                return self._handed_off(pending)
        self._carried.unsent = pending  # sent with the next model call: the transcript stays whole
        return self._result(
            "step_limit", f"I stopped after {max_steps} steps without a final answer."
        )

    def _tool_rounds(
        self, who: _Speaker, pending: list[SeqMessage], rounds: int
    ) -> Steps[TurnResult]:
        """AutoGen's AssistantAgent: up to `rounds` rounds of tool calls, then a reflection
        (a model call without tools) or a summary of the last round's results."""
        output = yield from self._call_model(who, pending)
        last_round: list[ToolCallRecord] = []
        for round_number in range(1, rounds + 1):
            if not _calls_tools(output):
                return self._answer(output)
            assert isinstance(output, ModelCallOutput)
            pending = yield from self._run_tools(who, output.message.tool_calls)
            if self._turn.handoff is not None:
                return self._handed_off(pending)
            last_round = self._turn.tool_calls[-len(output.message.tool_calls) :]
            if round_number < rounds:
                output = yield from self._call_model(who, pending)
        if who.spec.reflect_on_tool_use:
            return self._answer((yield from self._call_model(who, pending, tools_enabled=False)))
        self._carried.unsent = pending
        return self._result("completed", _summary(who.spec, last_round))

    def _call_model(
        self, who: _Speaker, pending: list[SeqMessage], tools_enabled: bool = True
    ) -> Steps[ModelOutcome]:
        turn, carried = self._turn, self._carried
        turn.steps += 1
        new_messages = [*carried.unsent, *pending]
        carried.unsent = new_messages  # until the activity has written them
        output_seq = self._next_seq()
        request = self._model_input(who.agent, new_messages, output_seq)
        request.tools_enabled = tools_enabled
        resumed = f"/r{turn.resumed}" if turn.resumed else ""  # IDs of a resumed turn differ
        output = yield CallModel(
            request,
            activity_id=f"{self._data.conversation_id}/{self._step()}/model{resumed}",
            summary=f"model: {request.agent} (turn {turn.number}, step {turn.steps})",
            policy=who.spec.model,
        )
        if not isinstance(output, ModelCallOutput):
            self._after_failure(output)
            self._stop_if_interrupted()
            return output
        self._follow_fork(output)
        if not output.message.interrupted:  # an interrupted call may not have written them
            carried.unsent = []
        self._add_usage(output)
        if output.message.content or not output.message.interrupted:  # empty: nothing written
            self._remember(SeqMessage(seq=output_seq, message=output.message), who)
        self._terminated = self._terminated or output.terminate
        if self._turn.interrupt is not None:
            self._interrupt_after(who, output)
        return output

    def _interrupt_after(self, who: _Speaker, output: ModelCallOutput) -> None:
        """The answer of an interrupted call: its text is the reply; tool calls it asks for
        are not run, and get results that say so (the transcript stays whole)."""
        results = []
        for call in output.message.tool_calls:
            out = tool_interrupted()
            self._turn.tool_calls.append(record(self._turn.number, call, out, self._turn.speaker))
            results.append(self._seq(tool_message(call, out), who))
        self._carried.unsent = [*self._carried.unsent, *results]
        raise _Interrupted(output.message.content)

    def _after_failure(self, failure: ModelFailure | None) -> None:
        """What the failed call's activity wrote is not carried again; the rest stays
        bounded, so failed turns do not pile up carried messages."""
        if failure is None:
            return  # a history from before typed failures: as it was recorded
        if written_before(failure.type):
            self._carried.unsent = []
        else:
            self._carried.unsent = self._carried.unsent[-MAX_UNSENT:]

    def _model_input(self, agent: str, new: list[SeqMessage], output_seq: int) -> ModelCallInput:
        return ModelCallInput(
            conversation_id=self._data.conversation_id,
            chain_id=self._data.chain_id,
            agent=agent,
            turn=self._turn.number,
            step=self._turn.steps,
            new_messages=new,
            output_seq=output_seq,
        )

    def _answer(self, output: ModelOutcome) -> TurnResult:
        if output is None:
            return self._result("failed", "The model could not be reached.")
        if isinstance(output, ModelFailure):
            error = TurnError(type=output.type, message=output.message)
            return self._result("failed", failure_reply(output.type), error)
        if output.duplicate_message_id:
            return self._result("duplicate", "")
        result = self._result("completed", output.message.content)
        result.output = output.output  # the answer's structured output, if any
        return result

    # --- tools -------------------------------------------------------------------------------

    def _run_tools(self, who: _Speaker, calls: list[ToolCall]) -> Steps[list[SeqMessage]]:
        """Handoffs first (no activity), then one task per group of identical calls."""
        handed = {c.id: self._handoff(who, c) for c in calls if c.name in who.spec.handoffs}
        groups = _group_identical(who.spec, [c for c in calls if c.id not in handed])
        # the seqs the results take below, in call order: a tool may write its own
        base = self._carried.next_seq
        seqs = (
            {c.id: base + i for i, c in enumerate(calls)} if self._data.tools_write_results else {}
        )
        tasks = [self._tool_task(who, i, group, seqs) for i, group in enumerate(groups)]
        outputs: list[ToolCallOutput] = (yield RunTools(tasks)) if tasks else []
        by_call = {c.id: out for group, out in zip(groups, outputs, strict=True) for c in group}
        by_call.update(handed)
        messages = []
        for call in calls:
            out = by_call[call.id]
            self._turn.tool_calls.append(record(self._turn.number, call, out, self._turn.speaker))
            item = self._seq(tool_message(call, out), who)
            if not (out.written and seqs.get(call.id) == item.seq):
                messages.append(item)  # not in the transcript yet: the next model call writes it
        if self._turn.interrupt is not None:  # the results go with the next model call
            self._carried.unsent = [*self._carried.unsent, *messages]
            raise _Interrupted()
        return messages

    def _tool_task(
        self, who: _Speaker, index: int, group: list[ToolCall], seqs: dict[str, int]
    ) -> ToolTask:
        call, policy = group[0], who.spec.tool_policy(group[0].name)
        data, step = self._data, self._step()
        approval = None
        if policy.needs_approval:
            approval = PendingApproval(
                tool_call_id=call.id,
                name=call.name,
                arguments=call.arguments,
                turn=self._turn.number,
            )
        request = ToolCallInput(
            conversation_id=data.conversation_id,
            chain_id=data.chain_id,
            agent=who.agent,
            turn=self._turn.number,
            key=f"{data.conversation_id}/{data.chain_id}/{step}/c{index}",
            name=call.name,
            arguments=call.arguments,
            call_ids=[c.id for c in group],
            result_seqs=[seqs[c.id] for c in group] if seqs else [],
        )
        activity_id = f"{data.conversation_id}/{step}/c{index}"
        return ToolTask(index, request, activity_id, tool_summary(call), policy, approval)

    def _handoff(self, who: _Speaker, call: ToolCall) -> ToolCallOutput:
        """The first valid handoff of a response picks the next speaker."""
        assert self._spec.team is not None
        handoff = who.spec.handoffs[call.name]
        members, turn = self._spec.team.members, self._turn
        target, output = teams.handoff_outcome(handoff, call, members, turn.speaker)
        if target is not None and turn.handoff is None:
            turn.handoff = (target, output.content)
            self._carried.speaker = target
        return output

    def _handed_off(self, pending: list[SeqMessage]) -> TurnResult:
        assert self._turn.handoff is not None
        self._carried.unsent = pending  # the tool results go with the next speaker's model call
        return self._result("completed", self._turn.handoff[1])

    # --- teams ---------------------------------------------------------------------------------

    def _team_turn(self, team: TeamSpec, pending: list[SeqMessage]) -> Steps[TurnResult]:
        """Members speak one after another on the shared transcript until a termination
        condition holds."""
        self._carried.unsent = [*self._carried.unsent, *pending]
        result, messages = self._result("completed", ""), 1  # the user's message counts
        stop = teams.mentions_stop(team, "user", self._turn.message.text) or team.max_messages == 1
        while not stop:
            speaker = yield from self._next_speaker(team)
            if isinstance(speaker, TurnResult):
                return speaker
            result = yield from self._member_turn(speaker)
            messages += 1
            handed_off = self._turn.handoff is not None
            stop = self._terminated or teams.should_stop(
                team, speaker, result, messages, handed_off
            )
        return result

    def _member_turn(self, speaker: str) -> Steps[TurnResult]:
        member = self._spec.members[speaker]
        turn = self._turn
        turn.speaker, turn.handoff = speaker, None
        turn.speakers.append(speaker)
        self._carried.speaker = speaker
        return (yield from self._agent_loop(_Speaker(member, member.agent, speaker), []))

    def _next_speaker(self, team: TeamSpec) -> Steps[str | TurnResult]:
        previous = self._previous_speaker(team)
        if team.mode == "round_robin":
            return teams.round_robin_speaker(team, self._carried, previous)
        if team.mode == "random":
            seed = f"{self._data.conversation_id}/t{self._turn.number}/{len(self._turn.speakers)}"
            return teams.random_speaker(team, previous, seed)
        if team.mode == "handoff":
            target = self._turn.handoff[0] if self._turn.handoff else None
            return teams.handoff_speaker(team, target, self._carried.speaker)
        return (yield from self._select_speaker(team))

    def _previous_speaker(self, team: TeamSpec) -> str | None:
        """The member who spoke last; in an AG2 group chat, None (the person) at the start
        of a user turn."""
        if team.first_speakers is not None and not self._turn.speakers:
            return None
        return self._carried.speaker

    def _select_speaker(self, team: TeamSpec) -> Steps[str | TurnResult]:
        """SelectorGroupChat: the team's model picks; one candidate needs no model call."""
        turn, carried, previous = self._turn, self._carried, self._previous_speaker(team)
        candidates = teams.selector_candidates(team, previous)
        if len(candidates) == 1:
            return candidates[0]
        request = self._model_input(self._data.start.agent, carried.unsent, carried.next_seq)
        request.select_speaker = SpeakerSelection(candidates=candidates, previous=previous)
        number = len(turn.speakers) + 1
        output = yield CallModel(
            request,
            activity_id=f"{self._data.conversation_id}/t{turn.number}/a{number}/select",
            summary=f"select speaker: {self._spec.agent} (turn {turn.number}, #{number})",
            policy=self._spec.model,
            purpose="select_speaker",
        )
        if isinstance(output, ModelCallOutput):
            self._follow_fork(output)
        if not isinstance(output, ModelCallOutput) or output.duplicate_message_id:
            if isinstance(output, ModelFailure):
                self._after_failure(output)
            self._stop_if_interrupted()
            return self._answer(output)
        carried.unsent = []  # the activity wrote them
        self._add_usage(output)
        self._stop_if_interrupted()
        return teams.chosen_speaker(team, output.message.content, candidates)

    # --- bookkeeping -----------------------------------------------------------------------

    def _follow_fork(self, output: ModelCallOutput) -> None:
        """After a reset the transcript forked onto a chain of its own: later calls, ledger
        keys and the next runs stay on it, so the abandoned branch's rows are not reused."""
        if output.chain_id and output.chain_id != self._data.chain_id:
            self._data.chain_id = self._carried.chain_id = output.chain_id

    def _step(self) -> str:
        """Turn and step in activity IDs and ledger keys; a team member's name is added, so
        keys stay unique and readable."""
        step = f"t{self._turn.number}/s{self._turn.steps}"
        return f"{step}/{self._turn.speaker}" if self._turn.speaker else step

    def _next_seq(self) -> int:
        seq = self._carried.next_seq
        self._carried.next_seq += 1
        return seq

    def _seq(self, message: Message, who: _Speaker | None) -> SeqMessage:
        item = SeqMessage(seq=self._next_seq(), message=message)
        self._remember(item, who)
        return item

    def _remember(self, item: SeqMessage, who: _Speaker | None) -> None:
        m = item.message
        text = m.content or ", ".join(f"{c.name}({c.arguments})" for c in m.tool_calls)
        recent = RecentMessage(
            seq=item.seq,
            role=m.role,
            content=text[:STATE_TEXT_LIMIT],
            name=m.name,
            speaker=who.label if who else None,
        )
        keep = self._data.start.settings.recent_messages
        self._carried.messages = [*self._carried.messages, recent][-keep:]

    def _add_usage(self, output: ModelCallOutput) -> None:
        self._turn.usage = self._turn.usage.plus(output.usage)
        self._carried.usage = self._carried.usage.plus(output.usage)

    def _result(self, status: str, reply: str, error: TurnError | None = None) -> TurnResult:
        turn = self._turn
        return TurnResult.model_validate(
            dict(
                message_id=turn.message.message_id,
                turn=turn.number,
                status=status,
                reply=reply,
                tool_calls=turn.tool_calls,
                usage=turn.usage,
                steps=turn.steps,
                speaker=turn.speaker,
                speakers=list(turn.speakers),
                **({"error": error} if error else {}),
            )
        )


def _calls_tools(output: ModelOutcome) -> bool:
    """Tools to run: not a failure, a text answer, a duplicate, or the agent's own
    termination rule (AG2's is_termination_msg) holding on this answer."""
    return (
        isinstance(output, ModelCallOutput)
        and not output.duplicate_message_id
        and bool(output.message.tool_calls)
        and not output.terminate
    )


_WRITTEN = frozenset(
    {
        ErrorType.MODEL_UNAVAILABLE,
        ErrorType.CONTEXT_LENGTH_EXCEEDED,
        ErrorType.MODEL_RESPONSE_INVALID,
    }
)


def written_before(error_type: str) -> bool:
    """The model activity fails with these only after it wrote the call's new messages."""
    return error_type in _WRITTEN or error_type.startswith("ModelHTTP")


def failure_reply(error_type: str) -> str:
    """The reply of a failed turn: what happened, in words."""
    if error_type == ErrorType.CONTEXT_LENGTH_EXCEEDED:
        return "The message is too long for the model's context window."
    if error_type == ErrorType.MODEL_UNAVAILABLE:
        return "The model could not be reached."
    if error_type == ErrorType.MODEL_RESPONSE_INVALID:
        return "The model's answer could not be read."
    status = error_type.removeprefix("ModelHTTP")
    if status.isdigit() and (int(status) >= 500 or int(status) == 429):
        return f"The model endpoint kept failing (HTTP {status}); the turn can be resumed."
    if status.isdigit():
        return f"The model endpoint refused the request (HTTP {status})."
    return f"The model call failed ({error_type})."


def _summary(spec: AgentSpec, calls: list[ToolCallRecord]) -> str:
    """AutoGen's tool_call_summary_format applied to each call of the last round."""
    return "\n".join(
        spec.tool_call_summary_format.format(
            tool_name=c.name, arguments=c.arguments, result=c.result, is_error=c.status != "ok"
        )
        for c in calls
    )


def _group_identical(spec: AgentSpec, calls: list[ToolCall]) -> list[list[ToolCall]]:
    """Identical calls (same name, same arguments) in one response run once, if allowed."""
    groups: dict[tuple[str, str], list[ToolCall]] = {}
    for call in calls:
        key = (call.name, canonical(call.arguments))
        if not spec.tool_policy(call.name).dedupe_identical_calls:
            key = (call.name, f"\0{call.id}")
        groups.setdefault(key, []).append(call)
    return list(groups.values())
