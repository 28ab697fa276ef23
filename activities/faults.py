"""Fault injection for the demo, the tests and the chaos harness: SIGKILL this worker at a
ledger step or during a model call.

Set `AGENT_FAULT=<step>:<tool>` (steps: after_claim, after_effect, after_commit) or
`AGENT_FAULT=during_model[:<agent>]`, and `AGENT_FAULT_ONCE=<path>`. The marker file makes
the fault fire once across restarts.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from activities.ledger import Claim

log = logging.getLogger(__name__)
LEDGER_STEPS = ("after_claim", "after_effect", "after_commit")
MODEL_STEP = "during_model"
STEPS = (*LEDGER_STEPS, MODEL_STEP)

_model_fault: KillAt | None = None  # armed by from_env: the model activity takes no hooks


class KillAt:
    """LedgerHooks that kill the process once, at one step of one tool (or, for
    `during_model`, once the model has answered and before the answer is recorded)."""

    def __init__(self, step: str, tool: str, once_file: Path) -> None:
        if step not in STEPS:
            raise ValueError(f"AGENT_FAULT step must be one of {STEPS}, not {step!r}")
        self.step, self.tool, self.once_file = step, tool, once_file

    @classmethod
    def from_env(cls, spec: str | None, once_file: str | None) -> KillAt | None:
        """The fault `spec` names, if any; a `during_model` fault is armed process-wide."""
        global _model_fault
        if not spec:
            return None
        step, _, tool = spec.partition(":")
        if not once_file or (not tool and step != MODEL_STEP):
            raise ValueError("AGENT_FAULT needs <step>:<tool> and AGENT_FAULT_ONCE=<path>")
        fault = cls(step, tool, Path(once_file))
        if step == MODEL_STEP:
            _model_fault = fault
        return fault

    def after_claim(self, claim: Claim) -> None:
        self._maybe_kill("after_claim", claim.tool, claim.key)

    def after_effect(self, claim: Claim) -> None:
        self._maybe_kill("after_effect", claim.tool, claim.key)

    def after_commit(self, claim: Claim) -> None:
        self._maybe_kill("after_commit", claim.tool, claim.key)

    def _maybe_kill(self, step: str, target: str, what: str) -> None:
        wanted = self.tool in ("", target)
        if step != self.step or not wanted or self.once_file.exists():
            return
        self.once_file.write_text(f"{step} {what}\n")
        log.warning("fault injection: SIGKILL %s at %s of %s", os.getpid(), step, what)
        os.kill(os.getpid(), signal.SIGKILL)


def during_model_call(agent: str, call: str) -> None:
    """The model activity's fault point: a no-op unless AGENT_FAULT=during_model is armed."""
    if _model_fault is not None:
        _model_fault._maybe_kill(MODEL_STEP, agent, call)
