"""The Python API behind the ``clbench`` command: plan, run, report, list.

Only :func:`run` and :func:`prepare` train, so only they import torch (through the runner):
``report``, ``compare``, ``gate`` and listings start in well under a second."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from clbench.app.orchestrate import (
    DEFAULT_RESULTS,
    Estimate,
    RunSummary,
    check_run_options,
    estimate,
    run,
)
from clbench.app.suite import builtin_suites, load_suite
from clbench.budget import BUDGETS
from clbench.errors import ConfigError, ResultsError
from clbench.params import describe
from clbench.registry import BACKBONES, REPORTERS, SCENARIOS, STRATEGIES
from clbench.results import ResultsStore, write_output
from clbench.spec import RunSpec, check_continual, check_validation, make_specs, parse_seeds
from clbench.versions import version_of

__all__ = ["DEFAULT_RESULTS", "Estimate", "RunSummary", "check_run_options", "compare",
           "describe_registered", "estimate", "figures", "gate", "plan", "prepare", "report",
           "run", "tune"]



def plan(
    suite: str | None = None,
    scenarios: Sequence[str] = (),
    strategies: Sequence[str] = (),
    seeds: str | Sequence[int] | None = None,
    budget: str | None = None,
    validation: float = 0.0,
    eval_every: int = 0,
    eval_subset: int = 0,
) -> tuple[list[RunSpec], list[str]]:
    """The run specs of a suite and/or an explicit scenarios x strategies grid, with notes;
    ``validation`` > 0 evaluates each on that fraction of its training data (not the test
    split); ``eval_every`` > 0 also evaluates every that many optimiser steps, on
    ``eval_subset`` samples per task (0: all; :mod:`clbench.app.continual`)."""
    validation = check_validation(validation)
    eval_every, eval_subset = check_continual(eval_every, eval_subset)
    seed_list = parse_seeds(list(seeds) if isinstance(seeds, (list, tuple)) else seeds) \
        if seeds is not None else None
    specs: list[RunSpec] = []
    notes: list[str] = []
    if suite:
        s = load_suite(suite)
        if scenarios or strategies:
            # Narrow the suite: --scenario/--strategy given with --suite replace its lists.
            s.scenarios = list(scenarios) or s.scenarios
            s.strategies = list(strategies) or s.strategies
        _check_plan_size(len(s.scenarios), len(s.strategies), len(seed_list or s.seeds))
        specs += s.expand(seed_list, budget)
        notes += s.notes
    else:
        if not scenarios or not strategies:
            raise ConfigError("nothing to run",
                              hint="give --suite NAME, or --scenario and --strategy")
        _check_plan_size(len(scenarios), len(strategies), len(seed_list or [0]))
        for sc in scenarios:
            for st in strategies:
                specs += make_specs(sc, st, seed_list or [0], budget or "default")
    if validation:
        specs = [dataclasses.replace(s, validation=validation) for s in specs]
    if eval_every:
        specs = [dataclasses.replace(s, eval_every=eval_every, eval_subset=eval_subset)
                 for s in specs]
    return list(dict.fromkeys(specs)), notes


MAX_PLANNED_RUNS = 100_000  # runs in one plan: far beyond any study; a typo's grid stops here


def _check_plan_size(n_scenarios: int, n_strategies: int, n_seeds: int) -> None:
    """ConfigError before a grid of more than :data:`MAX_PLANNED_RUNS` runs is expanded (a
    million-run plan took minutes and gigabytes just to print)."""
    runs = n_scenarios * n_strategies * n_seeds
    if runs > MAX_PLANNED_RUNS:
        raise ConfigError(f"the plan has {runs:,} runs ({n_scenarios} scenario(s) x "
                          f"{n_strategies} strategy(ies) x {n_seeds} seed(s)), more than "
                          f"{MAX_PLANNED_RUNS:,}", hint="split it into several suites, or give "
                          "fewer seeds")


def tune(scenario: str, strategy: str, space: Sequence[str], *, sampler: str = "grid",
         trials: int | None = None, seeds: str | Sequence[int] = (0,), budget: str = "default",
         validation: float = 0.1, metric: str = "acc", search_seed: int = 0,
         tasks: int = 0, results: str | Path = DEFAULT_RESULTS,
         outputs: dict[str, str | Path] | None = None,
         **run_options: Any):
    """Search ``strategy``'s parameters on ``scenario``, scored on the validation split (see
    :mod:`clbench.app.tune`); every trial runs through :func:`run` (``run_options``: device,
    data_dir, group_size, ...) into ``results``. ``outputs`` maps ``markdown``/``json`` to a
    file (``-``: returned only). Returns ``(TuneResult, {format: text})``."""
    from clbench.app import tune as tuning

    check_run_options(run_options.get("device", "auto"), run_options.get("group_size"),
                      results, run_timeout=run_options.get("run_timeout"))
    result = tuning.tune(scenario, strategy, space, sampler=sampler, trials=trials, seeds=seeds,
                         budget=budget, validation=validation, metric=metric,
                         search_seed=search_seed, tasks=tasks, run=run, results=results,
                         **run_options)
    rendered = {}
    for fmt, path in (outputs or {}).items():
        text = (json.dumps(result.to_json(), indent=1, default=str) + "\n" if fmt == "json"
                else result.to_markdown())
        rendered[fmt] = text
        if str(path) != "-":
            write_output(path, text)
    return result, rendered


def prepare(
    scenario: str,
    strategy: str,
    seeds: Sequence[int] = (0,),
    budget: str = "default",
    device: str = "auto",
    data_dir: str | Path | None = None,
    download: bool | None = None,
):
    """A strategy set up on a scenario's data exactly as the runner sets it up, to step
    through by hand (debugging a method, profiling one task) without the run loop::

        strategy, data = api.prepare("split-mnist:setting=class", "ewc", seeds=[0, 1])
        for t in range(data.info.n_tasks):
            strategy.train(Experience(data.info.tasks[t], data.train[t]))

    Returns ``(strategy, data)``; ``data`` is the scenario's ``ScenarioData`` (``info``,
    ``train``, ``test``), ``strategy.model`` holds one member per seed."""
    seeds = list(seeds)
    if not seeds:
        raise ConfigError("no seeds given", hint="give at least one seed, e.g. seeds=[0]")
    spec = make_specs(scenario, strategy, seeds, budget)[0]
    if STRATEGIES.get(spec.strategy).batched is False and len(seeds) != 1:
        raise ConfigError(f"{spec.strategy!r} trains one seed at a time",
                          hint="give a single seed")
    from clbench.app.runner import resolve_device, set_up_group
    from clbench.scenarios.data import DataConfig
    from clbench.seeding import seed_everything

    seed_everything(seeds[0])
    return set_up_group(spec, seeds, resolve_device(device),
                        DataConfig.from_options(data_dir, download))


def report(results: str | Path = DEFAULT_RESULTS, outputs: dict[str, str | Path] | None = None,
           generated_at: str | None = None, metadata: dict[str, Any] | None = None,
           warn: Callable[[str], None] | None = None,
           skipped: Callable[[str], None] | None = None, table: Any = None) -> dict[str, str]:
    """Render the store with each requested reporter; ``outputs`` maps a reporter name to a
    file path (``-`` for the returned text only). Returns reporter -> rendered text.
    ``generated_at`` and ``metadata`` freeze the report date and metadata entries (every
    reporter takes them: :class:`clbench.reports.base.Reporter`). ``warn`` is called with one line
    per stale cell (results of other versions than the current ones, not in the tables),
    ``skipped`` with one line per document that could not be read (named, with the reason).
    ``table``: a :class:`clbench.reports.paper_table.TableOptions` for the reporters that print
    tables (LaTeX, Markdown, HTML): the paper layout, its metrics and baseline, the appendix."""
    from clbench.reports.tables import leaderboard_for

    loaded = ResultsStore(results).load()
    if skipped:
        for problem in loaded.problems:
            skipped(problem)
    if warn and loaded.ignored:
        names = ", ".join(p.name for p in loaded.ignored[:5])
        more = f" and {len(loaded.ignored) - 5} more" if len(loaded.ignored) > 5 else ""
        warn(f"note: ignored {len(loaded.ignored)} file(s) in {results} not named like a "
             f"result (<spec hash>.json): {names}{more}")
    if warn:
        for stale in leaderboard_for(loaded, generated_at, metadata).stale:
            warn(stale.line())
    rendered = {}
    for name, path in (outputs or {}).items():
        # Every reporter takes these keywords (the registry checks, clbench.reports.base):
        # an exception from a constructor is the reporter's bug and surfaces as such.
        cls = REPORTERS.get(name)
        extra = {"table": table} if table is not None and getattr(cls, "prints_tables", False) \
            else {}
        reporter = cls(generated_at=generated_at, metadata=metadata, **extra)
        text = reporter.render(loaded)
        rendered[name] = text
        write_output(path, text)
    return rendered


def figures(results: str | Path = DEFAULT_RESULTS, directory: str | Path = "figures",
            generated_at: str | None = None) -> list[Path]:
    """Write the leaderboard's figures (per scenario: each strategy's accuracy-matrix heatmap
    and per-task accuracy curves, and the parameter growth) as SVG and PDF files into
    ``directory`` (:mod:`clbench.reports.figures`); the paths written."""
    from clbench.reports.figures import write_figures
    from clbench.reports.tables import leaderboard_for

    loaded = ResultsStore(results).load()
    try:
        return write_figures(leaderboard_for(loaded, generated_at), directory)
    except OSError as exc:
        raise ConfigError(f"cannot write figures to {directory}: {exc.strerror or exc}",
                          hint="choose a writable directory with --figures") from exc


def _leaderboard(results: str | Path, generated_at: str | None = None):
    from clbench.reports.tables import aggregate

    loaded = ResultsStore(results).load()
    if not loaded.runs:
        raise ResultsError(f"no readable results in {results}"
                           + (f" ({len(loaded.problems)} unreadable)" if loaded.problems else ""),
                           hint="point it at a directory written by `clbench run`")
    return aggregate(loaded.runs, loaded.problems, generated_at)


def compare(candidate: str, baselines: Sequence[str] = (),
            results: str | Path = DEFAULT_RESULTS,
            outputs: dict[str, str | Path] | None = None, alpha: float = 0.05,
            generated_at: str | None = None, test: str = "paired-t",
            adjust: str = "holm") -> dict[str, str]:
    """The candidate strategy against baselines (every other strategy by default), per
    scenario: ``test`` paired by seed (``paired-t``, ``wilcoxon``; Welch where the seeds
    differ) or ``welch``, the p-values adjusted by ``adjust`` (``holm``, ``bh``, ``none``) over
    all the tests. ``outputs`` maps ``markdown``/``html`` to a path (``-``: returned only); the
    Markdown is always returned."""
    from clbench.reports.compare import compare as compare_cells
    from clbench.reports.compare import render_comparison_html, render_comparison_markdown

    cmp = compare_cells(_leaderboard(results, generated_at), candidate, baselines, test, adjust)
    rendered = {"markdown": render_comparison_markdown(cmp, alpha)}
    for name, path in (outputs or {}).items():
        if name == "html":
            rendered["html"] = render_comparison_html(cmp, alpha)
        elif name != "markdown":
            raise ConfigError(f"no {name!r} output for compare", hint="markdown or html")
        write_output(path, rendered[name])
    return rendered


def gate(baseline: str | Path, current: str | Path, metric: str = "acc",
         max_drop: float = 0.01, alpha: float = 0.05,
         outputs: dict[str, str | Path] | None = None, adjust: str = "holm"):
    """Compare two results stores cell by cell (paired by seed where both ran the same seeds,
    the p-values adjusted by ``adjust`` over the cells): (GateResult, Markdown summary).
    ``GateResult.exit_code`` is 1 when a cell regressed significantly, else 0. ``outputs``
    may map ``markdown`` to a file the summary is also written to."""
    from clbench.reports.compare import gate as gate_cells
    from clbench.reports.compare import render_gate_markdown

    result = gate_cells(_leaderboard(baseline), _leaderboard(current), metric, max_drop, alpha,
                        adjust)
    text = render_gate_markdown(result)
    for name, path in (outputs or {}).items():
        if name != "markdown":
            raise ConfigError(f"no {name!r} output for gate", hint="markdown")
        write_output(path, text)
    return result, text


def describe_registered(kind: str) -> list[dict[str, Any]]:
    """Names, versions, descriptions and parameters of the scenarios, strategies, backbones,
    reporters, executors, trackers, suites or budgets."""
    if kind == "scenarios":
        return [
            {"name": n, "description": c.description, "version": version_of(c),
             "params": describe(c.Params)}
            for n, c in SCENARIOS.items()
        ]
    if kind == "strategies":
        return [
            {"name": n, "description": c.description, "version": version_of(c),
             "batched": c.batched, "settings": list(c.settings), "params": describe(c.Params),
             # per scenario/budget overrides of the defaults, applied in order (later wins)
             "scenario_defaults": [{"scenario": sc, "budget": b, "values": dict(v)}
                                   for sc, b, v in getattr(c, "defaults", ())],
             # an optional dependency that is not installed: how to install it
             "missing": getattr(c, "missing_requirement", lambda: None)()}
            for n, c in STRATEGIES.items()
        ]
    if kind == "backbones":
        return [{"name": n, "description": getattr(c, "description", ""),
                 "version": version_of(c)} for n, c in BACKBONES.items()]
    if kind == "reporters":  # clbench report --NAME FILE
        return [{"name": n, "description": getattr(c, "description", "")}
                for n, c in REPORTERS.items()]
    if kind == "executors":  # clbench run --executor NAME, with its own options
        from clbench.app.executors import EXECUTORS

        return [{"name": n, "description": getattr(c, "description", ""),
                 "options": [{"flag": o.flag, "metavar": o.metavar, "help": o.help}
                             for o in getattr(c, "options", ())]}
                for n, c in EXECUTORS.items()]
    if kind == "trackers":  # clbench run --log NAME:TARGET
        from clbench.registry import TRACKERS

        return [{"name": n, "description": f"{c.description}; TARGET: {c.target_help}",
                 "missing": c.missing()} for n, c in TRACKERS.items()]
    if kind == "suites":
        return [{"name": n, "description": load_suite(n).description}
                for n in sorted(builtin_suites())]
    if kind == "budgets":
        return [{"name": b.name, "description": b.description} for b in BUDGETS.values()]
    raise ConfigError(f"cannot list {kind!r}",
                      hint="list scenarios, strategies, backbones, reporters, executors, "
                      "trackers, suites or budgets")
