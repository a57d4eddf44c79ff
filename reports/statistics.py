"""The statistics of the leaderboards: pure functions of numbers, no tables.

Over the seeds of a cell each metric gets a mean, a sample standard deviation, ``n`` and a 95%
confidence interval from Student's t distribution (``t.ppf(0.975, n - 1) * sd / sqrt(n)``).
A value is *best* only when its interval lies entirely on the better side of every other's;
ranks are average ranks (ties share the mean of their positions).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import stdtrit  # scipy.stats costs a report ~0.5 s of start-up more

CONFIDENCE = 0.95


@dataclass
class Stat:
    """One metric over the ok seeds of a cell."""

    mean: float | None
    std: float | None  # sample standard deviation (ddof = 1); None for n < 2
    n: int
    ci: float | None  # half-width of the 95% Student-t confidence interval; None for n < 2
    values: list[float] = field(default_factory=list)
    per_group: bool = False  # n counts seed groups, not seeds (a group-wide measurement)
    seeds: list[Any] = field(default_factory=list)  # the seed of each value, where known
    # (paired tests align two cells by it: clbench.reports.significance)

    @property
    def low(self) -> float | None:
        return None if self.mean is None or self.ci is None else self.mean - self.ci

    @property
    def high(self) -> float | None:
        return None if self.mean is None or self.ci is None else self.mean + self.ci


def finite(value: Any) -> float | None:
    """A finite number as a float, else None."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int or (isinstance(value, (int, float)) and kind is not bool):
        value = float(value)
        return value if math.isfinite(value) else None
    return None


@functools.cache
def t_quantile(dof: int) -> float:
    """Two-sided 95% quantile of Student's t (``scipy.stats.t.ppf(0.975, dof)``: the inverse of
    its distribution function, ``stdtrit``)."""
    return float(stdtrit(dof, 0.5 + CONFIDENCE / 2))


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of their positions (``scipy.stats.rankdata``'s
    ``average``): values equal to ``v`` occupy positions ``start + 1 .. end``."""
    _, inverse, counts = np.unique(np.asarray(values, dtype=float), return_inverse=True,
                                   return_counts=True)
    end = np.cumsum(counts)
    return ((end - counts + 1 + end) / 2)[inverse]


def summarize(values: Iterable[float | None], per_group: bool = False,
              seeds: Sequence[Any] | None = None) -> Stat:
    """Mean, sample sd, n and the 95% Student-t half-width of the non-null values
    (``per_group``: the values are one per seed group; ``seeds``: the seed of each value,
    kept for those that are not null)."""
    finite_values = [finite(x) for x in values]
    vals = [v for v in finite_values if v is not None]
    kept = [] if seeds is None else [s for s, v in zip(seeds, finite_values) if v is not None]
    n = len(vals)
    if n == 0:
        return Stat(None, None, 0, None, [], per_group, kept)
    mean = math.fsum(vals) / n
    if n < 2:
        return Stat(mean, None, 1, None, vals, per_group, kept)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1))
    ci = t_quantile(n - 1) * sd / math.sqrt(n)
    return Stat(mean, sd, n, ci, vals, per_group, kept)


def best_beyond_intervals(entries: Sequence[tuple[str, Stat]], higher_is_better: bool
                          ) -> str | None:
    """The name of the entry whose 95% interval lies entirely on the better side of every other
    entry's interval. None for ties, for differences inside the intervals, with fewer than two
    entries, or when an entry has no interval (n < 2): "best" then would claim a difference
    the seeds do not show."""
    stats = [(st, name) for name, st in entries if st.mean is not None]
    if len(stats) < 2 or any(st.ci is None for st, _ in stats):
        return None
    sign = 1.0 if higher_is_better else -1.0
    stats.sort(key=lambda item: -sign * item[0].mean)
    (top, name), (runner_up, _) = stats[0], stats[1]
    if sign > 0:
        separated = top.mean - top.ci > runner_up.mean + runner_up.ci
    else:
        separated = top.mean + top.ci < runner_up.mean - runner_up.ci
    return name if separated else None


def mean_rows(rows: Sequence[Sequence[Any]]) -> list[float | None]:
    """Column means of ``rows``, ignoring values that are not finite numbers."""
    out = []
    for col in zip(*rows):
        vals = [v for v in map(finite, col) if v is not None]
        out.append(math.fsum(vals) / len(vals) if vals else None)
    return out
