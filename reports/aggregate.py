"""Aggregation of result documents into leaderboards: pure functions, no I/O.

Runs are grouped into *cells*: one scenario (name, version, setting, parameters, budget, data
subset flag) x one strategy (name, version and resolved hyperparameters) x one backbone (name and
version). Over the seeds of a cell each metric gets a mean, a sample standard deviation, ``n``
and a 95% confidence interval from Student's t distribution (``t.ppf(0.975, n - 1) * sd /
sqrt(n)``). Runs with different budgets or versions land in different cells and are never mixed.

Only cells at the current version of every component are shown and ranked; the others are
*stale* (:mod:`clbench.reports.staleness`): the leaderboard lists them in ``stale``.

A cell is *complete* when every expected seed (the union of the seeds seen anywhere in its
scenario table, and of the seed groups the runs were planned in) has an ``ok`` run with a final
accuracy. Incomplete cells are shown with ``n ok / n total``, are never bold and are not ranked.
A cell is *best* in a column (bold) only when its confidence interval is entirely better than
every other complete cell's (:func:`best_cell`): never for ties or differences inside the CI.

Every renderer (Markdown, HTML, JSON, CSV) reads the same :class:`Leaderboard`.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.special import stdtrit  # scipy.stats costs a report ~0.5 s of start-up more

from clbench.metrics import (
    MATRIX_METRICS,
    METRIC_BY_KEY,
    METRICS,
    MetricDef,
    as_matrix,
    run_metrics,
)
from clbench.reports.staleness import (
    STALE_FIX,
    components,
    current_versions,
    describe,
    stale_components,
)
from clbench.results import NotRun
from clbench.schema import STATUSES, RunResult

CONFIDENCE = 0.95


FWT_NA_NOTE = ("FWT is n/a in class-incremental (single-head) settings: the untrained model "
               "cannot predict a task's classes before training on it, so the forward-transfer "
               "baseline is meaningless there.")
INCOMPLETE_NOTE = ("Incomplete cells (seeds missing, failed or diverged) show n ok / n total, "
                   "average only their ok seeds, are never bold and are not ranked.")


# ---------------------------------------------------------------------------------------------
# The neutral table model


@dataclass
class Stat:
    """One metric over the ok seeds of a cell."""

    mean: float | None
    std: float | None  # sample standard deviation (ddof = 1); None for n < 2
    n: int
    ci: float | None  # half-width of the 95% Student-t confidence interval; None for n < 2
    values: list[float] = field(default_factory=list)
    per_group: bool = False  # n counts seed groups, not seeds (a group-wide measurement)

    @property
    def low(self) -> float | None:
        return None if self.mean is None or self.ci is None else self.mean - self.ci

    @property
    def high(self) -> float | None:
        return None if self.mean is None or self.ci is None else self.mean + self.ci


@dataclass
class RunRow:
    spec_hash: str
    scenario: str  # scenario table label
    strategy: str  # cell label
    seed: Any
    status: str
    acc: float | None
    error: str | None
    diverged_after_task: Any
    finished_at: str | None


@dataclass
class Cell:
    strategy: str  # the strategy's name as registered or given
    label: str  # name, plus the hyperparameters that tell configurations apart
    params: dict[str, Any]
    key: str
    seeds_ok: list[Any]
    seeds_total: list[Any]
    statuses: dict[str, int]
    metrics: dict[str, Stat | None]  # None: not applicable (FWT in class-incremental)
    mean_matrix: list[list[float | None]]  # mean accuracy matrix over ok seeds
    mean_param_counts: list[float | None]
    errors: list[str]
    versions: dict[str, str]  # "scenario", "strategy", "backbone" -> the version run
    backbone: str
    match_key: str  # the key without versions: the same cell at another version (the gate)
    n_runs: int
    rank: float | None = None

    @property
    def n_ok(self) -> int:
        return len(self.seeds_ok)

    @property
    def n_total(self) -> int:
        return len(self.seeds_total)

    @property
    def complete(self) -> bool:
        return self.n_ok == self.n_total and self.n_total > 0


@dataclass
class ScenarioTable:
    key: str
    label: str
    name: str
    version: str
    setting: str | None
    params: dict[str, Any]
    budget: str | None
    subset: bool
    n_tasks: int
    primary_metric: str
    fwt_applicable: bool
    cells: list[Cell]  # ranked first (by rank), then unranked
    metrics: list[str]  # metric keys with at least one value in this table (fwt always)
    best: dict[str, list[str]]  # metric key -> [the label of the complete cell best beyond
    # the CIs] (see best_cell); absent when no cell is
    notes: list[str]
    match_key: str  # the key without the scenario's version
    split: str = "test"  # what the accuracies were measured on: "test" or "validation"


@dataclass
class StaleCell:
    """A cell at a version other than the current one of some component: not ranked, not
    shown in the tables, listed with the fix."""

    table: ScenarioTable  # its own table, at the stored versions (ranks left empty)
    cell: Cell
    stored: list[str]  # "strategy ewc 1", one per component not at its current version
    current: list[str]  # "strategy ewc 2", the same components as they are now

    @property
    def scenario(self) -> str:
        return self.table.label

    @property
    def strategy(self) -> str:
        return self.cell.label

    def line(self) -> str:
        """One line for a terminal."""
        return (f"stale: {self.strategy} on {self.scenario}: {self.cell.n_runs} run(s) at "
                f"{', '.join(self.stored)} (current: {', '.join(self.current)}); {STALE_FIX}")


@dataclass
class OverallRow:
    label: str
    mean_rank: float
    n_scenarios: int
    ranks: dict[str, float]  # scenario label -> rank


@dataclass
class NotRunRow:
    """A scenario whose runs did not run because the data is missing (from the store's
    not-run records): listed as "not run: data missing", never ranked."""

    scenario: str  # scenario label: name [setting] (parameters) vN, budget B
    strategies: list[str]
    seeds: list[Any]
    n_runs: int
    reason: str  # "data missing"
    messages: list[str]  # what was missing, where


@dataclass
class Leaderboard:
    scenarios: list[ScenarioTable]
    overall: list[OverallRow]
    runs: list[RunRow]
    metadata: dict[str, Any]
    problems: list[str]
    stale: list[StaleCell] = field(default_factory=list)
    not_run: list[NotRunRow] = field(default_factory=list)
    metric_defs: list[MetricDef] = field(default_factory=lambda: list(METRICS))

    def to_json(self) -> dict[str, Any]:
        """The leaderboard as plain JSON values (NaN never appears)."""
        def stat(s: Stat | None):
            if s is None:
                return "n/a"
            out = {"mean": s.mean, "std": s.std, "n": s.n, "ci95": s.ci}
            if s.per_group:
                out["per"] = "group"  # n counts seed groups (a group-wide measurement)
            return out

        return {
            "confidence": CONFIDENCE,
            "scenarios": [
                {
                    "label": t.label, "name": t.name, "version": t.version, "setting": t.setting,
                    "params": t.params, "budget": t.budget, "subset": t.subset,
                    "split": t.split, "n_tasks": t.n_tasks, "primary_metric": t.primary_metric,
                    "fwt_applicable": t.fwt_applicable, "notes": t.notes,
                    "cells": [
                        {"strategy": c.strategy, "label": c.label, "params": c.params,
                         "strategy_version": c.versions["strategy"], "backbone": c.backbone,
                         "backbone_version": c.versions["backbone"],
                         "rank": c.rank, "complete": c.complete, "n_ok": c.n_ok,
                         "n_total": c.n_total, "seeds_ok": c.seeds_ok,
                         "seeds_total": c.seeds_total, "statuses": c.statuses,
                         "metrics": {k: stat(v) for k, v in c.metrics.items()},
                         "mean_accuracy_matrix": c.mean_matrix,
                         "mean_param_counts": c.mean_param_counts, "errors": c.errors}
                        for c in t.cells
                    ],
                }
                for t in self.scenarios
            ],
            "overall": [asdict(r) for r in self.overall],
            "stale": [{"scenario": s.scenario, "strategy": s.strategy, "stored": s.stored,
                       "current": s.current, "n_runs": s.cell.n_runs, "fix": STALE_FIX}
                      for s in self.stale],
            "not_run": [asdict(r) for r in self.not_run],
            "metadata": self.metadata,
            "metric_definitions": {m.key: m.definition for m in self.metric_defs},
        }


# ---------------------------------------------------------------------------------------------
# Helpers


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def _num(value: Any) -> float | None:
    """A finite number as a float, else None."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int or (isinstance(value, (int, float)) and kind is not bool):
        value = float(value)
        return value if math.isfinite(value) else None
    return None


