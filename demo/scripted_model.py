"""A deterministic scripted model: an AutoGen `ChatCompletionClient` with no network.

It is not a language model. It reads the last user message and the tool results with a few
rules, enough for the claims demo:
- a claim number ("claim 123") -> get_claim_status
- "note"                      -> create_claim_note on the last claim mentioned
- "email"                     -> send_customer_email on the last claim mentioned
- "POL-1001"                  -> lookup_policy
- after tool results          -> a one-line summary of them

Tests script it exactly with directives, one per line of the user message:
- `!call NAME JSON`  call a tool (several lines: parallel calls in one response)
- `!loop NAME JSON`  call the tool on every step, never answering (step-limit tests)
- `!say TEXT`        answer with TEXT
- `!output JSON`     the structured answer, when asked for one (`json_output=`, or
                     LlamaIndex's structured-output call)

Team members each get a client with their name, `ScriptedChatCompletionClient("triage")`:
- lines `@NAME ...` are NAME's script, one action a line, run in order within a user
  turn: `!call` (lines in a row call in parallel), `!say TEXT`, `!handoff AGENT [reason]`
  (calls the handoff tool). After a tool result it summarizes the result unless its next
  action is a `!call` or `!handoff`; a summary is part of the call's action. With no
  action left it says "NAME has nothing to add."
- unscripted, a member without the tool a request needs hands off (`transfer_to_...`, or
  LlamaIndex's `handoff` to the first agent it lists), and a member handed to starts on
  the user's request.
- asked AutoGen's selector prompt, it names the candidate mentioned first in the latest
  message, or else the first candidate.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Literal

from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    CreateResult,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    ModelCapabilities,  # type: ignore[attr-defined]
    ModelFamily,
    ModelInfo,
    RequestUsage,
    UserMessage,
)
from autogen_core.tools import Tool, ToolSchema
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms.mock import MockFunctionCallingLLM
from pydantic import BaseModel

CLAIM = re.compile(r"claim\s*(?:#|no\.?|number)?\s*(\d+)", re.I)
POLICY = re.compile(r"\bPOL-\d+\b", re.I)
SELECTOR = re.compile(r"select the next role from (\[.*?\]) to play", re.S)
HELP = (
    "I can check a claim's status, look up a policy, add a note to a claim or email the customer."
)

Content = str | list[FunctionCall]


class ScriptedChatCompletionClient(ChatCompletionClient):
    """`token_delay`: seconds before each chunk (a word) that `create_stream` yields, so
    that streaming shows; `create` answers at once either way."""

    def __init__(self, name: str | None = None, token_delay: float = 0.0) -> None:
        self._name = name
        self.token_delay = token_delay
        self._total = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._last = RequestUsage(prompt_tokens=0, completion_tokens=0)

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        content = _decide(list(messages), {_tool_name(t) for t in tools}, self._name)
        if isinstance(json_output, type) and isinstance(content, str):
            content = _output(_last_user_text(list(messages))) or content
        self._last = RequestUsage(
            prompt_tokens=sum(_length(m.content) for m in messages) // 4,
            completion_tokens=len(str(content)) // 4 + 1,
        )
        self._total = RequestUsage(
            prompt_tokens=self._total.prompt_tokens + self._last.prompt_tokens,
            completion_tokens=self._total.completion_tokens + self._last.completion_tokens,
        )
        finish = "function_calls" if isinstance(content, list) else "stop"
        return CreateResult(finish_reason=finish, content=content, usage=self._last, cached=False)

    async def create_stream(  # type: ignore[override]
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """The reply of `create`, word by word with `token_delay` before each, then the
        whole `CreateResult`, as AutoGen's streaming clients yield it."""
        result = await self.create(messages, tools=tools, json_output=json_output)
        if isinstance(result.content, str):
            for chunk in re.findall(r"\S+\s*|\s+", result.content):
                if self.token_delay:
                    await asyncio.sleep(self.token_delay)
                yield chunk
        yield result

    async def close(self) -> None:
        pass

    def actual_usage(self) -> RequestUsage:
        return self._last

    def total_usage(self) -> RequestUsage:
        return self._total

    def count_tokens(self, messages: Sequence[LLMMessage], **_: Any) -> int:
        return sum(len(str(m.content)) for m in messages) // 4

    def remaining_tokens(self, messages: Sequence[LLMMessage], **_: Any) -> int:
        return 128_000 - self.count_tokens(messages)

    @property
    def capabilities(self) -> ModelCapabilities:  # type: ignore[override]
        return ModelCapabilities(vision=False, function_calling=True, json_output=False)  # type: ignore[typeddict-item]

    @property
    def model_info(self) -> ModelInfo:
        info = ModelInfo(
            vision=False,
            function_calling=True,
            json_output=False,
            family=ModelFamily.UNKNOWN,
            structured_output=False,
        )
        # the window the activities budget for (activities/window.py): gpt-4o-mini's
        info["context_window"] = SCRIPTED_CONTEXT_WINDOW  # type: ignore[typeddict-unknown-key]
        return info


