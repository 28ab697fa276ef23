"""The pure conversation core, driven without a server: scripted model outputs and tool
results go in, the actions the workflow would perform come out."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from agent_workflows.actions import Action, CallModel, Finish, ModelFailure, RunTools, ToolTask
from agent_workflows.core import ConversationCore
from agent_workflows.teams import TEAM_TURNS_LIMIT
from agent_workflows.turns import MAX_UNSENT

from interface import (
    AgentSpec,
    CancelTurn,
    CancelTurnResult,
    ConversationSettings,
    ErrorType,
    HandoffSpec,
    Message,
    ModelCallOutput,
    ModelPolicy,
    StartConversation,
    TeamSpec,
    ToolCall,
    ToolCallOutput,
    ToolDecision,
    ToolPolicy,
    TurnResult,
    Usage,
    UserMessage,
)

pytestmark = pytest.mark.unit

CID, CHAIN = "conv-1", "chain-1"
LLAMA_HANDOFF = (
    "Agent {to_agent} is now handling the request due to the following reason: {reason}.\n"
    "Please continue with the current request."
)


# --- scripting ----------------------------------------------------------------------------


def say(text: str) -> ModelCallOutput:
    return ModelCallOutput(
        message=Message(role="assistant", content=text),
        usage=Usage(prompt_tokens=10, completion_tokens=2),
    )


def call(*calls: tuple[str, object]) -> ModelCallOutput:
    """A model response with these tool calls, IDs c1, c2, ... in order."""
    tool_calls = [
        ToolCall(id=f"c{n}", name=name, arguments=a if isinstance(a, str) else json.dumps(a))
        for n, (name, a) in enumerate(calls, 1)
    ]
    message = Message(role="assistant", tool_calls=tool_calls)
    return ModelCallOutput(message=message, usage=Usage(prompt_tokens=10, completion_tokens=1))


def echo(task: ToolTask) -> ToolCallOutput:
    return ToolCallOutput(status="ok", content=f"{task.request.name}:{task.request.arguments}")


@dataclass
class Script:
    """Answers the machine's actions: model outputs in order, tools through `tools`."""

    model: list[ModelCallOutput | None]
    tools: Callable[[ToolTask], ToolCallOutput] = echo
    actions: list[Action] = field(default_factory=list)

    def answer(self, action: Action) -> object:
        self.actions.append(action)
        if isinstance(action, CallModel):
            return self.model.pop(0)
        assert isinstance(action, RunTools)
        return [self.tools(task) for task in action.tasks]

    @property
    def model_calls(self) -> list[CallModel]:
        return [a for a in self.actions if isinstance(a, CallModel)]

    @property
    def tool_runs(self) -> list[RunTools]:
        return [a for a in self.actions if isinstance(a, RunTools)]


def agent(name: str = "helper", **options: object) -> AgentSpec:
    return AgentSpec.model_validate(
        {"agent": name, "max_steps": 5, "model": ModelPolicy(), **options}
    )


def conversation(spec: AgentSpec, **settings: object) -> ConversationCore:
    start = StartConversation(agent=spec.agent, settings=ConversationSettings(**settings))  # type: ignore[arg-type]
    core = ConversationCore(start, CID, CHAIN)
    core.describe(spec)
    return core


def turn(
    core: ConversationCore, script: Script, text: str = "hello", mid: str | None = None
) -> TurnResult:
    """Queues a message and runs its turn to the end, answering from `script`."""
    core.enqueue(UserMessage(message_id=mid or f"m-{core.data.carried.turn_count + 1}", text=text))
    machine = core.start_turn()
    action = machine.first()
    while not isinstance(action, Finish):
        action = machine.send(script.answer(action))
    core.finish_turn(action.result)
    assert not script.model, "the script has unused model outputs"
    return action.result


# --- one agent: until text ---------------------------------------------------------------


