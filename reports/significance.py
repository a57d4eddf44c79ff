"""Two-sample tests over seeds and the adjustment of a family of them: pure functions.

Two cells of one scenario run with the same seeds share their initial weights, permutations or
class order and data order (tests/test_pairing.py), so their difference *per seed* is the
quantity of interest:

* ``paired-t``: Student's paired t-test on the per-seed differences
  (``scipy.stats.ttest_rel``, two-sided);
* ``wilcoxon``: Wilcoxon's signed-rank test on them (``scipy.stats.wilcoxon``, two-sided, exact
  null distribution for n <= 50 without ties or zeros, else the normal approximation). With 5
  seeds its smallest two-sided p is 2/32 = 0.0625: it cannot reject at 0.05 below 6 seeds;
* ``welch``: Welch's unpaired t-test (``scipy.stats.ttest_ind(equal_var=False)``), and the
  fallback whenever the two sides' seeds differ.

Each result carries the mean difference with its 95% confidence interval (paired: Student's t
over the differences; Welch: Welch-Satterthwaite degrees of freedom) and the effect size: the
mean difference over the sd of the differences (Cohen's d_z) when paired, over the root mean
square of the two sds (Cohen's d) for Welch.

A family of p-values is adjusted with statsmodels' ``multipletests`` (Holm's step-down method
by default, Benjamini-Hochberg as an option). scipy.stats and statsmodels are imported on first
use: a report that tests nothing never pays for them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clbench.errors import ConfigError
from clbench.reports.statistics import Stat, summarize, t_quantile

TESTS = ("paired-t", "wilcoxon", "welch")
ADJUSTMENTS = ("holm", "bh", "none")
TEST_NAMES = {
    "paired-t": "paired t-test over seeds (scipy.stats.ttest_rel, two-sided)",
    "wilcoxon": "Wilcoxon signed-rank test over seeds (scipy.stats.wilcoxon, two-sided, exact "
                "for n <= 50 without ties or zeros)",
    "welch": "Welch's t-test over seeds (scipy.stats.ttest_ind with equal_var=False, "
             "two-sided): it does not assume equal variances",
}
ADJUST_NAMES = {
    "holm": "Holm's step-down adjustment (statsmodels multipletests, method 'holm')",
    "bh": "Benjamini-Hochberg false discovery rate (statsmodels multipletests, method "
          "'fdr_bh')",
    "none": "no adjustment for multiple tests",
}
_STATSMODELS = {"holm": "holm", "bh": "fdr_bh"}
FALLBACK = "seeds differ: Welch's unpaired test instead"


@dataclass
class TestResult:
    """One candidate-vs-baseline test of one metric."""

    test: str  # the test run: "paired-t", "wilcoxon" or "welch" (one of TESTS)
    p_value: float | None  # None: too few values for the test
    n: int  # pairs (paired tests) or the smaller side (welch)
    difference: float | None  # mean of the per-seed differences, or difference of the means
    ci_low: float | None  # 95% confidence interval of ``difference``
    ci_high: float | None
    effect_size: float | None  # d_z (paired) or Cohen's d (welch); None when undefined
    note: str = ""  # why the requested test was not run (FALLBACK), else empty
    p_adjusted: float | None = None  # set by :func:`adjust` over the family


def check_test(test: Any) -> str:
    if test not in TESTS:
        raise ConfigError(f"unknown test {test!r}", hint=f"--test {'|'.join(TESTS)}")
    return test


def check_adjust(method: Any) -> str:
    if method not in ADJUSTMENTS:
        raise ConfigError(f"unknown adjustment {method!r}",
                          hint=f"--adjust {'|'.join(ADJUSTMENTS)}")
    return method


def pairs(a: Stat, b: Stat) -> tuple[list[float], list[float]] | None:
    """The two sides' values aligned by seed, when both hold values of the same seeds (one
    each); None otherwise (the seeds differ, or a side does not know its seeds)."""
    if not a.seeds or not b.seeds or len(a.seeds) != len(a.values) \
            or len(b.seeds) != len(b.values):
        return None
    va, vb = dict(zip(a.seeds, a.values)), dict(zip(b.seeds, b.values))
    if len(va) != len(a.values) or va.keys() != vb.keys():
        return None
    order = sorted(va, key=str)
    return [va[s] for s in order], [vb[s] for s in order]


def compare_stats(a: Stat, b: Stat, test: str = "paired-t") -> TestResult:
    """``a`` (candidate) against ``b`` (baseline) with ``test``; Welch, noted, when a paired
    test is asked for and the seeds differ."""
    check_test(test)
    if test != "welch":
        paired = pairs(a, b)
        if paired is not None:
            return paired_test(*paired, test=test)
        result = welch_test(a.values, b.values)
        result.note = FALLBACK
        return result
    return welch_test(a.values, b.values)


def paired_test(a: Sequence[float], b: Sequence[float], test: str = "paired-t") -> TestResult:
    """The paired test of ``a - b`` (aligned by seed). With every difference equal the p-value
    is 1 when they are zero and 0 otherwise (a constant shift; scipy gives NaN)."""
    d = [x - y for x, y in zip(a, b)]
    st = summarize(d)
    n = len(d)
    effect = None
    if st.std is not None and st.std > 0:
        effect = st.mean / st.std
    low, high = st.low, st.high
    if n < 2:
        return TestResult(test, None, n, st.mean, None, None, None)
    if max(d) == min(d):
        return TestResult(test, 1.0 if d[0] == 0 else 0.0, n, st.mean, low, high, effect)
    from scipy import stats

    with warnings.catch_warnings():  # nearly constant differences: scipy warns, p is fine
        warnings.simplefilter("ignore", RuntimeWarning)
        if test == "paired-t":
            p = float(stats.ttest_rel(a, b).pvalue)
        else:
            p = float(stats.wilcoxon(a, b, method="auto").pvalue)
    return TestResult(test, None if math.isnan(p) else p, n, st.mean, low, high, effect)


def welch_test(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Welch's unpaired test of ``mean(a) - mean(b)``, with the Welch-Satterthwaite 95%
    interval. Zero variance on both sides: p is 1 for equal means, 0 otherwise."""
    sa, sb = summarize(a), summarize(b)
    diff = None if sa.mean is None or sb.mean is None else sa.mean - sb.mean
    n = min(sa.n, sb.n)
    if sa.std is None or sb.std is None:
        return TestResult("welch", None, n, diff, None, None, None)
    va, vb = sa.std ** 2 / sa.n, sb.std ** 2 / sb.n
    rms = math.sqrt((sa.std ** 2 + sb.std ** 2) / 2)
    effect = diff / rms if rms > 0 else None
    if va + vb == 0:
        return TestResult("welch", 1.0 if diff == 0 else 0.0, n, diff, diff, diff, effect)
    dof = (va + vb) ** 2 / (va ** 2 / (sa.n - 1) + vb ** 2 / (sb.n - 1))
    half = _t_quantile(dof) * math.sqrt(va + vb)
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return TestResult("welch", None if math.isnan(p) else p, n, diff, diff - half, diff + half,
                      effect)


