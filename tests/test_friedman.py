"""Demšar's procedure against his own worked example (JMLR 7, 2006, section 3.2.4 and Table 6:
C4.5 with and without tuning m and cf, AUC on 14 data sets)."""

from __future__ import annotations

import numpy as np

from clbench.reports.friedman import NotTested, across_scenarios, friedman

METHODS = ["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"]
DATA_SETS = ["adult (sample)", "breast cancer", "breast cancer wisconsin", "cmc", "ionosphere",
             "iris", "liver disorders", "lung cancer", "lymphography", "mushroom",
             "primary tumor", "rheum", "voting", "wine"]
AUC = [[0.763, 0.768, 0.771, 0.798], [0.599, 0.591, 0.590, 0.569],
       [0.954, 0.971, 0.968, 0.967], [0.628, 0.661, 0.654, 0.657],
       [0.882, 0.888, 0.886, 0.898], [0.936, 0.931, 0.916, 0.931],
       [0.661, 0.668, 0.609, 0.685], [0.583, 0.583, 0.563, 0.625],
       [0.775, 0.838, 0.866, 0.875], [1.000, 1.000, 1.000, 1.000],
       [0.940, 0.962, 0.965, 0.962], [0.619, 0.666, 0.614, 0.669],
       [0.972, 0.981, 0.9752, 0.9748], [0.957, 0.978, 0.946, 0.970]]
# voting: the paper prints 0.975 for both C4.5+cf and C4.5+m+cf, but ranks them 2 and 3 (by
# their unrounded values); 0.9752 and 0.9748 keep its ranks.


def test_demsar_worked_example():
    r = friedman(AUC, METHODS, DATA_SETS)
    ranks = dict(zip(r.methods, r.mean_ranks))
    # the paper: average ranks 3.143, 2.000, 2.893 and 1.964
    assert [round(ranks[m], 3) for m in METHODS] == [3.143, 2.000, 2.893, 1.964]
    assert r.methods[0] == "C4.5+m+cf" and r.methods[-1] == "C4.5"
    # chi2_F = 9.28, F_F = 3.69 (F(3, 39) critical value 2.85 at 0.05: significant)
    assert round(r.chi2, 2) == 9.28 and round(r.f_stat, 2) == 3.69
    assert r.significant and r.p_value < 0.05
    # Nemenyi: q_0.05 = 2.569 for k = 4, CD = 2.569 sqrt(4 * 5 / (6 * 14)) = 1.25
    assert round(r.cd, 2) == 1.25
    assert abs(r.cd - 2.569 * np.sqrt(20 / 84)) < 1e-3
    # Holm against C4.5 as the control: z = 2.416 (p 0.016), 2.342 (p 0.019), 0.512 (p 0.607);
    # the first two are significant (0.016 < 0.05/3, 0.019 < 0.05/2), C4.5+cf is not
    c = friedman(AUC, METHODS, DATA_SETS, control="C4.5")
    tests = {t.method: t for t in c.control_tests}
    assert round(abs(tests["C4.5+m+cf"].z), 2) == 2.42 and round(tests["C4.5+m+cf"].p_value,
                                                                   3) == 0.016
    assert round(abs(tests["C4.5+m"].z), 2) == 2.34 and round(tests["C4.5+m"].p_value, 3) == 0.019
    assert round(abs(tests["C4.5+cf"].z), 2) == 0.51 and round(tests["C4.5+cf"].p_value, 2) == 0.61
    assert {m for m, t in tests.items() if t.p_adjusted < 0.05} == {"C4.5+m+cf", "C4.5+m"}
    assert "C4.5+m+cf, C4.5+m differ significantly" in c.summary()
    # Nemenyi's CD groups: C4.5 (3.143) is within CD of C4.5+cf (2.893) only
    assert "CD = 1.25" in r.summary()


def test_too_few_scenarios_or_strategies_says_so():
    assert isinstance(across_scenarios([]), NotTested)
    assert "too few scenarios" in across_scenarios([]).reason


def _make():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent / "golden" / "make_results.py"
    spec = importlib.util.spec_from_file_location("golden_make_results", path)
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    return make


def _docs(n_scenarios: int, names=("joint", "replay", "naive")):
    make = _make()
    accs = {"joint": 0.9, "replay": 0.8, "naive": 0.5, "ewc": 0.6}
    return [make.run_result(f"s{k}", "task", {"setting": "task"}, name, {}, seed, "smoke",
                            [[0.5, 0.5], [accs[name], 0.5], [accs[name], accs[name]]],
                            group_seeds=range(2))
            for k in range(n_scenarios) for name in names for seed in range(2)]


def test_leaderboard_friedman_figures_and_what_is_left_out(tmp_path):
    from clbench.reports.figures import write_figures
    from clbench.reports.json_report import across_json
    from clbench.reports.tables import aggregate

    # ewc ran in one scenario only: left out, and named
    lb = aggregate(_docs(3) + _docs(1, ("ewc",)))
    r = across_scenarios(lb.scenarios)
    assert r.methods == ["joint", "replay", "naive"] and r.mean_ranks == [1.0, 2.0, 3.0]
    assert r.left_out == ["ewc"] and "left out: ewc" in r.summary()
    # k = 3, N = 3, identical rankings: chi2_F = N (k - 1) = 6, F_F undefined
    assert abs(r.chi2 - 6.0) < 1e-12 and r.f_stat is None
    assert across_json(lb)["critical_difference"] == r.cd
    written = {p.name for p in write_figures(lb, tmp_path)}
    assert {"critical-difference.svg", "critical-difference.pdf"} <= written
    few = across_scenarios(aggregate(_docs(2)).scenarios)
    assert isinstance(few, NotTested) and "2 with ranked strategies" in few.reason
    few = across_scenarios(aggregate(_docs(3, ("joint", "naive"))).scenarios)
    assert isinstance(few, NotTested) and "too few strategies" in few.reason


def test_compare_tests_the_candidate_as_control_across_scenarios():
    from clbench.reports.compare import (
        compare,
        render_comparison_html,
        render_comparison_markdown,
    )
    from clbench.reports.tables import aggregate

    lb = aggregate(_docs(3, ("joint", "replay", "naive", "ewc")))
    text = render_comparison_markdown(compare(lb, "naive"))
    assert "## Across scenarios" in text and "Against the control naive, Holm" in text
    page = render_comparison_html(compare(lb, "naive"))
    assert page.count('class="chart cd-diagram"') == 1 and "against naive (Holm)" in page
    few = render_comparison_markdown(compare(aggregate(_docs(2)), "naive"))
    assert "too few scenarios for the Friedman test" in few
