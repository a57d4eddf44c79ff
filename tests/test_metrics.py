import math

import numpy as np
import pytest

from clbench import metrics

NAN = float("nan")

# T = 3. Row 0: untrained model; row i: after task i.
R = [
    [0.10, 0.20, 0.30],
    [0.90, 0.25, 0.35],
    [0.70, 0.80, 0.40],
    [0.60, 0.75, 0.85],
]


def test_acc_is_mean_of_last_row():
    assert metrics.acc(R) == pytest.approx((0.60 + 0.75 + 0.85) / 3)


def test_bwt_by_hand():
    # (R[3][1] - R[1][1] + R[3][2] - R[2][2]) / 2
    assert metrics.bwt(R) == pytest.approx(((0.60 - 0.90) + (0.75 - 0.80)) / 2)


def test_fwt_uses_row_zero_as_baseline():
    # (R[1][2] - b[2] + R[2][3] - b[3]) / 2
    assert metrics.fwt(R) == pytest.approx(((0.25 - 0.20) + (0.40 - 0.30)) / 2)


def test_forgetting_is_max_based():
    # f_1 = max(0.90, 0.70) - 0.60; f_2 = max(0.25, 0.80) - 0.75
    assert metrics.forgetting(R) == pytest.approx(((0.90 - 0.60) + (0.80 - 0.75)) / 2)


def test_learning_accuracy_is_mean_diagonal():
    assert metrics.learning_accuracy(R) == pytest.approx((0.90 + 0.80 + 0.85) / 3)


def test_forgetting_can_differ_from_minus_bwt():
    # Accuracy on task 1 peaks after task 2: forgetting counts from the peak, BWT from R[1][1].
    r = [[0.0, 0.0], [0.5, 0.1], [0.4, 0.9]]
    assert metrics.bwt(r) == pytest.approx(-0.1)
    assert metrics.forgetting(r) == pytest.approx(0.1)
    r2 = [[0.0, 0.0, 0.0], [0.5, 0.1, 0.1], [0.8, 0.9, 0.1], [0.6, 0.8, 0.9]]
    assert metrics.bwt(r2) == pytest.approx(((0.6 - 0.5) + (0.8 - 0.9)) / 2)
    assert metrics.forgetting(r2) == pytest.approx(((0.8 - 0.6) + (0.9 - 0.8)) / 2)


def test_single_task():
    r = [[0.1], [0.95]]
    assert metrics.acc(r) == pytest.approx(0.95)
    assert metrics.learning_accuracy(r) == pytest.approx(0.95)
    for fn in (metrics.bwt, metrics.fwt, metrics.forgetting):
        assert math.isnan(fn(r))


def test_missing_rows_make_dependent_metrics_undefined():
    r = [row[:] for row in R]
    r[3] = [None, None, None]  # the run stopped after task 2
    assert math.isnan(metrics.acc(r))
    assert math.isnan(metrics.bwt(r))
    assert math.isnan(metrics.forgetting(r))
    assert math.isnan(metrics.learning_accuracy(r))
    # FWT needs rows 0..T-1 only
    assert metrics.fwt(r) == pytest.approx(((0.25 - 0.20) + (0.40 - 0.30)) / 2)
    out = metrics.all_metrics(r, [10, 10, None, None])
    assert out["acc"] is None and out["param_growth"] is None
    assert out["fwt"] == pytest.approx(0.075)


def test_parameter_growth():
    assert metrics.parameter_growth([100, 150, 200]) == 2.0
    assert math.isnan(metrics.parameter_growth([]))


def test_shape_is_checked():
    with pytest.raises(ValueError, match=r"\(T \+ 1, T\)"):
        metrics.acc([[0.1, 0.2], [0.3, 0.4]])


def test_accepts_numpy_with_nan():
    m = np.array(R)
    m[0, 0] = NAN
    assert metrics.acc(m) == pytest.approx(metrics.acc(R))
    assert math.isnan(metrics.fwt([[NAN, 0.2], [0.9, 0.3], [0.8, 0.9]])) is False


# ---------------------------------------------------------------------------------------------
# The table of metric definitions and the one path that computes them


def test_metric_table_defines_every_metric_once():
    keys = [m.key for m in metrics.METRICS]
    assert len(keys) == len(set(keys)) and metrics.METRIC_BY_KEY.keys() == set(keys)
    assert list(metrics.MATRIX_METRICS) == ["acc", "bwt", "fwt", "forgetting",
                                            "learning_accuracy", "aia"]
    for m in metrics.METRICS:
        assert m.label and m.definition and m.kind in ("fraction", "count", "ratio", "seconds",
                                                       "bytes")
    assert not metrics.METRIC_BY_KEY["forgetting"].higher_is_better
    assert metrics.METRIC_BY_KEY["bwt"].higher_is_better
    assert "Chaudhry et al. 2018" in metrics.METRIC_BY_KEY["forgetting"].definition
    with pytest.raises(metrics.ConfigError, match="unknown metric 'speed'") as exc:
        metrics.matrix_metric("speed")
    assert "acc, bwt, fwt, forgetting, learning_accuracy, aia" in exc.value.hint


