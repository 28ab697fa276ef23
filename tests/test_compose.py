"""Static checks of the production docker-compose.yml (no Docker needed)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import typer
import yaml
from temporalio.service import TLSConfig

import gateway.__main__ as gateway_main
from codec import SERVER_ENV
from conversation_client import Conversations
from gateway._auth import AUTH_ENV
from interface import search_attributes
from settings import CLIENT_SETTINGS, ENV, WorkerSettings
from support.codec_server import server_app, serving
from support.paths import ROOT

COMPOSE_PATH = Path(__file__).resolve().parent.parent / "docker-compose.yml"

WORKER_ENV = set(ENV.values())
GATEWAY_OWN_ENV = {
    param.envvar
    for param in typer.main.get_command(gateway_main.app).params
    if isinstance(param.envvar, str)
} | set(AUTH_ENV)
"""The options of `python -m gateway` (GATEWAY_HOST, GATEWAY_PORT, ...) and its keys."""

EXPECTED_SERVICES = {
    "postgresql",
    "temporal-schema",
    "temporal",
    "temporal-admin-tools",
    "temporal-ui",
    "ledger-db",
    "worker",
    "gateway",
    "codec-server",
}

SEARCH_ATTRIBUTES = {
    "AgentName": "Keyword",
    "ConversationStatus": "Keyword",
    "TurnCount": "Int",
}

# "${VAR}" / "${VAR:-default}" / "${VAR-default}" (compose interpolation)
ENV_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?-[^}]*)?\}$")
# "${VAR:?message}": compose refuses to start while VAR is unset or empty.
REQUIRED_REF = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}$")
# 32 bytes in base64: what a literal AES-256 key would look like
LITERAL_KEY = re.compile(r"[A-Za-z0-9+/_-]{43}=")
# An image tag pinned through a variable with a non-empty, non-"latest" default.
PINNED_TAG = re.compile(r":\$\{[A-Z_]+_VERSION:-(?!latest\})[^}]+\}$")


@pytest.fixture(scope="module")
def raw_text() -> str:
    return COMPOSE_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(raw_text: str) -> dict:
    data = yaml.safe_load(raw_text)
    assert isinstance(data, dict), "docker-compose.yml must be a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    svcs = compose.get("services")
    assert isinstance(svcs, dict) and svcs, "no services defined"
    return svcs


def env_of(service: dict) -> dict[str, str]:
    """Normalise `environment` (list of KEY=VALUE or mapping) to a dict."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            key, sep, value = str(item).partition("=")
            out[key] = value if sep else None
        return out
    assert isinstance(env, dict), f"unexpected environment type {type(env)!r}"
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def default_of(value: str | None) -> str:
    """`${VAR:-default}` -> "default" (what compose substitutes with VAR unset)."""
    match = re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-(?P<default>[^}]*)\}", value or "")
    return match["default"] if match else (value or "")


