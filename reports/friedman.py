"""Across scenarios: Demšar's procedure (JMLR 7, 2006, section 3.2.2). Pure functions.

Within each scenario the strategies are ranked by the mean of the scenario's primary metric (1 =
best, ties sharing the average rank). Over ``N`` scenarios and ``k`` strategies, with ``R_j``
strategy j's mean rank:

* Friedman's statistic ``chi2_F = 12 N / (k (k + 1)) * (sum_j R_j^2 - k (k + 1)^2 / 4)`` with
  k - 1 degrees of freedom, and Iman and Davenport's ``F_F = (N - 1) chi2_F / (N (k - 1) -
  chi2_F)``, F-distributed with k - 1 and (k - 1)(N - 1) degrees of freedom (the p-value
  reported; Demšar: chi2_F is "undesirably conservative");
* Nemenyi's critical difference ``CD = q_alpha sqrt(k (k + 1) / (6 N))``, ``q_alpha`` the
  studentized range quantile over sqrt(2) (``scipy.stats.studentized_range``): two strategies
  whose mean ranks differ by at least CD differ significantly;
* against a control (``clbench compare --candidate``): ``z = (R_i - R_control) / sqrt(k (k + 1)
  / (6 N))``, two-sided normal p-values adjusted by Holm's method over the k - 1 comparisons.

The test needs strategies ranked in every scenario: those ranked in only some are left out (and
named); with fewer than :data:`MIN_SCENARIOS` scenarios or :data:`MIN_STRATEGIES` strategies
the result says why instead of testing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from clbench.reports.statistics import average_ranks
from clbench.reports.table_model import ScenarioTable

MIN_SCENARIOS = 3
MIN_STRATEGIES = 3
SOURCE = "Demšar, Statistical comparisons of classifiers over multiple data sets, JMLR 7, 2006"


@dataclass
class ControlTest:
    method: str
    z: float
    p_value: float
    p_adjusted: float


@dataclass
class Friedman:
    methods: list[str]  # in the order of mean_ranks (best first)
    mean_ranks: list[float]
    scenarios: list[str]
    chi2: float  # Friedman's chi2_F
    p_chi2: float
    f_stat: float | None  # Iman-Davenport F_F (None when chi2_F makes it undefined)
    p_value: float  # Iman-Davenport's p (chi2_F's where F_F is undefined)
    alpha: float
    cd: float  # Nemenyi's critical difference at alpha
    control: str | None = None
    control_tests: list[ControlTest] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # not ranked in every scenario

    @property
    def n(self) -> int:
        return len(self.scenarios)

    @property
    def k(self) -> int:
        return len(self.methods)

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    def cliques(self) -> list[tuple[int, int]]:
        """Maximal runs ``(first, last)`` (indices into ``methods``, by rank) whose mean ranks
        lie within CD of each other: the groups the diagram joins by a bar."""
        out: list[tuple[int, int]] = []
        for i in range(self.k):
            j = i
            while j + 1 < self.k and self.mean_ranks[j + 1] - self.mean_ranks[i] < self.cd:
                j += 1
            if j > i and not any(a <= i and j <= b for a, b in out):
                out.append((i, j))
        return out

    def summary(self) -> str:
        """One paragraph for every format."""
        verdict = ("the strategies differ" if self.significant else
                   "no significant difference between the strategies")
        text = (f"Friedman test over {self.n} scenarios and {self.k} strategies: "
                f"chi2_F = {self.chi2:.3f} (p = {_p(self.p_chi2)})")
        if self.f_stat is not None:
            text += f", Iman-Davenport F_F = {self.f_stat:.3f} (p = {_p(self.p_value)})"
        text += f": {verdict} at {self.alpha:g}. "
        if self.control is None:
            text += (f"Nemenyi's critical difference CD = {self.cd:.3f} (alpha {self.alpha:g}): "
                     "mean ranks closer than CD do not differ significantly.")
        else:
            worse = [t.method for t in self.control_tests if t.p_adjusted < self.alpha]
            text += (f"Against the control {self.control}, Holm-adjusted over the "
                     f"{len(self.control_tests)} comparisons: "
                     + (f"{', '.join(worse)} differ{'s' if len(worse) == 1 else ''} "
                        "significantly." if worse else "none differs significantly."))
        if self.left_out:
            text += f" Not ranked in every scenario, left out: {_some(self.left_out)}."
        return text + f" ({SOURCE}.)"


def _some(names: Sequence[str], shown: int = 8) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def friedman(scores: Sequence[Sequence[float]], methods: Sequence[str],
             scenarios: Sequence[str], higher_is_better: bool = True, alpha: float = 0.05,
             control: str | None = None) -> Friedman:
    """Demšar's procedure on ``scores`` (one row per scenario, one column per method)."""
    from scipy.special import chdtrc, fdtrc, ndtr

    data = np.asarray(scores, dtype=float)
    n, k = data.shape
    sign = -1.0 if higher_is_better else 1.0
    ranks = np.array([average_ranks(sign * row) for row in data])
    mean = ranks.mean(axis=0)
    chi2 = 12 * n / (k * (k + 1)) * (float(np.sum(mean ** 2)) - k * (k + 1) ** 2 / 4)
    p_chi2 = float(chdtrc(k - 1, chi2))
    denom = n * (k - 1) - chi2
    if denom > 0:
        f_stat = (n - 1) * chi2 / denom
        p_value = float(fdtrc(k - 1, (k - 1) * (n - 1), f_stat))
    else:  # every scenario ranks the strategies alike: F_F is infinite
        f_stat, p_value = None, p_chi2
    se = math.sqrt(k * (k + 1) / (6 * n))
    from scipy.stats import studentized_range

    cd = float(studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2) * se
    order = sorted(range(k), key=lambda j: (mean[j], methods[j]))
    result = Friedman([methods[j] for j in order], [float(mean[j]) for j in order],
                      list(scenarios), chi2, p_chi2, f_stat, p_value, alpha, cd)
    if control is not None:
        from clbench.reports.significance import adjust

        c = list(methods).index(control)
        others = [j for j in order if j != c]
        z = [(mean[j] - mean[c]) / se for j in others]
        p = [float(2 * ndtr(-abs(v))) for v in z]
        result.control = control
        result.control_tests = [ControlTest(methods[j], float(zj), pj, float(pa))
                                for j, zj, pj, pa in zip(others, z, p, adjust(p, "holm"))]
    return result


