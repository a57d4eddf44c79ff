"""Continual-learning metrics: pure functions of the accuracy matrix.

``R`` has shape ``(T + 1, T)``: row 0 holds the accuracy of the untrained model on each task
(the baseline ``b``), row ``i`` (1..T) the test accuracy on each task after training on task
``i``. Entries that were not measured (a run that stopped early) are NaN; a metric that needs a
missing entry, or is undefined for the sequence length, is NaN. The notation below is 1-based
as in the papers: ``R[i][j]`` is row ``i``, task ``j`` (column ``j - 1``).

``METRICS`` is the one table of metric definitions (key, label, direction, kind, definition
and function) that the reports, the comparison, the gate, the CLI and the reference table read;
:func:`run_metrics` computes all of them for one run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from clbench.errors import ConfigError

NAN = float("nan")


def as_matrix(R: Sequence[Sequence[float | None]] | np.ndarray) -> np.ndarray:
    """``R`` as a float array, None -> NaN; checks the ``(T + 1, T)`` shape."""
    if isinstance(R, np.ndarray) and R.dtype == float:
        m = R  # already converted (the report computes every metric from one array)
    else:
        m = np.array([[NAN if v is None else v for v in row] for row in R], dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] + 1 or m.shape[1] < 1:
        raise ValueError(f"accuracy matrix must have shape (T + 1, T), got {m.shape}")
    return m


def _mean(values: np.ndarray) -> float:
    if values.size == 0 or np.isnan(values).any():
        return NAN
    return float(values.mean())


def acc(R) -> float:
    """Average accuracy (Lopez-Paz & Ranzato 2017, GEM): ``ACC = 1/T sum_j R[T][j]``."""
    m = as_matrix(R)
    return _mean(m[-1])


def bwt(R) -> float:
    """Backward transfer (Lopez-Paz & Ranzato 2017):
    ``BWT = 1/(T-1) sum_{j=1}^{T-1} (R[T][j] - R[j][j])``. Negative means forgetting;
    undefined (NaN) for T = 1."""
    m = as_matrix(R)
    T = m.shape[1]
    if T < 2:
        return NAN
    return _mean(np.array([m[T, j - 1] - m[j, j - 1] for j in range(1, T)]))


def fwt(R) -> float:
    """Forward transfer (Lopez-Paz & Ranzato 2017):
    ``FWT = 1/(T-1) sum_{j=2}^{T} (R[j-1][j] - b[j])`` with ``b`` the untrained model's
    accuracy (row 0). Undefined for T = 1."""
    m = as_matrix(R)
    T = m.shape[1]
    if T < 2:
        return NAN
    return _mean(np.array([m[j - 1, j - 1] - m[0, j - 1] for j in range(2, T + 1)]))


def forgetting(R) -> float:
    """Average forgetting (Chaudhry et al. 2018, "Riemannian Walk"), at the end of the
    sequence: ``F = 1/(T-1) sum_{j=1}^{T-1} f_j`` with
    ``f_j = max_{l in 1..T-1} R[l][j] - R[T][j]``. Undefined for T = 1."""
    m = as_matrix(R)
    T = m.shape[1]
    if T < 2:
        return NAN
    return _mean(np.array([m[1:T, j - 1].max() - m[T, j - 1] for j in range(1, T)]))


def learning_accuracy(R) -> float:
    """Learning accuracy (Riemer et al. 2019, "Learning to learn without forgetting"):
    ``LA = 1/T sum_i R[i][i]``, the accuracy on each task just after learning it."""
    m = as_matrix(R)
    T = m.shape[1]
    return _mean(np.array([m[i, i - 1] for i in range(1, T + 1)]))


def average_incremental_accuracy(R) -> float:
    """Average incremental accuracy (Rebuffi et al. 2017, iCaRL; Hou et al. 2019): the average
    accuracy over the tasks seen so far after each task, averaged over the sequence,
    ``AIA = 1/T sum_{k=1}^{T} (1/k sum_{j=1}^{k} R[k][j])``."""
    m = as_matrix(R)
    T = m.shape[1]
    return _mean(np.array([_mean(m[k, :k]) for k in range(1, T + 1)]))


# ---------------------------------------------------------------------------------------------
# Metrics of the continual-evaluation curve (De Lange, van de Ven & Tuytelaars, ICLR 2023,
# "Continual evaluation for lifelong learning: identifying the stability gap", Section 3).
# ``steps`` [P]: the optimiser step of each evaluation point; ``task_ends`` [T]: the step after
# which task i's training ended (|T_i| in the paper); ``A`` [P, T]: the accuracy on task i at
# point n, ``a(E_i, f_n)`` (NaN: not evaluated). Each is taken at the end of the sequence
# (k = T, t = the last point), 1-based in the formulas.

WF_WINDOW = 100  # optimiser steps: the window of WF^w (the paper's w iterations at rho_eval 1)


def _curve(steps, task_ends, A) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    steps = np.asarray(steps, dtype=float)
    A = np.array([[NAN if v is None else v for v in row] for row in A], dtype=float)
    if A.ndim != 2 or A.shape[0] != steps.shape[0]:
        raise ValueError(f"curve accuracy must have one row per step, got {A.shape}")
    return steps, np.asarray(task_ends, dtype=float), A


def min_acc(steps, task_ends, A) -> float:
    """Average minimum accuracy (De Lange et al. 2023):
    ``min-ACC = 1/(T-1) sum_{i=1}^{T-1} min_{|T_i| < n <= t} a(E_i, f_n)``: each old task's
    worst accuracy at any evaluation after its training ended, averaged. Undefined for T = 1
    or a curve that does not reach the end of the sequence."""
    steps, ends, A = _curve(steps, task_ends, A)
    T = A.shape[1]
    if T < 2 or len(ends) < T:
        return NAN
    mins = []
    for i in range(T - 1):
        after = A[steps > ends[i], i]
        mins.append(after.min() if after.size else NAN)
    return _mean(np.array(mins))


def wc_acc(steps, task_ends, A) -> float:
    """Worst-case accuracy (De Lange et al. 2023):
    ``WC-ACC = 1/k a(E_k, f_t) + (1 - 1/k) min-ACC`` at the end of the sequence (k = T): the
    last task's final accuracy weighed with the old tasks' minimum accuracies, a lower bound
    of the accuracy a model deployed at any step after task k - 1 has."""
    _, _, arr = _curve(steps, task_ends, A)
    T = arr.shape[1]
    low = min_acc(steps, task_ends, A)
    if T < 2 or not np.isfinite(low) or arr.shape[0] == 0:
        return NAN
    return float(arr[-1, T - 1] / T + (1 - 1 / T) * low)


def windowed_forgetting(steps, task_ends, A, window: int = WF_WINDOW) -> float:
    """Windowed forgetting WF^w (De Lange et al. 2023):
    ``WF^w = 1/(T-1) sum_{i=1}^{T-1} max_{m < n, step_n - step_m <= w} (a(E_i, f_m) -
    a(E_i, f_n))`` over the evaluations from task i's end on: the largest drop of an old
    task's accuracy within ``w`` optimiser steps (0 when it never drops), averaged over the
    old tasks; ``w`` = :data:`WF_WINDOW`. Undefined for T = 1."""
    steps, ends, A = _curve(steps, task_ends, A)
    T = A.shape[1]
    if T < 2 or len(ends) < T:
        return NAN
    drops = []
    for i in range(T - 1):
        keep = steps >= ends[i]
        s, a = steps[keep], A[keep, i]
        if np.isnan(a).any():
            drops.append(NAN)
            continue
        worst = 0.0
        for m in range(len(s)):
            later = (s > s[m]) & (s - s[m] <= window)
            if later.any():
                worst = max(worst, float(a[m] - a[later].min()))
        drops.append(worst)
    return _mean(np.array(drops))


def parameter_growth(param_counts: Sequence[int | None]) -> float:
    """Final over initial parameter count (1.0: no growth)."""
    if not param_counts or param_counts[0] in (None, 0) or param_counts[-1] is None:
        return NAN
    return param_counts[-1] / param_counts[0]


def _of_curve(metric: Callable[..., float]) -> Callable[[Any], float]:
    """``metric`` of the run's continual-evaluation curve; NaN (null) for a run without one."""
    def compute(run: RunObservations) -> float:
        curve = getattr(run, "curve", None)
        if curve is None:
            return NAN
        return metric(curve.steps, curve.task_ends, curve.accuracy)
    compute.__name__ = metric.__name__
    return compute