def depends_of(service: dict) -> dict[str, dict]:
    """Normalise `depends_on` (list or mapping) to {name: options}."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {} for name in deps}
    assert isinstance(deps, dict), f"unexpected depends_on type {type(deps)!r}"
    return {name: (opts or {}) for name, opts in deps.items()}


def command_text(service: dict) -> str:
    parts = []
    for key in ("entrypoint", "command"):
        value = service.get(key)
        if isinstance(value, list):
            parts.extend(str(v) for v in value)
        elif value is not None:
            parts.append(str(value))
    return "\n".join(parts)


def test_all_services_present(services):
    missing = EXPECTED_SERVICES - services.keys()
    assert not missing, f"missing services: {sorted(missing)}"


def test_no_deprecated_auto_setup(services):
    images = [str(svc.get("image", "")) for svc in services.values()]
    assert not [i for i in images if "auto-setup" in i], images
    # auto-setup's own variables mean nothing to temporalio/server
    auto_setup_only = {
        "DEFAULT_NAMESPACE",
        "SKIP_SCHEMA_SETUP",
        "SKIP_ADD_CUSTOM_SEARCH_ATTRIBUTES",
    }
    assert not auto_setup_only & env_of(services["temporal"]).keys()


@pytest.mark.parametrize(
    ("service", "repo"),
    [
        ("temporal", "temporalio/server"),
        ("temporal-schema", "temporalio/admin-tools"),
        ("temporal-admin-tools", "temporalio/admin-tools"),
        ("temporal-ui", "temporalio/ui"),
    ],
)
def test_official_temporal_images_pinned(services, service, repo):
    image = services[service]["image"]
    assert image.startswith(repo + ":"), f"{service}: {image!r} is not {repo}"
    assert PINNED_TAG.search(image), f"{service}: tag of {image!r} is not pinned"


def test_server_and_admin_tools_share_a_release(services):
    def tag(service: str) -> str:
        return services[service]["image"].rsplit(":-", 1)[1].rstrip("}")

    assert tag("temporal") == tag("temporal-schema") == tag("temporal-admin-tools")


@pytest.mark.parametrize("service", ["postgresql", "ledger-db"])
def test_postgres_services_have_healthcheck(services, service):
    svc = services[service]
    assert re.match(r"^postgres:(16|\$\{[A-Z_]+:-16\})$", svc["image"]), svc["image"]
    test = svc.get("healthcheck", {}).get("test")
    assert test, f"{service} has no healthcheck"
    joined = " ".join(test) if isinstance(test, list) else str(test)
    assert "pg_isready" in joined


def test_start_up_order(services):
    """postgresql → schema job → server → namespace job → workers and gateway."""
    assert depends_of(services["temporal-schema"]) == {
        "postgresql": {"condition": "service_healthy"}
    }
    assert depends_of(services["temporal"]) == {
        "temporal-schema": {"condition": "service_completed_successfully"}
    }
    assert services["temporal"].get("healthcheck", {}).get("test")
    assert depends_of(services["temporal-admin-tools"]) == {
        "temporal": {"condition": "service_healthy"}
    }
    assert depends_of(services["temporal-ui"]) == {"temporal": {"condition": "service_healthy"}}
    assert depends_of(services["worker"]) == {
        "temporal-admin-tools": {"condition": "service_completed_successfully"},
        "ledger-db": {"condition": "service_healthy"},
    }
    assert depends_of(services["gateway"]) == {
        "temporal-admin-tools": {"condition": "service_completed_successfully"}
    }


def test_dependency_graph_has_no_cycle(services):
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for dep in depends_of(services[name]):
                visit(dep, (*path, name))
            done.add(name)

    for name in services:
        visit(name, ())


def test_one_shot_jobs_do_not_restart_forever(services):
    for name in ("temporal-schema", "temporal-admin-tools"):
        assert str(services[name].get("restart", "")).startswith("on-failure"), name


def test_temporal_persistence_on_postgresql(compose, services):
    for name in ("temporal", "temporal-schema"):
        env = env_of(services[name])
        assert env.get("DB") == "postgres12", name
        assert env.get("DB_PORT") == "5432", name
        assert env.get("POSTGRES_SEEDS") == "postgresql", name
        assert env.get("POSTGRES_USER") == "${POSTGRES_USER:-temporal}", name
        assert env.get("POSTGRES_PWD") == "${POSTGRES_PASSWORD:-temporal}", name
    db_env = env_of(services["postgresql"])
    assert db_env["POSTGRES_USER"] == "${POSTGRES_USER:-temporal}"
    assert db_env["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:-temporal}"
    temporal = services["temporal"]
    env = env_of(temporal)
    # the frontend must listen beyond the container's loopback
    assert env.get("BIND_ON_IP") == "0.0.0.0"
    # the dynamic config file the server reads is the one mounted into it
    [mounted] = temporal["configs"]
    assert mounted["target"] == env["DYNAMIC_CONFIG_FILE_PATH"]
    dynamic = yaml.safe_load(compose["configs"][mounted["source"]]["content"])
    assert dynamic["frontend.enableUpdateWorkflowExecution"] == [{"value": True, "constraints": {}}]
    # removed from the server in 1.30 (update-with-start is always on): a stale key
    assert "frontend.enableExecuteMultiOperation" not in dynamic
    assert any(str(p).split(":")[-1] == "7233" for p in temporal.get("ports", []))


def unescaped(script: str) -> str:
    """The script as the container's shell sees it: compose turns `$$` into `$`."""
    assert not re.search(r"(?<!\$)\$(?![${])", script.replace("$$", "")), "unescaped $ in script"
    return script.replace("$$", "$")


