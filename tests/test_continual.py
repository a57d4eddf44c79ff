"""Continual evaluation (clbench.app.continual, ``--eval-every``): the spec and its hash, the curve
in the result document, the fixed evaluation subsets, and that it changes no training result."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from cli_run import clbench

from clbench import api, schema
from clbench.app.continual import ContinualEvaluation, evaluation_subset
from clbench.errors import ConfigError
from clbench.spec import RunSpec, check_continual

SCENARIO = "split-digits:setting=class"  # 5 tasks


def _runs(root, strategy="replay", seeds="0,1", **continual):
    specs, _ = api.plan(scenarios=[SCENARIO], strategies=[strategy], seeds=seeds,
                        budget="smoke", **continual)
    summary = api.run(specs, results=root, device="cpu")
    assert summary.failed == 0
    hashes = {s.hash for s in specs}
    runs = [r for r in api.ResultsStore(root).load().runs if r.spec_hash in hashes]
    return sorted(runs, key=lambda r: r.spec.seed)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with the same batched replay group (2 seeds, 5 class-incremental tasks), with
    and without continual evaluation: (root, plain runs, runs with a curve)."""
    root = tmp_path_factory.mktemp("continual")
    return root, _runs(root), _runs(root, eval_every=3, eval_subset=40)


@pytest.fixture(scope="module")
def paired(store):
    return store[1:]


def test_a_spec_without_continual_evaluation_hashes_as_before():
    spec = api.plan(scenarios=[SCENARIO], strategies=["naive"], seeds="0", budget="smoke")[0][0]
    assert "eval_every" not in spec.to_json() and "eval_subset" not in spec.to_json()
    on = dataclasses.replace(spec, eval_every=10, eval_subset=1000)
    assert on.to_json()["eval_every"] == 10 and on.to_json()["eval_subset"] == 1000
    assert on.hash != spec.hash
    assert RunSpec.from_json(on.to_json()) == on
    assert dataclasses.replace(on, eval_subset=0).hash != on.hash  # the subset is recorded


def test_bad_continual_options_are_clear_errors(capsys):
    with pytest.raises(ConfigError, match="--eval-subset needs --eval-every"):
        check_continual(0, 100)
    with pytest.raises(ConfigError, match="whole number"):
        check_continual(-1, 0)
    code, _, err = clbench(capsys, "run", "--scenario", SCENARIO, "--strategy", "naive",
                           "--eval-subset", "10", "--dry-run")
    assert code != 0 and "--eval-subset needs --eval-every" in err


def test_continual_evaluation_changes_no_training_result(paired):
    """R, the parameters and the group are identical with and without the curve."""
    plain, continual = paired
    assert len(plain) == len(continual) == 2
    for a, b in zip(plain, continual):
        assert a.accuracy_matrix == b.accuracy_matrix
        assert a.param_counts == b.param_counts
        assert a.curve is None and b.curve is not None
        assert b.spec == dataclasses.replace(a.spec, eval_every=3, eval_subset=40)


def test_the_curve_has_its_steps_task_ends_and_the_next_task(paired):
    _, continual = paired
    for run in continual:
        c = run.curve
        assert schema.validate(run.to_json()) is None
        # smoke budget: 2 optimiser steps per task (digits, 64-sample batches)
        assert c.task_ends == (2, 4, 6, 8, 10)
        assert c.steps == (0, 2, 3, 4, 6, 8, 9, 10)  # step 0, every 3rd step, task ends
        first, *_ = c.accuracy
        # each point: the tasks up to the one being trained (or just trained), and the next
        assert None not in first[:2] and first[2:] == (None,) * 3  # step 0: tasks 1 and 2
        for step, tasks in ((2, 2), (3, 3), (4, 3), (6, 4), (8, 5), (9, 5)):
            point = c.accuracy[c.steps.index(step)]
            assert None not in point[:tasks] and point[tasks:] == (None,) * (5 - tasks), step
        assert all(v is not None for v in c.accuracy[-1])
        assert c.eval_s is not None and c.eval_s > 0
    # one pass served both members: the same points, each member its own accuracies
    a, b = continual
    assert a.curve.steps == b.curve.steps and a.curve.accuracy != b.curve.accuracy


