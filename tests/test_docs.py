"""The documentation: the strict MkDocs build, README's links, and README against the contract."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

from interface import contract, models
from support.paths import ROOT

README = ROOT / "README.md"
# Hosts a page would load fonts, scripts or styles from at view time; the site must work offline.
CDN_URL = re.compile(
    r"https?://(fonts\.googleapis\.com|fonts\.gstatic\.com|cdn\.jsdelivr\.net|unpkg\.com"
    r"|cdnjs\.cloudflare\.com|use\.fontawesome\.com|cdn\.)"
)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def readme_links() -> list[str]:
    """Link targets in README.md outside code blocks, without the web ones."""
    text = FENCE.sub("", README.read_text())
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def interface_section() -> str:
    """README's `## Public interface` section, up to the next `## ` heading."""
    text = README.read_text()
    start = text.index("\n## Public interface\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def contract_names() -> dict[str, str]:
    """Every wire name a client uses: workflow, task queue, signals, update, query, ask errors."""
    names = {
        attr: getattr(contract, attr)
        for attr in dir(contract)
        if attr.startswith(("SIGNAL_", "UPDATE_", "QUERY_"))
    }
    names |= {"WORKFLOW_TYPE": contract.WORKFLOW_TYPE}
    names |= {"DEFAULT_TASK_QUEUE": contract.DEFAULT_TASK_QUEUE}
    names |= {f"CLIENT_ERROR_TYPES[{e.name}]": e.value for e in contract.CLIENT_ERROR_TYPES}
    return names


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built by `mkdocs build --strict`: a broken link or missing page fails it."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def test_strict_build_makes_every_page(site: Path) -> None:
    for page in (ROOT / "docs").glob("*.md"):
        assert (site / page.with_suffix(".html").name).is_file(), page.name
    reference = (site / "reference.html").read_text()
    # mkdocstrings rendered the docstrings, not just the `:::` lines
    for anchor in ("agents.registry.AgentRegistry", "interface.contract.ErrorType"):
        assert f'id="{anchor}"' in reference, anchor
    assert ":::" not in reference


def test_site_loads_nothing_from_a_cdn(site: Path) -> None:
    pages = list(site.rglob("*.html"))
    assert len(pages) > 10
    found = {p.name: CDN_URL.findall(p.read_text()) for p in pages}
    assert {name: urls for name, urls in found.items() if urls} == {}
    # Material's bundle fetches mermaid from unpkg only for a page with a diagram
    assert not [p.name for p in pages if 'class="mermaid"' in p.read_text()]


def test_readme_links_point_at_existing_files(site: Path) -> None:
    links = readme_links()
    assert len(links) > 10, links
    for target in links:
        path, _, anchor = unquote(target).partition("#")
        file = ROOT / path
        assert file.is_file(), f"README links to {target}: no such file"
        if anchor and file.parent == ROOT / "docs":
            html = (site / file.with_suffix(".html").name).read_text()
            assert f'id="{anchor}"' in html, f"README links to {target}: no such anchor"


def test_readme_interface_table_lists_every_contract_name() -> None:
    section = interface_section()
    rows = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    missing = {attr: name for attr, name in contract_names().items() if f"`{name}`" not in rows}
    assert missing == {}, f"README's interface table lacks {missing}"


def test_interface_page_lists_every_error_type_and_activity() -> None:
    page = (ROOT / "docs" / "interface.md").read_text()
    activities = [getattr(contract, a) for a in dir(contract) if a.startswith("ACTIVITY_")]
    names = [e.value for e in contract.ErrorType] + activities
    assert len(activities) >= 3
    assert [n for n in names if f"| `{n}` |" not in page] == []


def table_row(section: str, kind: str, name: str) -> str:
    """The row of README's interface table for one signal, update or query."""
    rows = [line for line in section.splitlines() if line.startswith(f"| {kind} | `{name}` |")]
    assert len(rows) == 1, (kind, name, rows)
    return rows[0]


def test_readme_interface_payloads_name_every_field() -> None:
    section = interface_section()
    payloads = {
        ("signal", contract.SIGNAL_USER_MESSAGE): [models.UserMessage],
        ("signal", contract.SIGNAL_DECIDE_TOOL): [models.ToolDecision],
        ("update", contract.UPDATE_ASK): [models.TurnResult, models.ToolCallRecord],
        ("query", contract.QUERY_STATE): [models.ConversationState],
    }
    missing = {
        (kind, name, model.__name__): field
        for (kind, name), kinds in payloads.items()
        for model in kinds
        for field in model.model_fields
        if f'"{field}"' not in table_row(section, kind, name)
    }
    assert missing == {}, f"README's interface table lacks fields {missing}"
