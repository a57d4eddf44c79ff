"""The table a paper prints (the layout of Hsu et al. 2018, Table 2): strategies as rows,
scenarios as columns, one or two chosen metrics as mean ± sd over seeds, and marks for a
significant difference from a named baseline. A neutral model, rendered by the LaTeX, Markdown
and HTML reporters.

Scenarios get short column labels (:func:`short_labels`): the name and setting, plus only the
parameters (then the budget) that tell two scenarios of the table apart. Marks: each strategy's
cell against the baseline's cell of the same scenario and metric, paired by seed where their
seeds agree (else Welch), all the table's tests one family adjusted by Holm (or ``adjust``);
``+`` marks a significantly better cell, ``-`` a significantly worse one. Bold: the cell best
beyond the 95% confidence intervals of its column, as in the leaderboards.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clbench.errors import ConfigError
from clbench.metrics import METRIC_BY_KEY
from clbench.reports.formatting import EMPTY, fmt_ci, fmt_value
from clbench.reports.significance import (
    ADJUST_NAMES,
    TEST_NAMES,
    TestResult,
    adjust_results,
    check_adjust,
    check_test,
    compare_stats,
)
from clbench.reports.table_model import Leaderboard, ScenarioTable

TABLES = ("paper", "detail")


@dataclass(frozen=True)
class TableOptions:
    """What ``clbench report --table/--metrics/--baseline/--appendix`` asks of the reporters
    that print tables (LaTeX, Markdown, HTML)."""

    table: str | None = None  # "paper" or "detail"; None: the format's default
    metrics: tuple[str, ...] = ("acc",)
    baseline: str | None = None
    appendix: bool = False  # the paper table, then the per-scenario detail tables
    alpha: float = 0.05
    test: str = "paired-t"
    adjust: str = "holm"

    def __post_init__(self) -> None:
        if self.table is not None and self.table not in TABLES:
            raise ConfigError(f"unknown table layout {self.table!r}",
                              hint=f"--table {'|'.join(TABLES)}")
        if not self.metrics:
            raise ConfigError("no metric for the paper table", hint="e.g. --metrics acc")
        for m in self.metrics:
            if m not in METRIC_BY_KEY:
                raise ConfigError(f"unknown metric {m!r} for --metrics",
                                  hint=f"one of {', '.join(METRIC_BY_KEY)}")
        check_test(self.test)
        check_adjust(self.adjust)


@dataclass
class PaperCell:
    mean: float
    sd: float | None
    n: int
    best: bool = False
    mark: str = ""  # "+" significantly better than the baseline, "-" worse, "" neither
    test: TestResult | None = None


@dataclass
class PaperRow:
    label: str
    cells: list[PaperCell | None]  # one per (scenario, metric) column; None: not run there
    baseline: bool = False


@dataclass
class PaperTable:
    scenarios: list[str]  # short column labels
    scenario_labels: list[str]  # the full labels, for a legend
    metrics: list[str]
    rows: list[PaperRow]
    baseline: str | None
    family_size: int
    test: str
    adjust: str
    alpha: float

    @property
    def columns(self) -> list[tuple[int, str]]:
        """(scenario index, metric) of each value column, scenario-major."""
        return [(i, m) for i in range(len(self.scenarios)) for m in self.metrics]

    def note(self) -> str:
        """What the values and the marks mean: one sentence per format."""
        text = ("Mean ± sd over seeds (n seeds per cell as in the leaderboard); bold: best "
                "beyond the 95% confidence intervals of its column.")
        if self.baseline is not None:
            text += (f" + / -: significantly better / worse than {self.baseline} (adjusted "
                     f"p < {self.alpha:g}; {TEST_NAMES[self.test]} where the seeds agree, "
                     f"else Welch's; {self.family_size} tests adjusted as one family by "
                     f"{ADJUST_NAMES[self.adjust]}).")
        return text


def short_labels(tables: Sequence[ScenarioTable]) -> list[str]:
    """Column labels: ``name [setting]``, plus the parameters, then the budget, version and
    split, that differ between tables of the same name and setting."""
    base = [t.name + (f" [{t.setting}]" if t.setting else "") for t in tables]
    out = list(base)
    for b in set(base):
        group = [i for i, x in enumerate(base) if x == b]
        if len(group) < 2:
            continue
        keys = sorted({k for i in group for k in tables[i].params if k != "setting"})
        differ = [k for k in keys
                  if len({json.dumps(tables[i].params.get(k), default=str) for i in group}) > 1]
        for i in group:
            t = tables[i]
            extra = [f"{k}={_fmt(t.params.get(k))}" for k in differ]
            for attr, show in (("budget", "budget {}"), ("version", "v{}"), ("split", "{}")):
                if len({getattr(tables[j], attr) for j in group}) > 1:
                    extra.append(show.format(getattr(t, attr)))
            out[i] = f"{b} ({', '.join(extra)})" if extra else b
    return out


def _fmt(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def paper_table(lb: Leaderboard, options: TableOptions = TableOptions()) -> PaperTable:
    """The paper table of ``lb``: rows in the order of the overall ranking (then by label)."""
    tables = lb.scenarios
    metrics = list(options.metrics)
    labels = [r.label for r in lb.overall]
    labels += sorted({c.label for t in tables for c in t.cells} - set(labels))
    if options.baseline is not None and options.baseline not in labels:
        by_name = sorted({c.label for t in tables for c in t.cells
                          if c.strategy == options.baseline})
        if len(by_name) != 1:
            raise ConfigError(f"no single strategy {options.baseline!r} to mark against",
                              hint=f"--baseline one of: {', '.join(labels) or 'none'}")
        baseline = by_name[0]
    else:
        baseline = options.baseline
    rows = []
    tested: list[TestResult] = []
    for label in labels:
        cells: list[PaperCell | None] = []
        for t in tables:
            by_label = {c.label: c for c in t.cells}
            cell, base = by_label.get(label), by_label.get(baseline) if baseline else None
            for m in metrics:
                stat = None if cell is None else cell.metrics.get(m)
                if stat is None or stat.mean is None:
                    cells.append(None)
                    continue
                pc = PaperCell(stat.mean, stat.std, stat.n,
                               best=cell.complete and label in t.best.get(m, ()))
                bstat = None if base is None else base.metrics.get(m)
                if label != baseline and bstat is not None and bstat.mean is not None:
                    pc.test = compare_stats(stat, bstat, options.test)
                    tested.append(pc.test)
                cells.append(pc)
        rows.append(PaperRow(label, cells, label == baseline))
    family = adjust_results(tested, options.adjust)
    for row in rows:
        for (_, m), pc in zip([(i, m) for i in range(len(tables)) for m in metrics], row.cells):
            if pc is None or pc.test is None or pc.test.p_adjusted is None:
                continue
            if pc.test.p_adjusted < options.alpha and pc.test.difference:
                better = (pc.test.difference > 0) == METRIC_BY_KEY[m].higher_is_better
                pc.mark = "+" if better else "-"
    return PaperTable(short_labels(tables), [t.label for t in tables], metrics, rows, baseline,
                      family, options.test, options.adjust, options.alpha)


def cell_text(pc: PaperCell | None, metric: str) -> str:
    """``0.812 ± 0.027`` (as the leaderboards format the metric); ``—`` for no value."""
    if pc is None:
        return EMPTY
    kind = METRIC_BY_KEY[metric].kind
    text = fmt_value(pc.mean, kind)
    if pc.sd is not None:
        text += f" ± {fmt_ci(pc.sd, kind, pc.mean)}"
    return text
