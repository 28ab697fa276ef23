"""`python -m codec keygen` prints a new key entry; `python -m codec serve` runs the codec server;
`python -m codec health` checks that one answers.

The server reads AGENT_CODEC_SERVER_TOKEN, TEMPORAL_NAMESPACE, AGENT_CODEC_CORS_ORIGINS and
AGENT_CODEC_KEYS / AGENT_CODEC_KEY_FILE.
"""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from codec import CodecServerSettings, KeyConfigError, generate_key_entry

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.command()
def keygen(
    key_id: Annotated[str | None, typer.Option("--id", help="defaults to k<date>-<hex>")] = None,
) -> None:
    """Print a new `KEY_ID:BASE64_KEY` entry (32 random bytes) for the key ring."""
    try:
        print(generate_key_entry(key_id))
    except KeyConfigError as err:
        raise SystemExit(str(err)) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="bind port")] = 8081,
) -> None:
    """Run the codec server for the Web UI and `temporal --codec-endpoint`."""
    import uvicorn

    try:
        server = CodecServerSettings.from_env()
        asgi = server.app()
    except KeyConfigError as err:
        raise SystemExit(f"codec server: {err}") from None
    except ValidationError as err:  # without input values: they may be secrets
        problems = (f"{e['loc'][0]}: {e['msg']}" for e in err.errors(include_input=False))
        raise SystemExit(f"codec server: {'; '.join(problems)}") from None
    print(f"codec server for namespace {server.namespace!r} on http://{host}:{port}", flush=True)
    uvicorn.run(asgi, host=host, port=port, log_level="info")


@app.command()
def health(
    host: Annotated[str, typer.Option(help="the server's address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="the server's port")] = 8081,
) -> None:
    """Exit 0 if the codec server answers GET /healthz (the container's healthcheck)."""
    import httpx

    try:
        response = httpx.get(f"http://{host}:{port}/healthz", timeout=5)
    except httpx.HTTPError as err:
        raise SystemExit(f"codec server at {host}:{port}: {type(err).__name__}") from None
    if response.status_code != 200:
        raise SystemExit(f"codec server at {host}:{port}: HTTP {response.status_code}")


if __name__ == "__main__":
    app()
