"""Reports: aggregation (CI, incomplete cells, budget and version separation, ranking, FWT n/a),
the golden Markdown leaderboard, escaping in every format, the CLI's report / compare / gate
commands and the gate's exit codes on constructed improvements, regressions and noise.

Everything works on hand-made result documents (tests/golden/results, written by
tests/golden/make_results.py) or documents built here: no training, each test well under a
second. ``UPDATE_GOLDEN=1`` rewrites tests/golden/leaderboard.md.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import io
import json
import math
import os
import re
from pathlib import Path

import pytest

from clbench import cli, versions
from clbench.metrics import run_metrics
from clbench.registry import REPORTERS
from clbench.reports.compare import gate, welch
from clbench.reports.csv_report import render_csv
from clbench.reports.html_report import render_html
from clbench.reports.markdown_report import render_markdown
from clbench.reports.statistics import summarize
from clbench.reports.tables import aggregate
from clbench.results import LoadedResults, ResultsStore
from clbench.schema import RunResult
from clbench.spec import RunSpec

GOLDEN = Path(__file__).resolve().parent / "golden"
FROZEN = {"generated_at": "2026-01-02T03:04:05+00:00",
          "metadata": {"report_clbench_version": "0.1.0"}}
XSS = "<script>alert(1)</script>"

_spec = importlib.util.spec_from_file_location("golden_make_results",
                                               GOLDEN / "make_results.py")
make_results = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_results)
doc = make_results.run_result


@pytest.fixture(scope="module")
def golden_docs() -> list[RunResult]:
    loaded = ResultsStore(GOLDEN / "results").load()
    assert not loaded.problems
    return loaded.runs


@pytest.fixture(scope="module")
def lb(golden_docs):
    return aggregate(golden_docs, (), **FROZEN)


def table(lb, name, budget="smoke"):
    (t,) = [t for t in lb.scenarios if t.name == name and t.budget == budget]
    return t


def cell(t, label):
    (c,) = [c for c in t.cells if c.label == label]
    return c


def clbench(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------------------------
# Aggregation


def test_ci_matches_a_hand_computation():
    s = summarize([0.2, 0.4, 0.6])
    assert s.n == 3 and s.mean == pytest.approx(0.4)
    assert s.std == pytest.approx(0.2)  # sample sd: sqrt(((.2)^2 + 0 + (.2)^2) / 2)
    t_975_2 = 4.302652729911275  # Student's t, 97.5% quantile, 2 degrees of freedom (tables)
    assert s.ci == pytest.approx(t_975_2 * 0.2 / math.sqrt(3), rel=1e-9)
    assert (s.low, s.high) == pytest.approx((0.4 - s.ci, 0.4 + s.ci))
    one = summarize([0.7, None])
    assert (one.mean, one.n, one.std, one.ci) == (0.7, 1, None, None)
    assert summarize([None, float("nan")]).mean is None


def test_complete_cells_average_every_seed(lb):
    naive = cell(table(lb, "split-digits"), "naive")
    assert naive.complete and (naive.n_ok, naive.n_total) == (3, 3)
    finals = [(0.2 + 0.3 + 0.9) / 3, (0.25 + 0.3 + 0.85) / 3, (0.2 + 0.35 + 0.9) / 3]
    assert naive.metrics["acc"].mean == pytest.approx(sum(finals) / 3)
    assert naive.metrics["acc"].values == pytest.approx(finals)
    joint = cell(table(lb, "split-digits"), "joint")
    assert joint.metrics["params"].mean == 1400
    assert joint.metrics["param_growth"].mean == pytest.approx(1.4)
    assert joint.mean_param_counts == [1000, 1000, 1200, 1400]
    # The three seeds trained as one group: its time is one measurement, not three samples.
    wall = joint.metrics["wall_time_s"]
    assert wall.per_group and wall.n == 1 and wall.ci is None
    assert wall.mean == pytest.approx(20.0)


def test_incomplete_cells_are_marked_not_silently_averaged(lb):
    xss = cell(table(lb, "split-digits"), XSS)  # seed 2 failed
    assert not xss.complete and (xss.n_ok, xss.n_total) == (2, 3)
    assert xss.statuses == {"failed": 1, "ok": 2}
    assert xss.metrics["acc"].n == 2 and xss.rank is None
    assert any("RuntimeError: boom" in e for e in xss.errors)
    naive = cell(table(lb, "permuted-digits"), "naive")  # seed 2 never ran
    assert (naive.n_ok, naive.n_total) == (2, 3) and naive.statuses["missing"] == 1
    joint = cell(table(lb, "permuted-digits"), "joint")  # seed 1 diverged, null final row
    assert (joint.n_ok, joint.n_total) == (2, 3) and joint.statuses["diverged"] == 1
    assert joint.rank is None
    # The incomplete joint has the highest ACC, but it is neither ranked nor bold.
    t = table(lb, "permuted-digits")
    assert joint.metrics["acc"].mean > cell(t, "sep").metrics["acc"].mean
    assert cell(t, "sep").rank == 1
    assert "joint" not in t.best.get("acc", [])
    md = render_markdown(lb)
    assert "| — | joint | 2/3 (incomplete) | 0.940 ± 0.064 |" in md
    assert "| — | naive | 2/3 (incomplete) |" in md


def test_budgets_and_scenario_versions_are_never_mixed(golden_docs):
    lb = aggregate(golden_docs, **FROZEN)
    smoke, default = table(lb, "split-digits"), table(lb, "split-digits", "default")
    assert cell(smoke, "naive").n_total == 3
    only = cell(default, "naive")
    assert only.n_ok == 1 and only.metrics["acc"].mean == pytest.approx((0.3 + 0.3 + 0.95) / 3)
    (v1,) = [d for d in golden_docs if d.spec.scenario == "split-digits"
             and d.spec.budget == "smoke" and d.spec.strategy == "naive" and d.spec.seed == 0]
    # split-digits is at version 1 in this clbench: a version-2 run is stale, never pooled.
    v2 = at_scenario_version(v1, "2")
    lb2 = aggregate([*golden_docs, v2], **FROZEN)
    assert [t.key for t in lb2.scenarios] == [t.key for t in lb.scenarios]
    assert cell(table(lb2, "split-digits"), "naive").n_ok == 3
    assert cell(table(lb2, "split-digits"), "naive").metrics == \
        cell(table(lb, "split-digits"), "naive").metrics
    (stale,) = lb2.stale
    assert (stale.table.version, stale.strategy, stale.cell.n_runs) == ("2", "naive", 1)
    assert stale.stored == ["scenario split-digits 2"]
    assert stale.current == ["scenario split-digits 1"]
    assert (stale.cell.n_ok, stale.cell.n_total) == (1, 3)  # seeds 1, 2 of its group missing
    subset = dataclasses.replace(v1, scenario=dataclasses.replace(
        v1.scenario, data={**v1.scenario.data, "subset": True}))
    lb3 = aggregate([*golden_docs, subset], **FROZEN)
    assert len(lb3.scenarios) == len(lb.scenarios) + 1


def at_scenario_version(run: RunResult, version: str) -> RunResult:
    return dataclasses.replace(run, spec=dataclasses.replace(run.spec, scenario_version=version))


def test_ranking_per_scenario_and_overall_by_mean_rank():
    def run(scenario, strategy, seed, acc):
        return doc(scenario, "task", {"setting": "task"}, strategy, {}, seed, "smoke",
                   [[0.5, 0.5], [acc, 0.5], [acc, acc]], group_seeds=(0, 1))

    docs = []
    for seed in range(2):
        # A wins s1 by a mile; B wins s2 and s3 narrowly. Averaging accuracies would put A
        # first (0.9 + 0.5 + 0.5 vs 0.2 + 0.51 + 0.51); mean rank puts B first.
        docs += [run("s1", "A", seed, 0.9 + 0.001 * seed), run("s1", "B", seed, 0.2),
                 run("s2", "A", seed, 0.5), run("s2", "B", seed, 0.51),
                 run("s3", "A", seed, 0.5), run("s3", "B", seed, 0.51),
                 run("s3", "C", seed, 0.4)]
    lb = aggregate(docs, **FROZEN)
    assert [c.label for c in table(lb, "s3").cells] == ["B", "A", "C"]
    assert [c.rank for c in table(lb, "s3").cells] == [1, 2, 3]
    assert [(r.label, r.mean_rank, r.n_scenarios) for r in lb.overall] == [
        ("B", pytest.approx(4 / 3), 3), ("A", pytest.approx(5 / 3), 3), ("C", 3.0, 1)]
    ties = aggregate([run("s", "A", s, 0.5) for s in (0, 1)]
                     + [run("s", "B", s, 0.5) for s in (0, 1)], **FROZEN)
    assert [c.rank for c in ties.scenarios[0].cells] == [1.5, 1.5]


def test_configurations_of_one_strategy_are_told_apart():
    docs = [doc("s", "task", {"setting": "task"}, "naive", {"lr": lr, "epochs": 1}, 0, "smoke",
                [[0.5, 0.5], [0.9, 0.5], [0.8, 0.9]]) for lr in (0.1, 0.01)]
    labels = sorted(c.label for c in aggregate(docs, **FROZEN).scenarios[0].cells)
    assert labels == ["naive (lr=0.01)", "naive (lr=0.1)"]


def test_fwt_is_na_in_class_incremental_settings(lb):
    cls, task = table(lb, "split-digits"), table(lb, "permuted-digits")
    assert cls.na_metrics == ["fwt"] and all(c.metrics["fwt"] is None for c in cls.cells)
    assert task.na_metrics == []
    assert cell(task, "sep").metrics["fwt"].mean == pytest.approx(0.1)
    md = render_markdown(lb)
    assert md.count("n/a[^fwt]") == 4  # 3 class-incremental smoke cells + 1 default
    assert "[^fwt]: FWT is n/a in class-incremental" in md
    rows = list(csv.DictReader(io.StringIO(render_csv(lb))))
    assert {r["fwt_mean"] for r in rows if r["setting"] == "class"} == {"n/a"}
    assert all(float(r["fwt_mean"]) for r in rows if r["setting"] == "task")


def test_where_a_metric_means_nothing_is_said_by_its_metric_def(golden_docs, monkeypatch):
    """The n/a rule lives on MetricDef: declaring BWT undefined in task-incremental settings
    is enough for the tables, every renderer and compare to treat it as they treat FWT."""
    from clbench import metrics
    from clbench.reports import compare as compare_module
    from clbench.reports import table_model, tables
    from clbench.reports.latex_report import render_latex

    bwt = dataclasses.replace(metrics.METRIC_BY_KEY["bwt"], undefined_in=("task",),
                              undefined_note="BWT is n/a here: a test says so.")
    patched = tuple(bwt if m.key == "bwt" else m for m in metrics.METRICS)
    monkeypatch.setitem(metrics.METRIC_BY_KEY, "bwt", bwt)
    monkeypatch.setattr(tables, "METRICS", patched)
    monkeypatch.setattr(table_model, "METRICS", patched)
    lb = aggregate(golden_docs, (), **FROZEN)
    task = table(lb, "permuted-digits")
    assert task.na_metrics == ["bwt"] and all(c.metrics["bwt"] is None for c in task.cells)
    assert task.na_notes == ["BWT is n/a here: a test says so."] == task.notes[:1]
    assert task.other_notes == task.notes[1:]
    flags = {(t["name"], t["budget"]): (t["fwt_applicable"], t["bwt_applicable"])
             for t in lb.to_json()["scenarios"]}
    assert flags[("permuted-digits", "smoke")] == (True, False)
    assert flags[("split-digits", "smoke")] == (False, True)
    md = render_markdown(lb)
    assert md.count("n/a[^bwt]") == 3 and "[^bwt]: BWT is n/a here: a test says so." in md
    assert "[^fwt]: FWT is n/a" in md  # FWT's rule is untouched
    html = render_html(lb)
    assert 'class="na" title="BWT is n/a here: a test says so."' in html
    from clbench.reports.paper_table import TableOptions

    assert r"\textsuperscript{*} BWT is n/a here: a test says so.\par" in render_latex(
        lb, TableOptions(table="detail"))
    cmp = compare_module.compare(lb, "sep")
    assert "bwt" not in cmp.scenarios[0].metrics and "fwt" in cmp.scenarios[0].metrics


def test_leaderboard_for_is_computed_once_and_never_stale(golden_docs):
    """Reporters rendering one loaded store share its leaderboard, and any change of the store's
    lists (even one that keeps their lengths) computes it again."""
    from clbench.reports.tables import leaderboard_for

    loaded = LoadedResults(runs=list(golden_docs))
    first = leaderboard_for(loaded, **FROZEN)
    assert leaderboard_for(loaded, **FROZEN) is first
    assert leaderboard_for(loaded, generated_at="2027-01-01") is not first
    # the same number of runs, one of them different: a length-keyed cache would serve `first`
    i = next(i for i, r in enumerate(loaded.runs) if r.spec.strategy == "sep")
    worse = dataclasses.replace(loaded.runs[i], accuracy_matrix=((0.5, 0.5), (0.1, 0.1),
                                                                 (0.0, 0.0)))
    loaded.runs[i] = worse
    second = leaderboard_for(loaded, **FROZEN)
    assert second is not first and second.to_json() != first.to_json()
    assert leaderboard_for(loaded, **FROZEN) is second
    loaded.problems.append("x.json: broken")
    assert leaderboard_for(loaded, **FROZEN).problems == ["x.json: broken"]


# ---------------------------------------------------------------------------------------------
# Golden Markdown and escaping


def test_golden_markdown(lb):
    text = render_markdown(lb)
    path = GOLDEN / "leaderboard.md"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_schema_1_fixture_migrates_to_the_same_leaderboard(lb):
    """The 18 schema-1 documents (named by their old hashes) read through the migration into
    the runs of the schema-3 fixture, and render the committed leaderboard byte for byte."""
    old = ResultsStore(GOLDEN / "schema1").load()
    new = ResultsStore(GOLDEN / "results").load()
    assert not old.problems and len(old.runs) == len(new.runs) == 18
    assert {r.migrated_from for r in old.runs} == {1}
    assert {p.stem for p in (GOLDEN / "schema1").glob("*.json")}.isdisjoint(
        r.spec_hash for r in old.runs)  # the old file names are not the new hashes
    # schema 1 predates strategy versions: migrated, its runs are at version 1. The current
    # fixture holds the built-ins at their current versions (make_results.py), so lift the
    # migrated specs to those before comparing what the migration must keep.
    assert {r.spec.strategy_version for r in old.runs} == {"1"}
    current = versions.recorded()["strategy"]
    old.runs = [dataclasses.replace(r, spec=dataclasses.replace(
        r.spec, strategy_version=current.get(r.spec.strategy, {}).get("version", "1")))
        for r in old.runs]
    by_hash = {r.spec_hash: r for r in new.runs}
    assert set(by_hash) == {r.spec_hash for r in old.runs}
    for run in old.runs:
        assert run.spec == by_hash[run.spec_hash].spec
        assert run.accuracy_matrix == by_hash[run.spec_hash].accuracy_matrix
    assert render_markdown(aggregate(old.runs, (), **FROZEN)) == \
        (GOLDEN / "leaderboard.md").read_text() == render_markdown(lb)


def test_schema_2_fixture_migrates_to_the_same_runs_and_reports(lb):
    """The 18 schema-2 documents (the fixture as make_results.py wrote it before schema 3) read
    through migrate_2_to_3 into exactly the runs of the schema-3 fixture, and every report
    format renders the same text from them (the JSON report names the schema it read)."""
    old = ResultsStore(GOLDEN / "schema2").load()
    new = ResultsStore(GOLDEN / "results").load()
    assert not old.problems and len(old.runs) == len(new.runs) == 18
    assert {r.migrated_from for r in old.runs} == {2}
    assert {r.migrated_from for r in new.runs} == {None}
    for path in (GOLDEN / "schema2").glob("*.json"):
        doc = json.loads(path.read_text())
        assert doc["schema_version"] == 2 and "hyperparameters" in doc
    by_hash = {r.spec_hash: r for r in new.runs}
    assert {r.spec_hash: dataclasses.replace(r, migrated_from=None) for r in old.runs} == by_hash
    for name in ("markdown", "html", "csv", "latex", "json"):
        reporter = REPORTERS.get(name)(**FROZEN)
        text_old, text_new = reporter.render(old), reporter.render(new)
        if name == "json":
            text_old = text_old.replace('"migrated_from": 2', '"migrated_from": null')
        assert text_old == text_new, name


def test_schema_3_fixture_migrates_to_the_same_runs_and_reports(lb):
    """The 18 schema-3 documents (the fixture as make_results.py wrote it before schema 4) read
    through migrate_3_to_4 into exactly the runs of the schema-4 fixture (no curve), and every
    report format renders the same text from them."""
    old = ResultsStore(GOLDEN / "schema3").load()
    new = ResultsStore(GOLDEN / "results").load()
    assert not old.problems and len(old.runs) == len(new.runs) == 18
    assert {r.migrated_from for r in old.runs} == {3}
    for path in (GOLDEN / "schema3").glob("*.json"):
        doc = json.loads(path.read_text())
        assert doc["schema_version"] == 3 and "curve" not in doc
    assert {p.name for p in (GOLDEN / "schema3").glob("*.json")} == \
        {p.name for p in (GOLDEN / "results").glob("*.json")}  # the hashes did not change
    by_hash = {r.spec_hash: r for r in new.runs}
    assert {r.spec_hash: dataclasses.replace(r, migrated_from=None) for r in old.runs} == by_hash
    for name in ("markdown", "html", "csv", "latex", "json"):
        reporter = REPORTERS.get(name)(**FROZEN)
        text_old, text_new = reporter.render(old), reporter.render(new)
        if name == "json":
            text_old = text_old.replace('"migrated_from": 3', '"migrated_from": null')
        assert text_old == text_new, name


def test_golden_fixture_is_named_by_spec_hash():
    for path in (GOLDEN / "results").glob("*.json"):
        doc = json.loads(path.read_text())
        assert path.stem == doc["spec_hash"] == RunSpec.from_json(doc["spec"]).hash
    assert [r.to_json() for r in make_results.golden_runs()] == [
        json.loads((GOLDEN / "results" / f"{r.spec_hash}.json").read_text())
        for r in make_results.golden_runs()], "rerun tests/golden/make_results.py"


def test_markdown_escapes_names_from_results(lb):
    md = render_markdown(lb)
    width = None
    assert XSS not in md and "<b>" not in md
    # escaped for Markdown (CommonMark backslash escapes), not for HTML: no entities in a terminal
    assert "\\<script\\>alert(1)\\</script\\>" in md and "&lt;" not in md
    assert "&amp;" not in md and "Lopez-Paz \\& Ranzato" in md
    assert "sep=a\\|b, tag=\\*x\\*" in md
    for line in md.splitlines():  # every table row has as many cells as its header
        if line.startswith("| Rank"):
            width = len(re.findall(r"(?<!\\)\|", line))
        elif line.startswith("| ") and "Strategy" not in line and "---" not in line:
            if width is None or line.count("|") < 4:
                continue
            assert len(re.findall(r"(?<!\\)\|", line)) == width, line


def test_html_escapes_and_embeds_data_safely(lb):
    html = render_html(lb)
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "boom &lt;b&gt;|&lt;/b&gt;" in html
    assert "http://" not in html and "https://" not in html and " src=" not in html
    match = re.search(r'<script type="application/json" id="clbench-data">(.*?)</script>',
                      html, re.S)
    assert match and "<" not in match.group(1) and ">" not in match.group(1)
    data = json.loads(match.group(1))
    labels = {row["label"] for rows in data["tables"].values() for row in rows
              if "label" in row}
    assert XSS in labels
    assert html.count("<script") == 2  # the JSON block and the sorting code: nothing else


def test_json_report_keeps_runs_and_adds_leaderboards(capsys, tmp_path):
    out = tmp_path / "r.json"
    code, _, err = clbench(capsys, "report", "--results", GOLDEN / "results", "--json", out)
    assert code == 0, err
    data = json.loads(out.read_text())
    assert len(data["runs"]) == 18
    boards = data["leaderboards"]
    assert len(boards["scenarios"]) == 3 and boards["confidence"] == 0.95
    cells = {c["label"]: c for s in boards["scenarios"] if s["setting"] == "class"
             and s["budget"] == "smoke" for c in s["cells"]}
    assert cells[XSS]["complete"] is False and cells[XSS]["n_ok"] == 2
    assert cells["naive"]["metrics"]["fwt"] == "n/a"
    assert set(cells["joint"]["metrics"]["acc"]) == {"mean", "std", "n", "ci95"}


def test_json_runs_and_leaderboard_cells_compute_metrics_alike(golden_docs, lb):
    from clbench.reports.json_report import JsonReporter

    data = json.loads(JsonReporter(**FROZEN).render(LoadedResults(runs=golden_docs)))
    by_hash = {r.spec_hash: r for r in golden_docs}
    for run in data["runs"]:
        assert run["metrics"] == run_metrics(by_hash[run["spec_hash"]])
    (only,) = [r for r in data["runs"] if r["spec"]["budget"] == "default"]
    one_seed = cell(table(lb, "split-digits", "default"), "naive")  # its only run
    for key, value in only["metrics"].items():
        stat = one_seed.metrics[key]
        assert (None if stat is None else stat.mean) == (None if key == "fwt" else value), key


def test_reporters_are_built_with_the_report_options_and_their_bugs_surface():
    from clbench import api
    from clbench.errors import ConfigError

    rendered = api.report(GOLDEN / "results", {"clbench_test_plugins:StoreSizeReporter": "-"},
                          generated_at="2026-01-02")
    assert rendered == {"clbench_test_plugins:StoreSizeReporter": "18 runs, 2026-01-02"}
    # A TypeError raised while a reporter is built is its bug: never retried without options.
    with pytest.raises(TypeError, match="can only concatenate str"):
        api.report(GOLDEN / "results", {"clbench_test_plugins:BrokenReporter": "-"},
                   generated_at="2026-01-02")
    with pytest.raises(ConfigError, match="does not take the keyword arguments generated_at, "
                                          "metadata") as exc:
        api.report(GOLDEN / "results", {"clbench_test_plugins:OldStyleReporter": "-"})
    assert "clbench.reports.base.Reporter" in exc.value.hint


def test_report_cli_writes_every_format(capsys, tmp_path):
    files = {k: tmp_path / f"out.{k}" for k in ("html", "markdown", "csv", "json")}
    args = ["report", "--results", GOLDEN / "results"]
    for k, p in files.items():
        args += [f"--{k}", p]
    code, _, err = clbench(capsys, *args)
    assert code == 0, err
    assert all(p.stat().st_size > 0 for p in files.values())
    rows = list(csv.DictReader(files["csv"].open()))
    assert len(rows) == 7  # scenario x strategy cells
    assert {r["label"] for r in rows} >= {XSS, "naive", "joint", "sep"}
    code, out, _ = clbench(capsys, "report", "--results", GOLDEN / "results", "--markdown", "-")
    assert code == 0 and out.startswith("# clbench leaderboard")
    code, _, err = clbench(capsys, "report", "--results", GOLDEN / "results")
    assert code == 2 and "no output requested" in err


# ---------------------------------------------------------------------------------------------
# compare


def test_compare_cli_reports_paired_deltas_adjusted_and_welch_on_request(capsys, tmp_path):
    md, html = tmp_path / "c.md", tmp_path / "c.html"
    code, _, err = clbench(capsys, "compare", "--candidate", "joint", "--baselines", "naive",
                           "--results", GOLDEN / "results", "--markdown", md, "--html", html)
    assert code == 0, err
    text = md.read_text()
    assert "paired t-test over seeds (scipy.stats.ttest\\_rel" in text
    assert "one family: p-values adjusted by Holm" in text and "11 test(s)" in text
    # class-incremental smoke: joint - naive ACC = 0.8122 - 0.4722, per seed, significant
    # after Holm's adjustment
    assert re.search(r"\| naive \| \+0\.340 \\\[\+0\.290, \+0\.390\\\]; p 0\.001, "
                     r"adj\. 0\.008; d \+16\.77 ✓ \|", text), text
    # the permuted-digits candidate misses a seed: Welch there, and the output says so
    assert "† seeds differ: Welch's unpaired test instead" in text
    assert "FWT" in text.split("## permuted-digits")[1].split("## split-digits")[0]
    page = html.read_text()
    assert "one family" in page and "Welch" in page and XSS not in page
    code, out, err = clbench(capsys, "compare", "--candidate", "joint", "--baselines", "naive",
                             "--results", GOLDEN / "results", "--test", "welch", "--adjust",
                             "none", "--markdown", "-")
    assert code == 0, err
    assert "p is from Welch's t-test" in out and "not adjusted" in out and "†" not in out
    assert re.search(r"\| naive \| \+0\.340 \\\[[^]]*\\\]; p [^;]*; d [^|]* ✓ \|", out), out
    code, _, err = clbench(capsys, "compare", "--candidate", "nope", "--results",
                           GOLDEN / "results")
    assert code == 2 and "nope" in err


# ---------------------------------------------------------------------------------------------
# gate


def write_store(root: Path, cells: dict[tuple[str, str], list[float]],
                first_seed: int = 0) -> Path:
    """A results store with one task-incremental 2-task scenario per cell key; each value is
    one seed's final accuracy (seeds ``first_seed``, ``first_seed + 1``, ...)."""
    root.mkdir(parents=True)
    store = ResultsStore(root)
    for (scenario, strategy), accs in cells.items():
        seeds = range(first_seed, first_seed + len(accs))
        for seed, a in zip(seeds, accs):
            store.write(doc(scenario, "task", {"setting": "task"}, strategy, {}, seed, "smoke",
                            [[0.5, 0.5], [a, 0.5], [a, a]], group_seeds=seeds))
    return root