@functools.cache
def _t_quantile(dof: int) -> float:
    """Two-sided 95% quantile of Student's t (``scipy.stats.t.ppf(0.975, dof)``: the inverse of
    its distribution function, ``stdtrit``)."""
    return float(stdtrit(dof, 0.5 + CONFIDENCE / 2))


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of their positions (``scipy.stats.rankdata``'s
    ``average``): values equal to ``v`` occupy positions ``start + 1 .. end``."""
    _, inverse, counts = np.unique(np.asarray(values, dtype=float), return_inverse=True,
                                   return_counts=True)
    end = np.cumsum(counts)
    return ((end - counts + 1 + end) / 2)[inverse]


def summarize(values: Iterable[float | None]) -> Stat:
    """Mean, sample sd, n and the 95% Student-t half-width of the non-null values."""
    vals = [v for v in (_num(x) for x in values) if v is not None]
    n = len(vals)
    if n == 0:
        return Stat(None, None, 0, None, [])
    mean = math.fsum(vals) / n
    if n < 2:
        return Stat(mean, None, 1, None, vals)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1))
    ci = _t_quantile(n - 1) * sd / math.sqrt(n)
    return Stat(mean, sd, n, ci, vals)


def scenario_key(run: RunResult) -> tuple[str, dict[str, Any]]:
    """Key and description of the scenario a run belongs to: name, version, setting,
    parameters, budget and the data subset flag."""
    info = _scenario_info(run)
    return _canon(info), info


def _scenario_info(run: RunResult) -> dict[str, Any]:
    return {
        "name": run.spec.scenario,
        "version": run.spec.scenario_version,
        "setting": run.scenario.setting,
        "params": dict(run.spec.scenario_params),
        "budget": run.spec.budget,
        "subset": run.scenario.data_subset,
        # validation-split runs (tuning) form their own tables, never pooled with test runs
        **({"split": "validation", "validation": run.spec.validation}
           if run.spec.split == "validation" else {}),
        # runs on the first k tasks are a shorter stream: their own tables too
        **({"first_tasks": run.spec.tasks} if run.spec.tasks else {}),
    }


def strategy_key(run: RunResult) -> str:
    """Key of the run's cell in its scenario table: strategy name, version and parameters,
    backbone name and version."""
    return _canon({**_strategy_info(run), "version": run.spec.strategy_version,
                   "backbone_version": run.spec.backbone_version})


def _strategy_info(run: RunResult) -> dict[str, Any]:
    return {"name": run.spec.strategy, "params": dict(run.spec.strategy_params),
            "backbone": run.spec.backbone}


def _without_version(info: dict[str, Any]) -> str:
    return _canon({k: v for k, v in info.items() if k != "version"})


def _fmt_param(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _scenario_label(info: dict[str, Any]) -> str:
    params = {k: v for k, v in sorted(info["params"].items()) if k != "setting"}
    extra = ", ".join(f"{k}={_fmt_param(v)}" for k, v in params.items())
    label = info["name"]
    if info["setting"]:
        label += f" [{info['setting']}]"
    if extra:
        label += f" ({extra})"
    label += f" v{info['version']}, budget {info['budget']}"
    if info["subset"]:
        label += ", data subset"
    if info.get("split") == "validation":
        label += f", validation split ({info['validation']:g} of training data)"
    if info.get("first_tasks"):
        label += f", first {info['first_tasks']} tasks"
    return label


def _final_acc(run: RunResult) -> float | None:
    return _num(MATRIX_METRICS["acc"](run.accuracy_matrix))


def _run_ok(run: RunResult) -> bool:
    return run.status == "ok" and _final_acc(run) is not None


def _error_text(run: RunResult) -> str | None:
    if run.error is not None:
        return f"{run.error.type}: {run.error.message}"
    if run.status == "diverged":
        return f"diverged after task {run.diverged_after_task}"
    return None


def _mean_rows(rows: Sequence[Sequence[Any]]) -> list[float | None]:
    out = []
    for col in zip(*rows):
        vals = [v for v in map(_num, col) if v is not None]
        out.append(math.fsum(vals) / len(vals) if vals else None)
    return out


def _mean_matrix(matrices: Sequence[Any], n_tasks: int) -> list[list[float | None]]:
    """Element-wise mean over the matrices of the right shape, ignoring unmeasured entries."""
    arrays = []
    for R in matrices:
        try:
            m = as_matrix(R)
        except (ValueError, TypeError):
            continue
        if m.shape == (n_tasks + 1, n_tasks):
            arrays.append(m)
    if not arrays:
        return []
    stack = np.stack(arrays)
    counts = (~np.isnan(stack)).sum(axis=0)
    sums = np.nansum(stack, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    return [[None if c == 0 else float(v) for v, c in zip(row, crow)]
            for row, crow in zip(mean.tolist(), counts.tolist())]


def _group_members(docs: Sequence[RunResult]) -> list[list[int]] | None:
    """Indices of ``docs`` per seed group they trained in, when some group had several
    members (else None: each run measured alone)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, doc in enumerate(docs):
        key = tuple(doc.group.seeds) if doc.group is not None else ("alone", i)
        groups.setdefault(key, []).append(i)
    if all(len(members) == 1 for members in groups.values()):
        return None
    return list(groups.values())