def test_until_text_runs_tools_then_answers() -> None:
    core = conversation(agent())
    script = Script([call(("echo", {"text": "hi"})), say("done")])
    result = turn(core, script)
    first, second = script.model_calls
    assert (first.activity_id, first.summary) == (
        "conv-1/t1/s1/model",
        "model: helper (turn 1, step 1)",
    )
    assert [(m.seq, m.message.role) for m in first.request.new_messages] == [(0, "user")]
    assert (first.request.output_seq, first.request.tools_enabled) == (1, True)
    [task] = script.tool_runs[0].tasks
    assert task.activity_id == "conv-1/t1/s1/c0"
    assert task.request.key == "conv-1/chain-1/t1/s1/c0"
    assert task.summary == 'call tool: echo(text="hi")'
    assert task.approval is None
    assert second.activity_id == "conv-1/t1/s2/model"
    [tool_message] = second.request.new_messages
    assert (tool_message.seq, tool_message.message.role, tool_message.message.tool_call_id) == (
        2,
        "tool",
        "c1",
    )
    assert second.request.output_seq == 3
    assert (result.status, result.reply, result.steps) == ("completed", "done", 2)
    assert [(c.name, c.status, c.result, c.turn) for c in result.tool_calls] == [
        ("echo", "ok", 'echo:{"text": "hi"}', 1)
    ]
    assert result.usage == Usage(prompt_tokens=20, completion_tokens=3) == core.data.carried.usage
    assert core.data.carried.next_seq == 4 and core.data.carried.unsent == []


def test_step_limit_keeps_the_last_tool_results_for_the_next_turn() -> None:
    core = conversation(agent(max_steps=2))
    loop: list[ModelCallOutput | None] = [call(("echo", {"n": 1})), call(("echo", {"n": 2}))]
    result = turn(core, Script(loop))
    assert (result.status, result.steps) == ("step_limit", 2)
    assert result.reply == "I stopped after 2 steps without a final answer."
    assert [m.message.tool_call_id for m in core.data.carried.unsent] == ["c1"]
    script = Script([say("ok")])
    turn(core, script)
    sent = script.model_calls[0].request.new_messages
    assert [m.message.role for m in sent] == ["tool", "user"]  # the transcript stays whole


def test_settings_step_limit_overrides_the_agents() -> None:
    core = conversation(agent(max_steps=5), max_steps_per_turn=1)
    result = turn(core, Script([call(("echo", {}))]))
    assert (result.status, result.reply) == (
        "step_limit",
        "I stopped after 1 steps without a final answer.",
    )


def test_failed_model_call_fails_the_turn_and_keeps_its_messages() -> None:
    core = conversation(agent())
    result = turn(core, Script([None]))
    assert (result.status, result.reply) == ("failed", "The model could not be reached.")
    script = Script([say("back")])
    turn(core, script)
    assert [m.seq for m in script.model_calls[0].request.new_messages] == [0, 2]


def test_duplicate_output_ends_the_turn_as_duplicate() -> None:
    core = conversation(agent())
    output = say("")
    output.duplicate_message_id = "m-1"
    result = turn(core, Script([output]))
    assert (result.status, result.reply) == ("duplicate", "")


# --- AutoGen tool rounds -----------------------------------------------------------------


def test_tool_rounds_reflect_without_tools() -> None:
    core = conversation(agent(max_tool_iterations=1, reflect_on_tool_use=True))
    script = Script([call(("echo", {"a": 1})), say("reflected")])
    result = turn(core, script)
    assert [c.request.tools_enabled for c in script.model_calls] == [True, False]
    assert (result.status, result.reply, result.steps) == ("completed", "reflected", 2)


def test_tool_rounds_without_reflection_summarise_the_last_round() -> None:
    spec = agent(
        max_tool_iterations=2,
        reflect_on_tool_use=False,
        tool_call_summary_format="{tool_name}({arguments}) -> {result} error={is_error}",
    )
    core = conversation(spec)
    failing = lambda t: ToolCallOutput(status="error", content="bad")  # noqa: E731
    script = Script(
        [call(("echo", {"r": 1})), call(("echo", {"r": 2}), ("upper", {"r": 3}))],
        tools=lambda t: failing(t) if t.request.name == "upper" else echo(t),
    )
    result = turn(core, script)
    assert len(script.model_calls) == 2  # two rounds, no third model call
    assert result.reply == (
        'echo({"r": 2}) -> echo:{"r": 2} error=False\nupper({"r": 3}) -> bad error=True'
    )
    assert [m.message.tool_call_id for m in core.data.carried.unsent] == ["c1", "c2"]


def test_tool_rounds_default_summary_is_the_result() -> None:
    core = conversation(agent(max_tool_iterations=1, reflect_on_tool_use=False))
    result = turn(core, Script([call(("echo", {"x": 1}))]))
    assert result.reply == 'echo:{"x": 1}'


