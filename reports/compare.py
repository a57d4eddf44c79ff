"""Candidate-vs-baselines comparison and the regression gate.

Both compare cells (scenario x strategy, see :mod:`clbench.reports.tables`) seed by seed: paired
by seed where both sides ran the same seeds (a paired t-test by default, Wilcoxon's signed-rank
test on request), else with Welch's unpaired t-test, said in the output
(:mod:`clbench.reports.significance`). Every test one output prints is one family: its p-values
are adjusted together (Holm by default) and the marks read the adjusted values.

``compare`` reads the cells at the current versions only (stale cells are never compared).
``gate`` compares two stores, whose current versions may differ (last night's baseline ran the
previous version of a strategy): it matches cells by everything but the versions, takes on each
side the current cell or else the newest stale one, and says when the versions differ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clbench.errors import ConfigError
from clbench.metrics import MATRIX_METRICS, METRIC_BY_KEY, matrix_metric
from clbench.reports.formatting import environment, markdown_environment
from clbench.reports.significance import (
    ADJUST_NAMES,
    FALLBACK,
    TEST_NAMES,
    TestResult,
    adjust_results,
    check_adjust,
    check_test,
    compare_stats,
    family_sentence,
    welch_test,
)
from clbench.reports.statistics import Stat
from clbench.reports.table_model import Cell, Leaderboard
from clbench.reports.tables import cell_components, find_cells

COMPARE_METRICS = tuple(MATRIX_METRICS)  # the metrics of the accuracy matrix, in table order
WELCH = TEST_NAMES["welch"]


def welch(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided Welch p-value; None when either side has fewer than 2 values. With zero
    variance on both sides the p-value is 1 for equal means and 0 otherwise."""
    return welch_test(a, b).p_value


# ---------------------------------------------------------------------------------------------
# compare


@dataclass
class Delta:
    metric: str
    candidate: float | None
    baseline: float | None
    delta: float | None  # candidate - baseline (the mean per-seed difference when paired)
    p_value: float | None  # the raw p-value of ``result``'s test
    n_candidate: int
    n_baseline: int
    result: TestResult | None = None  # None: a side has no value

    @property
    def p_adjusted(self) -> float | None:
        return None if self.result is None else self.result.p_adjusted


@dataclass
class ComparisonRow:
    baseline: str
    deltas: list[Delta]
    complete: bool


@dataclass
class ScenarioComparison:
    scenario: str
    candidate: str
    candidate_complete: bool
    rows: list[ComparisonRow]
    metrics: list[str]  # the metrics compared: those that mean something in the scenario


@dataclass
class Comparison:
    candidate: str
    scenarios: list[ScenarioComparison]
    metadata: dict[str, Any]
    missing: list[str] = field(default_factory=list)  # baselines never found
    test: str = "paired-t"  # the test asked for (a cell whose seeds differ falls back to Welch)
    adjust: str = "holm"
    family_size: int = 0  # the tests with a p-value: one family, adjusted together
    across: str = ""  # the Friedman test over the scenarios, Holm against the candidate
    across_result: Any = None  # its clbench.reports.friedman.Friedman, where it ran

    @property
    def deltas(self) -> list[Delta]:
        return [d for sc in self.scenarios for row in sc.rows for d in row.deltas]

    @property
    def fallbacks(self) -> list[tuple[str, str]]:
        """(scenario, baseline) of the rows tested with Welch because the seeds differ."""
        return [(sc.scenario, row.baseline) for sc in self.scenarios for row in sc.rows
                if any(d.result is not None and d.result.note == FALLBACK for d in row.deltas)]


def _values(cell: Cell, metric: str) -> list[float]:
    stat = cell.metrics.get(metric)
    return [] if stat is None else list(stat.values)


def _stat(cell: Cell, metric: str) -> Stat | None:
    stat = cell.metrics.get(metric)
    return None if stat is None or stat.mean is None else stat


