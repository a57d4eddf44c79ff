"""The validation split (held out of each task's training data, seeded, disjoint, never the test
split) and ``clbench tune`` over it."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import pytest
import torch
from strategy_setup import set_up

from clbench import api, cli
from clbench.app.tune import parse_space
from clbench.errors import ConfigError
from clbench.experience import hold_out
from clbench.metrics import MATRIX_METRICS
from clbench.reports.tables import aggregate
from clbench.results import ResultsStore
from clbench.schema import parse
from clbench.seeding import Stream, generator
from clbench.spec import make_specs

SMOKE = dict(seeds=[0, 1], budget="smoke", device="cpu", download=False)


def _split(data, seeds, fraction=0.25):
    return hold_out(data, fraction, [generator(s, Stream.VALIDATION) for s in seeds])


def test_the_validation_split_is_disjoint_seeded_and_drawn_from_training_data():
    _, data = set_up("naive", "split-digits", [0, 7])
    held = _split(data, [0, 7])
    for full, train, val in zip(data.train, held.train, held.test):
        n = len(full)
        assert len(val) == round(0.25 * n) and len(train) == n - len(val)
        for s in range(2):
            a, b = set(train.rows[s].tolist()), set(val.rows[s].tolist())
            # disjoint, and together exactly the task's training rows: never a test sample
            assert not a & b and a | b == set(full.rows[s].tolist())
        assert set(val.rows[0].tolist()) != set(val.rows[1].tolist())  # each member its own
    again = _split(set_up("naive", "split-digits", [7])[1], [7])
    for t in range(len(data.train)):  # member 7 holds out the same samples in any group
        assert torch.equal(again.test[t].rows[0], held.test[t].rows[1])
        assert torch.equal(again.test[t].labels[0], held.test[t].labels[1])


def test_a_validation_run_records_its_split_and_test_hashes_are_unchanged():
    test_spec = make_specs("split-digits", "naive", [0], "smoke")[0]
    val_spec = make_specs("split-digits", "naive", [0], "smoke", validation=0.1)[0]
    assert test_spec.split == "test" and "split" not in test_spec.to_json()
    assert val_spec.split == "validation"
    assert val_spec.to_json()["split"] == "validation" and val_spec.to_json()["validation"] == 0.1
    assert val_spec.hash != test_spec.hash
    assert dataclasses.replace(val_spec, validation=0.0).hash == test_spec.hash


@pytest.mark.parametrize("bad", [-0.1, 0.9, float("nan"), "x", True])
def test_bad_validation_fractions_are_refused(bad):
    with pytest.raises(ConfigError, match="validation"):
        make_specs("split-digits", "naive", [0], "smoke", validation=bad)


def test_validation_runs_are_stored_apart_and_never_pooled_with_test_runs(tmp_path):
    specs = [*make_specs("split-digits", "naive", [0, 1], "smoke"),
             *make_specs("split-digits", "naive", [0, 1], "smoke", validation=0.2)]
    api.run(specs, results=tmp_path, device="cpu", download=False)
    loaded = ResultsStore(tmp_path).load()
    assert not loaded.problems and len(loaded.runs) == 4
    by_split = {r.spec.split: r for r in loaded.runs}
    doc = json.loads(ResultsStore(tmp_path).path(by_split["validation"].spec_hash).read_text())
    assert doc["spec"]["split"] == "validation" and parse(doc).spec.validation == 0.2
    assert doc["scenario"]["data"]["evaluated_on"] == "validation"
    assert by_split["validation"].accuracy_matrix != by_split["test"].accuracy_matrix
    tables = aggregate(loaded.runs).scenarios
    assert sorted(t.split for t in tables) == ["test", "validation"]
    assert all(c.n_total == 2 for t in tables for c in t.cells)
    (val,) = [t for t in tables if t.split == "validation"]
    assert "validation split" in val.label


def test_tune_grid_scores_each_configuration_on_the_validation_split(tmp_path):
    result, rendered = api.tune("split-digits", "naive", ["lr=0.001,0.05"], results=tmp_path,
                                outputs={"markdown": "-", "json": "-"}, **SMOKE)
    assert [t.resolved()["lr"] for t in result.trials] == [0.001, 0.05]
    loaded = {r.spec_hash: r for r in ResultsStore(tmp_path).load().runs}
    for t in result.trials:
        runs = [loaded[s.hash] for s in t.specs]
        assert all(r.spec.split == "validation" for r in runs)
        expected = sum(MATRIX_METRICS["acc"](r.accuracy_matrix) for r in runs) / 2
        assert t.score == pytest.approx(expected)
    best = max(result.trials, key=lambda t: t.score)
    assert result.best is best
    assert result.trials[0].score != result.trials[1].score
    doc = json.loads(rendered["json"])
    assert doc["best"]["params"] == best.resolved() and doc["split"] == "validation"
    assert f'("split-digits", "smoke", {best.resolved()!r})' in rendered["markdown"]
    # the trials are ordinary stored runs: running them again trains nothing
    summary = api.run(result.trials[0].specs, results=tmp_path, device="cpu")
    assert summary.ran == 0 and summary.skipped == 2

def test_first_k_tasks_train_and_score_only_the_leading_tasks(tmp_path):
    full = make_specs("split-digits", "naive", [0], "smoke")[0]
    first = make_specs("split-digits", "naive", [0], "smoke", tasks=2)[0]
    assert "tasks" not in full.to_json() and first.to_json()["tasks"] == 2
    assert first.hash != full.hash and dataclasses.replace(first, tasks=0).hash == full.hash
    # all of a scenario's tasks is the plain spec, not a second name for it
    n = len(set_up("naive", "split-digits", [0])[1].train)
    assert make_specs("split-digits", "naive", [0], "smoke", tasks=n)[0] == full
    result, rendered = api.tune("split-digits", "naive", ["lr=0.001,0.05"], tasks=2,
                                results=tmp_path, outputs={"json": "-", "markdown": "-"},
                                **SMOKE)
    runs = ResultsStore(tmp_path).load().runs
    assert len(runs) == 4 and all(r.spec.tasks == 2 for r in runs)
    for r in runs:  # a 2-task matrix: the untrained row and one row per trained task
        assert r.scenario.n_tasks == 2 and len(r.accuracy_matrix) == 3
        assert all(len(row) == 2 for row in r.accuracy_matrix)
    assert json.loads(rendered["json"])["tasks"] == 2
    assert "first 2 tasks" in rendered["markdown"] and "first 2 tasks" in result.defaults_entry()
    (table,) = aggregate(runs).scenarios
    assert "first 2 tasks" in table.label


@pytest.mark.parametrize("bad,needle", [(1, "at least 2"), (-1, "at least 2"),
                                        (99, "more than the"), ("3", "whole number")])
def test_bad_task_counts_are_refused_before_anything_runs(tmp_path, bad, needle):
    with pytest.raises(ConfigError, match=needle):
        api.tune("split-digits", "naive", ["lr=0.1"], tasks=bad, results=tmp_path, **SMOKE)
    assert not list(tmp_path.glob("*.json"))


def test_tune_random_is_reproducible_and_stays_in_its_range(tmp_path):
    def search(seed):
        calls = []

        def fake_run(specs, results, **_):
            calls.append(specs)
        from clbench.app import tune as tuning
        tuning.tune("split-digits", "ewc", ["ewc_lambda=log:1:1000", "fisher_samples=8:64"],
                    sampler="random", trials=4, seeds=[0], budget="smoke", search_seed=seed,
                    run=fake_run, results=tmp_path)
        return [dict(s[0].strategy_params) for s in calls]
    first, same, other = search(1), search(1), search(2)
    assert first == same and first != other
    for params in first:
        assert 1 <= params["ewc_lambda"] <= 1000 and 8 <= params["fisher_samples"] <= 64
        assert isinstance(params["fisher_samples"], int)


@pytest.mark.parametrize("space,kwargs,needle", [
    (["nope=1,2"], {}, "has no parameter 'nope'"),
    (["lr=1e-3:1e-1"], {}, "a grid needs lists"),
    (["lr=0.1:0.01"], {"sampler": "random", "trials": 2}, "low < high"),
    (["lr=log:0:1"], {"sampler": "random", "trials": 2}, "low > 0"),
    (["lr=0.1"], {"validation": 0.0}, "needs a validation split"),
    (["lr=0.1"], {"sampler": "random"}, "--trials"),
    (["lr=0.1"], {"sampler": "annealing"}, "unknown sampler"),
    (["optimizer=sgd:adam"], {"sampler": "random", "trials": 1}, "range"),
    ([], {}, "nothing to search"),
])
def test_bad_searches_are_refused_before_anything_runs(tmp_path, space, kwargs, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        api.tune("split-digits", "naive", space, results=tmp_path,
                 **{**SMOKE, **kwargs})
    assert not list(tmp_path.glob("*.json"))


def test_the_cli_reports_a_bad_search_with_exit_2(tmp_path, capsys):
    code = cli.main(["tune", "--scenario", "split-digits", "--strategy", "naive",
                     "--space", "lrr=0.1", "--results", str(tmp_path), "--device", "cpu"])
    assert code == 2
    assert "has no parameter 'lrr'" in capsys.readouterr().err
    code = cli.main(["tune", "--scenario", "split-digits", "--strategy", "naive",
                     "--space", "lr=0.1", "--tune-tasks", "1", "--results", str(tmp_path)])
    assert code == 2 and "tasks must be 0 or at least 2" in capsys.readouterr().err


def test_space_values_are_coerced_by_the_strategy():
    (dim,) = parse_space("ewc", ["fisher_samples=16:32"])
    assert dim.integer and (dim.low, dim.high) == (16, 32)


@pytest.mark.skipif(importlib.util.find_spec("optuna") is None, reason="optuna not installed")
def test_tpe_asks_and_tells_optuna(tmp_path, monkeypatch):
    scores = iter([0.1, 0.5, 0.3])
    seen = []

    def fake_run(specs, results, **_):
        seen.append(dict(specs[0].strategy_params)["lr"])
    from clbench.app import tune as tuning
    monkeypatch.setattr(tuning, "_score", lambda store, specs, metric: ([next(scores)], "ok"))
    result = tuning.tune("split-digits", "naive", ["lr=log:1e-4:1e-1"], sampler="tpe",
                         trials=3, seeds=[0], budget="smoke", run=fake_run, results=tmp_path)
    assert len(seen) == 3 and all(1e-4 <= v <= 1e-1 for v in seen)
    assert result.best.score == 0.5 and result.best.resolved()["lr"] == seen[1]
