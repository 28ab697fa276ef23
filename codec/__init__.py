"""Encrypted conversations: an AES-GCM payload codec, its key ring and its codec server.

Keys come from AGENT_CODEC_KEYS or the file named by AGENT_CODEC_KEY_FILE (see `_keys.py`
for the format); `python -m codec keygen` makes a key, `python -m codec serve` runs the
codec server.
"""

from codec._codec import (
    ENCODING,
    KEY_ID_METADATA,
    PLAINTEXT_METADATA,
    DecryptionError,
    EncryptionCodec,
    data_converter_for,
    encrypted_data_converter,
    encryption_summary,
)
from codec._keys import KeyConfigError, KeyRing, generate_key_entry
from codec._server import SERVER_ENV, CodecServerSettings, build_app

__all__ = [
    "ENCODING",
    "KEY_ID_METADATA",
    "PLAINTEXT_METADATA",
    "SERVER_ENV",
    "CodecServerSettings",
    "DecryptionError",
    "EncryptionCodec",
    "KeyConfigError",
    "KeyRing",
    "build_app",
    "data_converter_for",
    "encrypted_data_converter",
    "encryption_summary",
    "generate_key_entry",
]
