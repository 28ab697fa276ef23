"""Unique IDs, so tests sharing one Temporal server never collide."""

from __future__ import annotations

import uuid

__all__ = ["new_id"]


def new_id(prefix: str = "conv") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
