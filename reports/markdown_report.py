"""Markdown (GitHub-flavoured) leaderboard: one table per scenario, mean ± 95% CI, the best
complete cell per column in bold, metric definitions in a footnote and the run metadata."""

from __future__ import annotations

from typing import Any

from clbench.metrics import METRIC_BY_KEY
from clbench.registry import REPORTERS
from clbench.reports.base import Reporter
from clbench.reports.formatting import (
    fmt_params,
    fmt_rank,
    fmt_stat,
    markdown_environment,
    md_escape,
)
from clbench.reports.table_model import Leaderboard, ScenarioTable
from clbench.results import LoadedResults

DEFINITIONS = (
    "R[i][j] is the test accuracy on task j after training on task i (row 0: the untrained "
    "model, b[j] = R[0][j]); T is the number of tasks. "
)


def metric_definitions(lb: Leaderboard) -> str:
    return DEFINITIONS + " ".join(f"{m.label}: {m.definition}." for m in lb.metric_defs) + (
        " Mean ± half-width of the 95% confidence interval, t.ppf(0.975, n - 1) * sd / sqrt(n) "
        "with the sample standard deviation (n - 1); no interval for n = 1. Seeds: ok runs / "
        "expected seeds.")


def table_rows(t: ScenarioTable) -> dict[str, Any]:
    """Header, alignment and escaped cells of one scenario table."""
    header = ["Rank", "Strategy", "Seeds"] + [METRIC_BY_KEY[k].label for k in t.metrics]
    align = ["---:", "---", "---:"] + ["---:"] * len(t.metrics)
    rows = []
    for c in t.cells:
        seeds = f"{c.n_ok}/{c.n_total}" + ("" if c.complete else " (incomplete)")
        row = [fmt_rank(c.rank), md_escape(c.label), seeds]
        for key in t.metrics:
            stat = c.metrics.get(key)
            text = fmt_stat(stat, key)
            if stat is None:
                row.append(f"n/a[^{key}]")  # the metric's footnote says why
                continue
            text = md_escape(text)
            if c.label in t.best.get(key, ()) and c.complete:
                text = f"**{text}**"
            row.append(text)
        rows.append(row)
    params = [(c.label, fmt_params(c.params)) for c in t.cells]
    errors = [f"{c.label}, {e}" for c in t.cells for e in c.errors]
    return {
        "label": t.label, "n_tasks": t.n_tasks, "setting": t.setting,
        "primary": METRIC_BY_KEY[t.primary_metric].label, "header": header, "align": align,
        "rows": rows, "params": params, "errors": errors,
        "notes": t.other_notes,
    }


def meta_rows(meta: dict[str, Any]) -> list[tuple[str, str]]:
    def join(v: Any) -> str:
        if isinstance(v, list):
            return ", ".join(map(str, v)) if v else "unknown"
        return "unknown" if v in (None, "") else str(v)

    hardware = meta.get("hardware") or []
    cuda = join(meta.get("cuda"))
    if not meta.get("cuda") and hardware and all(str(h).startswith("cpu") for h in hardware):
        cuda = "not used (CPU runs only)"
    return [
        ("Generated", join(meta.get("generated_at"))),
        ("Report by clbench", join(meta.get("report_clbench_version"))),
        ("Runs by clbench", join(meta.get("clbench_versions"))),
        ("Git", join(meta.get("git_shas"))),
        ("Devices", join(meta.get("hardware"))),
        ("CPU", join(meta.get("cpus"))),
        ("Python", join(meta.get("python"))),
        ("PyTorch", join(meta.get("torch"))),
        ("CUDA", cuda),
        ("Runs started", join(meta.get("runs_started"))),
        ("Runs finished", join(meta.get("runs_finished"))),
    ]


def across_text(lb: Leaderboard) -> str:
    """The Friedman test and its post-hoc over the scenarios, or why there is none."""
    from clbench.reports.friedman import NotTested, across_scenarios

    if not lb.overall:
        return ""
    result = across_scenarios(lb.scenarios)
    return result.reason + "." if isinstance(result, NotTested) else result.summary()


def paper_rows(lb: Leaderboard, options) -> dict[str, Any] | None:
    """The paper table as text cells (None unless ``options`` asks for it): the header, the
    rows (bold and marks written in), the note."""
    from clbench.reports.paper_table import cell_text, paper_table

    if options is None or options.table != "paper" or not lb.scenarios:
        return None
    pt = paper_table(lb, options)
    header = ["Strategy"] + [f"{pt.scenarios[i]} {METRIC_BY_KEY[m].label}" if len(pt.metrics) > 1
                             else pt.scenarios[i] for i, m in pt.columns]
    rows = []
    for row in pt.rows:
        cells = [md_escape(row.label) + (" (baseline)" if row.baseline else "")]
        for (_, m), pc in zip(pt.columns, row.cells):
            text = md_escape(cell_text(pc, m))
            if pc is not None and pc.best:
                text = f"**{text}**"
            cells.append(text + (f" {pc.mark}" if pc is not None and pc.mark else ""))
        rows.append(cells)
    return {"header": [md_escape(h) for h in header], "rows": rows, "note": pt.note(),
            "metric": METRIC_BY_KEY[pt.metrics[0]].label if len(pt.metrics) == 1 else None}


def render_markdown(lb: Leaderboard, options: Any = None) -> str:
    statuses = ", ".join(f"{n} {s}" for s, n in lb.metadata.get("run_statuses", {}).items())
    return markdown_environment().get_template("leaderboard.md").render(
        meta=lb.metadata, statuses=statuses, overall=lb.overall,
        across=across_text(lb), paper=paper_rows(lb, options),
        tables=[table_rows(t) for t in lb.scenarios], meta_rows=meta_rows(lb.metadata),
        problems=lb.problems, definitions=metric_definitions(lb), stale=lb.stale,
        not_run=lb.not_run,
        na_notes=lb.na_notes(),
    )


@REPORTERS.register("markdown")
class MarkdownReporter(Reporter):
    description = "GitHub-flavoured Markdown leaderboard, one table per scenario"

    prints_tables = True

    def render(self, loaded: LoadedResults) -> str:
        return render_markdown(self.leaderboard(loaded), self.table)