@pytest.mark.parametrize("service", ["temporal-schema", "temporal-admin-tools"])
def test_job_scripts_are_valid_shell(services, service):
    svc = services[service]
    assert svc["entrypoint"] == ["/bin/sh", "-c"]
    [script] = svc["command"]
    checked = subprocess.run(["sh", "-n"], input=unescaped(script), text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr


def test_schema_job_sets_up_both_databases(services):
    script = unescaped(command_text(services["temporal-schema"]))
    assert "temporal-sql-tool --plugin" in script
    assert "for pair in temporal:temporal temporal_visibility:visibility" in script
    for step in ("create", "setup-schema -v 0.0", "update-schema -d"):
        assert step in script
    assert "/etc/temporal/schema/postgresql/v12" in script
    assert "already exists" in script  # a re-run keeps the databases
    env = env_of(services["temporal-schema"])
    assert env["SQL_PASSWORD"] == env["POSTGRES_PWD"]  # temporal-sql-tool reads SQL_PASSWORD


def test_ui_points_at_temporal(services):
    ui_env = env_of(services["temporal-ui"])
    assert ui_env.get("TEMPORAL_ADDRESS") == "temporal:7233"
    assert ui_env.get("TEMPORAL_CORS_ORIGINS")
    assert any(str(p).split(":")[-1] == "8080" for p in services["temporal-ui"].get("ports", []))


def test_admin_tools_create_namespace_and_search_attributes(services):
    admin = services["temporal-admin-tools"]
    env = env_of(admin)
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["NAMESPACE"] == env_of(services["worker"])["TEMPORAL_NAMESPACE"]
    script = unescaped(command_text(admin))
    assert "cluster health" in script  # waits for the server
    assert 'namespace create --namespace "$NAMESPACE"' in script
    found = {}
    for line in script.splitlines():
        if "search-attribute create" not in line:
            continue
        assert '--namespace "$NAMESPACE"' in line, line
        for name, type_ in re.findall(r"--name\s+\"?(\w+)\"?\s+--type\s+\"?(\w+)\"?", line):
            found[name] = type_
    assert found == SEARCH_ATTRIBUTES
    assert {key.name for key in search_attributes.ALL} == SEARCH_ATTRIBUTES.keys()
    assert "already" in script  # idempotent re-runs


def test_worker_environment_is_what_the_worker_reads(services):
    env = env_of(services["worker"])
    missing = WORKER_ENV - env.keys()
    unknown = env.keys() - WORKER_ENV
    assert not missing, f"worker env missing: {sorted(missing)}"
    assert not unknown, f"worker env has variables the worker does not read: {sorted(unknown)}"
    assert env["TEMPORAL_ADDRESS"] == "${TEMPORAL_CLUSTER_ADDRESS:-temporal:7233}"
    assert env["TEMPORAL_NAMESPACE"] == "${TEMPORAL_NAMESPACE:-default}"
    assert env["TEMPORAL_TASK_QUEUE"] == "${TEMPORAL_TASK_QUEUE:-agent-conversations}"
    for name, value in env.items():
        assert value is not None and (ENV_REF.match(value) or REQUIRED_REF.match(value)), (
            f"{name}={value!r}: every setting comes from the environment"
        )


def test_worker_settings_parse_from_the_compose_defaults(services):
    """The worker's environment, with compose's defaults filled in, is valid settings."""
    env = {name: default_of(value) for name, value in env_of(services["worker"]).items()}
    settings = WorkerSettings.from_env({**env, "AGENT_CODEC_KEYS": "k1:" + "A" * 43 + "="})
    assert settings.temporal_address == "temporal:7233"
    assert settings.otel_endpoint is None  # tracing off unless a collector is given
    assert settings.tls_config() is False
    assert settings.connect_options()["interceptors"] == []


def test_gateway_service(services):
    gateway = services["gateway"]
    assert gateway.get("build") == "."
    assert command_text(gateway) == "python -m gateway"
    env = env_of(gateway)
    reads = GATEWAY_OWN_ENV | {ENV[name] for name in CLIENT_SETTINGS}
    unknown = env.keys() - reads
    missing = reads - env.keys()
    assert not unknown, f"gateway env has variables the gateway does not read: {sorted(unknown)}"
    assert not missing, f"gateway env missing: {sorted(missing)}"
    worker_env = env_of(services["worker"])
    for name in env.keys() & worker_env.keys() - {"OTEL_SERVICE_NAME"}:
        assert env[name] == worker_env[name], f"gateway and worker differ on {name}"
    assert env["GATEWAY_HOST"] == "0.0.0.0"  # inside its container; published on loopback
    assert gateway["ports"] == [f"127.0.0.1:${{GATEWAY_PORT:-8000}}:{env['GATEWAY_PORT']}"]


def test_worker_build_command_and_replicas(services):
    worker = services["worker"]
    assert worker.get("build") == "."
    assert "healthcheck" in worker
    assert command_text(worker) == "python worker.py"
    assert str(worker["deploy"]["replicas"]) == "${WORKER_REPLICAS:-3}"
    # Replicated services can't have a fixed container name or host port.
    assert "container_name" not in worker
    assert "ports" not in worker


def test_worker_database_is_ledger_db(services):
    url = urlsplit(default_of(env_of(services["worker"])["DATABASE_URL"]))
    assert url.scheme == "postgresql+psycopg"
    assert url.hostname == "ledger-db"
    assert url.hostname in services
    assert url.port == 5432
    assert url.path == "/agents"
    ledger_env = env_of(services["ledger-db"])
    assert ledger_env.get("POSTGRES_DB") == "agents"
    assert ledger_env.get("POSTGRES_USER") == url.username
    assert "ports" not in services["ledger-db"]


def test_depends_on_targets_exist(services):
    for name, svc in services.items():
        for dep in depends_of(svc):
            assert dep in services, f"{name} depends on unknown service {dep!r}"
            assert dep != name, f"{name} depends on itself"


def test_no_literal_secrets(raw_text, services):
    assert "sk-" not in raw_text, "literal OpenAI-style key in docker-compose.yml"
    api_key = env_of(services["worker"])["OPENAI_API_KEY"]
    assert api_key is not None and ENV_REF.match(api_key), (
        f"OPENAI_API_KEY must be an environment reference, got {api_key!r}"
    )


@pytest.mark.parametrize("service", ["worker", "codec-server"])
def test_encryption_is_on_and_keys_come_from_the_environment(services, service):
    keys = env_of(services[service])["AGENT_CODEC_KEYS"]
    match = REQUIRED_REF.match(keys or "")
    assert match and match["name"] == "AGENT_CODEC_KEYS", (
        f"{service}: AGENT_CODEC_KEYS must be a required reference, got {keys!r}"
    )


def test_no_literal_codec_keys_or_tokens(raw_text, services):
    assert not LITERAL_KEY.search(raw_text), "a literal key in docker-compose.yml"
    token = env_of(services["codec-server"])["AGENT_CODEC_SERVER_TOKEN"]
    assert REQUIRED_REF.match(token or ""), f"the codec server token must be required: {token!r}"
    key_file = env_of(services["worker"])["AGENT_CODEC_KEY_FILE"]
    assert key_file is not None and ENV_REF.match(key_file), key_file


def test_codec_server(services):
    server = services["codec-server"]
    assert server.get("build") == "."
    assert command_text(server).startswith("python -m codec serve")
    env = env_of(server)
    assert env.keys() <= set(SERVER_ENV.values()), sorted(env.keys() - set(SERVER_ENV.values()))
    assert env["TEMPORAL_NAMESPACE"] == env_of(services["worker"])["TEMPORAL_NAMESPACE"]
    assert "http://localhost:8080" in env["AGENT_CODEC_CORS_ORIGINS"]  # the Web UI
    assert command_text(server).endswith("--port 8081")
    assert server.get("ports") == ["127.0.0.1:8081:8081"], "publish on the host's loopback only"


def test_tls_settings(tmp_path):
    """The TLS variables the Deploy section names become the client's TLSConfig."""
    cert, key, ca = (tmp_path / name for name in ("client.pem", "client.key", "ca.pem"))
    for path in (cert, key, ca):
        path.write_bytes(f"PEM of {path.name}".encode())
    settings = WorkerSettings.from_env(
        {
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(key),
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(ca),
            "TEMPORAL_TLS_SERVER_NAME": "temporal.internal",
        }
    )
    tls = settings.tls_config()
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == b"PEM of client.pem"
    assert tls.client_private_key == b"PEM of client.key"
    assert tls.server_root_ca_cert == b"PEM of ca.pem"
    assert tls.domain == "temporal.internal"

    with pytest.raises(ValueError, match="go together"):
        WorkerSettings.from_env({"TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert)}).tls_config()
    assert WorkerSettings.from_env({"TEMPORAL_TLS": "true"}).tls_config() is True
    # an API key is never sent without TLS
    options = WorkerSettings.from_env({"TEMPORAL_API_KEY": "key-123"}).connect_options()
    assert options["tls"] is True and options["api_key"] == "key-123"
    assert "key-123" not in repr(WorkerSettings.from_env({"TEMPORAL_API_KEY": "key-123"}))


# finding 13: current releases, one image, healthchecks, nothing on all interfaces

APP_SERVICES = ("worker", "gateway", "codec-server")
"""The services built from this repository's Dockerfile."""


def tag_of(image: str) -> tuple[int, ...]:
    """`repo:${VAR:-1.31.2}` -> (1, 31, 2)."""
    return tuple(int(part) for part in default_of(image.split(":", 1)[1]).split("."))


def test_temporal_releases_are_current(services):
    """Server 1.31 and UI 2.49 or newer: the UI's User Metadata, the codec settings used here."""
    assert (1, 31) <= tag_of(services["temporal"]["image"]) < (2,)
    assert tag_of(services["temporal-admin-tools"]["image"]) == tag_of(
        services["temporal"]["image"]
    )
    assert (2, 49) <= tag_of(services["temporal-ui"]["image"]) < (3,)


def test_published_ports_are_on_loopback_only(services):
    """Temporal, its UI and the gateway have no auth here: no port on all interfaces."""
    published = {name: svc.get("ports", []) for name, svc in services.items() if "ports" in svc}
    assert published.keys() == {"temporal", "temporal-ui", "gateway", "codec-server"}
    for name, ports in published.items():
        for port in ports:
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), (name, port)


def test_app_services_share_one_image(services):
    images = {services[name].get("image") for name in APP_SERVICES}
    assert len(images) == 1, images
    [image] = images
    resolved = default_of(image)  # ${AGENT_IMAGE:-name:tag}
    assert ":" in resolved and not resolved.endswith(":latest"), image
    for name in APP_SERVICES:
        assert services[name].get("build") == ".", name


def healthcheck_script(service: dict) -> list[str]:
    """The healthcheck's argv as the container runs it (compose turns `$$` into `$`)."""
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD", test
    return [unescaped(arg) for arg in test[1:]]


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_have_healthchecks(services, service):
    check = services[service]["healthcheck"]
    argv = healthcheck_script(services[service])
    assert argv[0] == "python"
    for key in ("interval", "timeout", "retries"):
        assert key in check, f"{service}: healthcheck without {key}"
    if argv[1] == "-c":
        compile(argv[2], f"{service} healthcheck", "exec")


def check_env(**env: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "AGENT_"))}
    return keep | {"PYTHONPATH": str(ROOT)} | env


