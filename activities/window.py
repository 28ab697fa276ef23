"""The transcript window a model call sees, cut to a token budget.

The budget is the agent's `context_tokens` (its framework's memory limit) when set, and never
more than the model's context window less the reply's room, the system message and the tool
schemas. The window keeps the first `context_head` messages, the newest user message, and as
many of the newest messages after and before it as fit. A tool call and its results are one
unit, in or out together, so the window never starts with an orphan result. What falls out
stays in the transcript's SQL table. Tokens are counted offline with tiktoken.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import llama_index.core
import tiktoken

from activities.memo import ByObject
from interface import Message, SeqMessage

__all__ = [
    "DEFAULT_CONTEXT_WINDOW",
    "MESSAGE_OVERHEAD",
    "Budget",
    "TooLarge",
    "budget_for",
    "context_window_of",
    "count",
    "cut",
    "load_encodings",
]

log = logging.getLogger(__name__)

DEFAULT_CONTEXT_WINDOW = 8192
"""The context window of a model whose client does not say (WorkerTuning overrides it)."""
MESSAGE_OVERHEAD = 4
"""Tokens of framing per message (role, separators), as OpenAI counts them."""
MIN_REPLY_ROOM, MAX_REPLY_ROOM = 256, 4096
COUNTS_CACHED = 8192
"""Texts whose token counts a worker remembers (each entry holds its text)."""


class TooLarge(Exception):
    """One message, or one tool call with its results, does not fit any window."""

    def __init__(self, tokens: int, budget: int) -> None:
        super().__init__(
            f"a single message of {tokens} tokens does not fit the {budget}-token window"
        )
        self.tokens, self.budget = tokens, budget


@dataclass(frozen=True)
class Budget:
    """Tokens the window's messages may take, and of what they were computed."""

    tokens: int
    context_window: int
    reply_room: int
    fixed: int
    """System message and tool schemas: sent with every call."""


@lru_cache(maxsize=8)
def _encoding(model: str) -> tiktoken.Encoding:
    bundled = Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(bundled))  # offline: the bundled files
    try:
        return tiktoken.encoding_for_model(model)
    except KeyError:
        return tiktoken.get_encoding("o200k_base")


def load_encodings(models: set[str]) -> None:
    """Load the token encodings of these models now (about 0.5 s of CPU each, once per
    process), not in the first model call that counts a window. Best effort: an encoding
    that cannot load fails that model's calls, as it would without this, not the worker."""
    for model in models:
        try:
            _encoding(model)
        except Exception as exc:
            log.warning("token encoding for model %r not loaded: %s", model, type(exc).__name__)


def count(message: Message, model: str = "gpt-4o") -> int:
    """A message's tokens, as the endpoint counts them (within a few)."""
    return _counted(message, model)


def _count(message: Message, model: str) -> int:
    text = message.content + (message.name or "")
    text += "".join(f"{c.id}{c.name}{c.arguments}" for c in message.tool_calls)
    return MESSAGE_OVERHEAD + _count_text(text, model)


_counted = ByObject[Message, int](_count)
"""Each window message counted once (activities.memo); its text's count is remembered too."""


@lru_cache(maxsize=COUNTS_CACHED)
def _count_text(text: str, model: str) -> int:
    """Tokens of `text`, remembered: a window's messages are counted again on every model
    call of the conversation, and the system message and tool schemas on every call."""
    return len(_encoding(model).encode(text, disallowed_special=()))


def context_window_of(client: Any, default: int = DEFAULT_CONTEXT_WINDOW) -> int:
    """The model's context window as its client knows it, else `default`."""
    info = getattr(client, "model_info", None)
    if isinstance(info, dict) and isinstance(info.get("context_window"), int):
        return int(info["context_window"])
    metadata = _llamaindex_metadata(client)
    if metadata is not None:
        return int(metadata.context_window)
    model = model_name(client)
    if model and hasattr(client, "_create_args"):  # autogen-ext's OpenAI / Azure clients
        from autogen_ext.models.openai import _model_info

        try:
            return _model_info.get_token_limit(model)
        except KeyError:
            return default
    return default


def _llamaindex_metadata(client: Any) -> Any:
    from llama_index.core.llms import LLM

    return client.metadata if isinstance(client, LLM) else None


def model_name(client: Any) -> str:
    """The client's model name, for its token encoding; "" if it does not say."""
    create_args = getattr(client, "_create_args", None)
    if isinstance(create_args, dict) and isinstance(create_args.get("model"), str):
        return str(create_args["model"])
    name = getattr(client, "model", None)
    return name if isinstance(name, str) else ""


