"""Continual-learning metrics: pure functions of the accuracy matrix.

``R`` has shape ``(T + 1, T)``: row 0 holds the accuracy of the untrained model on each task
(the baseline ``b``), row ``i`` (1..T) the test accuracy on each task after training on task
``i``. Entries that were not measured (a run that stopped early) are NaN; a metric that needs a
missing entry, or is undefined for the sequence length, is NaN. The notation below is 1-based
as in the papers: ``R[i][j]`` is row ``i``, task ``j`` (column ``j - 1``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

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


def parameter_growth(param_counts: Sequence[int | None]) -> float:
    """Final over initial parameter count (1.0: no growth)."""
    if not param_counts or param_counts[0] in (None, 0) or param_counts[-1] is None:
        return NAN
    return param_counts[-1] / param_counts[0]


MATRIX_METRICS = {
    "acc": acc,
    "bwt": bwt,
    "fwt": fwt,
    "forgetting": forgetting,
    "learning_accuracy": learning_accuracy,
}


def all_metrics(R, param_counts: Sequence[int | None] = ()) -> dict[str, float | None]:
    """Every metric above; NaN becomes None (JSON null)."""
    out = {name: fn(R) for name, fn in MATRIX_METRICS.items()}
    out["param_growth"] = parameter_growth(list(param_counts))
    return {k: (None if v is None or math.isnan(v) else v) for k, v in out.items()}
