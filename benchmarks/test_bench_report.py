"""Speed of the reporting layer (pytest-benchmark; `pytest benchmarks/test_bench_report.py
--benchmark-enable`): aggregating 1,000 synthetic runs (4 scenarios x 50 strategies x 5 seeds,
10 tasks each) and rendering every format from them. It should take seconds."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

from clbench.reports.csv_report import CsvReporter
from clbench.reports.html_report import HtmlReporter
from clbench.reports.json_report import JsonReporter
from clbench.reports.markdown_report import MarkdownReporter
from clbench.results import LoadedResults
from clbench.schema import RunResult

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden" / "make_results.py"
_spec = importlib.util.spec_from_file_location("golden_make_results", GOLDEN)
make_results = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_results)


def synthetic_runs(n_scenarios: int = 4, n_strategies: int = 50, n_seeds: int = 5,
                   n_tasks: int = 10) -> list[RunResult]:
    rng = random.Random(0)
    docs = []
    for s in range(n_scenarios):
        setting = ("class", "task")[s % 2]
        params = {"setting": setting, "n_tasks": n_tasks}
        for k in range(n_strategies):
            skill = rng.random()
            for seed in range(n_seeds):
                R = [[round(rng.random() * 0.2, 4) for _ in range(n_tasks)]]
                for i in range(1, n_tasks + 1):
                    R.append([round(min(1.0, max(0.0, skill * (0.5 if j < i - 1 else 1.0)
                                                 + rng.gauss(0, 0.05))), 4) if j < i
                              else round(rng.random() * 0.2, 4) for j in range(n_tasks)])
                docs.append(make_results.run_result(
                    f"scenario-{s}", setting, params, f"strategy-{k}", {"lr": 0.01}, seed,
                    "smoke", R, counts=[1000 + 10 * i * k for i in range(n_tasks + 1)],
                    group_seeds=range(n_seeds), wall=rng.uniform(5, 50)))
    return docs


@pytest.fixture(scope="module")
def loaded() -> LoadedResults:
    runs = synthetic_runs()
    assert len(runs) == 1000
    return LoadedResults(runs=runs)


def render_all(loaded: LoadedResults) -> dict[str, int]:
    """Every format, as `clbench report` with four outputs does: one aggregation, shared."""
    loaded = LoadedResults(runs=loaded.runs)  # a fresh store each round: nothing cached
    out = {}
    for cls in (MarkdownReporter, HtmlReporter, CsvReporter, JsonReporter):
        out[cls.__name__] = len(cls(generated_at="2026-01-01T00:00:00Z").render(loaded))
    return out


def test_render_report_from_1000_runs(benchmark, loaded):
    sizes = benchmark.pedantic(render_all, args=(loaded,), rounds=3, iterations=1)
    assert all(n > 0 for n in sizes.values())


def test_render_html_from_1000_runs(benchmark, loaded):
    size = benchmark.pedantic(
        lambda: len(HtmlReporter(generated_at="2026-01-01T00:00:00Z").render(
            LoadedResults(runs=loaded.runs))),
        rounds=3, iterations=1)
    assert size > 0