async def run_check(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, *argv[1:], cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def test_worker_healthcheck_sees_this_hosts_poller(
    services, temporal_address: str, task_queue: str, db, run_worker
) -> None:
    """Unhealthy with no worker of this host on the queue; healthy once one polls."""
    argv = healthcheck_script(services["worker"])
    env = check_env(TEMPORAL_ADDRESS=temporal_address, TEMPORAL_TASK_QUEUE=task_queue)
    code, output = await run_check(argv, env)
    assert code == 1, output
    async with run_worker(db):
        for _ in range(20):
            code, output = await run_check(argv, env)
            if code == 0:
                break
            await asyncio.sleep(0.5)
    assert code == 0, output


async def test_gateway_healthcheck_asks_the_app(services) -> None:
    from gateway import create_app

    async def never() -> Conversations:
        raise AssertionError("the healthcheck must not need Temporal")

    argv = healthcheck_script(services["gateway"])
    async with serving(create_app(never)) as url:
        port = url.rsplit(":", 1)[1]
        code, output = await run_check(argv, check_env(GATEWAY_PORT=port))
        assert code == 0, output
    code, _ = await run_check(argv, check_env(GATEWAY_PORT=port))
    assert code != 0  # nothing listens any more


async def test_codec_server_healthcheck(services) -> None:
    argv = healthcheck_script(services["codec-server"])
    assert argv[-2:] == ["--port", "8081"]
    assert command_text(services["codec-server"]).endswith("--port 8081")
    async with serving(server_app()) as url:
        port = url.rsplit(":", 1)[1]
        code, output = await run_check([*argv[:-1], port], check_env())
        assert code == 0, output
    code, output = await run_check([*argv[:-1], port], check_env())
    assert code == 1 and output.strip().startswith("codec server at 127.0.0.1:"), output


def test_web_ui_decodes_through_the_codec_server(services):
    """The UI's browser calls the codec server at its published address, with its cookie."""
    ui_env = env_of(services["temporal-ui"])
    endpoint = urlsplit(default_of(ui_env["TEMPORAL_CODEC_ENDPOINT"]))
    assert endpoint.scheme == "http" and endpoint.hostname == "localhost"
    assert services["codec-server"]["ports"] == [f"127.0.0.1:{endpoint.port}:8081"]
    assert ui_env["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"  # the /login session
    [ui_port] = services["temporal-ui"]["ports"]
    ui_origin = f"http://localhost:{ui_port.split(':')[1]}"
    allowed = default_of(env_of(services["codec-server"])["AGENT_CODEC_CORS_ORIGINS"])
    assert ui_origin in allowed.split(",")
