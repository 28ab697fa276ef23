"""The `AgentConversation` workflow: one conversation, its turn queue and its agent loop.

Deterministic code only. Model and tool calls are activities named by string, so this file
imports nothing but the SDK and the interface models.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    # pydantic models only; passing them through avoids re-importing pydantic per run
    from pydantic import BaseModel, ValidationError

    from interface import (
        AgentSpec,
        CarriedState,
        ConversationState,
        ConversationStatus,
        ConversationSummary,
        DescribeAgentInput,
        EndConversation,
        Message,
        ModelCallInput,
        ModelCallOutput,
        ModelPolicy,
        PendingApproval,
        RecentMessage,
        SeqMessage,
        SpeakerSelection,
        StartConversation,
        ToolCall,
        ToolCallInput,
        ToolCallOutput,
        ToolCallRecord,
        ToolDecision,
        ToolPolicy,
        TurnResult,
        Usage,
        UserMessage,
    )
    from interface.search_attributes import AGENT_NAME, CONVERSATION_STATUS, TURN_COUNT

DESCRIBE_AGENT = "agent.describe-v1"
MODEL_CALL = "agent.model_call-v1"
CALL_TOOL = "agent.call_tool-v1"

RECENT_TOOL_CALLS = 20
TEAM_TURNS_LIMIT = 50  # agent turns per user message in a team with no limit of its own
SUMMARY_LIMIT = 100
SUMMARY_VALUE_LIMIT = 30
_SECRET_NAME = re.compile(r"key|token|passw|secret|auth|credential", re.I)
_SECRET_VALUE = re.compile(r"sk-[A-Za-z0-9_\-]{4,}|Bearer\s+\S+", re.I)
STATE_TEXT_LIMIT = 2_000
RECORD_TEXT_LIMIT = STATE_TEXT_LIMIT
"""Tool arguments and results in turn results, `state` and carried state are cut to this;
the tool messages sent to the model and the SQL transcript keep the activity's output."""
_Model = TypeVar("_Model", bound=BaseModel)


class _Turn:
    """Mutable bookkeeping for the turn in progress."""

    def __init__(self, number: int, message: UserMessage) -> None:
        self.number = number
        self.message = message
        self.tool_calls: list[ToolCallRecord] = []
        self.usage = Usage()
        self.steps = 0
        self.speaker: str | None = None  # in a team: the member speaking now
        self.speakers: list[str] = []
        self.handoff: tuple[str, str] | None = None  # (target, message) of a member's handoff


