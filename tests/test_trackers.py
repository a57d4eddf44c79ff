"""Experiment trackers (``clbench run --log``, clbench.trackers): TensorBoard and MLflow get each
run's hyperparameters, per-step loss, curve points and final metrics, read back with each
library's own reader, offline; a missing library is a clear error; a failing tracker warns once
and the run and the store go on; without ``--log`` nothing of it runs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_run import clbench

from clbench import api
from clbench.app import tracking
from clbench.errors import ConfigError
from clbench.metrics import run_metrics
from clbench.registry import TRACKERS

SCENARIO = "split-digits:setting=class"  # 5 tasks, 2 optimiser steps each at the smoke budget


def _run(root, logs, seeds="0,1", **continual):
    specs, _ = api.plan(scenarios=[SCENARIO], strategies=["replay"], seeds=seeds,
                        budget="smoke", **continual)
    summary = api.run(specs, results=root / "results", device="cpu", logs=logs)
    runs = {r.spec.hash: r for r in api.ResultsStore(root / "results").load().runs}
    return summary, [runs[s.hash] for s in specs]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One batched group of 2 seeds with continual evaluation, logged to both trackers."""
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    root = tmp_path_factory.mktemp("tracked")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    summary, runs = _run(root, [f"tensorboard:{root / 'tb'}", f"mlflow:{uri}"],
                         eval_every=3, eval_subset=40)
    assert summary.failed == 0
    return root, uri, runs


def test_tensorboard_holds_the_hyperparameters_loss_curve_and_final_metrics(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, _, runs = tracked
    for run in runs:
        events = EventAccumulator(str(root / "tb" / run.spec_hash))
        events.Reload()
        loss = events.Scalars("train/loss")
        assert [e.step for e in loss] == list(range(1, 11))  # 5 tasks x 2 steps
        curve = run.curve
        task_1 = events.Scalars("accuracy/task_1")
        assert [e.step for e in task_1] == list(curve.steps)
        assert [e.value for e in task_1] == pytest.approx([a[0] for a in curve.accuracy])
        task_5 = events.Scalars("accuracy/task_5")  # evaluated from task 4's training on
        assert task_5[0].step == min(s for s in curve.steps if s > curve.task_ends[2])
        final = run_metrics(run)
        assert events.Scalars("final/acc")[0].value == pytest.approx(final["acc"])
        assert events.Scalars("final/min_acc")[0].value == pytest.approx(final["min_acc"])
        text = events.Tensors("hyperparameters/text_summary")[0].tensor_proto.string_val[0] \
            .decode()
        assert "| strategy.lr | 0.01 |" in text and f"| seed | {run.spec.seed} |" in text


def test_mlflow_holds_the_hyperparameters_loss_curve_and_final_metrics(tracked):
    from mlflow import MlflowClient

    _, uri, runs = tracked
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("clbench")
    found = {r.data.tags["clbench.spec_hash"]: r
             for r in client.search_runs([experiment.experiment_id])}
    assert set(found) == {r.spec_hash for r in runs}
    for run in runs:
        logged = found[run.spec_hash]
        assert logged.info.status == "FINISHED" and logged.data.tags["clbench.status"] == "ok"
        assert logged.data.params["strategy.lr"] == "0.01"
        assert logged.data.params["seed"] == str(run.spec.seed)
        assert logged.data.params["eval_every"] == "3"
        loss = client.get_metric_history(logged.info.run_id, "train.loss")
        assert sorted(m.step for m in loss) == list(range(1, 11))
        task_1 = sorted(client.get_metric_history(logged.info.run_id, "accuracy.task_1"),
                        key=lambda m: m.step)
        assert [m.step for m in task_1] == list(run.curve.steps)
        assert [m.value for m in task_1] == pytest.approx([a[0] for a in run.curve.accuracy])
        final = run_metrics(run)
        assert logged.data.metrics["final.acc"] == pytest.approx(final["acc"])
        assert logged.data.metrics["final.wc_acc"] == pytest.approx(final["wc_acc"])


def test_trackers_change_no_result(tracked, tmp_path):
    _, _, runs = tracked
    _, plain = _run(tmp_path, [], eval_every=3, eval_subset=40)
    assert [r.accuracy_matrix for r in plain] == [r.accuracy_matrix for r in runs]
    assert [r.curve.accuracy for r in plain] == [r.curve.accuracy for r in runs]


def test_a_failing_tracker_warns_once_and_the_run_is_stored(tmp_path):
    pytest.importorskip("tensorboard")
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the event directory would go")
    tracking._warned.clear()
    with pytest.warns(tracking.TrackerWarning) as caught:
        summary, runs = _run(tmp_path, [f"tensorboard:{blocked}"], seeds="0")
        summary_2, _ = _run(tmp_path, [f"tensorboard:{blocked}"], seeds="1")
    assert summary.failed == summary_2.failed == 0 and runs[0].status == "ok"
    ours = [w for w in caught if issubclass(w.category, tracking.TrackerWarning)]
    assert len(ours) == 1  # once, though two groups ran
    assert "tensorboard" in str(ours[0].message) and "the run and the store go on" in \
        str(ours[0].message)


def test_an_unreachable_tracking_server_warns_and_the_run_goes_on(tmp_path):
    pytest.importorskip("mlflow")
    tracking._warned.clear()
    with pytest.warns(tracking.TrackerWarning, match="mlflow:http://127.0.0.1:9"):
        summary, runs = _run(tmp_path, ["mlflow:http://127.0.0.1:9"], seeds="0")
    assert summary.failed == 0 and runs[0].status == "ok"


def test_bad_or_missing_trackers_are_clear_errors_before_training(tmp_path, capsys,
                                                                   monkeypatch):
    with pytest.raises(ConfigError, match="cannot read --log 'tensorboard'"):
        tracking.parse_log("tensorboard")
    with pytest.raises(ConfigError, match="unknown tracker 'wandb'"):
        tracking.parse_log("wandb:project")
    monkeypatch.setattr(TRACKERS.get("mlflow"), "modules", ("clbench_no_such_module",))
    code, _, err = clbench(capsys, "run", "--scenario", SCENARIO, "--strategy", "naive",
                           "--budget", "smoke", "--results", tmp_path / "r", "--log",
                           "mlflow:sqlite:///x.db")
    assert code != 0
    assert "the mlflow tracker needs clbench_no_such_module" in " ".join(err.split())
    assert "pip install 'clbench[mlflow]'" in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").glob("*.json"))


def test_without_log_no_tracker_runs_and_no_step_hook_is_set():
    """No --log and no --eval-every: the strategy's loop has no observer (no per-step host
    synchronisation), and no tracker library is imported."""
    code = """
import sys
from clbench import api
from clbench.app.runner import _step_observer
specs, _ = api.plan(scenarios=["split-digits"], strategies=["naive"], seeds="0", budget="smoke")
assert _step_observer(None, None) is None
import tempfile
with tempfile.TemporaryDirectory() as d:
    assert api.run(specs, results=d, device="cpu").failed == 0
print(sorted(m for m in ("mlflow", "torch.utils.tensorboard", "clbench.app.tracking") if m in
             sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["['clbench.app.tracking']"]  # the module, never a library
    assert tracking.open_tracking((), []) is None
