"""The leaderboard's figures, drawn once by :mod:`clbench.reports.drawing` for the HTML report
and for ``clbench report --figures``: per scenario, each strategy's mean accuracy matrix R as a
heatmap and its per-task accuracy curves, the stability-gap plot of a strategy with a
continual-evaluation curve (:mod:`clbench.reports.stability_gap`), the parameter growth and the
wall time of every strategy.

The figure files are named ``<scenario>__<strategy>__heatmap``, ``<scenario>__<strategy>__curves``,
``<scenario>__<strategy>__stability-gap`` (runs with ``--eval-every``),
``<scenario>__acc-after-each-task`` (every strategy's ACC after each task: the comparison plot
papers show) and ``<scenario>__param-growth`` (``.svg`` and ``.pdf``). ``<scenario>`` is the
scenario's short label (name and setting, plus only what tells two scenarios apart:
:func:`clbench.reports.paper_table.short_labels`), ``<strategy>`` the cell's label, each made a
safe file name (lowercase letters, digits, ``.``, ``_``, ``=``, ``-``); a short hash of the full
label is added only where two names would collide. Output is byte-for-byte reproducible (fixed
SVG id salt, no dates in the metadata).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clbench.reports import drawing, stability_gap
from clbench.reports.table_model import Cell, Leaderboard, ScenarioTable


def safe_name(label: str) -> str:
    """A file-name part for ``label``: safe characters only (at most 80), readable."""
    slug = re.sub(r"[^a-z0-9._=]+", "-", label.lower()).strip("-._=")[:80].strip("-._=")
    return slug or "x"


def readable_names(labels: Sequence[str]) -> dict[str, str]:
    """Each label's :func:`safe_name`, with four hex digits of the label's hash added where
    two labels would otherwise share a name."""
    slugs = {label: safe_name(label) for label in dict.fromkeys(labels)}
    taken = Counter(slugs.values())
    return {label: slug if taken[slug] == 1
            else f"{slug}-{hashlib.sha1(label.encode()).hexdigest()[:4]}"
            for label, slug in slugs.items()}


def _after_labels(n_tasks: int) -> list[str]:
    return ["init"] + [str(i) for i in range(1, n_tasks + 1)]


def heatmap_figure(table: ScenarioTable, cell: Cell):
    T = table.n_tasks
    return drawing.heatmap_figure(
        cell.mean_matrix, title=f"{cell.label}: R ({cell.n_ok} seeds)",
        row_labels=_after_labels(T), col_labels=[str(j + 1) for j in range(T)],
        x_label="evaluated on task j", y_label="after training on task i")


def curves_figure(table: ScenarioTable, cell: Cell):
    T = table.n_tasks
    return drawing.line_figure(
        [(f"task {j + 1}", [row[j] for row in cell.mean_matrix]) for j in range(T)],
        _after_labels(T), title=f"{cell.label}: accuracy per task",
        x_label="after training on task", y_label="test accuracy", y_range=(0.0, 1.0))


def stability_gap_figure(table: ScenarioTable, cell: Cell):
    """The cell's mean continual-evaluation curve per task, with the task boundaries (None
    without a curve)."""
    curve = cell.mean_curve
    if curve is None:
        return None
    return stability_gap.stability_gap_figure(
        curve.steps, curve.task_ends, curve.accuracy,
        title=f"{cell.label}: accuracy during training ({curve.n} seeds)")


def growth_figure(table: ScenarioTable):
    """Mean parameter count after each task, one line per strategy; coinciding lines differ in
    line style and marker, and the axis covers every value."""
    return drawing.line_figure(
        [(c.label, c.mean_param_counts) for c in table.cells if c.mean_param_counts],
        _after_labels(table.n_tasks), title=f"parameter growth: {table.label}",
        x_label="after training on task", y_label="parameters", thousands=True)


def acc_after_each_task(matrix: Sequence[Sequence[float | None]]) -> list[float | None]:
    """ACC after each task i: the mean of R[i][0..i-1] (None before any task or where a value
    is missing). Row 0 of R is before training."""
    out: list[float | None] = []
    for i, row in enumerate(matrix[1:], start=1):
        seen = row[:i]
        out.append(None if any(v is None for v in seen) else sum(seen) / len(seen))
    return out


def comparison_figure(table: ScenarioTable):
    """Every strategy's ACC after each task in one figure (the plot papers show)."""
    series = [(c.label, acc_after_each_task(c.mean_matrix)) for c in table.cells
              if c.mean_matrix]
    return drawing.line_figure(
        series, [str(i) for i in range(1, table.n_tasks + 1)],
        title=f"ACC after each task: {table.label}", x_label="after training on task",
        y_label="ACC (mean over the tasks so far)", y_range=(0.0, 1.0))


def wall_time_figure(table: ScenarioTable):
    """Mean wall time of each strategy with its 95% CI."""
    stats = [(c.label, c.metrics["wall_time_s"]) for c in table.cells]
    return drawing.bar_figure([(label, s.mean, s.ci) for label, s in stats],
                              title=f"wall time: {table.label}", unit="s",
                              x_label="seconds (mean ± 95% CI)")


def figures(lb: Leaderboard) -> list[tuple[str, Any]]:
    """(file stem, matplotlib Figure) for every figure file of the leaderboard."""
    out = []
    from clbench.reports.friedman import Friedman, across_scenarios

    across = across_scenarios(lb.scenarios) if lb.overall else None
    if isinstance(across, Friedman):
        from clbench.reports.cd_diagram import cd_figure

        out.append(("critical-difference", cd_figure(across)))
    from clbench.reports.paper_table import short_labels

    scenario_names = readable_names(short_labels(lb.scenarios))
    for t, short in zip(lb.scenarios, short_labels(lb.scenarios)):
        scenario = scenario_names[short]
        if any(c.mean_matrix for c in t.cells):
            out.append((f"{scenario}__acc-after-each-task", comparison_figure(t)))
        if any(c.mean_param_counts for c in t.cells):
            out.append((f"{scenario}__param-growth", growth_figure(t)))
        strategy_names = readable_names([c.label for c in t.cells])
        for c in t.cells:
            if not c.mean_matrix:
                continue  # no ok run: nothing to draw
            strategy = strategy_names[c.label]
            out.append((f"{scenario}__{strategy}__heatmap", heatmap_figure(t, c)))
            out.append((f"{scenario}__{strategy}__curves", curves_figure(t, c)))
            if c.mean_curve is not None:
                out.append((f"{scenario}__{strategy}__stability-gap",
                            stability_gap_figure(t, c)))
    return out


def write_figures(lb: Leaderboard, directory: str | Path) -> list[Path]:
    """Write every figure as SVG and PDF into ``directory``; the paths written, sorted."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, fig in figures(lb):
        for fmt in drawing.FORMATS:
            path = target / f"{stem}.{fmt}"
            drawing.save_figure(fig, path, fmt)
            written.append(path)
    return sorted(written)
