"""The codec server: `/encode` and `/decode` for the Web UI and `temporal --codec-endpoint`.

The protocol (temporalio/samples-go `codec-server/protocol.md`): POST a `Payloads` message as
proto JSON, `{"payloads": [{"metadata": {...}, "data": "<base64>"}]}`, get the same shape
back. Clients send `X-Namespace`; the CLI sends `--codec-auth` as the `Authorization` header.
The endpoints also answer under `/{namespace}/...`, for the CLI's `{namespace}` templating.
Browsers (the Web UI) sign in at `/login` instead (`_session.py`); `/healthz` is for
container healthchecks. Malformed input is a 400 with a JSON `detail`, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from pydantic import BaseModel, SecretStr, field_validator
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from codec._codec import DecryptionError, EncryptionCodec
from codec._keys import KeyConfigError, KeyRing
from codec._session import SESSION_COOKIE, cookie_request_allowed, login_router, valid_session

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
    router = APIRouter(dependencies=[Depends(_guard(token, namespace, cors_origins))])
    for prefix in ("", "/{path_namespace}"):
        router.add_api_route(f"{prefix}/encode", _endpoint(codec.encode), methods=["POST"])
        router.add_api_route(f"{prefix}/decode", _endpoint(codec.decode), methods=["POST"])
    app.include_router(router)
    app.include_router(login_router(token.encode(), namespace))
    app.add_api_route("/healthz", _healthz, methods=["GET"])
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(cors_origins),
        allow_methods=["POST"],
        allow_headers=["authorization", "content-type", "x-namespace"],
        allow_credentials=True,  # the UI's "include cross-origin credentials" option
    )
    return app


async def _internal_error(request: Request, error: Exception) -> Response:
    """A JSON 500 naming only the error class: the exception may hold payload bytes."""
    detail = f"codec server error ({type(error).__name__})"
    return JSONResponse({"detail": detail}, status_code=500)


def _check_token(token: str) -> None:
    if len(token) < MIN_TOKEN_CHARS:
        raise KeyConfigError(
            f"AGENT_CODEC_SERVER_TOKEN must have at least {MIN_TOKEN_CHARS} characters"
        )


async def _healthz() -> dict[str, str]:
    """For the container's healthcheck: the app answers (no token needed, nothing revealed)."""
    return {"status": "ok"}


def _guard(
    token: str, namespace: str, origins: Sequence[str]
) -> Callable[[Request], Awaitable[None]]:
    expected = token.encode()

    async def check(request: Request) -> None:
        """401 without the bearer token or a browser session, 403 for another namespace."""
        scheme, _, sent = request.headers.get("authorization", "").partition(" ")
        bearer = scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), expected)
        if not bearer and not valid_session(expected, request.cookies.get(SESSION_COOKIE)):
            raise HTTPException(401, "bearer token required", {"WWW-Authenticate": "Bearer"})
        if not bearer and not cookie_request_allowed(request, origins):
            raise HTTPException(403, "a session needs a JSON request from an allowed origin")
        asked = request.headers.get("x-namespace")
        in_path = request.path_params.get("path_namespace")
        if asked != namespace or in_path not in (None, namespace):
            raise HTTPException(403, f"this codec server serves namespace {namespace!r} only")

    return check


def _endpoint(apply: PayloadFunction) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        """Payloads in, payloads out, as proto JSON; bad input is a 400, never a 500."""
        payloads = _parse_payloads(await request.body())
        try:
            result = Payloads(payloads=await apply(payloads.payloads))
        except DecryptionError as err:
            raise HTTPException(400, str(err)) from None
        return Response(json_format.MessageToJson(result), media_type="application/json")

    return handle


def _parse_payloads(body: bytes) -> Payloads:
    """The request's `Payloads`, or a 400 that says what is wrong (in a bounded message)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise HTTPException(400, "expected Payloads as proto JSON: the body is not JSON") from None
    if not isinstance(document, dict):
        raise HTTPException(400, 'expected Payloads as proto JSON: {"payloads": [...]}')
    _check_base64(document)
    try:
        return json_format.ParseDict(document, Payloads())
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as err:
        raise HTTPException(400, f"expected Payloads as proto JSON: {str(err)[:200]}") from None


def _check_base64(document: dict[str, object]) -> None:
    """Refuse bad base64 in `data` and metadata: protobuf would silently drop the bad characters."""
    items = document.get("payloads")
    for index, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue  # ParseDict reports the wrong type
        metadata = item.get("metadata")
        fields = (
            {f"metadata.{k}": v for k, v in metadata.items()} if isinstance(metadata, dict) else {}
        )
        for name, value in {"data": item.get("data"), **fields}.items():
            if isinstance(value, str) and not _is_base64(value):
                raise HTTPException(400, f"payloads[{index}].{name[:80]} is not valid base64")


def _is_base64(text: str) -> bool:
    """Standard or URL-safe base64, padded or not, as proto JSON allows."""
    standard = text.replace("-", "+").replace("_", "/")
    try:
        base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except binascii.Error:
        return False
    return True
