"""With encryption on, a worker refuses messages that arrive unencrypted (issue 15,
finding 8): a client without the keys must not put a turn's text into an encrypted
conversation, where it would sit in history in plaintext and run.

The worker's codec is strict (`EncryptionCodec(strict=True)`): it flags each unencrypted
payload it decodes. `StrictPayloadConverter` refuses a flagged payload with an
`EncryptionRequired` ApplicationError, unless it is a start input (`StartConversation`:
a keyless client's start, or a conversation started before encryption was on). The SDK then
rejects an `ask` update before it enters history, with that error, and drops a signal
(`user_message`, `decide_tool`, `end`), logging why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from codec import PLAINTEXT_METADATA, EncryptionCodec, KeyRing, encrypted_data_converter
from interface import ErrorType, StartConversation

__all__ = ["ENCRYPTION_REQUIRED", "StrictPayloadConverter", "strict_data_converter"]

ENCRYPTION_REQUIRED = (
    "this conversation is encrypted: the input arrived unencrypted and was refused; "
    "set AGENT_CODEC_KEYS (or AGENT_CODEC_KEY_FILE) on the client"
)
ALLOWED_PLAINTEXT: tuple[type, ...] = (StartConversation,)
"""Inputs taken unencrypted: a start input is in history before any worker sees it."""


class StrictPayloadConverter(PydanticPayloadConverter):
    """The pydantic converter, refusing payloads the strict codec flagged as unencrypted."""

    def from_payloads(
        self, payloads: Sequence[Payload], type_hints: list[type] | None = None
    ) -> list[Any]:
        for index, payload in enumerate(payloads):
            if PLAINTEXT_METADATA in payload.metadata and not _allowed(type_hints, index):
                raise ApplicationError(
                    ENCRYPTION_REQUIRED, type=ErrorType.ENCRYPTION_REQUIRED, non_retryable=True
                )
        return super().from_payloads(payloads, type_hints)


def _allowed(type_hints: list[type] | None, index: int) -> bool:
    hint = type_hints[index] if type_hints and index < len(type_hints) else None
    return isinstance(hint, type) and issubclass(hint, ALLOWED_PLAINTEXT)


def strict_data_converter(ring: KeyRing) -> DataConverter:
    """The encrypted converter, refusing unencrypted messages."""
    return dataclasses.replace(
        encrypted_data_converter(ring),
        payload_converter_class=StrictPayloadConverter,
        payload_codec=EncryptionCodec(ring, strict=True),
    )