def compare(lb: Leaderboard, candidate: str, baselines: Sequence[str] = (),
            test: str = "paired-t", adjust: str = "holm") -> Comparison:
    """Per scenario, the candidate's deltas against each baseline (every other strategy of the
    scenario when ``baselines`` is empty), tested with ``test`` (Welch where the seeds differ)
    and adjusted by ``adjust`` over every test of the comparison."""
    check_test(test)
    check_adjust(adjust)
    found = find_cells(lb, candidate)
    if not found and any(candidate in (s.cell.label, s.cell.strategy) for s in lb.stale):
        raise ConfigError(f"the results of candidate {candidate!r} are all stale (run at other "
                          "versions than the current ones) and are not compared",
                          hint="rerun them with `clbench run`")
    if not found:
        known = sorted({c.label for t in lb.scenarios for c in t.cells})
        raise ConfigError(f"no runs of candidate {candidate!r} in the results",
                          hint=f"strategies in the results: {', '.join(known) or 'none'}")
    names = {n for t in lb.scenarios for c in t.cells for n in (c.label, c.strategy)}
    unknown = [b for b in baselines if b not in names]
    if unknown:
        known = sorted({c.label for t in lb.scenarios for c in t.cells})
        raise ConfigError(f"no runs of baseline(s) {', '.join(map(repr, unknown))} in the "
                          "results", hint=f"strategies in the results: {', '.join(known)}")
    seen: set[str] = set()
    scenarios = []
    for table, cand in found:
        others = [c for c in table.cells if c is not cand]
        if baselines:
            others = [c for c in others if c.label in baselines or c.strategy in baselines]
        metrics = [m for m in COMPARE_METRICS if m not in table.na_metrics]
        rows = []
        for base in others:
            seen.update((base.label, base.strategy))
            deltas = []
            for m in metrics:
                a, b = _stat(cand, m), _stat(base, m)
                result = None if a is None or b is None else compare_stats(a, b, test)
                deltas.append(Delta(m, None if a is None else a.mean,
                                    None if b is None else b.mean,
                                    None if result is None else result.difference,
                                    None if result is None else result.p_value,
                                    0 if a is None else a.n, 0 if b is None else b.n, result))
            rows.append(ComparisonRow(base.label, deltas, base.complete))
        scenarios.append(ScenarioComparison(table.label, cand.label, cand.complete, rows,
                                            metrics))
    missing = [b for b in baselines if b not in seen]
    cmp = Comparison(candidate, scenarios, lb.metadata, missing, test, adjust)
    cmp.family_size = adjust_results([d.result for d in cmp.deltas if d.result is not None],
                                     adjust)
    cmp.across, cmp.across_result = _across(lb, {cand.label for _, cand in found})
    return cmp


def _across(lb: Leaderboard, labels: set[str]) -> tuple[str, Any]:
    """Demšar's procedure over the scenarios with the candidate as the control (its own family:
    Holm over the candidate's comparisons with each strategy): (its summary, the result), or
    (why there is none, None)."""
    from clbench.reports.friedman import NotTested, across_scenarios

    if len(labels) != 1:
        return ("no Friedman test against the candidate: it has several configurations ("
                + ", ".join(sorted(labels)) + ")"), None
    result = across_scenarios(lb.scenarios, control=next(iter(labels)))
    if isinstance(result, NotTested):
        return result.reason, None
    return result.summary(), result


