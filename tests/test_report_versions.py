"""Versions in the reports: a cell never pools two versions of a component, only cells at the
current versions are shown and ranked, stale ones are listed by every renderer and on stderr,
compare reads current cells only and the gate matches cells across a version bump."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
from pathlib import Path

import pytest

from clbench import cli, versions
from clbench.errors import ConfigError
from clbench.reports.compare import compare, gate
from clbench.reports.csv_report import render_csv
from clbench.reports.html_report import render_html
from clbench.reports.markdown_report import render_markdown
from clbench.reports.staleness import newest
from clbench.reports.tables import aggregate
from clbench.results import ResultsStore

GOLDEN = Path(__file__).resolve().parent / "golden"
_spec = importlib.util.spec_from_file_location("golden_make_results",
                                               GOLDEN / "make_results.py")
make_results = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_results)
FROZEN = {"generated_at": "2026-01-02T03:04:05+00:00"}
STEADY = [0.90, 0.91, 0.89, 0.90, 0.91]


def runs(strategy: str, accs: list[float], scenario: str = "permuted-digits", **versions_):
    """Task-incremental 2-task runs, one per seed; ``accs`` are the final accuracies (version
    1 of the strategy unless told)."""
    versions_.setdefault("strategy_version", "1")
    return [make_results.run_result(
        scenario, "task", {"setting": "task", "n_tasks": 2}, strategy, {"lr": 0.01}, seed,
        "smoke", [[0.5, 0.5], [a, 0.5], [a, a]], group_seeds=range(len(accs)), **versions_)
        for seed, a in enumerate(accs)]


@pytest.fixture
def at_version_1(monkeypatch):
    """clbench's recorded versions with every strategy at version 1 (what ``runs`` writes)."""
    record = versions.recorded()
    record["strategy"] = {k: {**v, "version": "1"} for k, v in record["strategy"].items()}
    monkeypatch.setattr(versions, "recorded", lambda: record)
    return record


@pytest.fixture
def naive_at_2(at_version_1):
    """The same, with naive bumped to version 2."""
    at_version_1["strategy"]["naive"] = {**at_version_1["strategy"]["naive"], "version": "2"}


def test_a_bumped_strategy_is_never_pooled_and_its_old_cell_is_stale(naive_at_2):
    old = runs("naive", [0.2, 0.2, 0.2])
    new = runs("naive", [0.9, 0.8, 0.7], strategy_version="2")
    lb = aggregate([*old, *new, *runs("joint", [0.5, 0.5, 0.5])], **FROZEN)
    (t,) = lb.scenarios
    assert sorted(c.label for c in t.cells) == ["joint", "naive"]
    (naive,) = [c for c in t.cells if c.label == "naive"]
    assert naive.versions["strategy"] == "2" and naive.n_ok == 3
    assert naive.metrics["acc"].mean == pytest.approx((0.9 + 0.8 + 0.7) / 3)  # v1 not pooled
    assert naive.rank == 1
    (stale,) = lb.stale
    assert (stale.strategy, stale.stored, stale.current, stale.cell.n_runs) == (
        "naive", ["strategy naive 1"], ["strategy naive 2"], 3)
    assert stale.cell.rank is None and stale.scenario == t.label
    assert {r.spec_hash for r in lb.runs} == {r.spec_hash for r in new} | {
        r.spec_hash for r in lb.runs if r.strategy == "joint"}  # stale runs are not listed


def test_a_scenario_or_backbone_at_another_version_is_stale(at_version_1):
    lb = aggregate([*runs("naive", STEADY), *runs("joint", STEADY, version="2"),
                    *runs("sep", STEADY, backbone_version="7")], **FROZEN)
    assert [c.label for t in lb.scenarios for c in t.cells] == ["naive"]
    assert sorted((s.strategy, tuple(s.stored), tuple(s.current)) for s in lb.stale) == [
        ("joint", ("scenario permuted-digits 2",), ("scenario permuted-digits 1",)),
        ("sep", ("backbone mlp 7",), ("backbone mlp 1",))]


def test_a_plugin_s_current_version_is_the_newest_in_the_store():
    lb = aggregate([*runs("mine", [0.3, 0.3], strategy_version="9"),
                    *runs("mine", [0.6, 0.6], strategy_version="10")], **FROZEN)
    (cell,) = lb.scenarios[0].cells
    assert cell.versions["strategy"] == "10"  # numerically, not as text
    assert [s.stored for s in lb.stale] == [["strategy mine 9"]]
    assert newest({"src-bbb": "2026-01-01T02:00", "src-aaa": "2026-01-01T03:00"}) == "src-aaa"
    src = aggregate([*runs("fp", [0.3], strategy_version="src-b"),
                     *runs("fp", [0.6], strategy_version="src-a",
                           finished_at="2026-01-02T00:00:00+00:00")], **FROZEN)
    assert src.scenarios[0].cells[0].versions["strategy"] == "src-a"  # the latest run's


