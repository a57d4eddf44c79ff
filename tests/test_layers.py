"""The layers of clbench: the core imports neither the scenarios, strategies and reports nor the
layers above it (runner, api, cli, suite, reference); the reports import only the core; and the
results store and every report work without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = ("errors", "params", "registry", "seeding", "budget", "spec", "versions", "metrics",
        "identity", "experience", "models", "results", "schema")
ABOVE_CORE = ("clbench.scenarios", "clbench.strategies", "clbench.reports", "clbench.runner",
              "clbench.api", "clbench.cli", "clbench.suite", "clbench.reference")


def imported(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("name", CORE)
def test_the_core_imports_nothing_above_it(name):
    bad = sorted(m for m in imported(REPO / "bench" / f"{name}.py") if _within(m, ABOVE_CORE))
    assert not bad, f"clbench.{name} imports {', '.join(bad)}"


@pytest.mark.parametrize("path", sorted((REPO / "reports").glob("*.py")), ids=lambda p: p.name)
def test_reports_import_only_the_core(path):
    allowed = tuple(f"clbench.{m}" for m in CORE) + ("clbench.reports",)
    bad = sorted(m for m in imported(path) if _within(m, ("clbench",)) and m != "clbench"
                 and not _within(m, allowed))
    assert not bad, f"clbench.reports.{path.stem} imports {', '.join(bad)}"


def test_reading_and_reporting_results_never_imports_torch():
    code = f"""
import sys
from clbench.registry import REPORTERS
from clbench.reports.aggregate import aggregate
from clbench.reports.compare import gate, render_gate_markdown
from clbench.results import ResultsStore
loaded = ResultsStore({str(REPO / "tests" / "golden" / "results")!r}).load()
assert len(loaded.runs) == 18, loaded.problems
for name in ("json", "markdown", "html", "csv"):
    assert REPORTERS.get(name)(generated_at="2026-01-01").render(loaded)
lb = aggregate(loaded.runs)
render_gate_markdown(gate(lb, lb))
assert "torch" not in sys.modules, "torch was imported"
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
