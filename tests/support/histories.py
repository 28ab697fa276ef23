"""The committed workflow histories under tests/histories/ (never edited or deleted)."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import WorkflowHistory

__all__ = ["HISTORIES", "HISTORY_DIR", "load"]

HISTORY_DIR = Path(__file__).resolve().parent.parent / "histories"
HISTORIES = sorted(HISTORY_DIR.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    """Files hold `{"workflow_id", "run_id", "history"}`; the ID must match the recording."""
    record = json.loads(path.read_text())
    return WorkflowHistory.from_json(record["workflow_id"], record["history"])