def test_tool_rounds_end_early_on_text() -> None:
    core = conversation(agent(max_tool_iterations=3))
    script = Script([call(("echo", {})), say("enough")])
    result = turn(core, script)
    assert result.reply == "enough" and len(script.model_calls) == 2


# --- tools: dedupe and approval ----------------------------------------------------------


def test_identical_calls_in_one_response_run_once() -> None:
    core = conversation(agent())
    script = Script([call(("echo", '{"a": 1, "b": 2}'), ("echo", '{"b":2,"a":1}')), say("ok")])
    result = turn(core, script)
    [task] = script.tool_runs[0].tasks
    assert task.request.call_ids == ["c1", "c2"]
    assert [c.id for c in result.tool_calls] == ["c1", "c2"]
    assert [m.message.tool_call_id for m in script.model_calls[1].request.new_messages] == [
        "c1",
        "c2",
    ]


def test_tools_can_opt_out_of_dedupe() -> None:
    core = conversation(agent(tools={"echo": ToolPolicy(dedupe_identical_calls=False)}))
    script = Script([call(("echo", {"a": 1}), ("echo", {"a": 1})), say("ok")])
    turn(core, script)
    tasks = script.tool_runs[0].tasks
    assert [(t.index, t.activity_id, t.request.call_ids) for t in tasks] == [
        (0, "conv-1/t1/s1/c0", ["c1"]),
        (1, "conv-1/t1/s1/c1", ["c2"]),
    ]


def test_summaries_mask_secrets() -> None:
    core = conversation(agent())
    script = Script([call(("send", {"api_key": "x", "body": "Bearer abc.def"})), say("ok")])
    turn(core, script)
    assert script.tool_runs[0].tasks[0].summary == 'call tool: send(api_key=***, body="***")'


@pytest.mark.parametrize(
    ("decision", "timed_out", "expected"),
    [
        (ToolDecision(tool_call_id="c1", approve=True), False, None),
        (ToolDecision(tool_call_id="c1", approve=False, reason="no"), False, "Denied: no"),
        (ToolDecision(tool_call_id="c1", approve=False), False, "Denied: no reason"),
        (None, True, "Denied: approval timed out"),
    ],
    ids=["approved", "denied", "denied-no-reason", "timeout"],
)
def test_approvals(decision: ToolDecision | None, timed_out: bool, expected: str | None) -> None:
    core = conversation(agent(tools={"email": ToolPolicy(needs_approval=True)}))

    def approve_then_run(task: ToolTask) -> ToolCallOutput:
        assert task.approval is not None and task.approval.tool_call_id == "c1"
        assert not core.decide(ToolDecision(tool_call_id="c1", approve=True))  # not pending yet
        core.request_approval(task.approval)
        assert [p.name for p in core.snapshot().pending_approvals] == ["email"]
        if decision is not None:
            assert core.decide(decision) and core.decided("c1")
        denial = core.settle_approval("c1", timed_out)
        assert core.snapshot().pending_approvals == []
        return denial or echo(task)

    result = turn(core, Script([call(("email", {"to": "a"})), say("ok")], tools=approve_then_run))
    record = result.tool_calls[0]
    if expected is None:
        assert (record.status, record.result) == ("ok", 'email:{"to": "a"}')
    else:
        assert (record.status, record.result) == ("denied", expected)


# --- the queue: dedupe of message IDs, rejections, carry -------------------------------------


def test_duplicate_message_ids_make_one_turn() -> None:
    core = conversation(agent(), recent_results=1)
    message = UserMessage(message_id="m-1", text="hi")
    core.enqueue(message)
    core.enqueue(message)
    assert len(core.data.carried.queue) == 1
    assert core.rejection(message) is None  # a retry is taken and answered from the record
    machine = core.start_turn()
    assert not core.answered_long_ago("m-1")  # running
    action = machine.first()
    assert isinstance(action, CallModel)
    done = machine.send(say("hello"))
    assert isinstance(done, Finish)
    core.finish_turn(done.result)
    assert core.result_for("m-1") == done.result
    turn(core, Script([say("two")]), mid="m-2")
    assert core.result_for("m-1") is None and core.answered_long_ago("m-1")
    assert not core.answered_long_ago("m-3")


