"""`python -m codec keygen` prints a new key entry; `python -m codec serve` runs the codec server.

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


if __name__ == "__main__":
    app()
