"""Figure files for papers: per scenario, each strategy's mean accuracy matrix R as a heatmap and
its per-task accuracy curves, and the parameter growth of every strategy, each as a standalone
SVG and PDF drawn by matplotlib (Agg, no pyplot state) from the neutral leaderboard model.

Files are named ``<scenario>__<strategy>__heatmap``, ``<scenario>__<strategy>__curves`` and
``<scenario>__param-growth`` (``.svg`` and ``.pdf``): each label becomes a safe file name
(lowercase letters, digits, ``.``, ``-``; at most 60 characters) plus six hex digits of its
hash, so two labels never share a file. Output is byte-for-byte reproducible (fixed SVG id
salt, no dates in the metadata).
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Any

from clbench.reports.table_model import Cell, Leaderboard, ScenarioTable

FORMATS = ("svg", "pdf")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")
# parse_math off: a label from results (a "$" in a strategy name) is text, never mathtext.
_RC = {"text.parse_math": False, "svg.hashsalt": "clbench", "svg.fonttype": "path",
       "pdf.compression": 6, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3}
_METADATA = {"svg": {"Date": None, "Creator": "clbench"},
             "pdf": {"CreationDate": None, "ModDate": None, "Creator": "clbench",
                     "Producer": "clbench"}}


def safe_name(label: str) -> str:
    """A file-name part for ``label``: safe characters only, with a short hash of the label."""
    slug = re.sub(r"[^a-z0-9.]+", "-", label.lower()).strip("-.")[:60].strip("-.") or "x"
    return f"{slug}-{hashlib.sha1(label.encode()).hexdigest()[:6]}"


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


def heatmap_figure(table: ScenarioTable, cell: Cell):
    from matplotlib.figure import Figure

    T = table.n_tasks
    fig = Figure(figsize=(1.2 + 0.55 * T, 1.0 + 0.5 * (T + 1)), layout="constrained")
    ax = fig.subplots()
    data = [[_nan(v) for v in row] for row in cell.mean_matrix]
    image = ax.imshow(data, vmin=0.0, vmax=1.0, cmap="Blues", aspect="auto")
    ax.grid(False)
    for i, row in enumerate(cell.mean_matrix):
        for j, v in enumerate(row):
            ax.text(j, i, "–" if v is None else f"{v:.2f}", ha="center", va="center",
                    fontsize=7, color="white" if v is not None and v > 0.55 else "black")
    ax.set_xticks(range(T), [str(j + 1) for j in range(T)])
    ax.set_yticks(range(T + 1), ["init"] + [str(i) for i in range(1, T + 1)])
    ax.set_xlabel("evaluated on task j")
    ax.set_ylabel("after training on task i")
    ax.set_title(f"{cell.label}: R ({cell.n_ok} seeds)", fontsize=9)
    fig.colorbar(image, ax=ax, label="accuracy")
    return fig


def curves_figure(table: ScenarioTable, cell: Cell):
    from matplotlib.figure import Figure

    T = table.n_tasks
    fig = Figure(figsize=(4.5, 3.0), layout="constrained")
    ax = fig.subplots()
    xs = list(range(T + 1))
    for j in range(T):
        ys = [_nan(row[j]) for row in cell.mean_matrix]
        ax.plot(xs, ys, linestyle=LINESTYLES[j % len(LINESTYLES)],
                marker=MARKERS[j % len(MARKERS)], markersize=4, label=f"task {j + 1}")
    ax.set_xticks(xs, ["init"] + [str(i) for i in range(1, T + 1)])
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("after training on task")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{cell.label}: accuracy per task", fontsize=9)
    ax.legend(fontsize=7, ncols=2 if T > 5 else 1)
    return fig


def growth_figure(table: ScenarioTable):
    """Mean parameter count after each task, one line per strategy; coinciding lines differ in
    line style and marker, and the axis covers every value."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    T = table.n_tasks
    fig = Figure(figsize=(4.5, 3.0), layout="constrained")
    ax = fig.subplots()
    xs = list(range(T + 1))
    values = []
    for k, c in enumerate(cell for cell in table.cells if cell.mean_param_counts):
        ys = [_nan(v) for v in c.mean_param_counts]
        values += [v for v in ys if not math.isnan(v)]
        ax.plot(xs[:len(ys)], ys, linestyle=LINESTYLES[k % len(LINESTYLES)],
                marker=MARKERS[k % len(MARKERS)], markersize=4, label=c.label)
    if values:
        lo, hi = min(values), max(values)
        pad = (hi - lo) * 0.08 or max(abs(hi) * 0.05, 1.0)
        ax.set_ylim(lo - pad, hi + pad)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xticks(xs, ["init"] + [str(i) for i in range(1, T + 1)])
    ax.set_xlabel("after training on task")
    ax.set_ylabel("parameters")
    ax.set_title(f"parameter growth: {table.label}", fontsize=8, wrap=True)
    ax.legend(fontsize=7)
    return fig


def figures(lb: Leaderboard) -> list[tuple[str, Any]]:
    """(file stem, matplotlib Figure) for every figure of the leaderboard."""
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
    return out


def write_figures(lb: Leaderboard, directory: str | Path) -> list[Path]:
    """Write every figure as SVG and PDF into ``directory``; the paths written, sorted."""
    import matplotlib

    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    with matplotlib.rc_context(_RC):
        for stem, fig in figures(lb):
            for fmt in FORMATS:
                path = target / f"{stem}.{fmt}"
                fig.savefig(path, format=fmt, metadata=_METADATA[fmt])
                written.append(path)
    return sorted(written)