def run_gate(capsys, tmp_path, old, new, *extra):
    base = write_store(tmp_path / "old", old)
    cur = write_store(tmp_path / "new", new)
    return clbench(capsys, "gate", "--baseline", base, "--current", cur, *extra)


STEADY = [0.90, 0.91, 0.89, 0.90, 0.91]


def test_gate_identical_results_pass(capsys, tmp_path):
    cells = {("s1", "naive"): STEADY, ("s2", "naive"): [0.5, 0.6, 0.7]}
    code, out, err = run_gate(capsys, tmp_path, cells, cells)
    assert code == 0, out + err
    assert "PASS" in out and "0 regression(s)" in out


def test_gate_planted_regression_fails(capsys, tmp_path):
    old = {("s1", "naive"): STEADY, ("s1", "joint"): STEADY}
    new = {("s1", "naive"): [v - 0.1 for v in STEADY], ("s1", "joint"): STEADY}
    code, out, err = run_gate(capsys, tmp_path, old, new)
    assert code == 1, out + err
    assert "FAIL" in out and "**regression**" in out
    (line,) = [ln for ln in out.splitlines() if "regression**" in ln]
    assert "| naive |" in line and "-0.100" in line


def test_gate_lists_regressions_first(capsys, tmp_path):
    # "naive" sorts after "joint" and "a-method", but its regression comes first
    old = {("s1", "a-method"): STEADY, ("s1", "joint"): STEADY, ("s1", "naive"): STEADY}
    new = {**old, ("s1", "naive"): [v - 0.1 for v in STEADY]}
    code, out, _ = run_gate(capsys, tmp_path, old, new)
    assert code == 1
    rows = [ln for ln in out.splitlines() if ln.startswith("| s1")]
    assert [r.split("|")[2].strip() for r in rows] == ["naive", "a-method", "joint"], rows


