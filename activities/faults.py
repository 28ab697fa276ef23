"""Fault injection for the demo and the tests: SIGKILL this worker at a ledger step.

Set `AGENT_FAULT=<step>:<tool>` (steps: after_claim, after_effect, after_commit) and
`AGENT_FAULT_ONCE=<path>`. The marker file makes the fault fire once across restarts.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from activities.ledger import Claim

log = logging.getLogger(__name__)
STEPS = ("after_claim", "after_effect", "after_commit")


class KillAt:
    """LedgerHooks that kill the process once, at one step of one tool."""

    def __init__(self, step: str, tool: str, once_file: Path) -> None:
        if step not in STEPS:
            raise ValueError(f"AGENT_FAULT step must be one of {STEPS}, not {step!r}")
        self.step, self.tool, self.once_file = step, tool, once_file

    @classmethod
    def from_env(cls, spec: str | None, once_file: str | None) -> KillAt | None:
        if not spec:
            return None
        step, _, tool = spec.partition(":")
        if not tool or not once_file:
            raise ValueError("AGENT_FAULT needs <step>:<tool> and AGENT_FAULT_ONCE=<path>")
        return cls(step, tool, Path(once_file))

    def after_claim(self, claim: Claim) -> None:
        self._maybe_kill("after_claim", claim)

    def after_effect(self, claim: Claim) -> None:
        self._maybe_kill("after_effect", claim)

    def after_commit(self, claim: Claim) -> None:
        self._maybe_kill("after_commit", claim)

    def _maybe_kill(self, step: str, claim: Claim) -> None:
        if step != self.step or claim.tool != self.tool or self.once_file.exists():
            return
        self.once_file.write_text(f"{step} {claim.key}\n")
        log.warning("fault injection: SIGKILL %s at %s of %s", os.getpid(), step, claim.key)
        os.kill(os.getpid(), signal.SIGKILL)
