"""`python -m gateway`: serve the HTTP gateway with uvicorn.

Connects as the worker does (settings.py: the Temporal connection through
temporalio.envconfig, TEMPORAL_TASK_QUEUE, AGENT_CODEC_KEYS / AGENT_CODEC_KEY_FILE,
OTEL_EXPORTER_OTLP_ENDPOINT, DATABASE_URL for the event streams' text); GATEWAY_HOST,
GATEWAY_PORT, GATEWAY_ASK_TIMEOUT, GATEWAY_CORS_ORIGINS, GATEWAY_MAX_BODY_BYTES and
TEMPORAL_UI_URL through its options; the API keys from GATEWAY_API_KEYS and
GATEWAY_API_KEY_FILE (gateway._auth). Without keys it refuses every request, unless started
with --no-auth (GATEWAY_NO_AUTH=1).
"""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from activities.db import Database
from activities.deltas import TextDeltas
from codec import KeyConfigError
from conversation_client import Conversations, run_then_exit
from gateway import AuthConfigError, GatewayAuth, GatewaySettings, create_app
from observability import configure_tracing
from settings import WorkerSettings

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="GATEWAY_HOST", help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="GATEWAY_PORT", help="bind port")] = 8000,
    ask_timeout: Annotated[
        float,
        typer.Option(envvar="GATEWAY_ASK_TIMEOUT", help="seconds a sync message waits; then 202"),
    ] = GatewaySettings().ask_timeout,
    no_auth: Annotated[
        bool, typer.Option(envvar="GATEWAY_NO_AUTH", help="serve without API keys (warned)")
    ] = False,
    cors_origins: Annotated[
        str, typer.Option(envvar="GATEWAY_CORS_ORIGINS", help="comma-separated; none by default")
    ] = "",
    max_body_bytes: Annotated[
        int, typer.Option(envvar="GATEWAY_MAX_BODY_BYTES", help="larger bodies get 413")
    ] = GatewaySettings().max_body_bytes,
    temporal_ui_url: Annotated[
        str,
        typer.Option(
            envvar="TEMPORAL_UI_URL", help="the Web UI the chat page links to; empty: no link"
        ),
    ] = GatewaySettings().temporal_ui_url or "",
) -> None:
    """Serve the gateway; it connects to Temporal on the first request."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        auth = GatewayAuth.from_env(os.environ)
    except AuthConfigError as error:
        raise SystemExit(f"gateway API keys: {error}") from None
    auth.anonymous = auth.anonymous or no_auth
    try:
        settings = WorkerSettings.from_env()  # connection settings as the worker reads them
        settings.connect_config()  # TLS files are read here: fail now, not on a request
        plugin = settings.plugin()  # AGENT_CODEC_KEYS and tracing, as the worker
    except KeyConfigError as error:
        raise SystemExit(f"payload encryption: {error}") from None
    except (OSError, ValueError) as error:
        raise SystemExit(f"Temporal connection settings: {error}") from None
    stop_tracing = configure_tracing(settings, "agent-gateway")

    deltas = TextDeltas(Database(settings.database_url))  # the event streams' live text

    async def factory() -> Conversations:
        """Connects on the first request; the SDK raises RuntimeError while it cannot."""
        return Conversations(await settings.connect(plugin), settings.task_queue, deltas=deltas)

    gateway_settings = GatewaySettings(
        ask_timeout=ask_timeout,
        auth=auth,
        cors_origins=[o.strip() for o in cors_origins.split(",") if o.strip()],
        max_body_bytes=max_body_bytes,
        temporal_ui_url=temporal_ui_url or None,
    )
    asgi = create_app(factory, gateway_settings)
    target = f"{settings.temporal_address} ({settings.temporal_namespace}, {settings.task_queue})"
    keys = "auth OFF" if auth.anonymous else f"{len(auth.keys)} API key(s)"
    print(f"gateway for {target} on http://{host}:{port}, {keys}", flush=True)
    try:
        uvicorn.run(asgi, host=host, port=port, log_level="info")
    finally:
        stop_tracing()


if __name__ == "__main__":
    run_then_exit(app)
