"""The neutral table model every renderer (Markdown, HTML, JSON, CSV, LaTeX, figures) reads:
a :class:`Leaderboard` of :class:`ScenarioTable` of :class:`Cell`. Built by
:mod:`clbench.reports.tables`; plain data, no I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from clbench.metrics import METRIC_BY_KEY, METRICS, MetricDef
from clbench.reports.staleness import STALE_FIX
from clbench.reports.statistics import CONFIDENCE, Stat


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
class MeanCurve:
    """The continual-evaluation curve of a cell (``--eval-every``), averaged over its ok seeds
    whose curves have the same points (the first seed's)."""

    every: int  # the runs' evaluation interval, in optimiser steps (spec.eval_every)
    steps: list[int]
    task_ends: list[int]
    accuracy: list[list[float | None]]  # per point, per task; None: not evaluated
    n: int  # seeds averaged


@dataclass
class Cell:
    strategy: str  # the strategy's name as registered or given
    label: str  # name, plus the hyperparameters that tell configurations apart
    params: dict[str, Any]
    key: str
    seeds_ok: list[Any]
    seeds_total: list[Any]
    statuses: dict[str, int]
    metrics: dict[str, Stat | None]  # None: not applicable (MetricDef.applies_to)
    mean_matrix: list[list[float | None]]  # mean accuracy matrix over ok seeds
    mean_param_counts: list[float | None]
    errors: list[str]
    versions: dict[str, str]  # "scenario", "strategy", "backbone" -> the version run
    backbone: str
    match_key: str  # the key without versions: the same cell at another version (the gate)
    n_runs: int
    runs: list[RunRow]  # one per seed (an ok run wins over another of the same seed)
    rank: float | None = None
    mean_curve: MeanCurve | None = None  # with continual evaluation only

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
    na_metrics: list[str]  # metric keys that mean nothing in this setting: shown as n/a
    cells: list[Cell]  # ranked first (by rank), then unranked
    metrics: list[str]  # metric keys shown: with a value somewhere, or n/a by definition
    best: dict[str, list[str]]  # metric key -> [the label of the complete cell best beyond
    # the CIs] (see tables.best_cell); absent when no cell is
    notes: list[str]  # every note of the table, the n/a notes of na_metrics included
    match_key: str  # the key without the scenario's version
    split: str = "test"  # what the accuracies were measured on: "test" or "validation"

    @property
    def na_notes(self) -> list[str]:
        """Why each metric of ``na_metrics`` is n/a here (MetricDef.undefined_note)."""
        return [METRIC_BY_KEY[k].undefined_note for k in self.na_metrics]

    @property
    def other_notes(self) -> list[str]:
        """The notes that are not n/a notes (renderers put those beside the n/a marks)."""
        return [n for n in self.notes if n not in self.na_notes]


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

    def na_notes(self) -> dict[str, str]:
        """Metric key -> why it is n/a, for the metrics n/a in some table."""
        return {k: METRIC_BY_KEY[k].undefined_note
                for k in dict.fromkeys(k for t in self.scenarios for k in t.na_metrics)}

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
                    # "fwt_applicable": one flag per metric that is n/a in some settings
                    **{f"{m.key}_applicable": m.key not in t.na_metrics
                       for m in self.metric_defs if m.undefined_in},
                    "notes": t.notes,
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