@dataclass
class NotTested:
    reason: str  # why no test: too few scenarios or strategies


def across_scenarios(tables: Sequence[ScenarioTable], alpha: float = 0.05,
                     control: str | None = None) -> Friedman | NotTested:
    """Demšar's procedure over the leaderboard's scenario tables: the scores are each ranked
    cell's mean of its scenario's primary metric; the strategies are the cell labels ranked in
    every scenario (``control`` among them, if given)."""
    from clbench.metrics import METRIC_BY_KEY

    tables = [t for t in tables if any(c.rank is not None for c in t.cells)]
    ranked = [{c.label: c for c in t.cells if c.rank is not None} for t in tables]
    everywhere = sorted(set.intersection(*(set(r) for r in ranked))) if ranked else []
    left_out = sorted(set().union(*(set(r) for r in ranked)) - set(everywhere)) if ranked \
        else []
    if len(tables) < MIN_SCENARIOS:
        return NotTested(f"too few scenarios for the Friedman test: {len(tables)} with ranked "
                         f"strategies, it needs at least {MIN_SCENARIOS}")
    if len(everywhere) < MIN_STRATEGIES:
        return NotTested(f"too few strategies for the Friedman test: {len(everywhere)} ranked "
                         f"in all {len(tables)} scenarios, it needs at least {MIN_STRATEGIES}"
                         + (f" (ranked in some only: {_some(left_out)})" if left_out else ""))
    if control is not None and control not in everywhere:
        return NotTested(f"the control {control} is not ranked in every scenario: no test "
                         "against it")
    # each scenario's primary metric, signed so that higher is better
    scores = [[(1 if METRIC_BY_KEY[t.primary_metric].higher_is_better else -1)
               * r[m].metrics[t.primary_metric].mean for m in everywhere]
              for t, r in zip(tables, ranked)]
    result = friedman(scores, everywhere, [t.label for t in tables], True, alpha, control)
    result.left_out = left_out
    return result