def test_rejections_are_typed() -> None:
    core = conversation(agent(), max_message_chars=5)
    rejected = [
        (UserMessage(message_id=" ", text="hi"), "message_id is empty"),
        (UserMessage(message_id="x" * 201, text="hi"), "message_id is longer than 200 characters"),
        (UserMessage(message_id="m", text=" "), "text is empty"),
        (UserMessage(message_id="m", text="123456"), "text is longer than 5 characters"),
    ]
    for message, reason in rejected:
        rejection = core.rejection(message)
        assert rejection is not None
        assert (rejection.type, rejection.reason) == (ErrorType.MESSAGE_REJECTED, reason)
    core.enqueue(UserMessage(message_id="m-1", text="hi"))
    core.request_end()
    ending = core.rejection(UserMessage(message_id="m-2", text="hi"))
    assert ending is not None
    assert (ending.type, ending.reason) == (
        ErrorType.CONVERSATION_ENDING,
        "the conversation is ending",
    )
    assert core.rejection(UserMessage(message_id="m-1", text="hi")) is None


def test_carry_holds_the_queue_and_counts_runs() -> None:
    core = conversation(agent(), max_turns_per_run=1)
    turn(core, Script([say("one")]))
    core.enqueue(UserMessage(message_id="m-2", text="queued"))
    assert core.has_work()
    carried = core.carry()
    assert carried.carried is not None
    assert [m.message_id for m in carried.carried.queue] == ["m-2"]
    assert (carried.carried.runs, carried.carried.turn_count) == (2, 1)
    again = ConversationCore(carried, CID, CHAIN)
    assert again.rejection(UserMessage(message_id="m-1", text="x" * 99_999)) is None  # seen


def test_the_queue_is_bounded_in_turns_and_characters() -> None:
    core = conversation(agent(), max_queued_turns=2, max_queued_chars=10)
    core.enqueue(UserMessage(message_id="m-1", text="four"))
    core.enqueue(UserMessage(message_id="m-2", text="four"))
    full = core.rejection(UserMessage(message_id="m-3", text="x"))
    assert full is not None and full.type == ErrorType.BACKLOG_FULL
    assert "max_queued_turns" in full.reason
    assert core.rejection(UserMessage(message_id="m-1", text="four")) is None  # a retry
    core.start_turn()
    long = core.rejection(UserMessage(message_id="m-3", text="seven!!"))
    assert long is not None and long.type == ErrorType.BACKLOG_FULL
    assert core.rejection(UserMessage(message_id="m-3", text="six!!!")) is None


def test_a_long_run_continues_as_new_with_turns_queued() -> None:
    core = conversation(agent(), max_turns_per_run=1)
    assert not core.run_is_long(suggested=False) and core.run_is_long(suggested=True)
    turn(core, Script([say("one")]))
    core.enqueue(UserMessage(message_id="m-2", text="queued"))
    assert core.run_is_long(suggested=False)


def test_a_forked_transcript_chain_is_followed_and_carried() -> None:
    """After a reset the model activity reports the branch it forked onto: the turn's tool
    keys use it, and so does the next run."""
    core = conversation(agent())
    forked = call(("lookup", {"q": 1}))
    forked.chain_id = "reset-run"
    script = Script([forked, say("done")])
    turn(core, script)
    (run,) = script.tool_runs
    assert run.tasks[0].request.key == f"{CID}/reset-run/t1/s1/c0"
    assert script.model_calls[1].request.chain_id == "reset-run"
    carried = core.carry()
    assert ConversationCore(carried, CID, CHAIN).data.chain_id == "reset-run"


# --- teams ---------------------------------------------------------------------------------


def team(
    mode: str, members: list[str], specs: dict[str, AgentSpec] | None = None, **rules: object
) -> AgentSpec:
    specs = specs or {}
    return agent(
        "crew",
        team=TeamSpec.model_validate(
            {"mode": mode, "members": members, "root": members[0], **rules}
        ),
        members={m: specs.get(m) or agent(f"crew/{m}") for m in members},
    )