SCRIPTED_CONTEXT_WINDOW = 128_000


def scripted_llamaindex_llm() -> MockFunctionCallingLLM:
    """The same rules as a LlamaIndex LLM: LlamaIndex's own function-calling mock, answering
    through `ScriptedChatCompletionClient`'s decisions."""

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        given = kwargs.get("tools") or []
        if len(given) == 1 and "<current_conversation>" in (messages[-1].content or ""):
            return _structured(messages, given[0].metadata.get_name())
        tools = {t.metadata.get_name() for t in given}
        agents = [a for t in given if t.metadata.get_name() == "handoff" for a in _agents(t)]
        content = _decide(_from_llamaindex(messages), tools, handoff_to=agents)
        if isinstance(content, str):
            return ChatMessage(role=MessageRole.ASSISTANT, content=content)
        blocks = [
            ToolCallBlock(tool_call_id=c.id, tool_name=c.name, tool_kwargs=c.arguments)
            for c in content
        ]
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks)

    return MockFunctionCallingLLM(response_generator=respond)


def scripted_react_llm() -> MockFunctionCallingLLM:
    """A LlamaIndex LLM that answers ReAct prompts in ReAct form, scripted by the user's
    message: `!call NAME JSON` lines are actions in order (one a step), then
    `Answer:` with the observations joined by "; " (or `!say TEXT`'s text);
    `!garble` makes the first response of the turn unparsable, `!implicit` answers
    without the ReAct keywords. A structured-output request answers `!output JSON`."""

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        given = kwargs.get("tools") or []
        if len(given) == 1 and "<current_conversation>" in (messages[-1].content or ""):
            return _structured(messages, given[0].metadata.get_name())
        return ChatMessage(role=MessageRole.ASSISTANT, content=_react(messages))

    return MockFunctionCallingLLM(response_generator=respond)


REACT_FEEDBACK = ("Observation:", "Error while parsing the output", "FAILURE:")


def _react(messages: Sequence[ChatMessage]) -> str:
    """The next ReAct step for the latest request in `messages`."""
    texts = [(m.role, m.content or "") for m in messages]
    asks = [i for i, (role, t) in enumerate(texts) if role == "user" and not _feedback(t)]
    request = texts[asks[-1]][1] if asks else ""
    observations = [
        t[len("Observation:") :].strip()
        for _, t in (texts[asks[-1] + 1 :] if asks else [])
        if t.startswith("Observation:")
    ]
    retrying = bool(texts) and texts[-1][1].startswith(REACT_FEEDBACK[1:])
    lines = [line.strip() for line in request.splitlines()]
    calls = [
        line[len("!call ") :].strip().partition(" ") for line in lines if line.startswith("!call ")
    ]
    if "!garble" in lines and not observations and not retrying:
        return "Thought: I should call a tool.\nAction: echo, with no input"  # no Action Input
    if len(observations) < len(calls):
        name, _, arguments = calls[len(observations)]
        return (
            "Thought: The current language of the user is: English. I need to use a tool to "
            f"help me answer the question.\nAction: {name}\nAction Input: {arguments or '{}'}"
        )
    say = next((line[len("!say ") :] for line in lines if line.startswith("!say ")), None)
    answer = say if say is not None else "; ".join(observations) or HELP
    if "!implicit" in lines:
        return answer
    return f"Thought: I can answer without using any more tools.\nAnswer: {answer}"