def test_the_evaluation_subset_is_fixed_by_the_seed_and_sized():
    images = torch.zeros(100, 1, 2, 2, dtype=torch.uint8)
    rows = torch.arange(100).expand(2, -1).clone()
    from clbench.experience import TaskData

    data = TaskData(images, rows, rows % 2, torch.zeros_like(rows),
                    torch.zeros(1, 1, 1), torch.ones(1, 1, 1))
    one = evaluation_subset(data, 10, [0, 1], task=0)
    again = evaluation_subset(data, 10, [0, 1], task=0)
    assert one.rows.shape == (2, 10) and torch.equal(one.rows, again.rows)
    assert not torch.equal(one.rows[0], one.rows[1])  # each member its own
    assert not torch.equal(one.rows, evaluation_subset(data, 10, [0, 1], task=1).rows)
    assert evaluation_subset(data, 0, [0, 1], 0) is data
    assert evaluation_subset(data, 500, [0, 1], 0) is data


def test_evaluation_puts_back_the_training_mode_it_found():
    """predict switches to eval mode; training must go on in the mode it was in (dropout and
    batch norm would otherwise train differently)."""
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    net.train()
    net[0].eval()  # a mixed state, kept as it was

    class Strategy:
        model = net

        def predict(self, x, t):
            net.eval()

    def evaluate(strategy, info, tests):
        strategy.predict(None, None)
        return torch.zeros(1, len(tests)), torch.ones(1, dtype=torch.bool)

    info = api_info()
    from clbench.experience import TaskData

    rows = torch.arange(4)[None]
    data = TaskData(torch.zeros(4, 1, 1, 1, dtype=torch.uint8), rows, rows, rows,
                    torch.zeros(1, 1, 1), torch.ones(1, 1, 1))
    ev = ContinualEvaluation(Strategy(), info, [data] * info.n_tasks, [0], every=2, subset=0,
                             evaluate=evaluate)
    ev(None)
    ev(None)  # the second step evaluates
    assert ev.steps == [2]
    assert net.training and not net[0].training and net[1].training


def api_info():
    from clbench.spec import make_scenario

    return make_scenario("split-digits", {"setting": "class"}).info(0)


def test_a_run_without_the_option_has_curve_null_and_a_curve_needs_the_option(paired):
    plain, continual = paired
    doc = plain[0].to_json()
    assert doc["curve"] is None and doc["schema_version"] == schema.SCHEMA_VERSION == 4
    doc["curve"] = continual[0].to_json()["curve"]
    assert "the spec has no eval_every" in schema.validate(doc)
    bad = continual[0].to_json()
    bad["curve"]["steps"] = bad["curve"]["steps"][::-1]
    assert "curve.steps must increase" in schema.validate(bad)
    bad = continual[0].to_json()
    del bad["spec"]["eval_subset"]
    assert "eval_subset" in schema.validate(bad)


def test_the_avalanche_adapter_reports_its_steps_and_keeps_its_results(tmp_path):
    """Avalanche's template trains in its own loop: a plugin calls the per-step seam, so the
    curve has the same points as a native run's, and R is unchanged."""
    pytest.importorskip("avalanche", reason="avalanche-lib is not installed")
    plain = _runs(tmp_path, "avalanche.naive", seeds="0")
    continual = _runs(tmp_path, "avalanche.naive", seeds="0", eval_every=3, eval_subset=40)
    assert plain[0].accuracy_matrix == continual[0].accuracy_matrix
    assert continual[0].curve.task_ends == (2, 4, 6, 8, 10)
    assert continual[0].curve.steps == (0, 2, 3, 4, 6, 8, 9, 10)


# --------------------------------------------------------------------------- in the reports


