"""What the pure turn loop asks its shell to do. The shell performs each action and sends
its outcome back: `CallModel` → `ModelCallOutput | None` (None: the call failed for good),
`RunTools` → one `ToolCallOutput` per task, in order. `Finish` ends the turn."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from interface import (
    ModelCallInput,
    ModelPolicy,
    PendingApproval,
    ToolCallInput,
    ToolPolicy,
    TurnResult,
)

__all__ = ["Action", "CallModel", "Finish", "ModelFailure", "RunTools", "ToolTask"]


@dataclass(frozen=True)
class CallModel:
    """Run the model activity once."""

    request: ModelCallInput
    activity_id: str
    summary: str
    policy: ModelPolicy
    purpose: Literal["reply", "select_speaker"] = "reply"


@dataclass(frozen=True)
class ToolTask:
    """One tool activity (a group of identical calls), after a person's approval if set."""

    index: int
    request: ToolCallInput
    activity_id: str
    summary: str
    policy: ToolPolicy
    approval: PendingApproval | None = None


@dataclass(frozen=True)
class RunTools:
    """Run these tool tasks concurrently; the outcomes come back in the same order."""

    tasks: list[ToolTask]


@dataclass(frozen=True)
class Finish:
    """The turn is over with this result."""

    result: TurnResult


Action = CallModel | RunTools | Finish


@dataclass(frozen=True)
class ModelFailure:
    """The outcome of a `CallModel` whose activity failed: the failure's type and message."""

    type: str
    message: str