@workflow.defn(name="AgentConversation")
class AgentConversation:
    @workflow.init
    def __init__(self, start: StartConversation) -> None:
        self._start = start
        self._settings = start.settings
        self._data = start.carried or CarriedState()
        self._queue: deque[UserMessage] = deque(self._data.queue)
        self._seen: set[str] = set(self._data.recent_message_ids)
        self._seen.update(m.message_id for m in self._queue)
        self._results = {r.message_id: r for r in self._data.recent_results}
        self._status: ConversationStatus = "idle"
        self._approvals: dict[str, PendingApproval] = {}
        self._decisions: dict[str, ToolDecision] = {}
        self._run_turns = 0
        self._spec: AgentSpec | None = None
        self._member: AgentSpec | None = None  # in a team: the speaking member's spec
        self._current: UserMessage | None = None
        self._indexed = False
        self._broken: ApplicationError | None = None
        self._upserted: tuple[str, int] | None = None

    @workflow.run
    async def run(self, start: StartConversation) -> ConversationSummary:
        # before any await: a marker recorded after a local activity's result may land in
        # a later workflow task than replay expects. Older histories have no marker.
        indexed = workflow.patched("search-attributes")
        self._failed_status = workflow.patched("failed-status")
        self._spec = await self._describe_agent(indexed)
        self._indexed = indexed and self._spec.search_attributes
        self._upsert()
        while True:
            await workflow.wait_condition(self._has_work)
            if self._queue:
                await self._run_turn(self._queue.popleft())
            elif self._data.end_requested:
                return await self._finish()
            else:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._carry())

    # --- handlers ------------------------------------------------------------------------

    # Signals take `*args` and validate inside: a signal with no argument or several (the
    # CLI without --input, a client passing two) would otherwise raise TypeError in the
    # handler and fail the workflow task on every attempt. Malformed ones are logged and
    # dropped, as the SDK drops payloads it cannot decode.
    @workflow.signal(name="user_message")
    def user_message(self, *args: object) -> None:
        message = _signal_arg("user_message", UserMessage, args)
        if message is None:
            return
        problem = self._reject_reason(message)
        if problem:
            workflow.logger.warning("user_message %r dropped: %s", message.message_id, problem)
            return
        self._enqueue(message)

    @workflow.update(name="ask")
    async def ask(self, message: UserMessage) -> TurnResult:
        if self._answered_long_ago(message.message_id):
            return _forgotten(message.message_id)
        self._enqueue(message)
        await workflow.wait_condition(
            lambda: message.message_id in self._results or self._broken is not None
        )
        if self._broken is not None:
            raise self._broken
        return self._results[message.message_id]

    @ask.validator
    def _validate_ask(self, message: UserMessage) -> None:
        problem = self._reject_reason(message)
        if problem:
            raise ValueError(problem)

    @workflow.signal(name="decide_tool")
    def decide_tool(self, *args: object) -> None:
        decision = _signal_arg("decide_tool", ToolDecision, args)
        if decision is None:
            return
        if decision.tool_call_id not in self._approvals:
            workflow.logger.warning(
                "decide_tool for %r ignored: no pending approval", decision.tool_call_id
            )
            return
        self._decisions[decision.tool_call_id] = decision

    @workflow.signal(name="end")
    def end(self, *args: object) -> None:
        if args not in ((), (None,)) and _signal_arg("end", EndConversation, args) is None:
            return
        self._data.end_requested = True

    @workflow.query(name="state")
    def state(self) -> ConversationState:
        return ConversationState(
            agent=self._start.agent,
            status=self._status,
            turn_count=self._data.turn_count,
            messages=self._data.messages,
            tool_calls=self._data.tool_calls,
            pending_approvals=list(self._approvals.values()),
            usage=self._data.usage,
            queued_turns=len(self._queue),
            run_turns=self._run_turns,
            active_agent=self._data.speaker,
        )

    # --- queue and dedup -----------------------------------------------------------------

    def _reject_reason(self, message: UserMessage) -> str | None:
        if message.message_id in self._seen:
            return None  # a retry: accepted and answered from the record
        if not message.message_id.strip():
            return "message_id is empty"
        if len(message.message_id) > 200:
            return "message_id is longer than 200 characters"
        if not message.text.strip():
            return "text is empty"
        if len(message.text) > self._settings.max_message_chars:
            return f"text is longer than {self._settings.max_message_chars} characters"
        if self._data.end_requested:
            return "the conversation is ending"
        return None

    def _enqueue(self, message: UserMessage) -> None:
        if message.message_id in self._seen:
            return
        self._seen.add(message.message_id)
        self._data.recent_message_ids.append(message.message_id)
        self._queue.append(message)

    def _answered_long_ago(self, message_id: str) -> bool:
        """Seen and answered, but the result is older than the kept window."""
        if message_id not in self._seen or message_id in self._results:
            return False
        in_progress = self._current is not None and self._current.message_id == message_id
        return not in_progress and all(m.message_id != message_id for m in self._queue)

    def _has_work(self) -> bool:
        return bool(self._queue) or self._data.end_requested or self._wants_new_run()

    def _wants_new_run(self) -> bool:
        if self._run_turns >= self._settings.max_turns_per_run:
            return True
        return workflow.info().is_continue_as_new_suggested()

    # --- one turn: the agent loop ----------------------------------------------------------

    async def _run_turn(self, message: UserMessage) -> None:
        self._current = message
        turn = _Turn(self._data.turn_count + 1, message)
        self._set_status("thinking", f"turn {turn.number}: {message.message_id}")
        user = Message(role="user", content=message.text, message_id=message.message_id)
        pending = [self._seq(user)]
        assert self._spec is not None
        if self._spec.team is not None:
            result = await self._team_turn(turn, pending)
        else:
            result = await self._agent_loop(turn, pending)
        self._record_turn(turn, result)
        self._current = None
        self._set_status("idle", f"idle after turn {turn.number}")

    async def _agent_loop(self, turn: _Turn, pending: list[SeqMessage]) -> TurnResult:
        spec = self._agent_spec
        if spec.max_tool_iterations is not None:
            return await self._tool_rounds(turn, pending, spec.max_tool_iterations)
        max_steps = self._settings.max_steps_per_turn or spec.max_steps
        first = turn.steps  # a team member's steps count from its own first model call
        while turn.steps - first < max_steps:
            output = await self._call_model(turn, pending)
            if output is None or output.duplicate_message_id or not output.message.tool_calls:
                return self._answer(turn, output)
            pending = await self._run_tools(turn, output.message.tool_calls)
            if turn.handoff is not None:
                return self._handed_off(turn, pending)
        self._data.unsent = pending  # sent with the next model call, so the transcript stays whole
        text = f"I stopped after {max_steps} steps without a final answer."
        return self._turn_result(turn, "step_limit", text)

    async def _tool_rounds(self, turn: _Turn, pending: list[SeqMessage], rounds: int) -> TurnResult:
        """AutoGen's AssistantAgent: up to `rounds` rounds of tool calls, then a reflection
        (a model call without tools) or a summary of the last round's results."""
        output = await self._call_model(turn, pending)
        for round_number in range(1, rounds + 1):
            if output is None or output.duplicate_message_id or not output.message.tool_calls:
                return self._answer(turn, output)
            pending = await self._run_tools(turn, output.message.tool_calls)
            if turn.handoff is not None:
                return self._handed_off(turn, pending)
            last_round = turn.tool_calls[-len(output.message.tool_calls) :]
            if round_number < rounds:
                output = await self._call_model(turn, pending)
        if self._agent_spec.reflect_on_tool_use:
            return self._answer(turn, await self._call_model(turn, pending, tools_enabled=False))
        self._data.unsent = pending
        return self._turn_result(turn, "completed", self._summary(last_round))

    def _answer(self, turn: _Turn, output: ModelCallOutput | None) -> TurnResult:
        if output is None:
            return self._turn_result(turn, "failed", "The model could not be reached.")
        if output.duplicate_message_id:
            return self._turn_result(turn, "duplicate", "")
        return self._turn_result(turn, "completed", output.message.content)

    def _summary(self, calls: list[ToolCallRecord]) -> str:
        template = self._agent_spec.tool_call_summary_format
        return "\n".join(
            template.format(
                tool_name=c.name, arguments=c.arguments, result=c.result, is_error=c.status != "ok"
            )
            for c in calls
        )

    async def _call_model(
        self, turn: _Turn, pending: list[SeqMessage], tools_enabled: bool = True
    ) -> ModelCallOutput | None:
        spec = self._agent_spec
        turn.steps += 1
        new_messages = [*self._data.unsent, *pending]
        self._data.unsent = new_messages  # until the activity has written them
        output_seq = self._next_seq()
        request = self._model_input(turn, new_messages, output_seq)
        request.tools_enabled = tools_enabled
        try:
            output = await workflow.execute_activity(
                MODEL_CALL,
                request,
                result_type=ModelCallOutput,
                activity_id=f"{self._conversation_id}/{_step(turn)}/model",
                summary=f"model: {request.agent} (turn {turn.number}, step {turn.steps})",
                **_timeouts(spec.model),
            )
        except ActivityError as err:
            workflow.logger.error("model call failed for turn %s: %s", turn.number, err.cause)
            return None
        self._data.unsent = []
        turn.usage = turn.usage.plus(output.usage)
        self._data.usage = self._data.usage.plus(output.usage)
        self._remember(SeqMessage(seq=output_seq, message=output.message))
        return output

    def _model_input(self, turn: _Turn, new: list[SeqMessage], output_seq: int) -> ModelCallInput:
        return ModelCallInput(
            conversation_id=self._conversation_id,
            chain_id=self._chain_id,
            agent=self._member.agent if self._member else self._start.agent,
            turn=turn.number,
            step=turn.steps,
            new_messages=new,
            output_seq=output_seq,
        )

    # --- teams: members take turns (agents.teams describes the semantics) -----------------

    @property
    def _agent_spec(self) -> AgentSpec:
        """The speaking team member's spec, or the single agent's."""
        assert self._spec is not None
        return self._member or self._spec

    async def _team_turn(self, turn: _Turn, pending: list[SeqMessage]) -> TurnResult:
        """AutoGen's group chats and LlamaIndex's AgentWorkflow: members speak one after
        another on the shared transcript until a termination condition holds."""
        assert self._spec is not None and self._spec.team is not None
        team = self._spec.team
        self._data.unsent = [*self._data.unsent, *pending]
        result, messages = self._turn_result(turn, "completed", ""), 1  # the user's counts
        stop = self._mentions_stop("user", turn.message.text) or team.max_messages == 1
        while not stop:
            speaker = await self._next_speaker(turn)
            if isinstance(speaker, TurnResult):
                return speaker
            result = await self._member_turn(turn, speaker)
            messages += 1
            stop = (
                result.status != "completed"
                or self._mentions_stop(speaker, result.reply)
                or (team.max_messages is not None and messages >= team.max_messages)
                or len(turn.speakers) >= (team.max_turns or TEAM_TURNS_LIMIT)
                or (team.stop_on_text_reply and turn.handoff is None)
            )
        return result

    async def _member_turn(self, turn: _Turn, speaker: str) -> TurnResult:
        assert self._spec is not None
        self._member = self._spec.members[speaker]
        turn.speaker, turn.handoff = speaker, None
        turn.speakers.append(speaker)
        self._data.speaker = speaker
        try:
            return await self._agent_loop(turn, [])
        finally:
            self._member = None

    def _mentions_stop(self, source: str, text: str) -> bool:
        """TextMentionTermination, on the user's message and each member's final message."""
        assert self._spec is not None and self._spec.team is not None
        team = self._spec.team
        if team.termination_text is None or team.termination_text not in text:
            return False
        return team.termination_sources is None or source in team.termination_sources

    async def _next_speaker(self, turn: _Turn) -> str | TurnResult:
        assert self._spec is not None and self._spec.team is not None
        team = self._spec.team
        if team.mode == "round_robin":
            index = self._data.next_speaker_index % len(team.members)
            self._data.next_speaker_index = (index + 1) % len(team.members)
            return team.members[index]
        if team.mode == "handoff":  # the active agent: the last handoff's target, or the root
            active = turn.handoff[0] if turn.handoff else self._data.speaker
            return active if active in team.members else team.root
        return await self._select_speaker(turn)

    async def _select_speaker(self, turn: _Turn) -> str | TurnResult:
        """SelectorGroupChat: the team's model picks among the members, without the
        previous speaker unless repeats are allowed; one candidate needs no model call."""
        assert self._spec is not None and self._spec.team is not None
        team, previous = self._spec.team, self._data.speaker
        candidates = [m for m in team.members if team.allow_repeated_speaker or m != previous]
        candidates = candidates or list(team.members)
        if len(candidates) == 1:
            return candidates[0]
        request = self._model_input(turn, self._data.unsent, self._data.next_seq)
        request.select_speaker = SpeakerSelection(candidates=candidates, previous=previous)
        number = len(turn.speakers) + 1
        try:
            output = await workflow.execute_activity(
                MODEL_CALL,
                request,
                result_type=ModelCallOutput,
                activity_id=f"{self._conversation_id}/t{turn.number}/a{number}/select",
                summary=f"select speaker: {self._spec.agent} (turn {turn.number}, #{number})",
                **_timeouts(self._spec.model),
            )
        except ActivityError as err:
            workflow.logger.error("speaker selection failed for turn %s: %s", turn.number, err)
            return self._turn_result(turn, "failed", "The model could not be reached.")
        if output.duplicate_message_id:
            return self._turn_result(turn, "duplicate", "")
        self._data.unsent = []  # the activity wrote them
        turn.usage = turn.usage.plus(output.usage)
        self._data.usage = self._data.usage.plus(output.usage)
        chosen = output.message.content
        return chosen if chosen in team.members else candidates[0]

    def _handoff(self, turn: _Turn, call: ToolCall) -> ToolCallOutput:
        """A handoff tool call: no activity; the first valid handoff of a response picks the
        next speaker, and its result goes to the transcript as a tool result."""
        assert self._spec is not None and self._spec.team is not None
        handoff = self._agent_spec.handoffs[call.name]
        target, content = handoff.target, handoff.message
        if target is None:  # LlamaIndex's handoff(to_agent, reason)
            arguments = _json_object(call.arguments)
            target = str(arguments.get("to_agent", ""))
            members = self._spec.team.members
            if target not in members:
                valid = ", ".join(m for m in members if m != turn.speaker)
                return ToolCallOutput(
                    status="ok",
                    content=f"Agent {target} not found. Please select a valid agent to hand "
                    f"off to. Valid agents: {valid}",
                )
            if target not in handoff.allowed:
                return ToolCallOutput(
                    status="ok",
                    content=f"Agent {target} cannot hand off to {turn.speaker}. Please select "
                    "a valid agent to hand off to.",
                )
            content = content.format(to_agent=target, reason=arguments.get("reason", ""))
        if turn.handoff is None:
            turn.handoff = (target, content)
            self._data.speaker = target
        return ToolCallOutput(status="ok", content=content)

    def _handed_off(self, turn: _Turn, pending: list[SeqMessage]) -> TurnResult:
        assert turn.handoff is not None
        self._data.unsent = pending  # the tool results go with the next speaker's model call
        return self._turn_result(turn, "completed", turn.handoff[1])

    # --- tools ---------------------------------------------------------------------------

    async def _run_tools(self, turn: _Turn, calls: list[ToolCall]) -> list[SeqMessage]:
        handoffs = self._agent_spec.handoffs
        handed = {c.id: self._handoff(turn, c) for c in calls if c.name in handoffs}
        groups = self._group_identical([c for c in calls if c.id not in handed])
        outputs = await asyncio.gather(
            *(self._call_tool(turn, index, group) for index, group in enumerate(groups))
        )
        by_call = {c.id: out for group, out in zip(groups, outputs, strict=True) for c in group}
        by_call.update(handed)
        messages = []
        for call in calls:
            out = by_call[call.id]
            turn.tool_calls.append(_record(turn.number, call, out, turn.speaker))
            messages.append(self._seq(_tool_message(call, out)))
        return messages

    def _group_identical(self, calls: list[ToolCall]) -> list[list[ToolCall]]:
        spec = self._agent_spec
        groups: dict[tuple[str, str], list[ToolCall]] = {}
        for call in calls:
            key = (call.name, _canonical(call.arguments))
            if not spec.tool_policy(call.name).dedupe_identical_calls:
                key = (call.name, f"\0{call.id}")
            groups.setdefault(key, []).append(call)
        return list(groups.values())

    async def _call_tool(self, turn: _Turn, index: int, group: list[ToolCall]) -> ToolCallOutput:
        call, policy = group[0], self._agent_spec.tool_policy(group[0].name)
        if policy.needs_approval:
            denial = await self._await_approval(turn, call, policy)
            if denial is not None:
                return denial
        key = f"{self._conversation_id}/{self._chain_id}/{_step(turn)}/c{index}"
        try:
            return await workflow.execute_activity(
                CALL_TOOL,
                self._tool_input(turn, key, group),
                result_type=ToolCallOutput,
                activity_id=f"{self._conversation_id}/{_step(turn)}/c{index}",
                summary=_tool_summary(call),
                **_timeouts(policy),
            )
        except ActivityError as err:
            return _failed_tool(err)

    def _tool_input(self, turn: _Turn, key: str, group: list[ToolCall]) -> ToolCallInput:
        return ToolCallInput(
            conversation_id=self._conversation_id,
            chain_id=self._chain_id,
            agent=self._member.agent if self._member else self._start.agent,
            turn=turn.number,
            key=key,
            name=group[0].name,
            arguments=group[0].arguments,
            call_ids=[c.id for c in group],
        )

    async def _await_approval(
        self, turn: _Turn, call: ToolCall, policy: ToolPolicy
    ) -> ToolCallOutput | None:
        self._approvals[call.id] = PendingApproval(
            tool_call_id=call.id, name=call.name, arguments=call.arguments, turn=turn.number
        )
        self._set_status("waiting_approval", f"turn {turn.number}: approve {call.name}?")
        timeout = policy.approval_timeout
        try:
            await workflow.wait_condition(lambda: call.id in self._decisions, timeout=timeout)
            decision = self._decisions.pop(call.id)
        except TimeoutError:
            decision = ToolDecision(
                tool_call_id=call.id, approve=False, reason="approval timed out"
            )
        del self._approvals[call.id]
        self._set_status("waiting_approval" if self._approvals else "thinking")
        if decision.approve:
            return None
        return ToolCallOutput(status="denied", content=f"Denied: {decision.reason or 'no reason'}")

    # --- state bookkeeping ---------------------------------------------------------------

    @property
    def _conversation_id(self) -> str:
        return workflow.info().workflow_id

    @property
    def _chain_id(self) -> str:
        return workflow.info().first_execution_run_id

    def _next_seq(self) -> int:
        seq = self._data.next_seq
        self._data.next_seq += 1
        return seq

    def _seq(self, message: Message) -> SeqMessage:
        item = SeqMessage(seq=self._next_seq(), message=message)
        self._remember(item)
        return item

    def _remember(self, item: SeqMessage) -> None:
        m = item.message
        text = m.content or ", ".join(f"{c.name}({c.arguments})" for c in m.tool_calls)
        recent = RecentMessage(
            seq=item.seq,
            role=m.role,
            content=text[:STATE_TEXT_LIMIT],
            name=m.name,
            speaker=self._member and self._member.agent.rpartition("/")[2],
        )
        self._data.messages = [*self._data.messages, recent][-self._settings.recent_messages :]

    def _turn_result(self, turn: _Turn, status: str, reply: str) -> TurnResult:
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
            )
        )

    def _record_turn(self, turn: _Turn, result: TurnResult) -> None:
        self._data.turn_count = turn.number
        self._run_turns += 1
        self._results[result.message_id] = result
        keep = self._settings.recent_results
        self._data.recent_results = [*self._data.recent_results, result][-keep:]
        self._results = {r.message_id: r for r in self._data.recent_results}
        self._data.tool_calls = [*self._data.tool_calls, *turn.tool_calls][-RECENT_TOOL_CALLS:]
        ids = self._data.recent_message_ids[-self._settings.recent_message_ids :]
        self._data.recent_message_ids = ids
        self._seen = set(ids) | {m.message_id for m in self._queue}

    def _set_status(self, status: ConversationStatus, details: str | None = None) -> None:
        self._status = status
        if details is not None:
            workflow.set_current_details(details)
        self._upsert()

    def _upsert(self) -> None:
        """Keep AgentName, ConversationStatus and TurnCount current, for list queries."""
        values = (self._status, self._data.turn_count)
        if not self._indexed or values == self._upserted:
            return
        self._upserted = values
        workflow.upsert_search_attributes(
            [
                AGENT_NAME.value_set(self._start.agent),
                CONVERSATION_STATUS.value_set(self._status),
                TURN_COUNT.value_set(self._data.turn_count),
            ]
        )

    def _carry(self) -> StartConversation:
        self._data.queue = list(self._queue)
        self._data.runs += 1
        return self._start.model_copy(update={"carried": self._data})

    async def _finish(self) -> ConversationSummary:
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._set_status("ended", "ended")
        return ConversationSummary(
            agent=self._start.agent, turn_count=self._data.turn_count, usage=self._data.usage
        )

    async def _describe_agent(self, indexed: bool) -> AgentSpec:
        try:
            return await workflow.execute_local_activity(
                DESCRIBE_AGENT,
                DescribeAgentInput(agent=self._start.agent),
                result_type=AgentSpec,
                summary=f"describe agent: {self._start.agent}",
                start_to_close_timeout=timedelta(seconds=30),
            )
        except (ActivityError, ApplicationError) as err:
            # an unknown agent breaks the conversation: fail it rather than retry forever,
            # after failing the asks that wait for an answer with the same reason. A local
            # activity's non-retryable failure arrives as the ApplicationError itself.
            cause = err.cause if isinstance(err, ActivityError) else err
            self._broken = ApplicationError(
                f"cannot start agent {self._start.agent!r}: {cause}",
                type="UnknownAgent",
                non_retryable=True,
            )
            if self._failed_status:  # histories before it did not upsert here
                self._indexed = indexed and _reports_indexed(cause)
                self._set_status("failed", f"failed: {self._broken.message}")
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise self._broken from err