def test_gate_improvement_passes(capsys, tmp_path):
    old = {("s1", "naive"): STEADY}
    new = {("s1", "naive"): [v + 0.05 for v in STEADY]}
    code, out, _ = run_gate(capsys, tmp_path, old, new)
    assert code == 0 and "improvement" in out


def test_gate_noise_is_not_significant(capsys, tmp_path):
    # A drop of the mean beyond the threshold, but with a large variance: not significant.
    old = {("s1", "naive"): [0.5, 0.9, 0.7, 0.6, 0.8]}
    new = {("s1", "naive"): [0.9, 0.45, 0.6, 0.8, 0.5]}
    code, out, _ = run_gate(capsys, tmp_path, old, new)
    assert code == 0, out
    assert "not significant" in out
    # Same means, large variance on both sides.
    code, out, _ = run_gate(capsys, tmp_path / "b", {("s", "x"): [0.2, 0.8, 0.5]},
                            {("s", "x"): [0.8, 0.2, 0.5]})
    assert code == 0, out


def test_gate_pairs_by_seed_and_adjusts_over_the_cells(capsys, tmp_path):
    # A drop of 0.03 on every seed, small against the seed-to-seed spread: the paired test
    # finds it, Welch would not.
    spread = [0.5, 0.9, 0.7, 0.6, 0.8]
    old = {("s1", "naive"): spread, ("s1", "joint"): STEADY}
    new = {("s1", "naive"): [v - 0.03 for v in spread], ("s1", "joint"): STEADY}
    code, out, _ = run_gate(capsys, tmp_path, old, new)
    assert code == 1, out
    (line,) = [ln for ln in out.splitlines() if "regression**" in ln]
    assert "| naive |" in line and "| paired-t |" in line
    assert welch(spread, [v - 0.03 for v in spread]) > 0.5
    assert "2 test(s) shown form one family: p-values adjusted by Holm" in out
    # other seeds in the current store: Welch, which misses it, and the row says which test
    base = write_store(tmp_path / "o2", old)
    cur = write_store(tmp_path / "n2", new, first_seed=10)
    code, out, _ = clbench(capsys, "gate", "--baseline", base, "--current", cur)
    assert code == 0, out
    assert "| welch |" in out and "| paired-t |" not in out


