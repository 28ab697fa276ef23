"""The codec server: `/encode` and `/decode` for the Web UI and `temporal --codec-endpoint`.

The protocol (temporalio/samples-go `codec-server/protocol.md`): POST a `Payloads` message as
proto JSON, `{"payloads": [{"metadata": {...}, "data": "<base64>"}]}`, get the same shape
back. Clients send `X-Namespace`; the CLI sends `--codec-auth` as the `Authorization` header.
The endpoints also answer under `/{namespace}/...`, for the CLI's `{namespace}` templating.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from google.protobuf import json_format
from pydantic import BaseModel, SecretStr, field_validator
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from codec._codec import DecryptionError, EncryptionCodec
from codec._keys import KeyConfigError, KeyRing

PayloadFunction = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]

DEFAULT_CORS_ORIGINS = ("http://localhost:8080", "http://localhost:8233")
"""The Web UI of docker-compose.yml and of the CLI dev server."""
MIN_TOKEN_CHARS = 16

SERVER_ENV = {
    "token": "AGENT_CODEC_SERVER_TOKEN",
    "namespace": "TEMPORAL_NAMESPACE",
    "cors_origins": "AGENT_CODEC_CORS_ORIGINS",
    "keys": "AGENT_CODEC_KEYS",
    "key_file": "AGENT_CODEC_KEY_FILE",
}
"""Setting -> environment variable for `python -m codec serve`."""


class CodecServerSettings(BaseModel):
    token: SecretStr
    """Clients must send `Authorization: Bearer <token>`."""
    namespace: str = "default"
    """The only namespace served; requests for another get 403."""
    cors_origins: list[str] = list(DEFAULT_CORS_ORIGINS)
    """Browser origins (the Web UI) allowed to call the server."""
    keys: SecretStr | None = None
    key_file: str | None = None

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> CodecServerSettings:
        """Settings from the variables of SERVER_ENV; empty variables count as unset."""
        values = {field: env[var] for field, var in SERVER_ENV.items() if env.get(var)}
        if "token" not in values:
            raise KeyConfigError(
                "AGENT_CODEC_SERVER_TOKEN is not set; the codec server never runs without a token"
            )
        _check_token(values["token"])
        return cls.model_validate(values)

    def key_ring(self) -> KeyRing:
        """The keys to encode and decode with; a server without keys is a configuration error."""
        keys = self.keys.get_secret_value() if self.keys else None
        ring = KeyRing.from_config(keys, self.key_file)
        if ring is None:
            raise KeyConfigError("set AGENT_CODEC_KEYS or AGENT_CODEC_KEY_FILE")
        return ring

    def app(self) -> FastAPI:
        """The server's ASGI app."""
        return build_app(
            EncryptionCodec(self.key_ring()),
            token=self.token.get_secret_value(),
            namespace=self.namespace,
            cors_origins=self.cors_origins,
        )


def build_app(
    codec: PayloadCodec,
    *,
    token: str,
    namespace: str,
    cors_origins: Sequence[str] = DEFAULT_CORS_ORIGINS,
) -> FastAPI:
    """An app serving `codec` to holders of `token`, for one namespace."""
    _check_token(token)
    app = FastAPI(title="payload codec", docs_url=None, redoc_url=None, openapi_url=None)
    router = APIRouter(dependencies=[Depends(_guard(token, namespace))])
    for prefix in ("", "/{path_namespace}"):
        router.add_api_route(f"{prefix}/encode", _endpoint(codec.encode), methods=["POST"])
        router.add_api_route(f"{prefix}/decode", _endpoint(codec.decode), methods=["POST"])
    app.include_router(router)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(cors_origins),
        allow_methods=["POST"],
        allow_headers=["authorization", "content-type", "x-namespace"],
        allow_credentials=True,  # the UI's "include cross-origin credentials" option
    )
    return app


def _check_token(token: str) -> None:
    if len(token) < MIN_TOKEN_CHARS:
        raise KeyConfigError(
            f"AGENT_CODEC_SERVER_TOKEN must have at least {MIN_TOKEN_CHARS} characters"
        )


def _guard(token: str, namespace: str) -> Callable[[Request], Awaitable[None]]:
    expected = token.encode()

    async def check(request: Request) -> None:
        """401 without the bearer token, 403 for another namespace."""
        scheme, _, sent = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), expected):
            raise HTTPException(401, "bearer token required", {"WWW-Authenticate": "Bearer"})
        asked = request.headers.get("x-namespace")
        in_path = request.path_params.get("path_namespace")
        if asked != namespace or in_path not in (None, namespace):
            raise HTTPException(403, f"this codec server serves namespace {namespace!r} only")

    return check


def _endpoint(apply: PayloadFunction) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        """Payloads in, payloads out, as proto JSON."""
        try:
            payloads = json_format.Parse(await request.body(), Payloads())
        except (json_format.ParseError, UnicodeDecodeError) as err:
            raise HTTPException(400, f"expected Payloads as proto JSON: {err}") from None
        try:
            result = Payloads(payloads=await apply(payloads.payloads))
        except DecryptionError as err:
            raise HTTPException(400, str(err)) from None
        return Response(json_format.MessageToJson(result), media_type="application/json")

    return handle