def _f(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "—"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def _p(v: float | None) -> str:
    if v is None:
        return "n < 2"
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def check_alpha(alpha: Any) -> float:
    """A significance level: a finite number in (0, 1); ConfigError otherwise (NaN too)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ConfigError(f"--alpha must be a number in (0, 1), got {alpha!r}",
                          hint="a significance level, e.g. 0.05")
    return float(alpha)


def _cell_text(d: Delta, adjust: str) -> str:
    r = d.result
    if r is None:
        return "—"
    text = _f(r.difference, True)
    if r.ci_low is not None:
        text += f" [{_f(r.ci_low, True)}, {_f(r.ci_high, True)}]"
    if r.p_value is None:
        return text + " (n < 2)"
    text += f"; p {_p(r.p_value)}"
    if adjust != "none":
        text += f", adj. {_p(r.p_adjusted)}"
    if r.effect_size is not None:
        text += f"; d {r.effect_size:+.2f}"
    if r.note:
        text += " †"
    return text


def comparison_view(cmp: Comparison, alpha: float = 0.05) -> dict[str, Any]:
    alpha = check_alpha(alpha)
    scenarios = []
    for sc in cmp.scenarios:
        rows = []
        for row in sc.rows:
            cells = []
            for d in row.deltas:
                better = None
                if d.delta is not None and d.delta != 0:
                    better = (d.delta > 0) == METRIC_BY_KEY[d.metric].higher_is_better
                significant = d.p_adjusted is not None and d.p_adjusted < alpha
                cells.append({"text": _cell_text(d, cmp.adjust),
                              "better": better, "significant": significant,
                              "candidate": _f(d.candidate), "baseline": _f(d.baseline),
                              "test": None if d.result is None else d.result.test,
                              "n": None if d.result is None else d.result.n})
            rows.append({"baseline": row.baseline, "complete": row.complete,
                         "cells": cells})
        scenarios.append({"scenario": sc.scenario, "candidate": sc.candidate,
                          "candidate_complete": sc.candidate_complete,
                          "header": [METRIC_BY_KEY[m].label for m in sc.metrics],
                          "rows": rows})
    paired = cmp.test != "welch"
    return {"candidate": cmp.candidate, "scenarios": scenarios,
            "test": TEST_NAMES[cmp.test], "welch": WELCH, "paired": paired,
            "adjust": cmp.adjust, "adjust_name": ADJUST_NAMES[cmp.adjust],
            "family": family_sentence(cmp.family_size, cmp.adjust, alpha),
            "family_size": cmp.family_size,
            "effect": ("d: the mean per-seed difference over the sd of the differences "
                       "(Cohen's d_z)" if paired else
                       "d: the difference of the means over the root mean square of the two "
                       "sds (Cohen's d)"),
            "fallbacks": cmp.fallbacks, "fallback": FALLBACK,
            "alpha": alpha, "missing": cmp.missing, "meta": cmp.metadata,
            "across": cmp.across}


def render_comparison_markdown(cmp: Comparison, alpha: float = 0.05) -> str:
    return markdown_environment().get_template("compare.md").render(
        **comparison_view(cmp, alpha))


def render_comparison_html(cmp: Comparison, alpha: float = 0.05) -> str:
    diagram = None
    if cmp.across_result is not None:
        from clbench.reports import drawing
        from clbench.reports.cd_diagram import cd_figure

        diagram = drawing.figure_svg(cd_figure(cmp.across_result), "cd-diagram",
                                     "Mean ranks against the candidate", "chart cd-diagram")
    return environment().get_template("compare.html").render(**comparison_view(cmp, alpha),
                                                             diagram=diagram)


# ---------------------------------------------------------------------------------------------
# gate


@dataclass
class GateRow:
    scenario: str
    strategy: str
    baseline_mean: float | None
    current_mean: float | None
    change: float | None  # improvement direction positive: current - baseline, sign-adjusted
    p_value: float | None
    n_baseline: int
    n_current: int
    verdict: str  # regression, improvement, within threshold, not significant, missing, new
    note: str = ""
    versions: str = ""  # the component versions of both sides, where they differ
    test: str = ""  # the test of p_value: "paired-t" (the seeds agree) or "welch"
    p_adjusted: float | None = None  # p_value adjusted over the gate's family


@dataclass
class GateResult:
    metric: str
    max_drop: float
    alpha: float
    rows: list[GateRow]
    adjust: str = "holm"
    family_size: int = 0  # the cells with a p-value, adjusted together

    @property
    def family(self) -> str:
        return family_sentence(self.family_size, self.adjust, self.alpha)

    @property
    def regressions(self) -> list[GateRow]:
        return [r for r in self.rows if r.verdict == "regression"]

    @property
    def missing(self) -> list[GateRow]:
        """Baseline cells the current store lacks: a fault, never a silent pass."""
        return [r for r in self.rows if r.verdict == "missing"]

    @property
    def compared(self) -> list[GateRow]:
        """Cells present on both sides, with values in the baseline."""
        return [r for r in self.rows if r.verdict not in ("missing", "new")]

    @property
    def failures(self) -> list[GateRow]:
        return [r for r in self.rows if r.verdict in ("regression", "missing")]

    @property
    def exit_code(self) -> int:
        """2 when no cell was compared (nothing to gate on: e.g. stores of other budgets);
        else 1 when a cell regressed or a baseline cell is missing now; else 0."""
        if not self.compared:
            return 2
        return 1 if self.failures else 0


def _version_order(v: str) -> int:
    return int(v) if v.isdigit() else -1


def _cells_by_match_key(lb: Leaderboard
                        ) -> dict[tuple[str, str], tuple[str, Cell, dict[str, tuple[str, str]]]]:
    """(scenario, cell) keys without versions -> (scenario label, cell, its components): the
    cell at the current versions, else the newest stale one (numerically by version)."""
    out = {(t.match_key, c.match_key): (t.label, c, cell_components(t, c))
           for t in lb.scenarios for c in t.cells}
    stale = sorted(lb.stale, key=lambda s: [_version_order(s.cell.versions[k])
                                            for k in ("scenario", "strategy", "backbone")])
    fresh = set(out)
    for s in stale:  # ascending: the newest is written last
        key = (s.table.match_key, s.cell.match_key)
        if key not in fresh:
            out[key] = (s.table.label, s.cell, cell_components(s.table, s.cell))
    return out


def _version_change(old: dict[str, tuple[str, str]], new: dict[str, tuple[str, str]]) -> str:
    changed = [f"{kind} {name} {old[kind][1]} → {version}"
               for kind, (name, version) in new.items() if old[kind][1] != version]
    return ("versions differ (baseline → current): " + ", ".join(changed)) if changed else ""


def gate(baseline: Leaderboard, current: Leaderboard, metric: str = "acc",
         max_drop: float = 0.01, alpha: float = 0.05, adjust: str = "holm") -> GateResult:
    """A cell regresses when its metric got worse by more than ``max_drop`` and the change is
    significant (adjusted p < ``alpha``): paired t-test by seed when both sides ran the same
    seeds, else Welch; the cells' p-values adjusted by ``adjust`` as one family. With fewer
    than 2 seeds on either side a change beyond the threshold counts on its own. A cell whose
    runs all failed now, but had values before, regresses too. A bit-identical rerun has zero
    differences: p = 1, never a regression."""
    try:
        matrix_metric(metric)
    except ConfigError as exc:
        raise ConfigError(f"cannot gate on metric {metric!r}", hint=exc.hint) from None
    if not (isinstance(max_drop, (int, float)) and max_drop >= 0 and math.isfinite(max_drop)):
        raise ConfigError(f"--max-drop must be a non-negative number, got {max_drop!r}")
    check_alpha(alpha)
    check_adjust(adjust)
    higher = METRIC_BY_KEY[metric].higher_is_better
    old, new = _cells_by_match_key(baseline), _cells_by_match_key(current)
    rows: list[GateRow] = []
    tested: list[tuple[GateRow, TestResult, bool]] = []  # (row, its test, incomplete now)
    for key in sorted(set(old) | set(new), key=lambda k: (
            (new.get(k) or old.get(k))[0], (new.get(k) or old.get(k))[1].label)):
        scenario, cell, _ = new.get(key) or old[key]
        if key not in new:
            rows.append(GateRow(scenario, cell.label, _mean(_values(cell, metric)), None, None,
                                None, len(_values(cell, metric)), 0, "missing",
                                "not in the current results: a baseline cell must not "
                                "vanish"))
            continue
        if key not in old:
            v = _values(new[key][1], metric)
            rows.append(GateRow(scenario, cell.label, None, _mean(v), None, None, 0, len(v),
                                "new", "not in the baseline results"))
            continue
        sa, sb = _stat(old[key][1], metric), _stat(new[key][1], metric)
        ma, mb = (None if sa is None else sa.mean), (None if sb is None else sb.mean)
        versions = _version_change(old[key][2], new[key][2])
        if sa is None:
            rows.append(GateRow(scenario, cell.label, None, mb, None, None, 0,
                                0 if sb is None else sb.n, "new", f"no {metric} in the baseline",
                                versions))
            continue
        if sb is None:
            rows.append(GateRow(scenario, cell.label, ma, None, None, None, sa.n, 0,
                                "regression", "no ok run in the current results", versions))
            continue
        result = compare_stats(sb, sa, "paired-t")
        row = GateRow(scenario, cell.label, ma, mb, (mb - ma) if higher else (ma - mb),
                      result.p_value, sa.n, sb.n, "", "", versions, result.test)
        rows.append(row)
        tested.append((row, result, not new[key][1].complete))
        if not new[key][1].complete:
            row.note = f"current cell incomplete ({new[key][1].n_ok}/{new[key][1].n_total} seeds)"
    family_size = adjust_results([r for _, r, _ in tested], adjust)
    for row, result, _ in tested:
        row.p_adjusted = result.p_adjusted
        row.verdict = verdict(row.change, result.p_adjusted, max_drop, alpha)
        note = ("fewer than 2 seeds on one side: the drop beyond the threshold counts"
                if row.verdict == "regression" and result.p_adjusted is None else "")
        row.note = "; ".join(n for n in (note, row.note) if n)
    # failures first (what a nightly reader looks for), then the rest in table order
    rows.sort(key=lambda r: r.verdict not in ("regression", "missing"))
    return GateResult(metric, float(max_drop), float(alpha), rows, adjust, family_size)


def verdict(change: float, p: float | None, max_drop: float, alpha: float) -> str:
    """The gate's verdict on a cell whose metric moved by ``change`` (positive: better) with
    the (adjusted) p-value ``p`` (None: fewer than 2 seeds on a side, the change counts on its
    own)."""
    if -change > max_drop + 1e-12:
        return "regression" if p is None or p < alpha else "not significant"
    if change > max_drop + 1e-12 and (p is None or p < alpha):
        return "improvement"
    return "within threshold" if abs(change) <= max_drop + 1e-12 else "not significant"


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def render_gate_markdown(result: GateResult) -> str:
    return markdown_environment().get_template("gate.md").render(
        r=result, label=METRIC_BY_KEY[result.metric].label, welch=WELCH,
        paired=TEST_NAMES["paired-t"], f=_f, p=_p,
        higher=METRIC_BY_KEY[result.metric].higher_is_better)