def _t_quantile(dof: float) -> float:
    if float(dof).is_integer():
        return t_quantile(int(dof))
    from scipy.special import stdtrit

    return float(stdtrit(dof, 0.975))


def adjust(p_values: Sequence[float | None], method: str = "holm") -> list[float | None]:
    """``p_values`` adjusted as one family (the None entries, tests not run, are left out of
    it and stay None)."""
    check_adjust(method)
    present = [i for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    if not present:
        return out
    if method == "none":
        for i in present:
            out[i] = p_values[i]
        return out
    from statsmodels.stats.multitest import multipletests

    adjusted = multipletests([p_values[i] for i in present], method=_STATSMODELS[method])[1]
    for i, p in zip(present, adjusted):
        out[i] = float(p)
    return out


def adjust_results(results: Sequence[TestResult], method: str = "holm") -> int:
    """Set ``p_adjusted`` of every result, the family being all of them; the family size (the
    tests with a p-value)."""
    adjusted = adjust([r.p_value for r in results], method)
    for r, p in zip(results, adjusted):
        r.p_adjusted = p
    return sum(p is not None for p in adjusted)


def family_sentence(size: int, method: str, alpha: float) -> str:
    """The sentence every output of a family of tests carries."""
    if method == "none":
        return (f"{size} test(s), p-values not adjusted for multiple tests: about "
                f"{alpha * size:.1f} of them fall below {alpha:g} by chance alone")
    what = "family-wise error rate" if method == "holm" else "false discovery rate"
    return (f"the {size} test(s) shown form one family: p-values adjusted by "
            f"{ADJUST_NAMES[method]}, controlling the {what} at {alpha:g}")