def _final_param_count(run: RunObservations) -> float | None:
    return run.param_counts[-1]


def _run_param_growth(run: RunObservations) -> float:
    return parameter_growth(list(run.param_counts))


def _wall_time(run: RunObservations) -> float | None:
    return run.times.wall_s


def _peak_host_memory(run: RunObservations) -> float | None:
    return run.memory.host_bytes


def _peak_device_memory(run: RunObservations) -> float | None:
    return run.memory.device_bytes


class RunObservations(Protocol):
    """What the metrics read of one run (a :class:`clbench.schema.RunResult`)."""

    accuracy_matrix: Sequence[Sequence[float | None]]
    param_counts: Sequence[int | None]
    times: Any  # .wall_s
    memory: Any  # .host_bytes, .device_bytes
    curve: Any  # None, or .steps, .task_ends, .accuracy (clbench.schema.Curve)


@dataclass(frozen=True)
class MetricDef:
    """One metric: how reports name, format and order it, what it means, how it is computed.

    ``compute`` takes the accuracy matrix (as an array) when ``of_matrix``, else the run."""

    key: str
    label: str
    higher_is_better: bool
    kind: str  # how reports format it: "fraction", "count", "ratio", "seconds", "bytes"
    definition: str  # what it measures, with its published formula and source
    compute: Callable[[Any], float | None]
    of_matrix: bool = False
    # A measurement of the run's seed group, shared by its members: reports average it once
    # per group (seeds of one group are not independent samples of it).
    per_group: bool = False
    # Scenario settings in which the metric means nothing: reports show "n/a" there, marked
    # with ``undefined_note`` (why), and list the metric in every table of such a metric
    # (n/a is an answer).
    undefined_in: tuple[str, ...] = ()
    undefined_note: str = ""

    def applies_to(self, setting: str | None) -> bool:
        """Whether the metric means something in a scenario of ``setting``."""
        return setting not in self.undefined_in