def test_run_metrics_computes_every_table_entry_from_one_run():
    from types import SimpleNamespace

    run = SimpleNamespace(accuracy_matrix=R, param_counts=(100, 100, 150, 200),
                          times=SimpleNamespace(wall_s=12.5),
                          memory=SimpleNamespace(host_bytes=2048, device_bytes=None))
    out = metrics.run_metrics(run)
    assert list(out) == [m.key for m in metrics.METRICS]
    assert out["acc"] == pytest.approx(metrics.acc(R))
    assert out["forgetting"] == pytest.approx(metrics.forgetting(R))
    assert (out["params"], out["param_growth"]) == (200.0, 2.0)
    assert (out["wall_time_s"], out["peak_host_memory_bytes"]) == (12.5, 2048.0)
    assert out["peak_device_memory_bytes"] is None
    one_task = SimpleNamespace(accuracy_matrix=[[0.1], [0.9]], param_counts=(1, 1),
                               times=SimpleNamespace(wall_s=None),
                               memory=SimpleNamespace(host_bytes=None, device_bytes=None))
    assert metrics.run_metrics(one_task)["bwt"] is None  # NaN (undefined for T = 1) -> None
    # no continual-evaluation curve: its metrics are null
    assert out["min_acc"] is out["wc_acc"] is out["wf100"] is None


# A continual-evaluation curve, T = 3 tasks ending at steps 2, 4 and 6, a point every step.
# Task 1 reaches 0.9 at its end and dips to 0.4 one step into task 2 (the stability gap).
STEPS = (0, 1, 2, 3, 4, 5, 6)
ENDS = (2, 4, 6)
A = ((0.1, 0.1, None),
     (0.5, 0.2, None),
     (0.9, 0.1, 0.1),   # end of task 1
     (0.4, 0.6, 0.1),   # the gap
     (0.7, 0.9, 0.2),   # end of task 2
     (0.6, 0.5, 0.7),
     (0.8, 0.7, 0.95))  # end of task 3


def test_average_incremental_accuracy_by_hand():
    # after task 1: 0.90; after 2: (0.70 + 0.80) / 2; after 3: (0.60 + 0.75 + 0.85) / 3
    assert metrics.average_incremental_accuracy(R) == pytest.approx(
        (0.90 + 0.75 + (0.60 + 0.75 + 0.85) / 3) / 3)
    assert metrics.all_metrics(R)["aia"] == pytest.approx(metrics.average_incremental_accuracy(R))


def test_min_acc_by_hand():
    # task 1 after step 2: min(0.4, 0.7, 0.6, 0.8) = 0.4; task 2 after step 4: min(0.5, 0.7)
    assert metrics.min_acc(STEPS, ENDS, A) == pytest.approx((0.4 + 0.5) / 2)


def test_wc_acc_by_hand():
    # 1/3 * the last task's final 0.95 + 2/3 * min-ACC 0.45
    assert metrics.wc_acc(STEPS, ENDS, A) == pytest.approx(0.95 / 3 + 2 / 3 * 0.45)


def test_windowed_forgetting_by_hand():
    # task 1 from step 2: 0.9, 0.4, 0.7, 0.6, 0.8 -> largest drop within 1 step 0.5;
    # task 2 from step 4: 0.9, 0.5, 0.7 -> 0.4
    assert metrics.windowed_forgetting(STEPS, ENDS, A, window=1) == pytest.approx(0.45)
    # a slow decline: the window decides how much of it counts
    slow = ((0.9, 0.0), (0.8, 0.0), (0.7, 0.0), (0.6, 0.5))
    assert metrics.windowed_forgetting((0, 1, 2, 3), (0, 3), slow, window=1) == \
        pytest.approx(0.1)
    assert metrics.windowed_forgetting((0, 1, 2, 3), (0, 3), slow, window=3) == \
        pytest.approx(0.3)
    rising = ((0.1, 0.0), (0.5, 0.0), (0.9, 0.5))
    assert metrics.windowed_forgetting((0, 1, 2), (0, 2), rising) == 0.0


def test_curve_metrics_are_undefined_without_old_tasks_or_a_full_sequence():
    one = ((0.1,), (0.9,))
    assert math.isnan(metrics.min_acc((0, 1), (1,), one))
    assert math.isnan(metrics.wc_acc((0, 1), (1,), one))
    assert math.isnan(metrics.windowed_forgetting((0, 1), (1,), one))
    # a run that stopped during task 3 (two task ends of three)
    assert math.isnan(metrics.min_acc(STEPS[:5], ENDS[:2], A[:5]))


def test_run_metrics_reads_the_curve():
    from types import SimpleNamespace

    run = SimpleNamespace(accuracy_matrix=R, param_counts=(1, 1, 1, 1),
                          times=SimpleNamespace(wall_s=1.0),
                          memory=SimpleNamespace(host_bytes=None, device_bytes=None),
                          curve=SimpleNamespace(steps=STEPS, task_ends=ENDS, accuracy=A))
    out = metrics.run_metrics(run)
    assert out["min_acc"] == pytest.approx(0.45)
    assert out["wc_acc"] == pytest.approx(0.95 / 3 + 0.3)
    assert out["wf100"] == pytest.approx(0.45)  # within 100 steps: 0.9 - 0.4 and 0.9 - 0.5


def test_cli_and_reports_take_metric_names_from_the_table():
    from clbench import cli
    from clbench.reports import compare

    parser = cli.build_parser()
    gate = next(a for a in parser._subparsers._group_actions[0].choices["gate"]._actions
                if a.dest == "metric")
    assert gate.help.startswith(", ".join(metrics.MATRIX_METRICS))
    assert compare.COMPARE_METRICS == tuple(metrics.MATRIX_METRICS)