def test_the_stability_gap_figure_draws_each_old_task_and_the_boundaries():
    from clbench.reports.stability_gap import stability_gap_figure

    steps, ends = [0, 1, 2, 3, 4], [2, 4]
    acc = [[0.1, 0.1], [0.5, 0.2], [0.9, 0.3], [0.4, 0.6], [0.8, 0.9]]
    fig = stability_gap_figure(steps, ends, acc, title="<b>x</b>")
    ax = fig.axes[0]
    task_lines = [line for line in ax.get_lines() if line.get_label() == "task 1"]
    assert len(task_lines) == 1  # T = 2: one old task
    assert list(task_lines[0].get_xdata()) == steps and list(task_lines[0].get_ydata()) == \
        [0.1, 0.5, 0.9, 0.4, 0.8]
    boundaries = [line for line in ax.get_lines() if list(line.get_xdata()) == [2, 2]]
    assert len(boundaries) == 1  # between tasks 1 and 2; none after the last
    assert ax.get_title() == "<b>x</b>" and ax.get_ylim() == (0.0, 1.0)


def test_reports_show_the_curve_metrics_and_the_stability_gap_plot(store, tmp_path, capsys):
    import json as json_

    root, _, continual = store
    code, _, err = clbench(capsys, "report", "--results", root, "--markdown",
                           tmp_path / "lb.md", "--html", tmp_path / "lb.html", "--csv",
                           tmp_path / "lb.csv", "--latex", tmp_path / "lb.tex", "--json",
                           tmp_path / "lb.json", "--figures", tmp_path / "figs", "--appendix")
    assert code == 0, err
    md = (tmp_path / "lb.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| Rank"))
    for label in ("AIA", "min-ACC", "WC-ACC", "WF^100"):
        assert f"| {label} |" in header.replace("\\", "")
    csv = (tmp_path / "lb.csv").read_text().splitlines()[0]
    assert all(f"{k}_mean" in csv for k in ("aia", "min_acc", "wc_acc", "wf100"))
    tex = (tmp_path / "lb.tex").read_text()
    assert "min-ACC" in tex and "WC-ACC" in tex
    report = json_.loads((tmp_path / "lb.json").read_text())
    cell = report["leaderboards"]["scenarios"][0]["cells"][0]
    with_curve = [r for r in report["runs"] if r["curve"] is not None]
    assert len(with_curve) == 2 and with_curve[0]["curve"]["task_ends"] == [2, 4, 6, 8, 10]
    expected = sum(metrics_of(r)["min_acc"] for r in continual) / 2
    assert cell["metrics"]["min_acc"]["mean"] == pytest.approx(expected)
    html = (tmp_path / "lb.html").read_text()
    assert "Stability gap: each task's accuracy every 3 optimiser steps" in html
    assert 'id="s0-c0-gap-' in html  # the inline SVG, its ids prefixed by the figure's key
    gap = sorted(p.name for p in (tmp_path / "figs").glob("*__stability-gap.*"))
    assert [p.rsplit(".", 1)[1] for p in gap] == ["pdf", "svg"]


def metrics_of(run):
    from clbench.metrics import run_metrics

    return run_metrics(run)


def test_a_validation_run_evaluates_its_curve_on_the_validation_split(tmp_path):
    """Under --validation the curve scores the held-out training samples, as R does: the last
    point, on every sample (--eval-subset 0), is the last row of R."""
    specs, _ = api.plan(scenarios=[SCENARIO], strategies=["naive"], seeds="0", budget="smoke",
                        validation=0.2, eval_every=4, eval_subset=0)
    assert api.run(specs, results=tmp_path, device="cpu").failed == 0
    [run] = api.ResultsStore(tmp_path).load().runs
    assert run.scenario.data["evaluated_on"] == "validation"
    assert run.curve.accuracy[-1] == pytest.approx(run.accuracy_matrix[-1], abs=1e-6)
    assert run.curve.accuracy[0][:2] == pytest.approx(run.accuracy_matrix[0][:2], abs=1e-6)