METRICS: tuple[MetricDef, ...] = (
    MetricDef("acc", "ACC", True, "fraction",
              "average accuracy after the last task, 1/T sum_j R[T][j] (Lopez-Paz & Ranzato "
              "2017)", acc, of_matrix=True),
    MetricDef("bwt", "BWT", True, "fraction",
              "backward transfer, 1/(T-1) sum_{j<T} (R[T][j] - R[j][j]); negative means "
              "forgetting (Lopez-Paz & Ranzato 2017)", bwt, of_matrix=True),
    MetricDef("fwt", "FWT", True, "fraction",
              "forward transfer, 1/(T-1) sum_{j>1} (R[j-1][j] - b[j]), b = untrained model "
              "(Lopez-Paz & Ranzato 2017)", fwt, of_matrix=True, undefined_in=("class",),
              undefined_note="FWT is n/a in class-incremental (single-head) settings: the "
              "untrained model cannot predict a task's classes before training on it, so the "
              "forward-transfer baseline is meaningless there."),
    MetricDef("forgetting", "Forgetting", False, "fraction",
              "1/(T-1) sum_{j<T} (max_{l<T} R[l][j] - R[T][j]) (Chaudhry et al. 2018)",
              forgetting, of_matrix=True),
    MetricDef("learning_accuracy", "LA", True, "fraction",
              "learning accuracy, 1/T sum_i R[i][i] (Riemer et al. 2019)", learning_accuracy,
              of_matrix=True),
    MetricDef("aia", "AIA", True, "fraction",
              "average incremental accuracy, 1/T sum_k (1/k sum_{j<=k} R[k][j]) (Rebuffi et "
              "al. 2017)", average_incremental_accuracy, of_matrix=True),
    MetricDef("min_acc", "min-ACC", True, "fraction",
              "average minimum accuracy of the old tasks after they were learned, over the "
              "continual-evaluation curve, 1/(T-1) sum_{i<T} min_{n>|T_i|} a(E_i, f_n) (De "
              "Lange et al. 2023); null without --eval-every", _of_curve(min_acc)),
    MetricDef("wc_acc", "WC-ACC", True, "fraction",
              "worst-case accuracy, 1/T a(E_T, f_t) + (1 - 1/T) min-ACC (De Lange et al. "
              "2023); null without --eval-every", _of_curve(wc_acc)),
    MetricDef(f"wf{WF_WINDOW}", f"WF^{WF_WINDOW}", False, "fraction",
              f"windowed forgetting: the largest drop of an old task's accuracy within "
              f"{WF_WINDOW} optimiser steps, averaged over the old tasks (De Lange et al. "
              "2023); null without --eval-every", _of_curve(windowed_forgetting)),
    MetricDef("params", "Params", False, "count", "parameter count after the last task",
              _final_param_count),
    MetricDef("param_growth", "Growth", False, "ratio",
              "final / initial parameter count (1.0: no growth)", _run_param_growth),
    MetricDef("wall_time_s", "Wall time", False, "seconds",
              "wall time of the run's seed group, in seconds (a batched group trains its "
              "seeds together, so each member records the group's time)", _wall_time,
              per_group=True),
    MetricDef("peak_host_memory_bytes", "Peak host mem", False, "bytes",
              "peak resident memory of the process during the run's group", _peak_host_memory,
              per_group=True),
    MetricDef("peak_device_memory_bytes", "Peak device mem", False, "bytes",
              "peak accelerator memory allocated during the run's group", _peak_device_memory,
              per_group=True),
)
METRIC_BY_KEY = {m.key: m for m in METRICS}
# Metrics of the accuracy matrix alone: what a reference row, a comparison or the gate reads.
MATRIX_METRICS: dict[str, Callable[[Any], float]] = {
    m.key: m.compute for m in METRICS if m.of_matrix}