def reply_room(client: Any, context_window: int) -> int:
    """Tokens left for the answer: the client's `max_tokens`, else an eighth of the window."""
    create_args = getattr(client, "_create_args", None) or {}
    asked = create_args.get("max_tokens") or create_args.get("max_completion_tokens")
    if asked is None:
        asked = getattr(client, "max_tokens", None)
    if isinstance(asked, int) and asked > 0:
        return asked
    return max(MIN_REPLY_ROOM, min(MAX_REPLY_ROOM, context_window // 8))


def budget_for(
    client: Any,
    system_message: str,
    tool_schemas: Sequence[object],
    context_tokens: int | None,
    default_window: int = DEFAULT_CONTEXT_WINDOW,
) -> Budget:
    """The window's token budget for one model call of an agent."""
    window = context_window_of(client, default_window)
    room = reply_room(client, window)
    model = model_name(client)
    fixed = MESSAGE_OVERHEAD + _count_text(system_message, model)
    if tool_schemas:
        fixed += _count_text(json.dumps(tool_schemas, default=str), model)
    tokens = max(0, window - room - fixed)
    if context_tokens is not None:
        tokens = min(tokens, context_tokens)
    return Budget(tokens=tokens, context_window=window, reply_room=room, fixed=fixed)


def _units(window: list[SeqMessage]) -> list[list[SeqMessage]]:
    """Messages grouped so that a tool call and its results stay together; results whose
    call is not in `window` are dropped."""
    units: list[list[SeqMessage]] = []
    for item in window:
        if item.message.role != "tool":
            units.append([item])
        elif units and _answers(units[-1], item.message):
            units[-1].append(item)
    return units


def _answers(unit: list[SeqMessage], result: Message) -> bool:
    return any(c.id == result.tool_call_id for c in unit[0].message.tool_calls)


def cut(
    head: list[SeqMessage], tail: list[SeqMessage], budget: int, model: str = "gpt-4o"
) -> list[SeqMessage]:
    """`head` (the conversation's first messages), then the newest of `tail` that fit
    `budget` tokens with it; the newest user message is always kept. Raises TooLarge if that
    message, or the newest unit, does not fit alone."""
    seqs = {item.seq for item in head}
    units = _units([item for item in tail if item.seq not in seqs])
    costs = [sum(count(m.message, model) for m in unit) for unit in units]
    left = budget - sum(count(m.message, model) for m in head)
    pinned = _last_user_unit(units)
    if pinned is not None:
        if costs[pinned] > left:
            raise TooLarge(costs[pinned], budget)
        left -= costs[pinned]
    kept = [] if pinned is None else [pinned]
    for index in range(len(units) - 1, -1, -1):
        if index == pinned:
            continue
        if costs[index] > left:
            if index == len(units) - 1:  # the newest results must be seen: cut them to fit
                units[index] = _results_cut_to(units[index], left, model)
                kept.append(index)
            break  # the window stays contiguous back from the newest message
        left -= costs[index]
        kept.append(index)
    return head + [m for index in sorted(kept) for m in units[index]]


CUT_MARKER = "... [cut to fit the model's context window]"


def _results_cut_to(unit: list[SeqMessage], tokens: int, model: str) -> list[SeqMessage]:
    """A tool call with its results cut to share `tokens`; TooLarge if the call alone (or
    a message that is not a result) does not fit."""
    call, results = unit[0], unit[1:]
    share = (tokens - count(call.message, model)) // max(len(results), 1) - MESSAGE_OVERHEAD
    share -= _count_text(CUT_MARKER, model) + 8  # the name and the marker
    if not results or share <= 0:
        raise TooLarge(sum(count(m.message, model) for m in unit), tokens)
    encoding = _encoding(model)
    cut_results = []
    for item in results:
        ids = encoding.encode(item.message.content, disallowed_special=())
        if len(ids) > share:
            content = encoding.decode(ids[:share]) + CUT_MARKER
            item = item.model_copy(
                update={"message": item.message.model_copy(update={"content": content})}
            )
        cut_results.append(item)
    return [call, *cut_results]


def _last_user_unit(units: list[list[SeqMessage]]) -> int | None:
    for index in range(len(units) - 1, -1, -1):
        if units[index][0].message.role == "user":
            return index
    return None
