"""The secret values this process was configured with, scrubbed from every failure message
and log line by value, whatever they look like (a pattern misses `gsk_live_...`).

Entry points register what they read (model keys, `TEMPORAL_API_KEY`, the database
password, codec keys); a component that takes a secret of its own (an MCP server's
headers, say) registers it with `register_secret`. Lives in `interface` so that every
layer may add to it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping

__all__ = [
    "MIN_SECRET_CHARS",
    "REDACTED",
    "SECRET_ENV_SUFFIXES",
    "redact_known",
    "register_environment_secrets",
    "register_secret",
    "register_secrets",
]

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 8
"""Shorter values are not registered: scrubbing `abc` would garble ordinary text."""
SECRET_ENV_SUFFIXES = ("API_KEY", "_TOKEN", "_SECRET", "PASSWORD", "_CODEC_KEYS")
"""Environment variables whose values are secrets, whichever program reads them."""

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Scrub `value` from failure messages and logs from now on."""
    if not value or len(value.strip()) < MIN_SECRET_CHARS:
        return
    global _pattern
    with _lock:
        if value in _values:
            return
        _values.add(value)
        longest_first = sorted(_values, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in longest_first))


def register_secrets(values: Iterable[str | None]) -> None:
    for value in values:
        register_secret(value)


def register_environment_secrets(env: Mapping[str, str]) -> None:
    """Register the values of variables named like secrets (`SECRET_ENV_SUFFIXES`); codec
    key entries `ID:BASE64` also by their key part."""
    for name, value in env.items():
        if not name.upper().endswith(SECRET_ENV_SUFFIXES):
            continue
        register_secret(value)
        for entry in re.split(r"[\s,]+", value):
            register_secret(entry.partition(":")[2])


def redact_known(text: str) -> str:
    """`text` with every registered secret replaced by `[redacted]`."""
    pattern = _pattern
    return pattern.sub(REDACTED, text) if pattern is not None else text
