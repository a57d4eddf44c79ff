"""CSV leaderboard: one row per scenario x strategy cell, every metric's mean, sd, n and 95% CI
half-width in its own columns. Stale cells (run at other versions than the current ones) follow,
with ``stale`` true and no rank."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from clbench.metrics import METRICS
from clbench.registry import REPORTERS
from clbench.reports.base import Reporter
from clbench.reports.table_model import Leaderboard
from clbench.results import LoadedResults

BASE_COLUMNS = ("scenario", "scenario_name", "scenario_version", "setting", "scenario_params",
                "budget", "data_subset", "n_tasks", "strategy", "label", "strategy_params",
                "strategy_version", "backbone", "backbone_version", "stale", "rank", "complete",
                "n_ok", "n_total")


def csv_rows(lb: Leaderboard) -> list[dict[str, Any]]:
    cells = [(t, c, False) for t in lb.scenarios for c in t.cells]
    cells += [(s.table, s.cell, True) for s in lb.stale]
    rows = []
    for t, c, stale in cells:
        row: dict[str, Any] = {
            "scenario": t.label, "scenario_name": t.name, "scenario_version": t.version,
            "setting": t.setting, "scenario_params": json.dumps(t.params, sort_keys=True),
            "budget": t.budget, "data_subset": t.subset, "n_tasks": t.n_tasks,
            "strategy": c.strategy, "label": c.label,
            "strategy_params": json.dumps(c.params, sort_keys=True, default=str),
            "strategy_version": c.versions["strategy"], "backbone": c.backbone,
            "backbone_version": c.versions["backbone"], "stale": stale,
            "rank": c.rank, "complete": c.complete, "n_ok": c.n_ok, "n_total": c.n_total,
        }
        for m in METRICS:
            stat = c.metrics.get(m.key)
            if stat is None:  # not applicable
                row.update({f"{m.key}_mean": "n/a", f"{m.key}_std": "n/a",
                            f"{m.key}_n": 0, f"{m.key}_ci95": "n/a"})
            else:
                row.update({f"{m.key}_mean": stat.mean, f"{m.key}_std": stat.std,
                            f"{m.key}_n": stat.n, f"{m.key}_ci95": stat.ci})
        rows.append(row)
    return rows


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell safe to open in a spreadsheet: a text cell that a spreadsheet would run as a
    formula (it starts with = + - @, a tab or a carriage return) gets a leading ``'``, as OWASP
    recommends against CSV injection. Numbers stay numbers (a negative BWT is not text)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def render_csv(lb: Leaderboard) -> str:
    columns = list(BASE_COLUMNS)
    for m in METRICS:
        columns += [f"{m.key}_mean", f"{m.key}_std", f"{m.key}_n", f"{m.key}_ci95"]
    out = io.StringIO()
    # RFC 4180's CRLF: a CR inside a text cell is then quoted, not a row break
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in csv_rows(lb):
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
    return out.getvalue()


@REPORTERS.register("csv")
class CsvReporter(Reporter):
    description = "one CSV row per scenario x strategy cell (mean, sd, n, 95% CI per metric)"

    def render(self, loaded: LoadedResults) -> str:
        return render_csv(self.leaderboard(loaded))