def test_round_robin_until_text_mention_and_across_turns() -> None:
    core = conversation(team("round_robin", ["a", "b"], termination_text="APPROVED"))
    script = Script([call(("note", {})), say("noted"), say("APPROVED")])
    first = turn(core, script)
    assert first.speakers == ["a", "b"] and (first.speaker, first.reply) == ("b", "APPROVED")
    assert [c.activity_id for c in script.model_calls] == [
        "conv-1/t1/s1/a/model",
        "conv-1/t1/s2/a/model",
        "conv-1/t1/s3/b/model",
    ]
    assert script.model_calls[0].request.agent == "crew/a"
    task = script.tool_runs[0].tasks[0]
    assert (task.request.agent, task.request.key) == ("crew/a", "conv-1/chain-1/t1/s1/a/c0")
    assert [c.speaker for c in first.tool_calls] == ["a"]
    spoken = [(m.speaker, m.content) for m in core.snapshot().messages if m.role == "assistant"]
    assert spoken[-1] == ("b", "APPROVED")
    assert core.snapshot().messages[0].speaker is None  # the user's
    second = turn(core, Script([say("APPROVED")]))
    assert second.speakers == ["a"]  # the round continues where it stopped: a's turn


def test_termination_sources_and_message_limits() -> None:
    core = conversation(
        team(
            "round_robin",
            ["a", "b"],
            termination_text="STOP",
            termination_sources=["b"],
            max_messages=4,
        )
    )
    result = turn(core, Script([say("STOP"), say("go on"), say("more")]))
    assert result.speakers == ["a", "b", "a"]  # a's STOP does not count; 4 messages with the user's
    user_stop = conversation(team("round_robin", ["a", "b"], termination_text="STOP"))
    quiet = turn(user_stop, Script([]), text="please STOP")
    assert (quiet.status, quiet.reply, quiet.speakers) == ("completed", "", [])
    one = conversation(team("round_robin", ["a"], max_messages=1))
    assert turn(one, Script([])).speakers == []


def test_max_turns_and_the_default_limit() -> None:
    limited = conversation(team("round_robin", ["a", "b"], max_turns=3))
    assert turn(limited, Script([say("x")] * 3)).speakers == ["a", "b", "a"]
    unlimited = conversation(team("round_robin", ["a", "b"]))
    assert len(turn(unlimited, Script([say("x")] * TEAM_TURNS_LIMIT)).speakers) == TEAM_TURNS_LIMIT


def test_a_failed_member_turn_ends_the_team_turn() -> None:
    core = conversation(team("round_robin", ["a", "b"]))
    result = turn(core, Script([None]))
    assert (result.status, result.speakers) == ("failed", ["a"])


def test_selector_picks_with_the_teams_model() -> None:
    core = conversation(team("selector", ["a", "b", "c"], max_turns=2))
    choice_b, choice_bad = say("b"), say("nobody")
    script = Script([choice_b, say("from b"), choice_bad, say("from a")])
    result = turn(core, script)
    select = [c for c in script.model_calls if c.purpose == "select_speaker"]
    assert [(c.activity_id, c.summary) for c in select] == [
        ("conv-1/t1/a1/select", "select speaker: crew (turn 1, #1)"),
        ("conv-1/t1/a2/select", "select speaker: crew (turn 1, #2)"),
    ]
    assert select[0].request.select_speaker is not None
    assert select[0].request.select_speaker.candidates == ["a", "b", "c"]
    assert select[1].request.select_speaker.candidates == ["a", "c"]  # type: ignore[union-attr]
    assert select[1].request.select_speaker.previous == "b"  # type: ignore[union-attr]
    assert select[0].request.agent == "crew" and select[0].request.output_seq == 1
    assert result.speakers == ["b", "a"]  # an unknown name falls back to the first candidate
    assert result.usage.prompt_tokens == 40  # the selections' usage counts too


def test_selector_with_one_candidate_makes_no_model_call() -> None:
    core = conversation(team("selector", ["a", "b"], max_turns=2))
    script = Script([say("a"), say("from a"), say("from b")])
    result = turn(core, script)
    assert result.speakers == ["a", "b"]
    assert [c.purpose for c in script.model_calls] == ["select_speaker", "reply", "reply"]


def test_selector_may_repeat_the_speaker_when_allowed() -> None:
    core = conversation(team("selector", ["a", "b"], max_turns=2, allow_repeated_speaker=True))
    script = Script([say("a"), say("one"), say("a"), say("two")])
    result = turn(core, script)
    assert result.speakers == ["a", "a"]
    select = [c for c in script.model_calls if c.purpose == "select_speaker"]
    assert select[1].request.select_speaker.candidates == ["a", "b"]  # type: ignore[union-attr]


