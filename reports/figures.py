"""The leaderboard's figures, drawn once by :mod:`clbench.reports.drawing` for the HTML report
and for ``clbench report --figures``: per scenario, each strategy's mean accuracy matrix R as a
heatmap and its per-task accuracy curves, the stability-gap plot of a strategy with a
continual-evaluation curve (:mod:`clbench.reports.stability_gap`), the parameter growth and the
wall time of every strategy.

The figure files are named ``<scenario>__<strategy>__heatmap``,
``<scenario>__<strategy>__curves``, ``<scenario>__<strategy>__stability-gap`` and
``<scenario>__param-growth`` (``.svg`` and ``.pdf``): each label becomes a safe file name
(lowercase letters, digits, ``.``, ``-``; at most 60 characters) plus six hex digits of its
hash, so two labels never share a file. Output is byte-for-byte reproducible (fixed SVG id
salt, no dates in the metadata).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from clbench.reports import drawing, stability_gap
from clbench.reports.table_model import Cell, Leaderboard, ScenarioTable


def safe_name(label: str) -> str:
    """A file-name part for ``label``: safe characters only, with a short hash of the label."""
    slug = re.sub(r"[^a-z0-9.]+", "-", label.lower()).strip("-.")[:60].strip("-.") or "x"
    return f"{slug}-{hashlib.sha1(label.encode()).hexdigest()[:6]}"


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


def wall_time_figure(table: ScenarioTable):
    """Mean wall time of each strategy with its 95% CI."""
    stats = [(c.label, c.metrics["wall_time_s"]) for c in table.cells]
    return drawing.bar_figure([(label, s.mean, s.ci) for label, s in stats],
                              title=f"wall time: {table.label}", unit="s",
                              x_label="seconds (mean ± 95% CI)")


def figures(lb: Leaderboard) -> list[tuple[str, Any]]:
    """(file stem, matplotlib Figure) for every figure file of the leaderboard."""
    out = []
    for t in lb.scenarios:
        scenario = safe_name(t.label)
        if any(c.mean_param_counts for c in t.cells):
            out.append((f"{scenario}__param-growth", growth_figure(t)))
        for c in t.cells:
            if not c.mean_matrix:
                continue  # no ok run: nothing to draw
            strategy = safe_name(c.label)
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