def _seed_sort(seeds: Iterable[Any]) -> list[Any]:
    return sorted(set(seeds), key=lambda s: (not isinstance(s, int), str(s) if not
                                             isinstance(s, int) else s))


def _labels(cells: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """Cell labels: the strategy name, plus the hyperparameters that differ between
    configurations of the same strategy in the table."""
    by_name: dict[str, list[str]] = {}
    for key, (name, _) in cells.items():
        by_name.setdefault(name, []).append(key)
    labels = {}
    for name, keys in by_name.items():
        if len(keys) == 1:
            labels[keys[0]] = name
            continue
        all_params = [cells[k][1] for k in keys]
        names = sorted({p for params in all_params for p in params})
        differing = [p for p in names
                     if len({_canon(params.get(p)) for params in all_params}) > 1]
        if not differing:  # versions tell them apart, and are listed beside the label
            labels.update(dict.fromkeys(keys, name))
            continue
        for key in keys:
            params = cells[key][1]
            shown = ",".join(f"{p}={_fmt_param(params.get(p))}" for p in differing)
            labels[key] = f"{name} ({shown})"
    return labels


# ---------------------------------------------------------------------------------------------
# Aggregation


def aggregate(docs: Sequence[RunResult], problems: Sequence[str] = (),
              generated_at: str | None = None,
              metadata: dict[str, Any] | None = None,
              not_run: Sequence[NotRun] = ()) -> Leaderboard:
    """The leaderboard of a list of run results.

    ``generated_at`` and ``metadata`` override the report date and the entries of the
    metadata block (for reproducible output, e.g. golden tests). ``not_run``: the store's
    records of runs skipped for missing data, listed per scenario."""
    current = current_versions(docs)
    fresh = [d for d in docs if not stale_components(components(d), current)]
    runs: list[RunRow] = []
    scenario_tables = _tables(fresh, runs)
    runs.sort(key=lambda r: (r.scenario, r.strategy, str(r.seed), r.spec_hash))
    stale = []
    stale_runs = [d for d in docs if stale_components(components(d), current)]
    for table in _tables(stale_runs, [], ranked=False):
        for c in table.cells:
            parts = stale_components(cell_components(table, c), current)
            stale.append(StaleCell(
                table=table, cell=c,
                stored=[describe(k, name, was) for k, (name, was, _) in parts.items()],
                current=[describe(k, name, now) for k, (name, _, now) in parts.items()]))
    return Leaderboard(
        scenarios=scenario_tables,
        overall=overall_ranking(scenario_tables),
        runs=runs,
        metadata=_metadata(docs, generated_at, metadata),
        problems=list(problems),
        stale=stale,
        not_run=not_run_rows(not_run),
    )


def not_run_rows(records: Sequence[NotRun]) -> list[NotRunRow]:
    """The not-run records grouped by scenario (label as the tables', without the data subset
    flag, which only a run's built scenario knows)."""
    groups: dict[str, list[NotRun]] = {}
    for r in records:
        spec = r.spec
        params = spec["scenario_params"]
        info = {"name": spec["scenario"], "version": spec.get("scenario_version", "?"),
                "setting": params.get("setting"), "params": params,
                "budget": spec["budget"], "subset": False}
        groups.setdefault(_scenario_label(info), []).append(r)
    return [NotRunRow(scenario=label,
                      strategies=sorted({str(r.spec["strategy"]) for r in rs}),
                      seeds=_seed_sort(r.spec.get("seed") for r in rs),
                      n_runs=len(rs), reason=rs[0].reason,
                      messages=sorted({r.message for r in rs}))
            for label, rs in sorted(groups.items())]


def _tables(docs: Sequence[RunResult], runs: list[RunRow], ranked: bool = True
            ) -> list[ScenarioTable]:
    """The scenario tables of ``docs``, sorted by label; their runs are added to ``runs``."""
    tables: dict[str, tuple[dict[str, Any], dict[str, list[RunResult]]]] = {}
    for doc in docs:
        skey, info = scenario_key(doc)
        tables.setdefault(skey, (info, {}))[1].setdefault(strategy_key(doc), []).append(doc)
    out = [_build_table(skey, info, cell_docs, runs, ranked)
           for skey, (info, cell_docs) in tables.items()]
    return sorted(out, key=lambda t: t.label)


def _build_table(skey: str, info: dict[str, Any], cell_docs: dict[str, list[RunResult]],
                 runs: list[RunRow], ranked: bool = True) -> ScenarioTable:
    first = next(iter(cell_docs.values()))[0]
    setting = info["setting"]
    fwt_applicable = setting != "class"
    primary = first.scenario.primary_metric
    n_tasks = first.n_tasks
    label = _scenario_label(info)

    expected: set[int] = set()
    for group in cell_docs.values():
        for doc in group:
            expected.add(doc.spec.seed)
            if doc.group is not None:
                expected.update(doc.group.seeds)
    seeds_total = _seed_sort(expected)

    names = {k: (g[0].spec.strategy, dict(g[0].spec.strategy_params))
             for k, g in cell_docs.items()}
    labels = _labels(names)
    cells: list[Cell] = []
    for ckey, group in cell_docs.items():
        # One document per seed; if a seed appears twice, an ok run wins.
        by_seed: dict[int, RunResult] = {}
        for doc in sorted(group, key=lambda d: (_run_ok(d), str(d.finished_at))):
            by_seed[doc.spec.seed] = doc
        ok_docs = [d for _, d in sorted(by_seed.items(), key=lambda kv: str(kv[0]))
                   if _run_ok(d)]
        per_run = [run_metrics(d) for d in ok_docs]
        metrics: dict[str, Stat | None] = {}
        groups = _group_members(ok_docs)
        for m in METRICS:
            if m.key == "fwt" and not fwt_applicable:
                metrics[m.key] = None
            elif m.per_group and groups is not None:
                metrics[m.key] = summarize(per_run[members[0]][m.key]
                                           for members in groups)
                metrics[m.key].per_group = True
            else:
                metrics[m.key] = summarize(r[m.key] for r in per_run)
        statuses: dict[str, int] = {}
        for doc in by_seed.values():
            statuses[doc.status] = statuses.get(doc.status, 0) + 1
        missing = len([s for s in seeds_total if s not in by_seed])
        if missing:
            statuses["missing"] = missing
        mean_matrix = _mean_matrix([d.accuracy_matrix for d in ok_docs], n_tasks)
        mean_counts = _mean_rows([d.param_counts for d in ok_docs]) if ok_docs else []
        errors = []
        for seed, doc in sorted(by_seed.items(), key=lambda kv: str(kv[0])):
            text = _error_text(doc)
            if text and not _run_ok(doc):
                errors.append(f"seed {seed}: {text}")
            runs.append(RunRow(
                spec_hash=doc.spec_hash, scenario=label, strategy=labels[ckey],
                seed=seed, status=doc.status, acc=_final_acc(doc), error=_error_text(doc),
                diverged_after_task=doc.diverged_after_task, finished_at=doc.finished_at))
        example = group[0]
        cells.append(Cell(
            strategy=names[ckey][0], label=labels[ckey], params=names[ckey][1], key=ckey,
            seeds_ok=_seed_sort(d.spec.seed for d in ok_docs),
            seeds_total=seeds_total, statuses=dict(sorted(statuses.items())),
            metrics=metrics, mean_matrix=mean_matrix, mean_param_counts=mean_counts,
            errors=errors,
            versions={k: v for k, (_, v) in components(example).items()},
            backbone=example.spec.backbone,
            match_key=_canon(_strategy_info(example)), n_runs=len(group)))

    if ranked:
        rank_cells(cells, primary)
    cells.sort(key=lambda c: (c.rank is None, c.rank if c.rank is not None else 0,
                              c.label))
    shown = [m.key for m in METRICS
             if m.key == "fwt" or any(c.metrics[m.key] is not None
                                      and c.metrics[m.key].mean is not None for c in cells)]
    best: dict[str, list[str]] = {}
    for key in shown:
        winner = best_cell([c for c in cells if c.complete], key)
        if winner is not None:
            best[key] = [winner]
    notes = []
    if not fwt_applicable:
        notes.append(FWT_NA_NOTE)
    if any(not c.complete for c in cells):
        notes.append(INCOMPLETE_NOTE)
    return ScenarioTable(
        key=skey, label=label, name=info["name"], version=info["version"], setting=setting,
        params=dict(info["params"]), budget=info["budget"], subset=info["subset"],
        split=info.get("split", "test"),
        n_tasks=n_tasks, primary_metric=primary, fwt_applicable=fwt_applicable, cells=cells,
        metrics=shown, best=best, notes=notes, match_key=_without_version(info))


def best_cell(cells: Sequence[Cell], key: str) -> str | None:
    """The label of the cell that is best in ``key`` *beyond the confidence intervals*: its 95%
    interval lies entirely on the better side of every other cell's interval. None for ties,
    for differences inside the intervals, with fewer than two cells, or when a cell has no
    interval (n < 2): bold then would claim a difference the seeds do not show."""
    stats = [(c.metrics[key], c.label) for c in cells
             if c.metrics.get(key) is not None and c.metrics[key].mean is not None]
    if len(stats) < 2 or any(st.ci is None for st, _ in stats):
        return None
    sign = 1.0 if METRIC_BY_KEY[key].higher_is_better else -1.0
    stats.sort(key=lambda item: -sign * item[0].mean)
    (top, label), (runner_up, _) = stats[0], stats[1]
    if sign > 0:
        separated = top.mean - top.ci > runner_up.mean + runner_up.ci
    else:
        separated = top.mean + top.ci < runner_up.mean - runner_up.ci
    return label if separated else None


def cell_components(table: ScenarioTable, cell: Cell) -> dict[str, tuple[str, str]]:
    """kind -> (name, version) of the cell's scenario, strategy and backbone."""
    return {"scenario": (table.name, cell.versions["scenario"]),
            "strategy": (cell.strategy, cell.versions["strategy"]),
            "backbone": (cell.backbone, cell.versions["backbone"])}


def rank_cells(cells: Sequence[Cell], metric: str = "acc") -> None:
    """Rank the complete cells by the mean of ``metric`` (1 = best; ties share the average
    rank). Incomplete cells get no rank."""
    mdef = METRIC_BY_KEY[metric]
    ranked = [c for c in cells if c.complete and c.metrics.get(metric) is not None
              and c.metrics[metric].mean is not None]
    for c in cells:
        c.rank = None
    if not ranked:
        return
    sign = -1.0 if mdef.higher_is_better else 1.0
    ranks = average_ranks([sign * c.metrics[metric].mean for c in ranked])
    for c, r in zip(ranked, ranks):
        c.rank = float(r)


def overall_ranking(tables: Sequence[ScenarioTable]) -> list[OverallRow]:
    """Strategies (by cell label) ordered by their mean rank over the scenarios where they are
    ranked: accuracies of different scenarios are never averaged."""
    ranks: dict[str, dict[str, float]] = {}
    for t in tables:
        for c in t.cells:
            if c.rank is not None:
                ranks.setdefault(c.label, {})[t.label] = c.rank
    rows = [OverallRow(label, float(np.mean(list(r.values()))), len(r), r)
            for label, r in ranks.items()]
    rows.sort(key=lambda r: (r.mean_rank, -r.n_scenarios, r.label))
    return rows


def _metadata(docs: Sequence[RunResult], generated_at: str | None,
              override: dict[str, Any] | None) -> dict[str, Any]:
    from clbench.identity import clbench_version

    def distinct(values: Iterable[Any]) -> list[str]:
        return sorted({str(v) for v in values if v not in (None, "")})

    idents = [d.identity for d in docs]
    shas = [i.git.sha[:12] + (" (dirty)" if i.git.dirty else "") for i in idents if i.git.sha]
    started = distinct(d.started_at for d in docs)
    finished = distinct(d.finished_at for d in docs)
    meta = {
        "generated_at": generated_at
        or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "report_clbench_version": clbench_version(),
        "n_runs": len(docs),
        "run_statuses": {s: sum(1 for d in docs if d.status == s) for s in STATUSES},
        "clbench_versions": distinct(i.clbench_version for i in idents),
        "git_shas": sorted(set(shas)),
        # A CPU run's device name is its CPU, shown once under "cpus"; accelerators by name.
        "hardware": distinct(i.device if str(i.device).startswith("cpu")
                             else f"{i.device}: {i.device_name}" if i.device else None
                             for i in idents),
        "cpus": distinct(f"{i.cpu} ({i.cpu_count} logical CPUs)" if i.cpu and i.cpu_count
                         else i.cpu for i in idents),
        "python": distinct(i.python for i in idents),
        "torch": distinct(i.torch for i in idents),
        "cuda": distinct(i.cuda for i in idents),
        "runs_started": started[0] if started else None,
        "runs_finished": finished[-1] if finished else None,
    }
    meta.update(override or {})
    return meta


def find_cells(lb: Leaderboard, strategy: str) -> list[tuple[ScenarioTable, Cell]]:
    """Cells whose label is ``strategy``, else whose strategy name is ``strategy``."""
    out = [(t, c) for t in lb.scenarios for c in t.cells if c.label == strategy]
    return out or [(t, c) for t in lb.scenarios for c in t.cells if c.strategy == strategy]


def leaderboard_for(loaded: Any, generated_at: str | None = None,
                    metadata: dict[str, Any] | None = None) -> Leaderboard:
    """The leaderboard of a :class:`clbench.results.LoadedResults`, computed once per loaded
    store and options (several reporters rendering one store share it)."""
    key = (generated_at, _canon(metadata), len(loaded.runs), len(loaded.problems),
           len(getattr(loaded, "not_run", ())))
    cache = loaded.__dict__.setdefault("_leaderboards", {})
    if key not in cache:
        cache[key] = aggregate(loaded.runs, loaded.problems, generated_at, metadata,
                               getattr(loaded, "not_run", ()))
    return cache[key]