def test_gate_bit_identical_rerun_is_never_a_regression(tmp_path):
    # noisy cells, a zero threshold, the loosest level: still every cell has p = 1
    cells = {("s1", "naive"): [0.5, 0.9, 0.7, 0.6, 0.8], ("s1", "joint"): [0.1, 0.95, 0.5],
             ("s2", "naive"): STEADY}
    store = write_store(tmp_path / "o", cells)
    lb = aggregate(ResultsStore(store).load().runs, **FROZEN)
    for metric in ("acc", "forgetting"):
        result = gate(lb, lb, metric, 0.0, 0.999, "none")
        assert result.exit_code == 0
        assert {r.verdict for r in result.rows} == {"within threshold"}
        assert {r.p_value for r in result.rows} == {1.0}
        assert {r.test for r in result.rows} == {"paired-t"}


def test_gate_single_seed_drop_counts_and_says_so(capsys, tmp_path):
    code, out, _ = run_gate(capsys, tmp_path, {("s", "x"): [0.9]}, {("s", "x"): [0.85]})
    assert code == 1
    assert "fewer than 2 seeds" in out
    code, out, _ = run_gate(capsys, tmp_path / "b", {("s", "x"): [0.9]}, {("s", "x"): [0.895]},
                            "--max-drop", "0.01")
    assert code == 0, out