def _feedback(text: str) -> bool:
    return text.startswith(REACT_FEEDBACK)


def _structured(messages: Sequence[ChatMessage], tool: str) -> ChatMessage:
    """LlamaIndex's structured-output call (a function call of the output class)."""
    found = _output(messages[-1].content or "")
    arguments = json.loads(found) if found else {}
    block = ToolCallBlock(tool_call_id="call_output", tool_name=tool, tool_kwargs=arguments)
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=[block])


def _output(text: str) -> str | None:
    """The JSON of the last `!output JSON` line: the structured answer a test scripts."""
    found = re.findall(r"^\s*(?:<message>)?!output (\{.*?\})\s*(?:</message>)?$", text, re.M)
    return found[-1] if found else None


def _agents(handoff_tool: Any) -> list[str]:
    """The agents AgentWorkflow's handoff tool lists: `Currently available agents: {...}`."""
    found = re.search(
        r"Currently available agents:\s*(\{.*\})", handoff_tool.metadata.description, re.S
    )
    return list(ast.literal_eval(found.group(1))) if found else []


def _from_llamaindex(messages: Sequence[ChatMessage]) -> list[LLMMessage]:
    converted: list[LLMMessage] = []
    for m in messages:
        calls = [b for b in m.blocks if isinstance(b, ToolCallBlock)]
        if m.role == MessageRole.USER:
            converted.append(UserMessage(content=m.content or "", source="user"))
        elif m.role == MessageRole.TOOL:
            result = FunctionExecutionResult(
                content=m.content or "",
                name=m.additional_kwargs.get("name", ""),
                call_id=m.additional_kwargs.get("tool_call_id", ""),
                is_error=m.additional_kwargs.get("is_error", False),
            )
            if converted and isinstance(converted[-1], FunctionExecutionResultMessage):
                converted[-1].content.append(result)
            else:
                converted.append(FunctionExecutionResultMessage(content=[result]))
        elif m.role == MessageRole.ASSISTANT and calls:
            function_calls = [
                FunctionCall(
                    id=c.tool_call_id or "", name=c.tool_name, arguments=str(c.tool_kwargs)
                )
                for c in calls
            ]
            converted.append(AssistantMessage(content=function_calls, source="assistant"))
        elif m.role == MessageRole.ASSISTANT:
            converted.append(AssistantMessage(content=m.content or "", source="assistant"))
    return converted


def _length(content: object) -> int:
    """About how long a message's content is, in characters: tool results by their text
    (not their pydantic repr, which cost the scripted model most of its time)."""
    if isinstance(content, list):
        return sum(len(getattr(item, "content", "") or str(item)) for item in content)
    return len(str(content))


def _decide(
    messages: list[LLMMessage],
    tools: set[str],
    name: str | None = None,
    handoff_to: Sequence[str] = (),
) -> Content:
    user = _last_user_text(messages)
    last = messages[-1] if messages else None
    selector = SELECTOR.findall(user) if not tools else []
    if selector:
        return _select(user, ast.literal_eval(selector[-1]))
    if name is not None:
        user = _last_user_text(messages, source="user")
        actions = _actions(user, name)
        if actions:
            return _act(messages, tools, name, actions)
    if _handed_to(messages, name):
        last = None  # start on the user's request
    directives = _directives(user, len(messages)) if tools else []  # no tools: reflection
    if isinstance(last, FunctionExecutionResultMessage):
        if directives and user.lstrip().startswith("!loop"):
            return directives
        return _summarize(last.content)
    if directives:
        return directives
    if user.lstrip().startswith("!say"):
        return user.lstrip()[4:].strip()
    return _plan(user, messages, tools, handoff_to)