def _timeouts(policy: ModelPolicy | ToolPolicy) -> dict[str, Any]:
    """A model or tool activity's timeouts and retry policy, from its policy."""
    return dict(
        start_to_close_timeout=policy.start_to_close,
        schedule_to_close_timeout=policy.schedule_to_close,
        heartbeat_timeout=policy.heartbeat,
        retry_policy=policy.retry.to_temporal(),
    )


def _forgotten(message_id: str) -> TurnResult:
    return TurnResult(
        message_id=message_id,
        turn=0,
        status="duplicate",
        reply="This message was answered earlier; its result is no longer kept.",
    )


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return arguments


def _reports_indexed(error: BaseException | None) -> bool:
    """The describe activity's UnknownAgent failure says whether the search attributes exist."""
    details = getattr(error, "details", None) or ()
    return any(isinstance(d, dict) and d.get("search_attributes") is True for d in details)


def _tool_summary(call: ToolCall) -> str:
    """The tool activity's summary in the Web UI, `call tool: name(arg=value, ...)`: values
    shortened, arguments with secret-looking names masked, at most SUMMARY_LIMIT characters."""
    try:
        arguments = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError:
        arguments = None
    if isinstance(arguments, dict):
        shown = ", ".join(f"{name}={_summary_value(name, v)}" for name, v in arguments.items())
    else:
        shown = "…"  # not a JSON object: the tool activity rejects it
    return _shorten(f"call tool: {call.name}({shown})", SUMMARY_LIMIT)


