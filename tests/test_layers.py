"""The package's layers (see ``clbench/__init__.py``): every import, at module level or inside a
function, points down. Core modules import no component and no application module; a component
package (scenarios, strategies, reports) imports the core and itself only. Which module of
bench/ is core and which is application is declared in ``clbench.CORE`` and
``clbench.APPLICATION``; a module in neither fails here (none is core by default)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import clbench

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"bench": "clbench", "bench/app": "clbench.app", "strategies": "clbench.strategies",
           "scenarios": "clbench.scenarios", "reports": "clbench.reports",
           "trackers": "clbench.trackers"}
COMPONENTS = ("clbench.scenarios", "clbench.strategies", "clbench.reports", "clbench.trackers")
CORE_MODULES = ("clbench", *(f"clbench.{m}" for m in clbench.CORE))
APPLICATION = tuple(f"clbench.{m}" for m in clbench.APPLICATION)
CORE, COMPONENT, APP = 0, 1, 2


def modules() -> dict[str, Path]:
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((REPO / folder).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            out[name] = path
    return out


def layer(module: str) -> tuple[int, str]:
    """(layer, the package that owns ``module``)."""
    for package in COMPONENTS:
        if module == package or module.startswith(package + "."):
            return COMPONENT, package
    if any(module == m or module.startswith(m + ".") for m in APPLICATION):
        return APP, module
    if module in CORE_MODULES:
        return CORE, "clbench"
    raise Unplaced(module)


class Unplaced(Exception):
    """A module of bench/ named in neither clbench.CORE nor clbench.APPLICATION."""


def unplaced_modules() -> list[str]:
    """A line per module of bench/ that is in neither list (or in both), saying where to add
    it."""
    problems = []
    for module, path in modules().items():
        try:
            layer(module)
        except Unplaced:
            problems.append(
                f"{path.relative_to(REPO)} ({module}) is in neither CORE nor APPLICATION: add "
                f"{module.rpartition('.')[2]!r} to one of them in bench/__init__.py (CORE if it "
                "imports no component and no application module, else APPLICATION)")
    both = sorted(set(clbench.CORE) & set(clbench.APPLICATION))
    problems += [f"clbench.{m} is in both CORE and APPLICATION (bench/__init__.py)"
                 for m in both]
    return problems


def imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported clbench module) of every import in the file, wherever it stands."""
    package = module if path.stem == "__init__" else module.rpartition(".")[0]
    known = modules()
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            names = [f"{base}.{a.name}" for a in node.names]
            # "from clbench import api" imports the module clbench.api
            found += [(node.lineno, n if n in known else base) for n in names]
    return [(line, name) for line, name in found if name.split(".")[0] == "clbench"]


def upward_imports() -> list[str]:
    bad = []
    for module, path in modules().items():
        try:
            own_layer, own_package = layer(module)
        except Unplaced:
            continue  # named by unplaced_modules()
        for line, target in imports(path, module):
            rel = path.relative_to(REPO)
            try:
                target_layer, target_package = layer(target)
            except Unplaced:
                bad.append(f"{rel}:{line}: {module} imports {target}, which is in no layer")
                continue
            if target_layer > own_layer:
                bad.append(f"{rel}:{line}: {module} (layer {own_layer}) imports {target} "
                           f"(layer {target_layer})")
            elif own_layer == COMPONENT and target_layer == COMPONENT \
                    and target_package != own_package:
                bad.append(f"{rel}:{line}: {own_package} imports {target_package}: components "
                           "meet only through the registry")
    return bad


def test_every_module_is_placed_in_a_layer():
    assert unplaced_modules() == []


def test_a_new_module_is_refused_until_placed(tmp_path, monkeypatch):
    new = tmp_path / "bench" / "newthing.py"
    new.parent.mkdir()
    new.write_text("")
    monkeypatch.setattr(sys.modules[__name__], "modules",
                        lambda: {"clbench.errors": tmp_path / "bench" / "errors.py",
                                 "clbench.newthing": new})
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert unplaced_modules() == [
        "bench/newthing.py (clbench.newthing) is in neither CORE nor APPLICATION: add "
        "'newthing' to one of them in bench/__init__.py (CORE if it imports no component and "
        "no application module, else APPLICATION)"]


def test_every_import_points_down():
    assert unplaced_modules() == []  # else a module has no layer to check its imports by
    assert upward_imports() == []


def test_the_checker_sees_upward_imports(tmp_path, monkeypatch):
    # a core module importing the runner, and a report importing a strategy, inside a function
    fake = {"clbench.metrics": tmp_path / "metrics.py",
            "clbench.reports.table": tmp_path / "table.py"}
    fake["clbench.metrics"].write_text("def f():\n    from clbench.app.runner import evaluate\n")
    fake["clbench.reports.table"].write_text("from clbench.strategies import base\n"
                                             "from clbench.metrics import acc\n")
    monkeypatch.setattr(sys.modules[__name__], "modules", lambda: fake)
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    bad = upward_imports()
    assert len(bad) == 2
    assert "clbench.metrics (layer 0) imports clbench.app.runner (layer 2)" in bad[0]
    assert "clbench.reports imports clbench.strategies" in bad[1]


def test_no_bare_package_names_are_installed():
    """The wheel's only top-level package is clbench: a user's own strategies/ folder cannot
    shadow clbench's (and clbench's cannot shadow the user's)."""
    top = {"bench", "benchmarks", "strategies", "scenarios", "reports", "trackers"}
    code = ("import importlib.util, sys; sys.path = [p for p in sys.path if p not in ('', '.')];"
            f"print([n for n in {sorted(top)!r} if importlib.util.find_spec(n)])")
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_a_users_strategies_folder_does_not_replace_clbenchs(tmp_path):
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "__init__.py").write_text("")
    (tmp_path / "strategies" / "ewc.py").write_text("raise SystemExit('user code ran')\n")
    code = ("from clbench.registry import STRATEGIES; "
            "print(STRATEGIES.get('ewc').__module__, 'online-ewc' in STRATEGIES.names())")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["clbench.strategies.ewc", "True"]


@pytest.mark.parametrize("banned", ["bench", "strategies", "scenarios", "reports", "trackers"])
def test_lint_bans_the_bare_names(tmp_path, banned):
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed in this environment")
    source = tmp_path / "uses_old_name.py"
    source.write_text(f"import {banned}.x\n\nprint({banned})\n")
    out = subprocess.run([str(ruff), "check", "--no-cache", "--config",
                          str(REPO / "pyproject.toml"), "--select", "TID251", str(source)],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "TID251" in out.stdout, out.stdout + out.stderr


def test_the_tree_is_lint_clean():
    """ruff over every source folder, with the project's rules (the bare-name ban included)."""
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed in this environment")
    out = subprocess.run([str(ruff), "check", "--no-cache", "bench", "strategies", "scenarios",
                          "reports", "trackers", "tests", "benchmarks", "docs"], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_reading_and_reporting_results_never_imports_torch():
    code = f"""
import sys
from clbench.registry import REPORTERS
from clbench.reports.tables import aggregate
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
