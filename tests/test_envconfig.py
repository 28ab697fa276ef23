"""Connection settings come from temporalio.envconfig: TOML profiles and TEMPORAL_* variables
work as in the Temporal CLI, read once in `WorkerSettings.from_env`."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from settings import ENV, WorkerSettings
from support.paths import ROOT


def profiles(tmp_path: Path, address: str = "profile-host:7233") -> Path:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"PEM of the CA")
    path = tmp_path / "temporal.toml"
    path.write_text(
        f"""
[profile.default]
address = "{address}"
namespace = "from-the-file"

[profile.cloud]
address = "ns.acct.tmprl.cloud:7233"
namespace = "ns.acct"
api_key = "secret-from-the-file"
[profile.cloud.tls]
server_name = "ns.acct.tmprl.cloud"
server_ca_cert_path = "{ca}"
"""
    )
    return path


def test_defaults_without_any_setting():
    config = WorkerSettings.from_env({}).connect_config()
    assert config == {"target_host": "localhost:7233", "namespace": "default"}


def test_a_toml_profile_file_selects_address_and_namespace(tmp_path: Path):
    file = str(profiles(tmp_path))
    settings = WorkerSettings.from_env({"TEMPORAL_CONFIG_FILE": file})
    assert settings.connect_config() == {
        "target_host": "profile-host:7233",
        "namespace": "from-the-file",
    }
    cloud = WorkerSettings.from_env({"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "cloud"})
    assert cloud.temporal_address == "ns.acct.tmprl.cloud:7233"
    assert cloud.temporal_namespace == "ns.acct"


def test_variables_override_the_profile(tmp_path: Path):
    env = {
        "TEMPORAL_CONFIG_FILE": str(profiles(tmp_path)),
        "TEMPORAL_ADDRESS": "env-host:7233",
        "TEMPORAL_NAMESPACE": "from-the-env",
    }
    config = WorkerSettings.from_env(env).connect_config()
    assert (config["target_host"], config["namespace"]) == ("env-host:7233", "from-the-env")


def test_a_profiles_tls_and_api_key_reach_the_connect_config(tmp_path: Path):
    env = {"TEMPORAL_CONFIG_FILE": str(profiles(tmp_path)), "TEMPORAL_PROFILE": "cloud"}
    settings = WorkerSettings.from_env(env)
    config = settings.connect_config()
    assert config["api_key"] == "secret-from-the-file"
    assert config["tls"] == TLSConfig(
        domain="ns.acct.tmprl.cloud", server_root_ca_cert=b"PEM of the CA"
    )
    assert "secret-from-the-file" not in repr(settings)


def test_tls_variables_reach_the_connect_config(tmp_path: Path):
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_bytes(b"PEM of the cert")
    key.write_bytes(b"PEM of the key")
    env = {
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(key),
        "TEMPORAL_TLS_SERVER_NAME": "temporal.internal",
        "TEMPORAL_GRPC_META_X_TEAM": "claims",
    }
    config = WorkerSettings.from_env(env).connect_config()
    assert config["tls"] == TLSConfig(
        client_cert=b"PEM of the cert",
        client_private_key=b"PEM of the key",
        domain="temporal.internal",
    )
    assert config["rpc_metadata"] == {"x-team": "claims"}


def test_an_api_key_turns_tls_on_unless_tls_is_turned_off():
    with_key = WorkerSettings.from_env({"TEMPORAL_API_KEY": "key-1"}).connect_config()
    assert with_key["api_key"] == "key-1" and with_key["tls"] is True
    # as in the Temporal CLI: an explicit TEMPORAL_TLS=false wins (a local server with a key)
    off = WorkerSettings.from_env({"TEMPORAL_API_KEY": "key-1", "TEMPORAL_TLS": "false"})
    assert off.connect_config()["tls"] is False


def test_empty_variables_are_unset():
    """docker compose passes `${TEMPORAL_TLS:-}` as an empty string; envconfig would take
    TEMPORAL_TLS="" for TLS on."""
    blank = {name: "" for name in ENV.values()}
    config = WorkerSettings.from_env(blank).connect_config()
    assert config == {"target_host": "localhost:7233", "namespace": "default"}


def test_bad_connection_settings_name_the_problem(tmp_path: Path):
    with pytest.raises(ValueError, match="TEMPORAL_CONFIG_FILE=.*no such file"):
        WorkerSettings.from_env({"TEMPORAL_CONFIG_FILE": str(tmp_path / "missing.toml")})
    file = str(profiles(tmp_path))
    with pytest.raises(ValueError, match="'staging' not found"):
        WorkerSettings.from_env({"TEMPORAL_CONFIG_FILE": file, "TEMPORAL_PROFILE": "staging"})


async def test_the_worker_and_the_cli_connect_through_a_profile(
    tmp_path: Path, temporal_address: str
):
    env = {"TEMPORAL_CONFIG_FILE": str(profiles(tmp_path, temporal_address))}
    settings = WorkerSettings.from_env({**env, "TEMPORAL_NAMESPACE": "default"})
    client = await settings.connect()
    assert client.service_client.config.target_host == temporal_address
    assert await client.count_workflows() is not None  # the server answers
    # starter.py without --address: it reaches the profile's server, which has no such ID
    clean = {k: v for k, v in os.environ.items() if k not in ENV.values()}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "starter.py"), "state", "no-such-conversation",
        cwd=ROOT, env={**clean, **env, "TEMPORAL_NAMESPACE": "default", "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1, err.decode()
    assert "no conversation no-such-conversation" in err.decode()
