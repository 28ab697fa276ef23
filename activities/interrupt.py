"""What a model or tool activity needs when `cancel_turn` cancels it: whether the cancel is
the workflow's request (not a worker shutting down), and the text a model wrote so far.

The cancel reaches a running activity with the answer to its next heartbeat
(activities.heartbeat beats from a task beside the work); the SDK then cancels the
activity's task. The workflow waits for the activity's own report
(`WAIT_CANCELLATION_COMPLETED`), so an interrupted activity returns a normal result: the
model its partial answer, written to the transcript and marked interrupted, and a tool what
the ledger holds for its call.
"""

from __future__ import annotations

from temporalio import activity

from activities.streaming import TextSink

__all__ = ["PartialText", "cancel_requested"]


def cancel_requested() -> bool:
    """The workflow asked to cancel this activity (`cancel_turn`). A worker shutting down,
    a pause or a reset also cancel it: those keep failing as before and are retried."""
    details = activity.cancellation_details()
    return details is not None and details.cancel_requested


class PartialText:
    """Keeps the text deltas of the running model call and passes them on to its sink."""

    def __init__(self) -> None:
        self.written = ""
        self._outer: TextSink | None = None

    def around(self, outer: TextSink | None) -> TextSink | None:
        """The sink for one completion: this one around `outer`; None (no streaming, so
        nothing to keep) if `outer` is None. Each completion starts with no text."""
        self.written, self._outer = "", outer
        return self if outer is not None else None

    async def text(self, delta: str) -> None:
        self.written += delta
        if self._outer is not None:
            await self._outer.text(delta)