def test_selector_failure_and_duplicate_end_the_turn() -> None:
    core = conversation(team("selector", ["a", "b", "c"]))
    failed = turn(core, Script([None]))
    assert (failed.status, failed.speakers) == ("failed", [])
    duplicate = say("a")
    duplicate.duplicate_message_id = "m-2"
    assert turn(core, Script([duplicate])).status == "duplicate"


def autogen_handoff_team(**rules: object) -> AgentSpec:
    triage = agent(
        "crew/triage",
        max_tool_iterations=1,
        handoffs={
            "transfer_to_specialist": HandoffSpec(
                target="specialist", message="Transferred to specialist"
            ),
            "transfer_to_reviewer": HandoffSpec(
                target="reviewer", message="Transferred to reviewer"
            ),
        },
    )
    return team("handoff", ["triage", "specialist", "reviewer"], {"triage": triage}, **rules)


def test_handoff_switches_the_speaker_without_an_activity() -> None:
    core = conversation(autogen_handoff_team(termination_text="TERMINATE"))
    script = Script(
        [
            call(("transfer_to_specialist", {}), ("transfer_to_reviewer", {}), ("lookup", {})),
            say("on it"),
            say("TERMINATE"),
        ]
    )
    result = turn(core, script)
    [run] = script.tool_runs
    assert [t.request.name for t in run.tasks] == ["lookup"]  # the handoffs run no activity
    assert result.speakers == ["triage", "specialist", "specialist"]  # the first handoff wins
    assert [(c.name, c.result) for c in result.tool_calls[:2]] == [
        ("transfer_to_specialist", "Transferred to specialist"),
        ("transfer_to_reviewer", "Transferred to reviewer"),
    ]
    sent = script.model_calls[1].request.new_messages
    assert [m.message.name for m in sent] == [
        "transfer_to_specialist",
        "transfer_to_reviewer",
        "lookup",
    ]
    assert core.snapshot().active_agent == "specialist"
    nxt = turn(core, Script([say("TERMINATE")]))
    assert nxt.speakers == ["specialist"]  # the active agent answers the next user turn


def test_llamaindex_handoff_targets_are_checked() -> None:
    triage = agent(
        "crew/triage",
        handoffs={"handoff": HandoffSpec(message=LLAMA_HANDOFF, allowed=["specialist"])},
    )
    core = conversation(
        team(
            "handoff",
            ["triage", "specialist", "reviewer"],
            {"triage": triage},
            stop_on_text_reply=True,
        )
    )
    script = Script(
        [
            call(("handoff", {"to_agent": "nobody"})),
            call(("handoff", {"to_agent": "reviewer"})),
            call(("handoff", {"to_agent": "specialist", "reason": "a note is needed"})),
            say("I will add it."),
        ]
    )
    result = turn(core, script)
    assert [c.result for c in result.tool_calls] == [
        "Agent nobody not found. Please select a valid agent to hand off to. "
        "Valid agents: specialist, reviewer",
        "Agent reviewer cannot hand off to triage. Please select a valid agent to hand off to.",
        "Agent specialist is now handling the request due to the following reason: "
        "a note is needed.\nPlease continue with the current request.",
    ]
    assert result.speakers == ["triage", "specialist"]
    assert (result.speaker, result.reply) == ("specialist", "I will add it.")
    assert script.tool_runs == []


def test_stop_on_text_reply_continues_after_a_handoff() -> None:
    core = conversation(autogen_handoff_team(stop_on_text_reply=True))
    result = turn(core, Script([say("Claim 123 is open.")]))
    assert result.speakers == ["triage"] and result.reply == "Claim 123 is open."


# --- purity ----------------------------------------------------------------------------------


# --- AG2: the termination flag, group-chat graphs and random selection ------------------


def terminating(output: ModelCallOutput) -> ModelCallOutput:
    return output.model_copy(update={"terminate": True})


def test_a_terminating_answer_ends_the_turn_without_running_its_calls() -> None:
    core = conversation(agent())
    script = Script([terminating(call(("echo", {"n": 1})))])
    result = turn(core, script)
    assert (result.status, result.steps, result.tool_calls) == ("completed", 1, [])
    assert script.tool_runs == []


def test_a_terminating_answer_ends_a_team_turn() -> None:
    core = conversation(team("round_robin", ["a", "b"]))
    result = turn(core, Script([terminating(say("TERMINATE"))]))
    assert result.speakers == ["a"] and result.reply == "TERMINATE"


AG2_GRAPH = {"a": ["b", "c"], "b": ["a"], "c": ["a"]}


