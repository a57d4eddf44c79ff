"""The stability-gap plot: each task's accuracy over the optimiser steps of a continual-evaluation
curve (``--eval-every``), from the start of its training on, with the task boundaries marked.

De Lange, van de Ven & Tuytelaars (ICLR 2023, Figure 1) draw it to show the *stability gap*: an
old task's accuracy drops sharply in the first steps of a new task and recovers later, a drop
that an evaluation at task ends only cannot see.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from clbench.reports import drawing


@drawing.drawn
def stability_gap_figure(steps: Sequence[int], task_ends: Sequence[int],
                         accuracy: Sequence[Sequence[float | None]], *, title: str,
                         width: float = 6.0, height: float = 3.2):
    """A matplotlib Figure: one line per task that later tasks follow (its accuracy at each
    point ``steps[n]`` is ``accuracy[n][task]``, None: not evaluated), drawn from the step its
    training started; a dashed vertical line at each boundary between two tasks."""
    fig, ax = drawing.new_figure(width, height)
    n_tasks = len(accuracy[0]) if accuracy else 0
    starts = [0, *task_ends]
    old_tasks = range(max(n_tasks - 1, 1) if n_tasks else 0)
    for task in old_tasks:
        points = [(s, row[task]) for s, row in zip(steps, accuracy)
                  if s >= starts[min(task, len(starts) - 1)]]
        xs = [s for s, _ in points]
        ys = [math.nan if v is None else float(v) for _, v in points]
        ax.plot(xs, ys, linestyle=drawing.LINESTYLES[task % len(drawing.LINESTYLES)],
                marker=drawing.MARKERS[task % len(drawing.MARKERS)],
                markersize=2.5 if len(xs) > 40 else 4, linewidth=1.2, label=f"task {task + 1}")
    for k, end in enumerate(task_ends[:-1] if len(task_ends) == n_tasks else task_ends):
        ax.axvline(end, color="0.45", linestyle="--", linewidth=0.8,
                   label="task boundary" if k == 0 else None)
    ax.set_ylim(0.0, 1.0)
    if steps:
        ax.set_xlim(steps[0], steps[-1])
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("accuracy (evaluation subset)")
    ax.set_title(title, fontsize=9, wrap=True)
    if n_tasks:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig
