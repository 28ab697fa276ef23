"""Timeouts, retry policies and limits: the one place they are configured."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from temporalio.common import RetryPolicy


class RetrySettings(BaseModel):
    """Temporal retry policy for one kind of activity."""

    initial_interval: timedelta = timedelta(milliseconds=200)
    """Delay before the first retry."""
    backoff_coefficient: float = 2.0
    """Each retry waits this many times longer than the one before."""
    maximum_interval: timedelta = timedelta(seconds=10)
    """Upper bound on the delay between retries."""
    maximum_attempts: int = 0
    """Attempts in all, the first included; 0 means unlimited, bounded by the activity's
    `schedule_to_close`. Counting attempts would let a run of worker crashes (each one an
    attempt) use them up and lose a turn that a live worker would have finished."""

    def to_temporal(self) -> RetryPolicy:
        # imported here: the pure turn loop uses these models without importing Temporal
        from temporalio.common import RetryPolicy

        return RetryPolicy(
            initial_interval=self.initial_interval,
            backoff_coefficient=self.backoff_coefficient,
            maximum_interval=self.maximum_interval,
            maximum_attempts=self.maximum_attempts,
        )


class ToolPolicy(BaseModel):
    """How one tool's activity is run."""

    start_to_close: timedelta = timedelta(seconds=30)
    """Upper bound on one attempt. It is also the ledger lease: a claim older than this may
    be taken over by another attempt."""
    heartbeat: timedelta | None = timedelta(seconds=2)
    """A killed worker is noticed after this long; the tool activity heartbeats meanwhile."""
    schedule_to_close: timedelta | None = timedelta(minutes=10)
    """Upper bound on the call, every retry included; then the model hears of the failure."""
    retry: RetrySettings = Field(default_factory=RetrySettings)
    """Retries for retryable tool errors (timeouts, lost connections, lost leases)."""
    dedupe_identical_calls: bool = True
    """Identical calls (same name, same arguments) in one model response run once."""
    needs_approval: bool = False
    """The turn pauses in `waiting_approval` until a `decide_tool` signal arrives."""
    approval_timeout: timedelta | None = None
    """With approval: no decision within this long counts as a denial."""


class ModelPolicy(BaseModel):
    """How the model activity is run."""

    start_to_close: timedelta = timedelta(seconds=120)
    """Upper bound on one model call."""
    heartbeat: timedelta | None = timedelta(seconds=5)
    """A worker killed during a model call is noticed after this long, not after
    `start_to_close`; the model activity heartbeats while it waits for the model."""
    schedule_to_close: timedelta | None = timedelta(minutes=10)
    """Upper bound on the call, every retry included; then the turn ends `failed`."""
    retry: RetrySettings = Field(
        default_factory=lambda: RetrySettings(
            initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
        )
    )
    """Retries for 408/409/429/5xx and connection errors; `retry-after` overrides the delay."""


class ConversationSettings(BaseModel):
    """Per-conversation limits, chosen at start and carried across continue-as-new."""

    max_turns_per_run: int = Field(default=200, ge=1)
    """Continue-as-new after this many turns in one run, or earlier if Temporal suggests it,
    even while turns are queued (the queue travels with the carried state)."""
    max_steps_per_turn: int | None = Field(default=None, ge=1)
    """Model calls per turn before the turn stops with `step_limit`; None: the agent's own."""
    max_message_chars: int = Field(default=32_000, ge=1)
    """Longer user messages are rejected."""
    max_queued_turns: int = Field(default=100, ge=1)
    """Turns waiting behind the running one; more are refused with BacklogFull (an `ask`)
    or dropped with a logged reason (a `user_message` signal). The queue is carried across
    continue-as-new, so its bound keeps that input bounded."""
    max_queued_chars: int = Field(default=256_000, ge=1)
    """Total text of the waiting turns; past it, new turns are refused as above. It keeps
    the carried queue well under Temporal's 2 MB payload limit."""
    recent_results: int = Field(default=32, ge=1)
    """Turn results kept for retried `ask` updates (carried across continue-as-new)."""
    recent_message_ids: int = Field(default=512, ge=1)
    """Message IDs kept in memory for deduplication; older ones are caught by the transcript."""
    recent_messages: int = Field(default=20, ge=0)
    """Messages shown by the `state` query."""