def _summary_value(name: str, value: object) -> str:
    if _SECRET_NAME.search(str(name)):
        return "***"
    if isinstance(value, dict):
        value = {k: "***" if _SECRET_NAME.search(str(k)) else v for k, v in value.items()}
    if isinstance(value, str):
        shortened = _shorten(_SECRET_VALUE.sub("***", value), SUMMARY_VALUE_LIMIT)
        return json.dumps(shortened, ensure_ascii=False)
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return _shorten(_SECRET_VALUE.sub("***", text), SUMMARY_VALUE_LIMIT)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _step(turn: _Turn) -> str:
    """Turn and step in activity IDs and ledger keys; a team member's name is added, so
    keys stay unique and readable."""
    step = f"t{turn.number}/s{turn.steps}"
    return f"{step}/{turn.speaker}" if turn.speaker else step


def _json_object(arguments: str) -> dict[str, object]:
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _record(
    turn: int, call: ToolCall, out: ToolCallOutput, speaker: str | None = None
) -> ToolCallRecord:
    return ToolCallRecord(
        id=call.id,
        name=call.name,
        arguments=_shorten(call.arguments, RECORD_TEXT_LIMIT),
        status=out.status,
        result=_shorten(out.content, RECORD_TEXT_LIMIT),
        turn=turn,
        speaker=speaker,
    )


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


def _tool_message(call: ToolCall, out: ToolCallOutput) -> Message:
    return Message(
        role="tool",
        content=out.content,
        tool_call_id=call.id,
        name=call.name,
        is_error=out.status != "ok",
    )


def _failed_tool(err: ActivityError) -> ToolCallOutput:
    cause = err.cause
    error_type = getattr(cause, "type", None) or type(cause).__name__
    message = getattr(cause, "message", None) or str(cause)
    content = json.dumps({"error": error_type, "message": message})
    return ToolCallOutput(status="error", content=content, error_type=error_type)
