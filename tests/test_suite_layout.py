"""The suite's own rules: no test module imports another, no path hacks, one tier per test."""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.paths import ROOT
from support.tiers import SERVICE_FIXTURES, TIERS

TESTS = Path(__file__).resolve().parent
SOURCES = sorted(p for p in TESTS.rglob("*.py") if "histories" not in p.parts)


def imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every import; `from . import x` gives `.x`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            if node.module is None:
                yield from ((node.lineno, f"{base}{alias.name}") for alias in node.names)
            else:
                yield node.lineno, base


def is_test_module(name: str) -> bool:
    parts = name.lstrip(".").split(".")
    return parts[0] == "tests" or any(p == "conftest" or p.startswith("test_") for p in parts)


def test_no_test_module_imports_another() -> None:
    """Shared helpers live in tests/support/ (import them as `support.<module>`)."""
    found = [
        f"{path.relative_to(TESTS)}:{line}: {name}"
        for path in SOURCES
        for line, name in imports(ast.parse(path.read_text(), str(path)))
        if is_test_module(name)
    ]
    assert found == [], "import shared helpers from tests/support/ instead:\n" + "\n".join(found)


def test_no_sys_path_changes() -> None:
    """pyproject's `pythonpath` puts the project root and tests/ on the path; reading
    sys.path is fine, changing it is not."""
    found = [
        f"{path.relative_to(TESTS)}:{node.lineno}"
        for path in SOURCES
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if _changes_sys_path(node)
    ]
    assert found == []


def _is_sys_path(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    )


def _changes_sys_path(node: ast.AST) -> bool:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        mutators = {"insert", "append", "extend", "remove", "pop", "clear"}
        return node.func.attr in mutators and _is_sys_path(node.func.value)
    if isinstance(node, ast.Assign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(
            _is_sys_path(t) or (isinstance(t, ast.Subscript) and _is_sys_path(t.value))
            for t in targets
        )
    return False


def test_the_tiers_are_registered_and_strict(pytestconfig: pytest.Config) -> None:
    registered = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    assert registered >= set(TIERS)
    assert pytestconfig.option.strict_markers, "a misspelt tier would select nothing"


def test_every_test_has_one_tier_and_unit_tests_use_no_server(request: pytest.FixtureRequest):
    for item in request.session.items:
        tiers = [mark.name for mark in item.iter_markers() if mark.name in TIERS]
        assert len(tiers) == 1, f"{item.nodeid}: {tiers}"
        if tiers == ["unit"]:
            assert not SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))


@pytest.mark.e2e
def test_run_test_passes_its_arguments_to_pytest() -> None:
    """`./run test -m unit` (ruff and mypy first) selects the unit tier only."""
    if not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("./run has not set up .venv here")
    done = subprocess.run(
        [str(ROOT / "run"), "test", "-m", "unit", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    counts = re.search(r"(\d+)/(\d+) tests collected \((\d+) deselected\)", done.stdout)
    assert counts, done.stdout[-2000:]
    selected, total, deselected = map(int, counts.groups())
    assert 0 < selected < total and selected + deselected == total
    assert "tests/test_suite_layout.py::test_no_test_module_imports_another" in done.stdout
    assert "tests/test_replay.py::" not in done.stdout
