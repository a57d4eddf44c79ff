"""A plugin strategy, scenario, report format and executor are each one file plus one entry
point: the example package in docs/plugin/ (its four modules and its pyproject.toml's entry
points) is laid out as an installed distribution in a temporary folder on sys.path, and each
extension is reached from the command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from clbench import cli
from clbench.app.executors import EXECUTORS
from clbench.registry import REPORTERS, SCENARIOS, STRATEGIES

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "docs" / "plugin"
GOLDEN = REPO / "tests" / "golden" / "results"
MODULES = sorted(p.stem for p in EXAMPLE.glob("clbench_example_*.py"))
SMOKE = ["--budget", "smoke", "--device", "cpu", "--seeds", "0"]


def install(site: Path) -> dict[str, dict[str, str]]:
    """docs/plugin as pip would install it into ``site``: its modules, and a dist-info folder
    whose entry_points.txt holds the entry points of its pyproject.toml. Returns them."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    site.mkdir(parents=True, exist_ok=True)
    for module in MODULES:
        shutil.copy(EXAMPLE / f"{module}.py", site / f"{module}.py")
    info = site / f"clbench_example_plugin-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                   f"Version: {project['version']}\n")
    groups = project["entry-points"]
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in eps.items()) + "\n"
        for group, eps in groups.items()))
    return groups


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The example installed on sys.path, with the registries read afresh (as a new process
    would) and restored afterwards."""
    registries = (STRATEGIES, SCENARIOS, REPORTERS, EXECUTORS)
    for registry in registries:
        registry.names()  # the built-ins register once per process, as their modules import
    groups = install(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for registry in registries:
        monkeypatch.setattr(registry, "_classes", dict(registry._classes))
        monkeypatch.setattr(registry, "_loaded", False)
    yield groups
    for module in MODULES:
        sys.modules.pop(module, None)


def clbench(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


def documents(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]


def test_the_example_declares_one_entry_point_per_module(plugin):
    assert set(plugin) == {"clbench.strategies", "clbench.scenarios", "clbench.reporters",
                           "clbench.executors"}
    targets = [t for eps in plugin.values() for t in eps.values()]
    assert sorted(t.partition(":")[0] for t in targets) == MODULES


def test_a_plugin_strategy(plugin, capsys, tmp_path):
    code, out, _ = clbench(capsys, "list", "strategies")
    assert code == 0 and "shrinking-lr" in out and "decay (float) = 0.5" in out
    code, _, err = clbench(capsys, "run", "--scenario", "split-digits", "--strategy",
                           "shrinking-lr:decay=0.25", *SMOKE, "--results", tmp_path / "r")
    assert code == 0, err
    (doc,) = documents(tmp_path / "r")
    assert doc["spec"]["strategy"] == "shrinking-lr" and doc["status"] == "ok"
    assert doc["spec"]["strategy_params"]["decay"] == 0.25
    assert len(doc["accuracy_matrix"]) == 6  # the untrained model, then after each task
    code, _, err = clbench(capsys, "run", "--scenario", "split-digits", "--strategy",
                           "shrinking-lr:decay=2", *SMOKE, "--results", tmp_path / "r")
    assert code == 2 and "decay must be in (0, 1]" in err


def test_a_plugin_scenario_on_its_own_dataset(plugin, capsys, tmp_path):
    code, out, _ = clbench(capsys, "list", "scenarios")
    assert code == 0 and "split-blobs" in out
    code, _, err = clbench(capsys, "run", "--scenario", "split-blobs", "--strategy", "naive",
                           *SMOKE, "--results", tmp_path / "r")
    assert code == 0, err
    (doc,) = documents(tmp_path / "r")
    assert doc["spec"]["scenario"] == "split-blobs" and doc["status"] == "ok"
    matrix = doc["accuracy_matrix"]
    assert len(matrix) == 4 and all(len(row) == 3 for row in matrix)
    assert matrix[1][0] > 0.6  # two smoke steps learn the first task (chance: 0.5)


def test_a_plugin_report_format(plugin, capsys, tmp_path):
    with pytest.raises(SystemExit):
        cli.main(["report", "--help"])
    assert "--tally FILE" in capsys.readouterr().out
    code, out, err = clbench(capsys, "report", "--results", GOLDEN, "--tally", "-")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "scenario\tstrategy\tstatus\truns"
    assert sum(int(line.split("\t")[-1]) for line in lines[1:]) == 18  # the golden store
    code, _, err = clbench(capsys, "report", "--results", GOLDEN)
    assert code == 2 and "--tally" in err  # the hint names the plugin's format too


def test_a_plugin_executor_with_its_own_option(plugin, capsys, tmp_path):
    code, out, _ = clbench(capsys, "list", "executors")
    assert code == 0 and "journal" in out and "--journal FILE" in out
    journal = tmp_path / "journal.txt"
    code, _, err = clbench(capsys, "run", "--scenario", "split-digits", "--strategy", "naive",
                           *SMOKE, "--results", tmp_path / "r", "--executor", "journal",
                           "--journal", journal)
    assert code == 0, err
    assert journal.read_text() == "naive on split-digits [seeds 0]: ok\n"
    (doc,) = documents(tmp_path / "r")
    assert doc["identity"]["executor"] == "journal"
    code, _, err = clbench(capsys, "run", "--scenario", "split-digits", "--strategy", "naive",
                           *SMOKE, "--results", tmp_path / "r2", "--journal", journal)
    assert code == 2 and "--journal only applies to --executor journal" in err


def test_a_new_process_finds_every_plugin_by_its_entry_point(tmp_path):
    install(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path / "site"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = subprocess.run([sys.executable, "-m", "clbench.cli", "list", "--json"], env=env,
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    listing = {kind: {item["name"] for item in items}
               for kind, items in json.loads(out.stdout).items()}
    assert "shrinking-lr" in listing["strategies"]
    assert "split-blobs" in listing["scenarios"]
    assert "tally" in listing["reporters"]
    assert "journal" in listing["executors"]


def test_a_plugin_that_would_hide_an_option_is_named(monkeypatch, capsys):
    from clbench.app.executors import LocalExecutor, Option
    from clbench.reports.base import Reporter

    class Clash(LocalExecutor):
        options = (Option("--device", "device"),)

    class Results(Reporter):
        description = "named like report's --results"

        def render(self, loaded) -> str:
            return ""

    executors = dict(EXECUTORS.items())
    monkeypatch.setattr(EXECUTORS, "_classes", {**executors, "clash": Clash})
    code, _, err = clbench(capsys, "list")
    assert code == 2 and "the executor 'clash' declares --device, an option clbench run has " \
        "already" in err
    monkeypatch.setattr(EXECUTORS, "_classes", executors)
    monkeypatch.setattr(REPORTERS, "_classes", {**dict(REPORTERS.items()), "results": Results})
    code, _, err = clbench(capsys, "list")
    assert code == 2 and "the reporter 'results'" in err and "would hide" in err