def test_every_renderer_lists_stale_cells(naive_at_2):
    lb = aggregate([*runs("naive", [0.2, 0.2, 0.2]), *runs("joint", [0.5, 0.5, 0.5])],
                   **FROZEN)
    md = render_markdown(lb)
    main, stale = md.split("## Stale results")
    assert "| naive |" not in main and "0.200" not in main
    assert "rerun with `clbench run`" in stale
    assert re.search(r"\| permuted-digits .* \| naive \| strategy naive 1 \| strategy naive 2 "
                     r"\| 3 \|", stale), stale
    html = render_html(lb)
    assert 'id="stale"' in html and "<code>clbench run</code>" in html
    assert "<td class=\"text\">strategy naive 1</td><td class=\"text\">strategy naive 2</td>" \
        in html
    data = lb.to_json()
    assert data["stale"] == [{"scenario": lb.stale[0].scenario, "strategy": "naive",
                              "stored": ["strategy naive 1"], "current": ["strategy naive 2"],
                              "n_runs": 3, "fix": "rerun with `clbench run`"}]
    rows = list(csv.DictReader(io.StringIO(render_csv(lb))))
    assert [(r["label"], r["stale"], r["strategy_version"], r["rank"]) for r in rows] == [
        ("joint", "False", "1", "1.0"), ("naive", "True", "1", "")]
    only_stale = render_markdown(aggregate(runs("naive", [0.2]), **FROZEN))
    assert "No runs at the current versions." in only_stale


def write(root: Path, results) -> Path:
    store = ResultsStore(root)
    for r in results:
        store.write(r)
    return root


def test_report_prints_one_line_per_stale_cell_on_stderr(naive_at_2, tmp_path, capsys):
    root = write(tmp_path / "r", [*runs("naive", [0.2, 0.2]),
                                  *runs("naive", [0.2, 0.2], scenario="split-digits"),
                                  *runs("joint", [0.5, 0.5])])
    capsys.readouterr()
    assert cli.main(["report", "--results", str(root), "--json", "-"]) == 0
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.startswith("stale: ")]
    assert len(lines) == 2, err
    assert all("naive on " in ln and "2 run(s) at strategy naive 1 (current: strategy naive 2)"
               in ln and ln.endswith("rerun with `clbench run`") for ln in lines)
    assert len(json.loads(out)["leaderboards"]["stale"]) == 2


def test_compare_reads_current_cells_only(naive_at_2):
    lb = aggregate([*runs("naive", [0.2, 0.2, 0.2]), *runs("naive", [0.8, 0.8, 0.8],
                                                          strategy_version="2"),
                    *runs("joint", [0.5, 0.5, 0.5]), *runs("ewc", [0.9, 0.9], version="2")],
                   **FROZEN)
    cmp = compare(lb, "naive")
    (sc,) = cmp.scenarios
    (row,) = sc.rows  # the stale ewc is no baseline
    acc = next(d for d in row.deltas if d.metric == "acc")
    assert (row.baseline, acc.candidate, acc.delta) == ("joint", pytest.approx(0.8),
                                                        pytest.approx(0.3))
    with pytest.raises(ConfigError, match="all stale"):
        compare(lb, "ewc")


def test_gate_matches_cells_across_a_version_bump(naive_at_2, tmp_path, capsys):
    baseline = write(tmp_path / "old", runs("naive", STEADY))  # last night: naive 1
    same = write(tmp_path / "same", runs("naive", STEADY, strategy_version="2"))
    worse = write(tmp_path / "worse", [*runs("naive", STEADY),  # an old cell as well
                                       *runs("naive", [v - 0.1 for v in STEADY],
                                             strategy_version="2")])
    capsys.readouterr()
    code = cli.main(["gate", "--baseline", str(baseline), "--current", str(same)])
    out = capsys.readouterr().out
    assert code == 0, out
    (row,) = [ln for ln in out.splitlines() if "| naive |" in ln]
    assert "within threshold" in row
    assert "versions differ (baseline → current): strategy naive 1 → 2" in row
    result = gate(aggregate(ResultsStore(baseline).load().runs),
                  aggregate(ResultsStore(worse).load().runs))
    (row,) = result.rows
    assert result.exit_code == 1 and row.verdict == "regression"
    assert row.current_mean == pytest.approx(0.802)  # the current version's, not pooled
    assert "strategy naive 1 → 2" in row.versions
    unchanged = gate(aggregate(ResultsStore(baseline).load().runs),
                     aggregate(ResultsStore(baseline).load().runs))
    assert unchanged.rows[0].versions == "" and unchanged.exit_code == 0
