"""Who may call the gateway: bearer API keys, each optionally limited to some agents and
conversation-ID prefixes.

Keys come from `GATEWAY_API_KEYS` (comma-separated; each may do everything) and from
`GATEWAY_API_KEY_FILE`, a JSON list of `{"name", "key", "agents", "conversation_prefixes"}`.
With no key, every request is refused, unless the gateway runs with `--no-auth`
(`GATEWAY_NO_AUTH=1`), which it warns about. Keys are compared in constant time, and never
logged: a caller is logged by its key's name.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, ValidationError

__all__ = ["AUTH_ENV", "ApiKey", "AuthConfigError", "Caller", "GatewayAuth"]

AUTH_ENV = ("GATEWAY_API_KEYS", "GATEWAY_API_KEY_FILE", "GATEWAY_NO_AUTH")
"""The variables `GatewayAuth.from_env` reads (docker-compose.yml sets them)."""
MIN_KEY_CHARS = 16
PREFIX_PATTERN = r"^[A-Za-z0-9_.:/-]{1,200}$"
"""Conversation-ID prefixes go into list queries, so no quotes, spaces or backslashes."""


Prefix = Annotated[str, Field(pattern=PREFIX_PATTERN)]


class AuthConfigError(ValueError):
    """The keys' configuration is unusable; the message names the problem, never a key."""


class Caller(BaseModel):
    """An authenticated caller and what it may touch; None means no limit."""

    name: str
    agents: list[str] | None = None
    conversation_prefixes: list[str] | None = None

    def may_touch(self, conversation_id: str) -> bool:
        prefixes = self.conversation_prefixes
        return prefixes is None or any(conversation_id.startswith(p) for p in prefixes)

    def may_use(self, agent: str) -> bool:
        return self.agents is None or agent in self.agents


class ApiKey(Caller):
    """One key of GATEWAY_API_KEY_FILE."""

    key: SecretStr = Field(min_length=MIN_KEY_CHARS)
    conversation_prefixes: list[Prefix] | None = None

    def caller(self) -> Caller:
        return Caller.model_validate(self.model_dump(exclude={"key"}))


ANONYMOUS = Caller(name="anonymous")


class GatewayAuth(BaseModel):
    """The keys the gateway accepts; `anonymous=True` turns authentication off."""

    keys: list[ApiKey] = Field(default_factory=list)
    anonymous: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GatewayAuth:
        """From GATEWAY_API_KEYS, GATEWAY_API_KEY_FILE and GATEWAY_NO_AUTH."""
        keys = [
            _key(f"key-{n}", value.strip())
            for n, value in enumerate(env.get("GATEWAY_API_KEYS", "").split(","), start=1)
            if value.strip()
        ]
        if env.get("GATEWAY_API_KEY_FILE"):
            keys += _key_file(Path(env["GATEWAY_API_KEY_FILE"]))
        anonymous = env.get("GATEWAY_NO_AUTH", "").lower() in ("1", "true", "yes")
        return cls(keys=keys, anonymous=anonymous)

    def authenticate(self, token: str | None) -> Caller | None:
        """The caller whose key is `token`; every key is compared, so timing says nothing."""
        if self.anonymous:
            return ANONYMOUS
        if not token:
            return None
        given = token.encode()
        found = None
        for key in self.keys:
            if hmac.compare_digest(given, key.key.get_secret_value().encode()) and found is None:
                found = key
        return found.caller() if found else None


def _key(name: str, value: str) -> ApiKey:
    try:
        return ApiKey(name=name, key=SecretStr(value))
    except ValidationError:
        raise AuthConfigError(
            f"GATEWAY_API_KEYS: {name} is shorter than {MIN_KEY_CHARS} characters"
        ) from None


def _key_file(path: Path) -> list[ApiKey]:
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise AuthConfigError(f"GATEWAY_API_KEY_FILE {path}: {type(error).__name__}") from None
    if not isinstance(entries, list):
        raise AuthConfigError(f"GATEWAY_API_KEY_FILE {path}: expected a JSON list of keys")
    keys = []
    for number, entry in enumerate(entries, start=1):
        try:
            keys.append(ApiKey.model_validate(entry))
        except ValidationError as error:
            where = f"GATEWAY_API_KEY_FILE {path}, entry {number}"
            raise AuthConfigError(f"{where}: {_problems(error)}") from None
    return keys


def _problems(error: ValidationError) -> str:
    """What is wrong with an entry, without echoing the input (it may hold a key)."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