def test_gate_fails_on_baseline_cells_missing_now_and_names_them(capsys, tmp_path):
    old = {("s1", "naive"): STEADY, ("s1", "joint"): STEADY, ("s2", "ewc"): STEADY}
    code, out, err = run_gate(capsys, tmp_path, old, {("s1", "naive"): STEADY})
    assert code == 1, out + err
    assert "FAIL" in out and "**missing**" in out
    assert "s1 [task] v1, budget smoke / joint" in err and "s2 [task] v1, budget smoke / ewc" in err
    assert "2 missing" in err and "1 of 3 cell(s) compared" in err


def test_gate_that_compares_nothing_exits_2(capsys, tmp_path):
    # stores of other cells (as of another budget): nothing matches, nothing passes
    code, out, err = run_gate(capsys, tmp_path, {("s1", "naive"): STEADY},
                              {("s9", "naive"): STEADY})
    assert code == 2, out + err
    assert "NOTHING COMPARED" in out and "PASS" not in out
    assert "error: gate compared no cell" in " ".join(err.split())


def test_gate_lower_is_better_metric_and_thresholds(tmp_path):
    base = write_store(tmp_path / "o", {("s", "x"): STEADY})
    same = aggregate(ResultsStore(base).load().runs, **FROZEN)
    result = gate(same, same, "forgetting", 0.0, 0.05)
    assert result.exit_code == 0
    assert welch([1.0, 1.0], [1.0, 1.0]) == 1.0 and welch([1.0, 1.0], [0.0, 0.0]) == 0.0
    assert welch([1.0], [0.0, 0.5]) is None


