"""The accuracy tier: each row of ``bench/reference.toml`` run at its budget, its metric's mean
over seeds compared with the published figure (``pytest -m accuracy``; off by default).

Environment:
- ``CLBENCH_ACCURACY_RESULTS``: a results directory kept between sessions, so an interrupted
  tier resumes and ``clbench report --results DIR`` renders what it ran (default: a temporary
  directory).
- ``CLBENCH_ACCURACY_SEEDS``: seeds per row (default ``0,1,2``).
- ``CLBENCH_DEVICE``: ``auto`` (default), ``cpu`` or ``cuda``.

At the end ``accuracy-summary.md`` in the results directory lists every row run: target,
tolerance, figure reached, seeds and device.

The default run checks the table itself (``test_reference_table_is_runnable``): every row
resolves to valid run specs, so a typo fails in CI, not hours into the tier.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
from pathlib import Path

import pytest
import torch

from clbench import api
from clbench.errors import ConfigError
from clbench.reference import ReferenceTarget, load_targets
from clbench.results import ResultsStore
from clbench.schema import RunResult
from clbench.spec import parse_seeds

TARGETS = load_targets()
SEEDS = parse_seeds(os.environ.get("CLBENCH_ACCURACY_SEEDS", "0,1,2"))


def test_reference_table_is_runnable():
    assert TARGETS, "bench/reference.toml has no targets"
    for row in TARGETS:
        specs = row.specs(SEEDS)  # raises ConfigError on an unknown name or parameter
        assert len(specs) == len(SEEDS)
        assert 0 <= row.target <= 1 or row.metric in ("bwt", "fwt"), row.id


@pytest.fixture(scope="session")
def accuracy_results(tmp_path_factory) -> Path:
    folder = os.environ.get("CLBENCH_ACCURACY_RESULTS")
    return Path(folder) if folder else tmp_path_factory.mktemp("accuracy-results")


@pytest.fixture(scope="session")
def summary(accuracy_results):
    """Rows of ``accuracy-summary.md``: this session's, plus those of earlier sessions in the
    same results directory that this one did not rerun (in table order)."""
    rows: dict[str, str] = {}
    yield rows
    if not rows:
        return
    path = accuracy_results / "accuracy-summary.md"
    earlier = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            cells = line.split(" | ")
            if line.startswith("| ") and len(cells) > 2 and cells[0][2:] in {t.id for t in TARGETS}:
                earlier[cells[0][2:]] = line
    merged = {**earlier, **rows}
    head = ("| id | strategy | scenario | budget | metric | target | reached (mean ± sd) | "
            "seeds | met | device |\n|---|---|---|---|---|---|---|---|---|---|\n")
    path.write_text(f"Accuracy tier, torch {torch.__version__}\n\n" + head
                    + "\n".join(merged[t.id] for t in TARGETS if t.id in merged) + "\n")


def _device_name(run: RunResult) -> str:
    ident = run.identity
    if ident.device == "cpu":
        return f"{ident.device_name} CPU, {ident.torch_threads} thread(s)"
    return str(ident.device_name)


@pytest.mark.accuracy
@pytest.mark.parametrize("row", TARGETS, ids=[t.id for t in TARGETS])
def test_reaches_published_figure(row: ReferenceTarget, accuracy_results, summary, data_dir):
    specs = row.specs(SEEDS)
    run = api.run(specs, results=accuracy_results, data_dir=data_dir, download=False,
                  device=os.environ.get("CLBENCH_DEVICE", "auto"))
    assert not run.not_run, run.not_run
    store = ResultsStore(accuracy_results)
    docs = [store.read(store.path(s.hash)) for s in specs]
    assert all(d.status == "ok" for d in docs), [d.error for d in docs]
    values = [row.value(d.accuracy_matrix) for d in docs]
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else math.nan
    ok = row.reached(mean)
    summary[row.id] = (
        f"| {row.id} | `{row.strategy}` | `{row.scenario}` | {row.budget} | {row.metric} | "
        f"{row.target_text()} | {mean:.3f} ± {sd:.3f} | {len(values)} | "
        f"{'yes' if ok else 'NO'} | {_device_name(docs[0])} |")
    assert ok, (f"{row.id}: {row.metric} {mean:.4f} (seeds {values}) misses the target "
                f"{row.target_text()} ({row.source})")


ROW = """
[[target]]
id = "x"
scenario = "split-digits"
strategy = "naive"
budget = "smoke"
metric = "acc"
target = 0.5
tolerance = 0.1
check = "within"
source = "a paper"
differences = "none"
cpu_minutes = 1
"""


@pytest.mark.parametrize("edit,message", [
    (("metric = \"acc\"", "metric = \"accuracy\""), "unknown metric 'accuracy'"),
    (("check = \"within\"", "check = \"above\""), "unknown check 'above'"),
    (("cpu_minutes = 1", "cpu_minutes = 1\ncolour = 2"), "unknown keys colour"),
    (("source = \"a paper\"\n", ""), "missing source"),
    (("tolerance = 0.1", "tolerance = -0.1"), "tolerance must be >= 0"),
    (("budget = \"smoke\"", "budget = \"huge\""), "unknown budget 'huge'"),
])
def test_bad_reference_rows_are_named(tmp_path, edit, message):
    path = tmp_path / "reference.toml"
    path.write_text(ROW.replace(*edit))
    with pytest.raises(ConfigError, match=message) as info:
        load_targets(path)
    assert "target 1" in str(info.value)


def test_duplicate_ids_and_checks(tmp_path):
    path = tmp_path / "reference.toml"
    path.write_text(ROW + ROW)
    with pytest.raises(ConfigError, match="duplicate target ids x"):
        load_targets(path)
    path.write_text(ROW)
    (row,) = load_targets(path)
    assert row.reached(0.45) and row.reached(0.6) and not row.reached(0.39)
    assert not row.reached(float("nan"))
    at_least = dataclasses.replace(row, check="at_least")
    assert at_least.reached(0.41) and at_least.reached(0.99) and not at_least.reached(0.39)
