"""The paired tests, Welch's test and the multiplicity adjustments against scipy and
statsmodels (to 1e-9) and against R's published examples (to the digits R prints)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from clbench.errors import ConfigError
from clbench.reports.significance import (
    FALLBACK,
    adjust,
    compare_stats,
    family_sentence,
    paired_test,
    welch_test,
)
from clbench.reports.statistics import summarize

# R's `sleep` data (Student 1908): extra sleep of 10 patients under two drugs
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]
# R's ?wilcox.test, Hollander & Wolfe (1973), p. 29: depression scale before/after therapy
HW_X = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
HW_Y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]


def test_paired_t_equals_scipy_and_r():
    r = paired_test(SLEEP_1, SLEEP_2, "paired-t")
    ref = stats.ttest_rel(SLEEP_1, SLEEP_2)
    assert abs(r.p_value - ref.pvalue) < 1e-9
    ci = ref.confidence_interval(0.95)
    assert abs(r.ci_low - ci.low) < 1e-9 and abs(r.ci_high - ci.high) < 1e-9
    # R: t.test(extra ~ group, data = sleep, paired = TRUE): t = -4.0621, df = 9,
    # p-value = 0.002833, 95 percent CI -2.4598858 -0.7001142, mean difference -1.58
    assert abs(r.p_value - 0.002833) < 5e-7
    assert abs(r.ci_low + 2.4598858) < 1e-7 and abs(r.ci_high + 0.7001142) < 1e-7
    assert abs(r.difference + 1.58) < 1e-12 and r.n == 10
    d = np.subtract(SLEEP_1, SLEEP_2)
    assert abs(r.effect_size - d.mean() / d.std(ddof=1)) < 1e-12  # Cohen's d_z


def test_wilcoxon_is_exact_for_small_n_and_equals_scipy_and_r():
    r = paired_test(HW_X, HW_Y, "wilcoxon")
    ref = stats.wilcoxon(HW_X, HW_Y, method="exact")
    assert abs(r.p_value - ref.pvalue) < 1e-9
    # R: wilcox.test(x, y, paired = TRUE, alternative = "greater"): V = 40, p = 0.01953
    # (= 10 / 2^9, exact); two-sided: 20 / 512
    assert abs(r.p_value - 20 / 512) < 1e-12
    # five seeds: the smallest two-sided p is 2 / 2^5, never below 0.05
    assert abs(paired_test([1, 2, 3, 4, 5], [0, 0, 0, 0, 0], "wilcoxon").p_value
               - 2 / 32) < 1e-12


def test_welch_equals_scipy_and_r():
    r = welch_test(SLEEP_1, SLEEP_2)
    ref = stats.ttest_ind(SLEEP_1, SLEEP_2, equal_var=False)
    assert abs(r.p_value - ref.pvalue) < 1e-9
    ci = ref.confidence_interval(0.95)
    assert abs(r.ci_low - ci.low) < 1e-9 and abs(r.ci_high - ci.high) < 1e-9
    # R: t.test(extra ~ group, data = sleep): t = -1.8608, df = 17.776, p-value = 0.07939,
    # 95 percent CI -3.3654832 0.2054832
    assert abs(r.p_value - 0.07939) < 5e-6
    assert abs(r.ci_low + 3.3654832) < 1e-7 and abs(r.ci_high - 0.2054832) < 1e-7


def _holm_by_hand(p):
    m, order = len(p), np.argsort(p, kind="stable")
    out, running = np.empty(m), 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return out


def test_holm_and_bh_equal_the_definitions_statsmodels_scipy_and_r():
    p = [0.01, 0.04, 0.03, 0.005, 0.20, None, 0.5]
    holm = adjust(p, "holm")
    assert holm[5] is None  # a test not run is not in the family
    given = [x for x in p if x is not None]
    by_hand = _holm_by_hand(given)
    assert np.allclose([x for x in holm if x is not None], by_hand, rtol=0, atol=1e-12)
    # R: p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05), "holm") = 0.05 0.08 0.09 0.09 0.09
    assert np.allclose(adjust([0.01, 0.02, 0.03, 0.04, 0.05], "holm"),
                       [0.05, 0.08, 0.09, 0.09, 0.09], rtol=0, atol=1e-12)
    bh = [x for x in adjust(p, "bh") if x is not None]
    assert np.allclose(bh, stats.false_discovery_control(given, method="bh"), rtol=0,
                       atol=1e-9)
    # R: p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05), "BH") = 0.05 for all five
    assert np.allclose(adjust([0.01, 0.02, 0.03, 0.04, 0.05], "bh"), [0.05] * 5, atol=1e-12)
    assert adjust(given, "none") == given
    with pytest.raises(ConfigError, match="--adjust"):
        adjust(given, "bonferroni-ish")
    assert "5 test(s)" in family_sentence(5, "holm", 0.05)
    assert "Holm" in family_sentence(5, "holm", 0.05)


def test_planted_one_sd_difference_on_five_paired_seeds_found_where_welch_misses_it():
    # Five seeds whose accuracy spreads with sd 1 (in units of the seed-to-seed spread); the
    # candidate is better by exactly 1 sd on every seed, up to a small per-seed noise.
    seed_effect = np.array([-1.2, -0.4, 0.1, 0.5, 1.0])
    seed_effect = (seed_effect - seed_effect.mean()) / seed_effect.std(ddof=1)
    noise = np.array([0.05, -0.08, 0.02, 0.06, -0.05])
    baseline = 0.70 + 0.02 * seed_effect
    candidate = baseline + 0.02 * (1.0 + noise)  # + 1 sd
    seeds = [0, 1, 2, 3, 4]
    a = summarize(candidate.tolist(), seeds=seeds)
    b = summarize(baseline.tolist(), seeds=seeds)
    paired = compare_stats(a, b, "paired-t")
    welch = compare_stats(a, b, "welch")
    print(f"planted +1 sd on 5 seeds: paired-t p = {paired.p_value:.2e}, "
          f"Welch p = {welch.p_value:.3f}")
    assert paired.test == "paired-t" and paired.p_value < 1e-4, paired
    assert welch.test == "welch" and welch.p_value > 0.05, welch
    assert math.isclose(paired.difference, welch.difference, abs_tol=1e-12)


def test_paired_only_when_the_seeds_agree_else_welch_said():
    a = summarize([0.5, 0.6, 0.7], seeds=[0, 1, 2])
    b = summarize([0.4, 0.5, 0.6], seeds=[0, 1, 3])
    r = compare_stats(a, b, "paired-t")
    assert r.test == "welch" and r.note == FALLBACK
    # the seeds are matched by value, not by position
    c = summarize([0.6, 0.5, 0.4], seeds=[2, 1, 0])
    r = compare_stats(a, c, "paired-t")
    assert r.test == "paired-t" and r.p_value == 0.0 and abs(r.difference - 0.1) < 1e-12
    # bit-identical values: every difference zero, p = 1
    assert compare_stats(a, a, "paired-t").p_value == 1.0
    assert compare_stats(a, a, "wilcoxon").p_value == 1.0
    with pytest.raises(ConfigError, match="--test"):
        compare_stats(a, b, "sign")


def test_gate_false_alarm_rate_at_most_nominal_in_simulation():
    from clbench.reports.false_alarms import simulate

    cells = [[0.5, 0.6, 0.7], [0.80, 0.82, 0.79], [0.31, 0.35, 0.30, 0.33]] * 2
    raw = simulate(cells, nights=80, seeds=5, max_drop=0.0, adjust="none", rng_seed=1)
    # one-sided false alarms of a two-sided level-0.05 test: about 0.025 per cell
    assert 0.005 < raw.per_cell < 0.05, raw
    holm = simulate(cells, nights=80, seeds=5, max_drop=0.0, adjust="holm", rng_seed=1)
    assert holm.per_night <= 0.05 + 0.05, holm  # family-wise, with simulation error
    assert raw.per_night > holm.per_night
