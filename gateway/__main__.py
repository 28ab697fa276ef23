"""`python -m gateway`: serve the HTTP gateway with uvicorn.

Connects as the worker does (settings.py: the Temporal connection through
temporalio.envconfig, TEMPORAL_TASK_QUEUE, AGENT_CODEC_KEYS / AGENT_CODEC_KEY_FILE,
OTEL_EXPORTER_OTLP_ENDPOINT); GATEWAY_HOST, GATEWAY_PORT and GATEWAY_ASK_TIMEOUT
through its options.
"""

from __future__ import annotations

from typing import Annotated

import typer

from codec import KeyConfigError
from conversation_client import Conversations, run_then_exit
from gateway import GatewaySettings, create_app
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
) -> None:
    """Serve the gateway; it connects to Temporal on the first request."""
    import uvicorn

    try:
        settings = WorkerSettings.from_env()  # connection settings as the worker reads them
        settings.connect_config()  # TLS files are read here: fail now, not on a request
        plugin = settings.plugin()  # AGENT_CODEC_KEYS and tracing, as the worker
    except KeyConfigError as error:
        raise SystemExit(f"payload encryption: {error}") from None
    except (OSError, ValueError) as error:
        raise SystemExit(f"Temporal connection settings: {error}") from None
    stop_tracing = configure_tracing(settings, "agent-gateway")

    async def factory() -> Conversations:
        """Connects on the first request; the SDK raises RuntimeError while it cannot."""
        return Conversations(await settings.connect(plugin), settings.task_queue)

    asgi = create_app(factory, GatewaySettings(ask_timeout=ask_timeout))
    target = f"{settings.temporal_address} ({settings.temporal_namespace}, {settings.task_queue})"
    print(f"gateway for {target} on http://{host}:{port}", flush=True)
    try:
        uvicorn.run(asgi, host=host, port=port, log_level="info")
    finally:
        stop_tracing()


if __name__ == "__main__":
    run_then_exit(app)
