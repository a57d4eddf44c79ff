"""Candidate-vs-baselines comparison and the regression gate.

Both compare cells (scenario x strategy, see :mod:`clbench.reports.tables`) seed by seed with
Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``, two-sided), which does not assume
equal variances on both sides.

``compare`` reads the cells at the current versions only (stale cells are never compared).
``gate`` compares two stores, whose current versions may differ (last night's baseline ran the
previous version of a strategy): it matches cells by everything but the versions, takes on each
side the current cell or else the newest stale one, and says when the versions differ.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from scipy import stats

from clbench.errors import ConfigError
from clbench.metrics import MATRIX_METRICS, METRIC_BY_KEY, matrix_metric
from clbench.reports.formatting import environment, markdown_environment
from clbench.reports.table_model import Cell, Leaderboard
from clbench.reports.tables import cell_components, find_cells

COMPARE_METRICS = tuple(MATRIX_METRICS)  # the metrics of the accuracy matrix, in table order
WELCH = ("Welch's t-test over seeds (scipy.stats.ttest_ind with equal_var=False, two-sided): "
         "it does not assume equal variances")


def welch(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided Welch p-value; None when either side has fewer than 2 values. With zero
    variance on both sides the p-value is 1 for equal means and 0 otherwise."""
    if len(a) < 2 or len(b) < 2:
        return None
    if max(a) == min(a) and max(b) == min(b):
        return 1.0 if a[0] == b[0] else 0.0
    with warnings.catch_warnings():  # nearly identical samples: scipy warns, p is still fine
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return None if math.isnan(p) else p


# ---------------------------------------------------------------------------------------------
# compare


@dataclass
class Delta:
    metric: str
    candidate: float | None
    baseline: float | None
    delta: float | None  # candidate - baseline
    p_value: float | None
    n_candidate: int
    n_baseline: int


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


def _values(cell: Cell, metric: str) -> list[float]:
    stat = cell.metrics.get(metric)
    return [] if stat is None else list(stat.values)


def compare(lb: Leaderboard, candidate: str, baselines: Sequence[str] = ()) -> Comparison:
    """Per scenario, the candidate's deltas against each baseline (every other strategy of the
    scenario when ``baselines`` is empty)."""
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
                a, b = _values(cand, m), _values(base, m)
                ca = sum(a) / len(a) if a else None
                cb = sum(b) / len(b) if b else None
                deltas.append(Delta(m, ca, cb, None if ca is None or cb is None else ca - cb,
                                    welch(a, b), len(a), len(b)))
            rows.append(ComparisonRow(base.label, deltas, base.complete))
        scenarios.append(ScenarioComparison(table.label, cand.label, cand.complete, rows,
                                            metrics))
    missing = [b for b in baselines if b not in seen]
    return Comparison(candidate, scenarios, lb.metadata, missing)


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
                significant = d.p_value is not None and d.p_value < alpha
                cells.append({"text": f"{_f(d.delta, True)} (p {_p(d.p_value)})",
                              "better": better, "significant": significant,
                              "candidate": _f(d.candidate), "baseline": _f(d.baseline)})
            rows.append({"baseline": row.baseline, "complete": row.complete,
                         "cells": cells})
        scenarios.append({"scenario": sc.scenario, "candidate": sc.candidate,
                          "candidate_complete": sc.candidate_complete,
                          "header": [METRIC_BY_KEY[m].label for m in sc.metrics],
                          "rows": rows})
    return {"candidate": cmp.candidate, "scenarios": scenarios, "welch": WELCH,
            "alpha": alpha, "missing": cmp.missing, "meta": cmp.metadata}


def render_comparison_markdown(cmp: Comparison, alpha: float = 0.05) -> str:
    return markdown_environment().get_template("compare.md").render(
        **comparison_view(cmp, alpha))


def render_comparison_html(cmp: Comparison, alpha: float = 0.05) -> str:
    return environment().get_template("compare.html").render(**comparison_view(cmp, alpha))


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


@dataclass
class GateResult:
    metric: str
    max_drop: float
    alpha: float
    rows: list[GateRow]

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
         max_drop: float = 0.01, alpha: float = 0.05) -> GateResult:
    """A cell regresses when its metric got worse by more than ``max_drop`` and the change is
    significant (Welch p < ``alpha``); with fewer than 2 seeds on either side a change beyond
    the threshold counts on its own. A cell whose runs all failed now, but had values before,
    regresses too."""
    try:
        matrix_metric(metric)
    except ConfigError as exc:
        raise ConfigError(f"cannot gate on metric {metric!r}", hint=exc.hint) from None
    if not (isinstance(max_drop, (int, float)) and max_drop >= 0 and math.isfinite(max_drop)):
        raise ConfigError(f"--max-drop must be a non-negative number, got {max_drop!r}")
    check_alpha(alpha)
    higher = METRIC_BY_KEY[metric].higher_is_better
    old, new = _cells_by_match_key(baseline), _cells_by_match_key(current)
    rows: list[GateRow] = []
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
        a, b = _values(old[key][1], metric), _values(new[key][1], metric)
        ma, mb = _mean(a), _mean(b)
        versions = _version_change(old[key][2], new[key][2])
        if ma is None:
            rows.append(GateRow(scenario, cell.label, None, mb, None, None, 0, len(b),
                                "new", f"no {metric} in the baseline", versions))
            continue
        if mb is None:
            rows.append(GateRow(scenario, cell.label, ma, None, None, None, len(a), 0,
                                "regression", "no ok run in the current results", versions))
            continue
        change = (mb - ma) if higher else (ma - mb)
        p = welch(a, b)
        note = ""
        if -change > max_drop + 1e-12:
            if p is None:
                verdict = "regression"
                note = "fewer than 2 seeds on one side: the drop beyond the threshold counts"
            elif p < alpha:
                verdict = "regression"
            else:
                verdict = "not significant"
        elif change > max_drop + 1e-12 and (p is None or p < alpha):
            verdict = "improvement"
        else:
            verdict = "within threshold" if abs(change) <= max_drop + 1e-12 \
                else "not significant"
        if not new[key][1].complete:
            note = (note + "; " if note else "") + \
                f"current cell incomplete ({new[key][1].n_ok}/{new[key][1].n_total} seeds)"
        rows.append(GateRow(scenario, cell.label, ma, mb, change, p, len(a), len(b), verdict,
                            note, versions))
    # failures first (what a nightly reader looks for), then the rest in table order
    rows.sort(key=lambda r: r.verdict not in ("regression", "missing"))
    return GateResult(metric, float(max_drop), float(alpha), rows)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def render_gate_markdown(result: GateResult) -> str:
    return markdown_environment().get_template("gate.md").render(
        r=result, label=METRIC_BY_KEY[result.metric].label, welch=WELCH, f=_f, p=_p,
        higher=METRIC_BY_KEY[result.metric].higher_is_better)
