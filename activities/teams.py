"""A selector team's choice of the next speaker: AutoGen `SelectorGroupChat`'s rules, run
inside the model activity with the team's model client."""

from __future__ import annotations

import re
from collections.abc import Sequence

from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    LLMMessage,
    ModelFamily,
    SystemMessage,
    UserMessage,
)
from temporalio.exceptions import ApplicationError

from activities.provider_errors import provider_failures
from agents.definitions import AgentDefinition, TeamDefinition
from interface import ErrorType, Message, ModelCallOutput, SeqMessage, SpeakerSelection, Usage


async def select_speaker(
    agent: AgentDefinition, history: list[SeqMessage], selection: SpeakerSelection
) -> ModelCallOutput:
    """Ask the team's model for the next speaker among the candidates, with AutoGen's
    feedback on a bad answer, up to `max_selector_attempts`; then the previous speaker,
    or the first candidate."""
    if not isinstance(agent, TeamDefinition) or not isinstance(
        agent.model_client, ChatCompletionClient
    ):
        raise ApplicationError(
            f"{agent.name!r} is not a selector team with an AutoGen model client",
            type=ErrorType.CONFIGURATION.value,
            non_retryable=True,
        )
    candidates, usage = selection.candidates, Usage()
    if len(candidates) == 1:
        return _chosen(candidates[0], usage)
    client = agent.model_client
    prompt = agent.selector_prompt.format(
        roles=agent.roles(), participants=str(candidates), history=chat_history(history)
    )
    messages: list[LLMMessage] = [
        SystemMessage(content=prompt)
        if ModelFamily.is_openai(client.model_info["family"])
        else UserMessage(content=prompt, source="user")
    ]
    names = [m.name for m in agent.members]
    for _ in range(agent.max_selector_attempts):
        with provider_failures():
            result = await client.create(messages)
        usage = usage.plus(Usage(prompt_tokens=result.usage.prompt_tokens))
        usage = usage.plus(Usage(completion_tokens=result.usage.completion_tokens))
        content = result.content if isinstance(result.content, str) else ""
        messages.append(AssistantMessage(content=content, source="selector"))
        problem, name = _judge(content, names, candidates, selection, agent.allow_repeated_speaker)
        if name is not None:
            return _chosen(name, usage)
        messages.append(UserMessage(content=problem, source="user"))
    return _chosen(selection.previous or candidates[0], usage)


def chat_history(history: Sequence[SeqMessage]) -> str:
    """AutoGen's selector history: the chat messages (the user's, and each agent's text
    answers) as `source: content`, without tool calls and their results."""
    lines = []
    for item in history:
        m = item.message
        if m.role == "user" or (m.role == "assistant" and not m.tool_calls and m.content):
            source = m.source or ("user" if m.role == "user" else "assistant")
            lines.append(f"{source}: {m.content}".rstrip() + "\n\n")
    return "\n".join(lines)


def mentioned(text: str, names: Sequence[str]) -> dict[str, int]:
    """SelectorGroupChat._mentioned_agents: whole-word mentions, `_` also as space or `\\_`."""
    found = {}
    for name in names:
        alternatives = "|".join(
            re.escape(n) for n in (name, name.replace("_", " "), name.replace("_", r"\_"))
        )
        count = len(re.findall(rf"(?<=\W)({alternatives})(?=\W)", f" {text} "))
        if count:
            found[name] = count
    return found


def _judge(
    content: str,
    names: list[str],
    candidates: list[str],
    selection: SpeakerSelection,
    allow_repeated: bool,
) -> tuple[str, str | None]:
    mentions = mentioned(content, names)
    if not mentions:
        return f"No valid name was mentioned. Please select from: {candidates}.", None
    if len(mentions) > 1:
        return (
            f"Expected exactly one name to be mentioned. Please select only one from: "
            f"{candidates}.",
            None,
        )
    name = next(iter(mentions))
    if not allow_repeated and name == selection.previous:
        return (
            f"Repeated speaker is not allowed, please select a different name from: {candidates}.",
            None,
        )
    return "", name


def _chosen(name: str, usage: Usage) -> ModelCallOutput:
    return ModelCallOutput(message=Message(role="assistant", content=name), usage=usage)
