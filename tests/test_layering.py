"""The layering of DESIGN.md holds on the real import graph, and nothing imports in a cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

from support.paths import ROOT

WORKFLOW_IMPORTS = {"__future__", "temporalio", "pydantic", "interface", "agent_workflows"}
"""What workflow code may import besides the standard library (DESIGN.md: the sandbox)."""
SINGLE_FILES = ["worker", "settings", "devserver", "conversation_client", "observability"]
"""Modules that import-linter cannot take as root packages: their own imports are checked
here against the same layers."""


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
    """workflows/ imports as agent_workflows (setuptools package-dir), which import-linter
    cannot map to its directory: its imports are checked here instead."""
    files = sorted((ROOT / "workflows").rglob("*.py"))
    assert files
    outside = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in files
        for line, name in _imports(path)
        if name.split(".")[0] not in WORKFLOW_IMPORTS | sys.stdlib_module_names
    ]
    assert not outside, outside


def test_single_file_modules_import_only_lower_layers() -> None:
    """worker.py, settings.py, ...: no import of a higher layer (or of their own)."""
    layers = _layers()
    upward = []
    for module in SINGLE_FILES:
        own = layers[module]
        for line, name in _imports(ROOT / f"{module}.py"):
            target = _layer_of(name, layers)
            if target is not None and target <= own:
                upward.append(f"{module}.py:{line} imports {name}")
    assert not upward, upward


def _layers() -> dict[str, int]:
    """pyproject's layers contract: module -> its layer's position, 0 at the top."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [contract] = [c for c in config["contracts"] if c["type"] == "layers"]
    found = {}
    for position, layer in enumerate(contract["layers"]):
        for module in layer.replace(":", "|").split("|"):
            found[module.strip()] = position
    return found


def _layer_of(name: str, layers: dict[str, int]) -> int | None:
    parts = name.split(".")
    for size in range(len(parts), 0, -1):  # demo.tables before demo
        prefix = ".".join(parts[:size])
        if prefix in layers:
            return layers[prefix]
    return None


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every import in the file, function-level ones included: (line, module)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom):  # relative: within its own package
            found.append((node.lineno, "agent_workflows"))
    return found
