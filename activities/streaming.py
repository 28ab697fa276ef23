"""Where a model call's text deltas go while it runs: the seam between each framework's
streaming API (activities/model.py and the *_convert modules) and the conversation's live
event stream (interface/events.py).

A framework's completion asks `text_sink()`; None means nobody streams this call (streaming
is off, or this is not a model activity), and the framework's non-streaming call is made.
Otherwise it calls the framework's streaming API, hands each text delta to `sink.text`, and
still returns the whole message, as the non-streaming call would: the recorded answer, not
the deltas, is what the transcript and the workflow keep.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

__all__ = ["TextSink", "streaming_to", "text_sink"]


class TextSink(Protocol):
    """Receives the text of the reply being written, delta by delta."""

    async def text(self, delta: str) -> None: ...


_sink: ContextVar[TextSink | None] = ContextVar("agent_conversations_text_sink", default=None)


def text_sink() -> TextSink | None:
    """The running model call's sink, or None when its deltas go nowhere."""
    return _sink.get()


@contextmanager
def streaming_to(sink: TextSink | None) -> Iterator[None]:
    """Send the text deltas of model calls made inside the block to `sink`."""
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)
