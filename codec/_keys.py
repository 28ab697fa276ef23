"""Encryption keys: parsed from text (an environment variable or a file), never from code.

Format: entries `KEY_ID:BASE64_KEY`, separated by commas or newlines; blank lines and lines
starting with `#` are ignored. Each key is 32 random bytes (AES-256), base64-encoded. The
first entry is the active key, used to encrypt; every entry can decrypt. To rotate, put the
new key first and keep the old ones after it until no history needs them.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class KeyConfigError(ValueError):
    """The configured keys are missing or malformed; the message never contains key bytes."""


@dataclass(frozen=True)
class KeyRing:
    """The active key ID and every known key, by ID."""

    active_id: str
    keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if self.active_id not in self.keys:
            raise KeyConfigError(f"active key {self.active_id!r} is not among the known keys")

    @property
    def ids(self) -> list[str]:
        """Known key IDs, the active one first."""
        return [self.active_id, *(k for k in self.keys if k != self.active_id)]

    def cipher(self, key_id: str) -> AESGCM:
        """The AES-GCM cipher for a known key ID."""
        try:
            return AESGCM(self.keys[key_id])
        except KeyError:
            raise KeyConfigError(
                f"unknown encryption key ID {key_id!r} (known: {', '.join(self.ids)}); "
                "keep retired keys in the ring until no history needs them"
            ) from None

    @classmethod
    def parse(cls, text: str, source: str = "keys") -> KeyRing:
        """A ring from `ID:BASE64` entries; the first entry is the active key."""
        entries = list(_entries(text))
        if not entries:
            raise KeyConfigError(f"{source}: no keys (expected entries KEY_ID:BASE64_KEY)")
        keys: dict[str, bytes] = {}
        for number, entry in enumerate(entries, start=1):
            key_id, key = _parse_entry(entry, f"{source}, entry {number}")
            if key_id in keys:
                raise KeyConfigError(f"{source}: key ID {key_id!r} appears twice")
            keys[key_id] = key
        return cls(active_id=next(iter(keys)), keys=keys)

    @classmethod
    def from_config(
        cls, keys: str | None = None, key_file: str | Path | None = None
    ) -> KeyRing | None:
        """The ring from AGENT_CODEC_KEYS and/or AGENT_CODEC_KEY_FILE; None if neither is set.

        With both, the ring is the variable's keys followed by the file's, and the first key
        of the variable is the active one.
        """
        if not keys and not key_file:
            return None
        parts: list[tuple[str, str]] = []
        if keys:
            parts.append(("AGENT_CODEC_KEYS", keys))
        if key_file:
            parts.append(("AGENT_CODEC_KEY_FILE", _read_key_file(Path(key_file))))
        return cls.parse("\n".join(t for _, t in parts), " + ".join(n for n, _ in parts))


def generate_key_entry(key_id: str | None = None) -> str:
    """A new `ID:BASE64` entry with 32 random bytes, for the key file or variable."""
    key_id = key_id or f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(2)}"
    if not KEY_ID.match(key_id):
        raise KeyConfigError(f"key ID {key_id!r} must match {KEY_ID.pattern}")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


def _entries(text: str) -> Iterator[str]:
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        yield from (part.strip() for part in line.split(",") if part.strip())


def _parse_entry(entry: str, where: str) -> tuple[str, bytes]:
    key_id, sep, encoded = (part.strip() for part in entry.partition(":"))
    if not sep or not key_id or not encoded:
        raise KeyConfigError(f"{where}: expected KEY_ID:BASE64_KEY")
    if not KEY_ID.match(key_id):
        raise KeyConfigError(f"{where}: key ID must match {KEY_ID.pattern}")
    return key_id, _decode_key(encoded, f"{where} ({key_id})")


def _decode_key(encoded: str, where: str) -> bytes:
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except binascii.Error:
        raise KeyConfigError(f"{where}: the key is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeyConfigError(
            f"{where}: the key is {len(key)} bytes; expected {KEY_BYTES} (AES-256), "
            "base64-encoded (python -m codec keygen makes one)"
        )
    return key


def _read_key_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise KeyConfigError(f"AGENT_CODEC_KEY_FILE: cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise KeyConfigError(f"AGENT_CODEC_KEY_FILE: {path} is not UTF-8 text") from None