def test_ag2_round_robin_follows_the_graph_and_restarts_after_the_person() -> None:
    rules = {"transitions": AG2_GRAPH, "first_speakers": ["b", "c"], "max_messages": 4}
    core = conversation(team("round_robin", ["a", "b", "c"], **rules))
    assert turn(core, Script([say("1"), say("2"), say("3")])).speakers == ["b", "a", "b"]
    assert turn(core, Script([say("1"), say("2"), say("3")])).speakers == ["b", "a", "b"]


def test_ag2_selector_candidates_come_from_the_graph() -> None:
    rules = {"transitions": AG2_GRAPH, "first_speakers": ["a"], "max_messages": 3}
    core = conversation(team("selector", ["a", "b", "c"], **rules))
    script = Script([say("from a"), say("c"), say("from c")])
    result = turn(core, script)
    select = [c for c in script.model_calls if c.purpose == "select_speaker"]
    assert result.speakers == ["a", "c"]  # a alone may start: no selection call for it
    assert [c.request.select_speaker.candidates for c in select] == [["b", "c"]]  # type: ignore[union-attr]


def test_random_selection_is_seeded_by_conversation_turn_and_position() -> None:
    rules = {"transitions": AG2_GRAPH, "first_speakers": ["a", "b", "c"], "max_messages": 6}
    spoken = [
        turn(conversation(team("random", ["a", "b", "c"], **rules)), Script([say("x")] * 5))
        for _ in range(2)
    ]
    assert spoken[0].speakers == spoken[1].speakers  # the same on every run, and replay
    pairs = zip(spoken[0].speakers, spoken[0].speakers[1:], strict=False)
    assert all(after in AG2_GRAPH[before] for before, after in pairs)


