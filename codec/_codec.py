"""The AES-GCM payload codec and the data converter that uses it."""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from codec._keys import KeyRing

# the metadata of temporalio/samples-{python,go,typescript} `encryption`, so clients in other
# languages can reuse those codecs with the same keys
ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
PLAINTEXT_METADATA = "agent-plaintext"
"""Set by a strict codec on a payload that arrived unencrypted, for the converter to refuse."""
NONCE_BYTES = 12
TAG_BYTES = 16


class DecryptionError(ValueError):
    """A payload could not be decrypted: unknown key ID, data too short or failing
    authentication, or plaintext that is not a serialized Payload."""


class EncryptionCodec(PayloadCodec):
    """Encrypts every payload with the ring's active key; decrypts with any key it knows.

    Each encrypted payload is the serialized original, sealed with AES-256-GCM under a
    random 96-bit nonce (`nonce || ciphertext || tag`); the key ID rides in its metadata.
    Payloads without the encrypted encoding pass through decode unchanged.
    """

    def __init__(self, ring: KeyRing, *, strict: bool = False) -> None:
        self.ring = ring
        self.strict = strict
        """Flag payloads that arrive unencrypted (PLAINTEXT_METADATA) instead of passing them
        through unmarked; the worker's converter then refuses them as messages."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload with the active key."""
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt each encrypted payload with the key its metadata names."""
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """One payload, sealed with the active key."""
        key_id = self.ring.active_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self.ring.cipher(key_id).encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        """One payload, opened with the key its metadata names; plain payloads pass through
        (flagged, when strict)."""
        if payload.metadata.get("encoding") != ENCODING:
            return self._flagged(payload) if self.strict else payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        if key_id not in self.ring.keys:
            raise DecryptionError(
                f"payload encrypted with unknown key ID {key_id!r} "
                f"(known: {', '.join(self.ring.ids)})"
            )
        data = payload.data
        if len(data) < NONCE_BYTES + TAG_BYTES:  # AESGCM raises a bare ValueError on a short nonce
            raise DecryptionError(
                f"payload under key {key_id!r} has {len(data)} bytes, too few to be encrypted"
            )
        try:
            plain = self.ring.cipher(key_id).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None)
        except InvalidTag:
            raise DecryptionError(
                f"payload under key {key_id!r} failed authentication (tampered or wrong key)"
            ) from None
        try:
            return Payload.FromString(plain)
        except DecodeError:
            raise DecryptionError(
                f"payload under key {key_id!r} decrypted to data that is not a Payload"
            ) from None

    @staticmethod
    def _flagged(payload: Payload) -> Payload:
        flagged = Payload()
        flagged.CopyFrom(payload)
        flagged.metadata[PLAINTEXT_METADATA] = b"1"
        return flagged


def encrypted_data_converter(ring: KeyRing) -> DataConverter:
    """The project's pydantic data converter, with payloads and failure attributes encrypted."""
    return DataConverter(
        payload_converter_class=pydantic_data_converter.payload_converter_class,
        payload_codec=EncryptionCodec(ring),
        # moves failure messages and stack traces into an (encrypted) payload
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def data_converter_for(ring: KeyRing | None) -> DataConverter:
    """The encrypted converter with a ring, the plain pydantic one without."""
    return encrypted_data_converter(ring) if ring else pydantic_data_converter


def encryption_summary(converter: DataConverter) -> str:
    """A log line's worth: the active key ID and how many keys are known, never the keys."""
    codec = converter.payload_codec
    if not isinstance(codec, EncryptionCodec):
        return "payloads not encrypted"
    ring = codec.ring
    return f"payloads encrypted with key {ring.active_id!r} ({len(ring.keys)} known)"
