"""HTML leaderboard: one self-contained file (inline CSS, JS and SVG; nothing fetched) with
sortable tables, per-strategy accuracy heatmaps and per-task accuracy curves, parameter growth,
wall time, the run list and the metadata.

The charts are the figures of :mod:`clbench.reports.figures`, drawn by matplotlib and embedded
as inline SVG by :func:`clbench.reports.drawing.figure_svg`, which escapes their text.
Everything else that comes from results or user code is escaped by jinja2's autoescaping; the data
the sorting script reads is embedded as JSON in a ``<script type="application/json">`` block with
``<``, ``>`` and ``&`` written as \\u escapes.
"""

from __future__ import annotations

from typing import Any

from clbench.metrics import METRIC_BY_KEY
from clbench.registry import REPORTERS
from clbench.reports import drawing, figures
from clbench.reports.base import Reporter
from clbench.reports.formatting import environment, fmt_params, fmt_rank, fmt_stat
from clbench.reports.markdown_report import meta_rows, metric_definitions
from clbench.reports.table_model import Cell, Leaderboard, ScenarioTable
from clbench.results import LoadedResults


def _sort_value(cell: Cell, key: str) -> float | None:
    stat = cell.metrics.get(key)
    return None if stat is None else stat.mean


def _table_view(index: int, t: ScenarioTable) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    tid = f"s{index}"
    columns = [{"key": "rank", "label": "Rank", "num": True, "title": None},
               {"key": "label", "label": "Strategy", "num": False, "title": None},
               {"key": "seeds", "label": "Seeds", "num": True, "title": "ok / expected seeds"}]
    columns += [{"key": k, "label": METRIC_BY_KEY[k].label, "num": True,
                 "title": METRIC_BY_KEY[k].definition} for k in t.metrics]
    rows, sort_rows = [], []
    for i, c in enumerate(t.cells):
        values = []
        for key in t.metrics:
            stat = c.metrics.get(key)
            values.append({"text": fmt_stat(stat, key), "na": stat is None,
                           "na_note": METRIC_BY_KEY[key].undefined_note,
                           "best": c.complete and c.label in t.best.get(key, ())})
        rows.append({"index": i, "rank": fmt_rank(c.rank), "label": c.label,
                     "seeds": f"{c.n_ok}/{c.n_total}", "complete": c.complete,
                     "cols": values})
        sort_row = {"rank": c.rank, "label": c.label, "seeds": c.n_ok}
        sort_row.update({k: _sort_value(c, k) for k in t.metrics})
        sort_rows.append(sort_row)

    growth = None
    if any(c.mean_param_counts for c in t.cells):
        growth = drawing.figure_svg(figures.growth_figure(t), f"{tid}-growth",
                                    f"Parameter growth: {t.label}")
    wall = drawing.figure_svg(figures.wall_time_figure(t), f"{tid}-wall",
                              f"Wall time: {t.label}")
    strategies = []
    for k, c in enumerate(t.cells):
        if not c.mean_matrix:
            strategies.append({"label": c.label, "heatmap": None, "curves": None,
                               "errors": c.errors})
            continue
        strategies.append({
            "label": c.label,
            "heatmap": drawing.figure_svg(figures.heatmap_figure(t, c), f"{tid}-c{k}-heatmap",
                                          f"Accuracy matrix: {c.label}", "chart heatmap"),
            "curves": drawing.figure_svg(figures.curves_figure(t, c), f"{tid}-c{k}-curves",
                                         f"Accuracy per task: {c.label}"),
            "stability_gap": None if c.mean_curve is None else drawing.figure_svg(
                figures.stability_gap_figure(t, c), f"{tid}-c{k}-gap",
                f"Accuracy during training: {c.label}"),
            "eval_every": c.mean_curve and c.mean_curve.every,
            "curve_n": c.mean_curve and c.mean_curve.n,
            "errors": c.errors,
            "n_ok": c.n_ok})
    view = {
        "id": tid, "label": t.label, "n_tasks": t.n_tasks, "setting": t.setting,
        "primary": METRIC_BY_KEY[t.primary_metric].label, "columns": columns, "rows": rows,
        "params": [(c.label, fmt_params(c.params)) for c in t.cells],
        "na_notes": t.na_notes,
        "notes": t.other_notes,
        "growth": growth, "wall": wall, "strategies": strategies,
    }
    return view, sort_rows


def across_view(lb: Leaderboard) -> dict[str, Any] | None:
    """The Friedman test over the scenarios with its critical-difference diagram, or why there
    is none (None without an overall ranking)."""
    from clbench.reports.friedman import NotTested, across_scenarios

    if not lb.overall:
        return None
    result = across_scenarios(lb.scenarios)
    if isinstance(result, NotTested):
        return {"text": result.reason + ".", "diagram": None}
    from clbench.reports.cd_diagram import cd_figure

    return {"text": result.summary(),
            "diagram": drawing.figure_svg(cd_figure(result), "cd-diagram",
                                          "Critical-difference diagram of the mean ranks",
                                          "chart cd-diagram")}


def paper_view(lb: Leaderboard, options: Any) -> dict[str, Any] | None:
    """The paper table for the page (None unless ``options`` asks for it)."""
    from clbench.reports.paper_table import cell_text, paper_table

    if options is None or options.table != "paper" or not lb.scenarios:
        return None
    pt = paper_table(lb, options)
    rows = [{"label": r.label, "baseline": r.baseline,
             "cells": [{"text": cell_text(pc, m), "best": pc is not None and pc.best,
                        "mark": "" if pc is None else pc.mark}
                       for (_, m), pc in zip(pt.columns, r.cells)]} for r in pt.rows]
    return {"scenarios": pt.scenarios, "full": pt.scenario_labels, "n_metrics": len(pt.metrics),
            "metrics": [METRIC_BY_KEY[m].label for m in pt.metrics], "rows": rows,
            "note": pt.note()}


def render_html(lb: Leaderboard, options: Any = None) -> str:
    tables, sort_data = [], {}
    for i, t in enumerate(lb.scenarios):
        view, sort_rows = _table_view(i, t)
        tables.append(view)
        sort_data[view["id"]] = sort_rows
    sort_data["overall"] = [{"label": r.label, "mean_rank": r.mean_rank,
                             "n_scenarios": r.n_scenarios} for r in lb.overall]
    sort_data["runs"] = [{"scenario": r.scenario, "strategy": r.strategy, "seed": r.seed,
                          "status": r.status, "acc": r.acc, "error": r.error or ""}
                         for r in lb.runs]
    return environment().get_template("leaderboard.html").render(
        lb=lb, tables=tables, data={"tables": sort_data}, meta_rows=meta_rows(lb.metadata),
        across=across_view(lb), paper=paper_view(lb, options),
        definitions=metric_definitions(lb),
        na_notes=[m.undefined_note for m in lb.metric_defs if m.undefined_note],
        metric_defs=lb.metric_defs,
    )


@REPORTERS.register("html")
class HtmlReporter(Reporter):
    description = "self-contained HTML leaderboard with sortable tables and inline SVG charts"

    prints_tables = True

    def render(self, loaded: LoadedResults) -> str:
        return render_html(self.leaderboard(loaded), self.table)
