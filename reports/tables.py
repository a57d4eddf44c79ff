"""Building the leaderboard from result documents: pure functions, no I/O.

Runs are grouped into *cells*: one scenario (name, version, setting, parameters, budget, data
subset flag) x one strategy (name, version and resolved hyperparameters) x one backbone (name and
version). Each metric is summarized over the seeds of a cell (:mod:`clbench.reports.statistics`).
Runs with different budgets or versions land in different cells and are never mixed.

Only cells at the current version of every component are shown and ranked; the others are
*stale* (:mod:`clbench.reports.staleness`): the leaderboard lists them in ``stale``.

A cell is *complete* when every expected seed (the union of the seeds seen anywhere in its
scenario table, and of the seed groups the runs were planned in) has an ``ok`` run with a final
accuracy. Incomplete cells are shown with ``n ok / n total``, are never bold and are not ranked.
A cell is *best* in a column (bold) only when its confidence interval is entirely better than
every other complete cell's (:func:`best_cell`): never for ties or differences inside the CI.

Every renderer reads the same :class:`~clbench.reports.table_model.Leaderboard`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from clbench.metrics import MATRIX_METRICS, METRIC_BY_KEY, METRICS, as_matrix, run_metrics
from clbench.reports.staleness import (
    components,
    current_versions,
    describe,
    stale_components,
)
from clbench.reports.statistics import (
    Stat,
    average_ranks,
    best_beyond_intervals,
    finite,
    mean_rows,
    summarize,
)
from clbench.reports.table_model import (
    Cell,
    Leaderboard,
    MeanCurve,
    NotRunRow,
    OverallRow,
    RunRow,
    ScenarioTable,
    StaleCell,
)
from clbench.results import NotRun
from clbench.schema import STATUSES, RunResult

INCOMPLETE_NOTE = ("Incomplete cells (seeds missing, failed or diverged) show n ok / n total, "
                   "average only their ok seeds, are never bold and are not ranked.")


# ---------------------------------------------------------------------------------------------
# Keys and labels


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


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
# One run, one cell


def _final_acc(run: RunResult) -> float | None:
    return finite(MATRIX_METRICS["acc"](run.accuracy_matrix))


def _run_ok(run: RunResult) -> bool:
    return run.status == "ok" and _final_acc(run) is not None


def _error_text(run: RunResult) -> str | None:
    if run.error is not None:
        return f"{run.error.type}: {run.error.message}"
    if run.status == "diverged":
        return f"diverged after task {run.diverged_after_task}"
    return None


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


def _mean_curve(docs: Sequence[RunResult]) -> MeanCurve | None:
    """The mean continual-evaluation curve of the runs that have one with the first one's
    points; None when none has a curve."""
    with_curve = [d for d in docs if d.curve is not None and d.curve.steps]
    if not with_curve:
        return None
    curves = [d.curve for d in with_curve]
    first = curves[0]
    same = [c for c in curves if c.steps == first.steps and c.task_ends == first.task_ends]
    return MeanCurve(every=with_curve[0].spec.eval_every, steps=list(first.steps),
                     task_ends=list(first.task_ends),
                     accuracy=[mean_rows(rows) for rows in zip(*(c.accuracy for c in same))],
                     n=len(same))


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


def _cell_metrics(ok_docs: Sequence[RunResult], setting: str | None
                  ) -> dict[str, Stat | None]:
    """Each metric over the ok runs; None where it means nothing in ``setting``."""
    per_run = [run_metrics(d) for d in ok_docs]
    groups = _group_members(ok_docs)
    metrics: dict[str, Stat | None] = {}
    for m in METRICS:
        if not m.applies_to(setting):
            metrics[m.key] = None
        elif m.per_group and groups is not None:
            metrics[m.key] = summarize((per_run[members[0]][m.key] for members in groups),
                                       per_group=True)
        else:
            metrics[m.key] = summarize((r[m.key] for r in per_run),
                                       seeds=[d.spec.seed for d in ok_docs])
    return metrics


def _cell(key: str, docs: Sequence[RunResult], strategy: str, label: str,
          params: dict[str, Any], table_label: str, setting: str | None, n_tasks: int,
          seeds_total: list[Any]) -> Cell:
    """The cell of ``docs`` (one strategy configuration's runs in one scenario table)."""
    # One document per seed; if a seed appears twice, an ok run wins, then one with a curve
    # (its accuracy matrix is the same as without: clbench.app.continual).
    by_seed: dict[int, RunResult] = {}
    for doc in sorted(docs, key=lambda d: (_run_ok(d), d.curve is not None,
                                           str(d.finished_at))):
        by_seed[doc.spec.seed] = doc
    seeds = sorted(by_seed.items(), key=lambda kv: str(kv[0]))
    ok_docs = [d for _, d in seeds if _run_ok(d)]
    statuses: dict[str, int] = {}
    for doc in by_seed.values():
        statuses[doc.status] = statuses.get(doc.status, 0) + 1
    missing = len([s for s in seeds_total if s not in by_seed])
    if missing:
        statuses["missing"] = missing
    example = docs[0]
    return Cell(
        strategy=strategy, label=label, params=params, key=key,
        seeds_ok=_seed_sort(d.spec.seed for d in ok_docs),
        seeds_total=seeds_total, statuses=dict(sorted(statuses.items())),
        metrics=_cell_metrics(ok_docs, setting),
        mean_matrix=_mean_matrix([d.accuracy_matrix for d in ok_docs], n_tasks),
        mean_param_counts=mean_rows([d.param_counts for d in ok_docs]) if ok_docs else [],
        mean_curve=_mean_curve(ok_docs),
        errors=[f"seed {seed}: {_error_text(doc)}" for seed, doc in seeds
                if _error_text(doc) and not _run_ok(doc)],
        versions={k: v for k, (_, v) in components(example).items()},
        backbone=example.spec.backbone,
        match_key=_canon(_strategy_info(example)), n_runs=len(docs),
        runs=[RunRow(spec_hash=doc.spec_hash, scenario=table_label, strategy=label, seed=seed,
                     status=doc.status, acc=_final_acc(doc), error=_error_text(doc),
                     diverged_after_task=doc.diverged_after_task,
                     finished_at=doc.finished_at)
              for seed, doc in seeds])


# ---------------------------------------------------------------------------------------------
# Tables


def scenario_tables(docs: Sequence[RunResult]) -> list[ScenarioTable]:
    """The scenario tables of ``docs``, sorted by label; their cells unranked, by label."""
    tables: dict[str, tuple[dict[str, Any], dict[str, list[RunResult]]]] = {}
    for doc in docs:
        skey, info = scenario_key(doc)
        tables.setdefault(skey, (info, {}))[1].setdefault(strategy_key(doc), []).append(doc)
    out = [scenario_table(skey, info, cell_docs) for skey, (info, cell_docs) in tables.items()]
    return sorted(out, key=lambda t: t.label)


def scenario_table(skey: str, info: dict[str, Any], cell_docs: dict[str, list[RunResult]]
                   ) -> ScenarioTable:
    """One scenario's table of the cells ``cell_docs`` (cell key -> its runs), unranked."""
    first = next(iter(cell_docs.values()))[0]
    setting = info["setting"]
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
    cells = sorted((_cell(ckey, group, names[ckey][0], labels[ckey], names[ckey][1], label,
                          setting, n_tasks, seeds_total)
                    for ckey, group in cell_docs.items()), key=lambda c: c.label)
    na_metrics = [m.key for m in METRICS if not m.applies_to(setting)]
    shown = [m.key for m in METRICS
             if m.undefined_in or any(c.metrics[m.key] is not None
                                      and c.metrics[m.key].mean is not None for c in cells)]
    best: dict[str, list[str]] = {}
    for key in shown:
        winner = best_cell([c for c in cells if c.complete], key)
        if winner is not None:
            best[key] = [winner]
    notes = [METRIC_BY_KEY[k].undefined_note for k in na_metrics]
    if any(not c.complete for c in cells):
        notes.append(INCOMPLETE_NOTE)
    return ScenarioTable(
        key=skey, label=label, name=info["name"], version=info["version"], setting=setting,
        params=dict(info["params"]), budget=info["budget"], subset=info["subset"],
        split=info.get("split", "test"), n_tasks=n_tasks,
        primary_metric=first.scenario.primary_metric, na_metrics=na_metrics, cells=cells,
        metrics=shown, best=best, notes=notes, match_key=_without_version(info))


def ranked(table: ScenarioTable) -> ScenarioTable:
    """``table`` with its complete cells ranked by the mean of its primary metric (1 = best;
    ties share the average rank) and listed first, by rank; incomplete cells get no rank."""
    ranks = cell_ranks(table.cells, table.primary_metric)
    cells = [dataclasses.replace(c, rank=r) for c, r in zip(table.cells, ranks)]
    cells.sort(key=lambda c: (c.rank is None, c.rank if c.rank is not None else 0, c.label))
    return dataclasses.replace(table, cells=cells)


def cell_ranks(cells: Sequence[Cell], metric: str = "acc") -> list[float | None]:
    """The rank of each cell by the mean of ``metric`` (1 = best; ties share the average rank);
    None for an incomplete cell or one without a value."""
    scored = [i for i, c in enumerate(cells) if c.complete and c.metrics.get(metric) is not None
              and c.metrics[metric].mean is not None]
    out: list[float | None] = [None] * len(cells)
    if scored:
        sign = -1.0 if METRIC_BY_KEY[metric].higher_is_better else 1.0
        for i, r in zip(scored, average_ranks([sign * cells[i].metrics[metric].mean
                                               for i in scored])):
            out[i] = float(r)
    return out


def best_cell(cells: Sequence[Cell], key: str) -> str | None:
    """The label of the cell that is best in ``key`` beyond the 95% confidence intervals
    (:func:`clbench.reports.statistics.best_beyond_intervals`), or None."""
    return best_beyond_intervals([(c.label, c.metrics[key]) for c in cells
                                  if c.metrics.get(key) is not None],
                                 METRIC_BY_KEY[key].higher_is_better)


def cell_components(table: ScenarioTable, cell: Cell) -> dict[str, tuple[str, str]]:
    """kind -> (name, version) of the cell's scenario, strategy and backbone."""
    return {"scenario": (table.name, cell.versions["scenario"]),
            "strategy": (cell.strategy, cell.versions["strategy"]),
            "backbone": (cell.backbone, cell.versions["backbone"])}


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


# ---------------------------------------------------------------------------------------------
# The leaderboard


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
    tables = [ranked(t) for t in scenario_tables(fresh)]
    runs = sorted((r for t in tables for c in t.cells for r in c.runs),
                  key=lambda r: (r.scenario, r.strategy, str(r.seed), r.spec_hash))
    stale = []
    for table in scenario_tables([d for d in docs
                                  if stale_components(components(d), current)]):
        for c in table.cells:
            parts = stale_components(cell_components(table, c), current)
            stale.append(StaleCell(
                table=table, cell=c,
                stored=[describe(k, name, was) for k, (name, was, _) in parts.items()],
                current=[describe(k, name, now) for k, (name, _, now) in parts.items()]))
    return Leaderboard(
        scenarios=tables,
        overall=overall_ranking(tables),
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


# Leaderboards computed for a loaded store, so that several reporters rendering one store
# aggregate it once: id(store) -> (options -> (the lists' items it was computed from, the
# leaderboard)). An entry is used only while the store's lists hold the very same items (the
# snapshot keeps them alive, so their identities cannot be reused), and it goes with the store.
_LEADERBOARDS: dict[int, dict[tuple[Any, ...], tuple[tuple[Any, ...], Leaderboard]]] = {}


def leaderboard_for(loaded: Any, generated_at: str | None = None,
                    metadata: dict[str, Any] | None = None) -> Leaderboard:
    """The leaderboard of a :class:`clbench.results.LoadedResults`, computed once per loaded
    store, contents and options (several reporters rendering one store share it)."""
    not_run = getattr(loaded, "not_run", ())
    items = (*loaded.runs, None, *loaded.problems, None, *not_run)
    cache = _LEADERBOARDS.get(id(loaded))
    if cache is None:
        cache = _LEADERBOARDS[id(loaded)] = {}
        weakref.finalize(loaded, _LEADERBOARDS.pop, id(loaded), None)
    options = (generated_at, _canon(metadata))
    hit = cache.get(options)
    if hit is None or len(hit[0]) != len(items) or any(a is not b for a, b in zip(hit[0], items)):
        hit = cache[options] = (items, aggregate(loaded.runs, loaded.problems, generated_at,
                                                 metadata, not_run))
    return hit[1]