def test_the_core_and_these_tests_import_no_temporal_module() -> None:
    code = (
        "import sys\n"
        "import agent_workflows.core, agent_workflows.turns, agent_workflows.teams\n"
        "import agent_workflows.summaries, agent_workflows.actions, agent_workflows.state\n"
        "import tests.unit.test_turn_core\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'temporalio'))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]"


# --- typed model failures, carried messages, resume ----------------------------------------


def test_a_typed_failure_is_the_result_and_written_messages_are_not_carried() -> None:
    core = conversation(agent())
    failure = ModelFailure("ModelHTTP400", "model endpoint answered HTTP 400: bad")
    results = [turn(core, Script([failure]), mid=f"m-{n}") for n in range(5)]  # type: ignore[list-item]
    assert {(r.status, r.error.type if r.error else None) for r in results} == {
        ("failed", "ModelHTTP400")
    }
    assert "HTTP 400" in results[0].reply and core.data.carried.unsent == []
    script = Script([say("back")])
    assert turn(core, script).reply == "back"
    assert len(script.model_calls[0].request.new_messages) == 1


def test_messages_a_failed_call_may_not_have_written_stay_bounded() -> None:
    core = conversation(agent())
    for n in range(MAX_UNSENT + 10):
        turn(core, Script([ModelFailure("TimeoutError", "")]), mid=f"m-{n}")  # type: ignore[list-item]
    assert len(core.data.carried.unsent) == MAX_UNSENT
    assert core.data.carried.unsent[-1].message.message_id == f"m-{MAX_UNSENT + 9}"


def test_a_resumed_turn_goes_on_from_its_failed_step_under_the_same_keys() -> None:
    core = conversation(agent())
    failure = ModelFailure("ModelHTTP503", "down")
    first = Script([call(("echo", {"text": "hi"})), failure])  # type: ignore[list-item]
    failed = turn(core, first, mid="m-1")
    assert core.resume(UserMessage(message_id="m-1", text="", resume=True)) == failed
    script = Script([say("done")])
    machine = core.start_turn()
    action = machine.first()
    while not isinstance(action, Finish):
        action = machine.send(script.answer(action))
    core.finish_turn(action.result)
    [again] = script.model_calls
    assert again.activity_id == "conv-1/t1/s2/model/r1"
    assert again.request.new_messages == []  # the user's message and the result are stored
    assert (action.result.status, action.result.turn, action.result.steps) == ("completed", 1, 2)
    assert len(action.result.tool_calls) == 1 and core.data.carried.turn_count == 1
    assert core.result_for("m-1") == action.result
    assert core.resume(UserMessage(message_id="m-1", text="", resume=True)) is None


# --- cancel_turn ----------------------------------------------------------------------------


def interrupted_turn(
    core: ConversationCore, outcomes: list[object], queued: UserMessage | None = None
) -> tuple[TurnResult, list[Action]]:
    """Runs turn m-1, whose last scripted action is interrupted (`cancel_turn` arrives
    while it runs), with `queued` arriving meanwhile; returns the result and the actions."""
    core.enqueue(UserMessage(message_id="m-1", text="hello"))
    machine = core.start_turn()
    if queued is not None:
        core.enqueue(queued)
    actions: list[Action] = []
    action = machine.first()
    while not isinstance(action, Finish):
        actions.append(action)
        outcome = outcomes.pop(0)
        if not outcomes:
            assert core.interrupt(CancelTurn(reason="stop")).cancelled
        action = machine.send(outcome)
    core.finish_turn(action.result)
    return action.result, actions


def test_an_interrupted_stream_ends_the_turn_with_its_text_and_the_next_call_resends() -> None:
    core = conversation(agent(tools={"lookup": ToolPolicy()}))
    partial = ModelCallOutput(
        message=Message(role="assistant", content="Claim 1", interrupted=True)
    )
    result, actions = interrupted_turn(core, [partial])
    assert (result.status, result.reply) == ("interrupted", "Claim 1")
    assert result.error is not None and result.error.type == ErrorType.TURN_INTERRUPTED
    assert result.error.message == "stop"
    # the interrupted call may not have written its new messages: they go with the next call
    script = Script(model=[say("ok")])
    assert turn(core, script, "again").status == "completed"
    [first] = [a for a in actions if isinstance(a, CallModel)]
    sent = [m.seq for m in script.model_calls[0].request.new_messages]
    assert sent == [0, 2] and first.request.output_seq == 1
    assert core.interrupt(CancelTurn()) == CancelTurnResult(cancelled=False)


def test_an_answer_that_raced_the_cancel_runs_no_tools_and_gets_their_results() -> None:
    core = conversation(agent(tools={"lookup": ToolPolicy()}))
    asks = call(("lookup", {"id": 1}), ("lookup", {"id": 2}))
    result, actions = interrupted_turn(core, [asks])
    assert result.status == "interrupted" and not any(isinstance(a, RunTools) for a in actions)
    assert [(c.id, c.status) for c in result.tool_calls] == [("c1", "error"), ("c2", "error")]
    assert all(ErrorType.TURN_INTERRUPTED in c.result for c in result.tool_calls)
    script = Script(model=[say("ok")])
    turn(core, script, "again")
    new = script.model_calls[0].request.new_messages
    assert [(m.message.role, m.message.tool_call_id) for m in new] == [
        ("tool", "c1"),
        ("tool", "c2"),
        ("user", None),
    ]


def test_tools_interrupted_keep_their_reported_results_and_queued_turns_go_on() -> None:
    core = conversation(agent(tools={"lookup": ToolPolicy(), "send": ToolPolicy()}))
    core.enqueue(UserMessage(message_id="m-0", text="first"))
    committed = ToolCallOutput(status="ok", content='{"sent": true}')
    stopped = ToolCallOutput(status="unknown", content="interrupted", error_type="OutcomeUnknown")
    assert core.interrupt(CancelTurn(message_id="m-0")).cancelled is False  # none running
    turn(core, Script(model=[say("hi")]), mid="m-0")
    outcomes: list[object] = [call(("send", {}), ("lookup", {})), [committed, stopped]]
    result, _ = interrupted_turn(core, outcomes, UserMessage(message_id="m-2", text="queued"))
    assert result.status == "interrupted" and result.reply == ""
    assert [(c.name, c.status) for c in result.tool_calls] == [
        ("send", "ok"),
        ("lookup", "unknown"),
    ]
    assert [m.message_id for m in core.data.carried.queue] == ["m-2"]
    assert core.interrupt(CancelTurn(message_id="m-2")).cancelled is False  # queued, not running
    script = Script(model=[say("done")])
    machine = core.start_turn()
    action = machine.first()
    while not isinstance(action, Finish):
        action = machine.send(script.answer(action))
    assert action.result.status == "completed" and action.result.message_id == "m-2"
    new = script.model_calls[0].request.new_messages
    assert [m.message.role for m in new] == ["tool", "tool", "user"]
