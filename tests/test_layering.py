"""The layering of DESIGN.md holds on the real import graph, and nothing imports in a cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW_IMPORTS = {"__future__", "temporalio", "pydantic", "interface", "agent_workflows"}
"""What workflow code may import besides the standard library (DESIGN.md: the sandbox)."""


def test_import_contracts_are_kept() -> None:
    """`lint-imports` with pyproject.toml's contracts: layers, forbidden imports, cycles."""
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(no_cache=True, no_logo=True))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def test_workflows_import_only_the_interface_temporalio_and_pydantic() -> None:
    """workflows/ is a namespace package, which import-linter cannot read: checked here."""
    files = sorted((ROOT / "workflows").rglob("*.py"))
    assert files
    outside = {
        f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
        for path in files
        for node, name in _imports(path)
        if name not in WORKFLOW_IMPORTS and name not in sys.stdlib_module_names
    }
    assert not outside, sorted(outside)


def _imports(path: Path) -> list[tuple[ast.stmt, str]]:
    """Every import in the file, function-level ones included, by top-level package."""
    found: list[tuple[ast.stmt, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node, node.module.split(".")[0]))
        elif isinstance(node, ast.ImportFrom):  # relative: within workflows/
            found.append((node, "agent_workflows"))
    return found
