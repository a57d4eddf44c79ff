"""The critical-difference diagram (Demšar 2006, figures 1 and 2) of a
:class:`~clbench.reports.friedman.Friedman` result, as a matplotlib ``Figure``.

An axis of mean ranks (1 = best, at the left); each strategy is a line from its mean rank down
to its name, the better half named on the left, the others on the right. With Nemenyi's test,
a bar of length CD is drawn above the axis and thick bars join the groups of strategies whose
mean ranks lie within CD (not significantly different). Against a control (Holm), the bar
joins the control with the strategies not significantly different from it.
"""

from __future__ import annotations

from clbench.reports import drawing
from clbench.reports.friedman import Friedman


def _groups(result: Friedman) -> list[tuple[float, float]]:
    """(low, high) mean ranks of each bar joining strategies not significantly different."""
    ranks = result.mean_ranks
    if result.control is None:
        return [(ranks[a], ranks[b]) for a, b in result.cliques()]
    same = [t.method for t in result.control_tests if t.p_adjusted >= result.alpha]
    members = [r for m, r in zip(result.methods, ranks) if m in same or m == result.control]
    return [(min(members), max(members))] if len(members) > 1 else []


@drawing.drawn
def cd_figure(result: Friedman):
    """The diagram of ``result``: a matplotlib Figure (no pyplot state)."""
    k = result.k
    half = (k + 1) // 2
    rows = max(half, k - half)
    groups = _groups(result)
    height = 1.1 + 0.24 * rows + 0.12 * len(groups)
    # room for the longest name beside the axis (8 pt text: about 0.065 inch a character)
    per_rank = 0.9  # inches between two ranks
    names = max(len(f"{m} (0.00)") for m in result.methods) * 0.065 + 0.4
    fig, ax = drawing.new_figure((k - 1) * per_rank + 2 * names + 0.3, height)
    ax.grid(False)
    ax.set_axis_off()
    axis_y = 0.0
    bottom = -0.35 - 0.12 * len(groups) - 0.28 * rows
    ax.set_xlim(1 - names / per_rank, k + names / per_rank)
    ax.set_ylim(bottom - 0.1, 0.75)
    ax.plot([1, k], [axis_y, axis_y], color="black", linewidth=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [axis_y, axis_y + 0.08], color="black", linewidth=1)
        ax.text(r, axis_y + 0.12, str(r), ha="center", va="bottom", fontsize=8)
    if result.control is None:
        ax.plot([1, 1 + result.cd], [0.5, 0.5], color="black", linewidth=1.5)
        for x in (1, 1 + result.cd):
            ax.plot([x, x], [0.46, 0.54], color="black", linewidth=1)
        ax.text(1 + result.cd / 2, 0.56, f"CD = {result.cd:.2f}", ha="center", va="bottom",
                fontsize=8)
    for i, (low, high) in enumerate(groups):
        y = -0.18 - 0.12 * i
        ax.plot([low - 0.05, high + 0.05], [y, y], color="black", linewidth=3,
                solid_capstyle="butt")
    top_of_names = -0.3 - 0.12 * len(groups)
    for i, (name, rank) in enumerate(zip(result.methods, result.mean_ranks)):
        left = i < half
        row = i if left else k - 1 - i
        y = top_of_names - 0.28 * row
        x_end = 0.7 if left else k + 0.3
        ax.plot([rank, rank, x_end], [axis_y, y, y], color="#333333", linewidth=0.8)
        label = f"{name} ({rank:.2f})" if left else f"({rank:.2f}) {name}"
        weight = "bold" if name == result.control else "normal"
        ax.text(x_end - 0.05 if left else x_end + 0.05, y, label, ha="right" if left else "left",
                va="center", fontsize=8, fontweight=weight)
    title = ("critical difference (Nemenyi)" if result.control is None else
             f"against {result.control} (Holm)")
    ax.set_title(f"mean rank over {result.n} scenarios, {title}", fontsize=9)
    return fig