def _directives(text: str, position: int) -> list[FunctionCall]:
    calls: list[FunctionCall] = []
    for line in text.splitlines():
        verb, _, rest = line.strip().partition(" ")
        if verb in ("!call", "!loop"):
            name, _, arguments = rest.strip().partition(" ")
            call_id = f"call_{position}_{len(calls)}"
            calls.append(FunctionCall(id=call_id, name=name, arguments=arguments.strip() or "{}"))
    return calls


def _plan(
    text: str, messages: list[LLMMessage], tools: set[str], handoff_to: Sequence[str] = ()
) -> Content:
    lower = text.lower()
    claim = _claim_in(text) or _last_claim(messages)
    policy = POLICY.search(text)

    def call(name: str, **arguments: Any) -> Content:
        if name not in tools:
            handoff = sorted(t for t in tools if t.startswith("transfer_to_"))
            if handoff:
                return _handoff(handoff[0], len(messages))
            if "handoff" in tools and handoff_to:
                reason = json.dumps({"to_agent": handoff_to[0], "reason": f"{name} is needed"})
                return [
                    FunctionCall(id=f"call_{len(messages)}_0", name="handoff", arguments=reason)
                ]
            return HELP
        return [
            FunctionCall(id=f"call_{len(messages)}_0", name=name, arguments=json.dumps(arguments))
        ]

    if "email" in lower and claim:
        body = f"Hello, this is an update on your claim {claim}. We are on it and will be in touch."
        return call(
            "send_customer_email", claim_id=claim, subject=f"Update on claim {claim}", body=body
        )
    if "note" in lower and claim:
        return call("create_claim_note", claim_id=claim, text=_note_text(text))
    if policy and not _claim_in(text):
        return call("lookup_policy", policy_id=policy.group(0).upper())
    if claim:
        return call("get_claim_status", claim_id=claim)
    return HELP


def _actions(text: str, name: str) -> list[list[str]]:
    """NAME's script in the user's message: its `@NAME` lines, `!call` runs grouped."""
    actions: list[list[str]] = []
    for line in text.splitlines():
        target, _, rest = line.strip().partition(" ")
        if target != f"@{name}":
            continue
        rest = rest.strip()
        if rest.startswith("!call") and actions and actions[-1][0].startswith("!call"):
            actions[-1].append(rest)
        else:
            actions.append([rest])
    return actions


def _act(
    messages: list[LLMMessage], tools: set[str], name: str, actions: list[list[str]]
) -> Content:
    done = _actions_done(messages, name)
    last = messages[-1] if messages else None
    after_tool = isinstance(last, FunctionExecutionResultMessage) and not _handed_to(messages, name)
    action = actions[done] if done < len(actions) else None
    verb, _, rest = action[0].partition(" ") if action else ("", "", "")
    if after_tool and (verb not in ("!call", "!handoff") or not tools):  # or a reflection
        assert isinstance(last, FunctionExecutionResultMessage)
        return _summarize(last.content)
    if action is None:
        return f"{name} has nothing to add."
    if verb == "!call":
        return _directives("\n".join(action), len(messages))
    if verb == "!handoff":
        target, _, reason = rest.strip().partition(" ")
        transfer = f"transfer_to_{target}".lower()
        if transfer in tools:
            return _handoff(transfer, len(messages))
        arguments = json.dumps({"to_agent": target, "reason": reason or "better suited"})
        return [FunctionCall(id=f"call_{len(messages)}_0", name="handoff", arguments=arguments)]
    return rest.strip()


def _actions_done(messages: list[LLMMessage], name: str) -> int:
    """NAME's model answers since the user's message, not counting its summaries of tool
    results (a tool round and its summary are one action)."""
    count = 0
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, UserMessage) and message.source == "user":
            break
        if not isinstance(message, AssistantMessage) or message.source != name:
            continue
        follows_tool = index > 0 and isinstance(messages[index - 1], FunctionExecutionResultMessage)
        if isinstance(message.content, list) or not follows_tool:
            count += 1
    return count


def _handoff(tool: str, position: int) -> Content:
    return [FunctionCall(id=f"call_{position}_0", name=tool, arguments="{}")]


def _handed_to(messages: list[LLMMessage], name: str | None) -> bool:
    """The last messages are another agent's handoff call and its result."""
    if len(messages) < 2 or not isinstance(messages[-1], FunctionExecutionResultMessage):
        return False
    call = messages[-2]
    mine = isinstance(call, AssistantMessage) and name is not None and call.source == name
    handoff = all(
        r.name == "handoff" or r.name.startswith("transfer_to_") for r in messages[-1].content
    )
    return handoff and not mine


def _select(prompt: str, candidates: list[str]) -> str:
    """The candidate named first in the latest message of the selector prompt's
    conversation (after its `source:`), or else the first candidate."""
    history = prompt.split("Only return the role.", 1)[-1]
    history = history.rsplit("Read the above conversation", 1)[0].strip()
    latest = history.split("\n\n\n")[-1].partition(": ")[2]
    positions = {c: latest.find(c) for c in candidates if c in latest}
    return min(positions, key=lambda c: positions[c]) if positions else candidates[0]


def _summarize(results: list[FunctionExecutionResult]) -> str:
    return " ".join(_summary(r) for r in results)


def _summary(result: FunctionExecutionResult) -> str:
    try:
        data = json.loads(result.content)
    except ValueError:
        data = None
    if result.is_error or not isinstance(data, dict):
        detail = data.get("message", result.content) if isinstance(data, dict) else result.content
        return f"{result.name} did not work: {detail}" if result.is_error else result.content
    if result.name == "get_claim_status":
        return (
            f"Claim {data['claim_id']} is {data['status']}: {data['description']} "
            f"(amount {data['amount']}, policy {data['policy_id']})."
        )
    if result.name == "create_claim_note":
        return f"I added note #{data['note_id']} to claim {data['claim_id']}."
    if result.name == "send_customer_email":
        return f"I emailed {data['to']} about claim {data['claim_id']} (email #{data['email_id']})."
    if result.name == "lookup_policy":
        return (
            f"Policy {data['policy_id']} ({data['product']}) for {data['holder']} is "
            f"{data['status']}, coverage limit {data['coverage_limit']}."
        )
    return f"{result.name} returned {result.content}"


def _note_text(text: str) -> str:
    match = re.search(r"note(?:\s+that|:)?\s+(.*)", text, re.I | re.S)
    note = (match.group(1) if match else text).strip().rstrip(".")
    return (note[:1].upper() + note[1:] + ".") if note else text


def _claim_in(text: str) -> int | None:
    match = CLAIM.search(text)
    return int(match.group(1)) if match else None


def _last_claim(messages: list[LLMMessage]) -> int | None:
    for message in reversed(messages):
        if isinstance(message, UserMessage) and isinstance(message.content, str):
            found = _claim_in(message.content)
            if found:
                return found
        if isinstance(message, AssistantMessage) and isinstance(message.content, list):
            for call in message.content:
                found = _claim_in_arguments(call.arguments)
                if found:
                    return found
    return None


def _claim_in_arguments(arguments: str) -> int | None:
    try:
        value = json.loads(arguments).get("claim_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def _last_user_text(messages: list[LLMMessage], source: str | None = None) -> str:
    for message in reversed(messages):
        if isinstance(message, UserMessage) and source in (None, message.source):
            return message.content if isinstance(message.content, str) else ""
    return ""


def _tool_name(tool: Tool | ToolSchema) -> str:
    return tool["name"] if isinstance(tool, dict) else tool.name


def _json(arguments: object) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)
