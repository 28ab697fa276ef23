"""Static checks of the production docker-compose.yml (no Docker needed)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from codec import SERVER_ENV
from settings import ENV

COMPOSE_PATH = Path(__file__).resolve().parent.parent / "docker-compose.yml"

WORKER_ENV = set(ENV.values())

EXPECTED_SERVICES = {
    "postgresql",
    "temporal",
    "temporal-admin-tools",
    "temporal-ui",
    "ledger-db",
    "worker",
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


@pytest.mark.parametrize(
    ("service", "repo"),
    [
        ("temporal", "temporalio/auto-setup"),
        ("temporal-admin-tools", "temporalio/admin-tools"),
        ("temporal-ui", "temporalio/ui"),
    ],
)
def test_official_temporal_images_pinned(services, service, repo):
    image = services[service]["image"]
    assert image.startswith(repo + ":"), f"{service}: {image!r} is not {repo}"
    assert PINNED_TAG.search(image), f"{service}: tag of {image!r} is not pinned"


@pytest.mark.parametrize("service", ["postgresql", "ledger-db"])
def test_postgres_services_have_healthcheck(services, service):
    svc = services[service]
    assert re.match(r"^postgres:(16|\$\{[A-Z_]+:-16\})$", svc["image"]), svc["image"]
    test = svc.get("healthcheck", {}).get("test")
    assert test, f"{service} has no healthcheck"
    joined = " ".join(test) if isinstance(test, list) else str(test)
    assert "pg_isready" in joined


def test_temporal_persistence_on_postgresql(services):
    temporal = services["temporal"]
    env = env_of(temporal)
    assert env.get("DB") == "postgres12"
    assert env.get("DB_PORT") == "5432"
    assert env.get("POSTGRES_SEEDS") == "postgresql"
    assert env.get("POSTGRES_SEEDS") in services
    assert env.get("POSTGRES_USER")
    assert env.get("POSTGRES_PWD")
    deps = depends_of(temporal)
    assert deps.get("postgresql", {}).get("condition") == "service_healthy"
    assert any(str(p).split(":")[-1] == "7233" for p in temporal.get("ports", []))


def test_temporal_registers_the_worker_namespace(services):
    env = env_of(services["temporal"])
    worker_env = env_of(services["worker"])
    assert env.get("DEFAULT_NAMESPACE") == worker_env["TEMPORAL_NAMESPACE"]


def test_ui_and_admin_tools_point_at_temporal(services):
    ui_env = env_of(services["temporal-ui"])
    assert ui_env.get("TEMPORAL_ADDRESS") == "temporal:7233"
    assert ui_env.get("TEMPORAL_CORS_ORIGINS")
    assert any(str(p).split(":")[-1] == "8080" for p in services["temporal-ui"].get("ports", []))

    admin = services["temporal-admin-tools"]
    admin_env = env_of(admin)
    assert admin_env.get("TEMPORAL_ADDRESS") == "temporal:7233"
    assert admin_env.get("TEMPORAL_CLI_ADDRESS") == "temporal:7233"
    assert "temporal" in depends_of(admin)


def test_admin_tools_create_search_attributes(services):
    script = command_text(services["temporal-admin-tools"])
    # Waits for the server before registering anything.
    assert "cluster health" in script
    found = {}
    for line in script.splitlines():
        if "search-attribute create" not in line:
            continue
        assert "--namespace" in line and "TEMPORAL_NAMESPACE" in script, line
        for name, type_ in re.findall(r"--name\s+\"?(\w+)\"?\s+--type\s+\"?(\w+)\"?", line):
            found[name] = type_
    assert found == SEARCH_ATTRIBUTES
    # Idempotent re-runs: an existing attribute must not fail the job.
    assert "already exists" in script
    assert '"${TEMPORAL_NAMESPACE:-default}"' in script


def test_worker_environment(services):
    env = env_of(services["worker"])
    missing = WORKER_ENV - env.keys()
    unknown = env.keys() - WORKER_ENV
    assert not missing, f"worker env missing: {sorted(missing)}"
    assert not unknown, f"worker env has unknown variables: {sorted(unknown)}"
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["TEMPORAL_NAMESPACE"] == "${TEMPORAL_NAMESPACE:-default}"
    assert env["TEMPORAL_TASK_QUEUE"] == "${TEMPORAL_TASK_QUEUE:-agent-conversations}"


def test_worker_database_is_ledger_db(services):
    url = urlsplit(env_of(services["worker"])["DATABASE_URL"])
    assert url.scheme == "postgresql+psycopg"
    assert url.hostname == "ledger-db"
    assert url.hostname in services
    assert url.port == 5432
    assert url.path == "/agents"
    ledger_env = env_of(services["ledger-db"])
    assert ledger_env.get("POSTGRES_DB") == "agents"
    assert ledger_env.get("POSTGRES_USER") == url.username


def test_worker_build_command_and_replicas(services):
    worker = services["worker"]
    assert worker.get("build") == "."
    assert command_text(worker) == "python worker.py"
    assert str(worker["deploy"]["replicas"]) == "${WORKER_REPLICAS:-2}"
    # Replicated services can't have a fixed container name or host port.
    assert "container_name" not in worker
    assert "ports" not in worker
    deps = depends_of(worker)
    assert deps.get("temporal", {}).get("condition") == "service_started"
    assert deps.get("ledger-db", {}).get("condition") == "service_healthy"


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