def test_gate_bad_input_exits_2(capsys, tmp_path):
    good = write_store(tmp_path / "good", {("s", "x"): STEADY})
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (["--baseline", tmp_path / "missing", "--current", good],
                 ["--baseline", good, "--current", empty],
                 ["--baseline", good, "--current", good, "--metric", "speed"],
                 ):
        code, out, err = clbench(capsys, "gate", *args)
        assert code == 2, (args, out, err)
        assert err.startswith("error: ") and "Traceback" not in err
    for option, value in (("--max-drop", "x"), ("--alpha", "1.5"), ("--max-drop", "-1")):
        with pytest.raises(SystemExit) as exc:  # argparse's check (tests/test_faults.py)
            cli.main(["gate", "--baseline", str(good), "--current", str(good),
                      f"{option}={value}"])
        assert exc.value.code == 2


def test_ranks_and_t_quantiles_match_scipy_stats():
    """The report avoids importing scipy.stats (start-up time): its replacements agree."""
    import numpy as np
    from scipy import stats

    from clbench.reports.statistics import average_ranks, t_quantile

    rng = np.random.default_rng(0)
    for _ in range(200):
        values = rng.integers(0, 5, size=int(rng.integers(1, 12))).astype(float)
        assert average_ranks(values).tolist() == stats.rankdata(values, "average").tolist()
    for dof in (1, 2, 4, 9, 29, 100):
        assert t_quantile(dof) == pytest.approx(stats.t.ppf(0.975, dof), rel=1e-12)
