"""Team rules, as AutoGen's group chats and LlamaIndex's AgentWorkflow apply them: who
speaks next, when the team stops, and what a handoff tool call does. No Temporal import;
agents.adapters.teams describes the semantics matched."""

from __future__ import annotations

import random

from agent_workflows.summaries import json_object

from interface import CarriedState, HandoffSpec, TeamSpec, ToolCall, ToolCallOutput, TurnResult

__all__ = [
    "TEAM_TURNS_LIMIT",
    "chosen_speaker",
    "handoff_outcome",
    "handoff_speaker",
    "eligible",
    "mentions_stop",
    "random_speaker",
    "round_robin_speaker",
    "selector_candidates",
    "should_stop",
]

TEAM_TURNS_LIMIT = 50  # agent turns per user message in a team with no limit of its own


def round_robin_speaker(team: TeamSpec, carried: CarriedState, previous: str | None) -> str:
    """RoundRobinGroupChat: members in order, continued across user turns. An AG2 group
    chat's (`first_speakers` set): the next eligible member after the previous speaker,
    from the start of the list in a new user turn (`previous` None)."""
    if team.first_speakers is not None:
        allowed = eligible(team, previous)
        start = team.members.index(previous) + 1 if previous in team.members else 0
        order = [team.members[(start + i) % len(team.members)] for i in range(len(team.members))]
        return next((m for m in order if m in allowed), order[0])
    index = carried.next_speaker_index % len(team.members)
    carried.next_speaker_index = (index + 1) % len(team.members)
    return team.members[index]


def random_speaker(team: TeamSpec, previous: str | None, seed: str) -> str:
    """AG2's random selection among the eligible members; `seed` (conversation, turn and
    position) makes it the same on every replay, with no randomness in the workflow."""
    return random.Random(seed).choice(eligible(team, previous))


def eligible(team: TeamSpec, previous: str | None) -> list[str]:
    """AG2's graph: who may speak after `previous` (None: after the person)."""
    if previous is None and team.first_speakers is not None:
        allowed = team.first_speakers
    elif team.transitions is not None and previous in team.transitions:
        allowed = team.transitions[previous]
    else:
        allowed = team.members
    return [m for m in team.members if m in allowed] or list(team.members)


def handoff_speaker(team: TeamSpec, handoff_target: str | None, last: str | None) -> str:
    """Swarm / AgentWorkflow: the last handoff's target, else the active agent, else root."""
    active = handoff_target if handoff_target is not None else last
    return active if active in team.members else team.root


def selector_candidates(team: TeamSpec, previous: str | None) -> list[str]:
    """SelectorGroupChat: every member but the previous speaker, unless repeats are allowed."""
    if team.first_speakers is not None:  # AG2: the graph says who may follow whom
        return eligible(team, previous)
    candidates = [m for m in team.members if team.allow_repeated_speaker or m != previous]
    return candidates or list(team.members)


def chosen_speaker(team: TeamSpec, answer: str, candidates: list[str]) -> str:
    """The selector model's answer, or the first candidate if it named no member."""
    return answer if answer in team.members else candidates[0]


def mentions_stop(team: TeamSpec, source: str, text: str) -> bool:
    """TextMentionTermination, on the user's message and each member's final message."""
    if team.termination_text is None or team.termination_text not in text:
        return False
    return team.termination_sources is None or source in team.termination_sources


def should_stop(
    team: TeamSpec, speaker: str, result: TurnResult, messages: int, handed_off: bool
) -> bool:
    """After a member's turn: a termination condition holds, or the turn did not complete."""
    return (
        result.status != "completed"
        or mentions_stop(team, speaker, result.reply)
        or (team.max_messages is not None and messages >= team.max_messages)
        or len(result.speakers) >= (team.max_turns or TEAM_TURNS_LIMIT)
        or (team.stop_on_text_reply and not handed_off)
    )


def handoff_outcome(
    handoff: HandoffSpec, call: ToolCall, members: list[str], speaker: str | None
) -> tuple[str | None, ToolCallOutput]:
    """A handoff tool call runs no activity: its target (None if invalid) and its result.
    An invalid LlamaIndex `handoff(to_agent, reason)` tells the model what went wrong."""
    target, content = handoff.target, handoff.message
    if target is None:
        arguments = json_object(call.arguments)
        target = str(arguments.get("to_agent", ""))
        if target not in members:
            valid = ", ".join(m for m in members if m != speaker)
            return None, ToolCallOutput(
                status="ok",
                content=f"Agent {target} not found. Please select a valid agent to hand "
                f"off to. Valid agents: {valid}",
            )
        if target not in handoff.allowed:
            return None, ToolCallOutput(
                status="ok",
                content=f"Agent {target} cannot hand off to {speaker}. Please select "
                "a valid agent to hand off to.",
            )
        content = content.format(to_agent=target, reason=arguments.get("reason", ""))
    return target, ToolCallOutput(status="ok", content=content)