def matrix_metric(key: str) -> MetricDef:
    """The accuracy-matrix metric ``key``; ConfigError naming the known ones otherwise."""
    if key not in MATRIX_METRICS:
        raise ConfigError(f"unknown metric {key!r}",
                          hint=f"choose one of: {', '.join(MATRIX_METRICS)}")
    return METRIC_BY_KEY[key]


def defined_for(key: str, n_tasks: int) -> bool:
    """Whether the accuracy-matrix metric ``key`` is defined on ``n_tasks`` tasks (BWT, FWT
    and forgetting need two): found on a matrix of that shape, before anything trains."""
    value = matrix_metric(key).compute(np.full((n_tasks + 1, n_tasks), 0.5))
    return value is not None and math.isfinite(value)


def _finite(value: float | None) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def run_metrics(run: RunObservations) -> dict[str, float | None]:
    """Every metric of ``METRICS`` for one run; None where undefined or not measured. The one
    place metrics are computed: the leaderboards and the JSON report both read it."""
    R = as_matrix(run.accuracy_matrix)
    return {m.key: _finite(m.compute(R if m.of_matrix else run)) for m in METRICS}


def all_metrics(R, param_counts: Sequence[int | None] = ()) -> dict[str, float | None]:
    """The accuracy-matrix metrics of a bare matrix, and the parameter growth; NaN becomes
    None (JSON null)."""
    m = as_matrix(R)
    out = {key: _finite(fn(m)) for key, fn in MATRIX_METRICS.items()}
    out["param_growth"] = _finite(parameter_growth(list(param_counts)))
    return out
