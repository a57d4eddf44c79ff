"""Hyperparameter search scored on the validation split: ``clbench tune``.

A search proposes configurations of one strategy's parameters (grid, random, or Optuna's TPE
through its ask/tell interface when optuna is installed), runs each through :func:`clbench.api.run`
on every seed with a held-out fraction of each task's *training* data as the evaluation split
(``RunSpec.validation``), and scores it by a metric of the validation accuracy matrix averaged
over the seeds. The test split is never read. Trials are ordinary runs in the ordinary store, so
an interrupted search resumes, and its report is computed from the store.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clbench.errors import ConfigError, ResultsError
from clbench.metrics import METRIC_BY_KEY, matrix_metric
from clbench.params import field_types, parse_named
from clbench.registry import STRATEGIES
from clbench.results import ResultsStore
from clbench.spec import RunSpec, check_validation, make_specs, parse_seeds

SAMPLERS = ("grid", "random", "tpe")
DEFAULT_VALIDATION = 0.1
# Longest wait for trial runs another process holds (a search on the same store): their locks
# are released when that process ends, however it ends, so only a hung run waits this long.
ELSEWHERE_TIMEOUT_S = 6 * 3600.0


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched parameter: a list of values (``name=a,b,c``) or a numeric range
    (``name=low:high``, log-uniform with ``name=log:low:high``)."""

    name: str
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    def sample(self, rng: np.random.Generator) -> Any:
        if self.values is not None:
            return self.values[int(rng.integers(len(self.values)))]
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return int(round(value)) if self.integer else float(value)


def parse_space(strategy: str, items: Sequence[str]) -> list[Dimension]:
    """The search space of ``strategy`` from ``name=a,b,c`` / ``name=low:high`` /
    ``name=log:low:high`` items; ConfigError naming the strategy's parameters otherwise."""
    params_cls = STRATEGIES.get(strategy).Params
    types = field_types(params_cls)
    if not items:
        raise ConfigError("nothing to search", hint="give --space NAME=a,b,c or NAME=low:high "
                          f"(parameters of {strategy!r}: {', '.join(types)})")
    dims, seen = [], set()
    for item in items:
        name, sep, spec = item.partition("=")
        name, spec = name.strip(), spec.strip()
        if not sep or not spec:
            raise ConfigError(f"cannot read search dimension {item!r}",
                              hint="write NAME=a,b,c or NAME=low:high or NAME=log:low:high")
        if name not in types:
            raise ConfigError(f"strategy {strategy!r} has no parameter {name!r}",
                              hint=f"its parameters: {', '.join(types)}")
        if name in seen:
            raise ConfigError(f"parameter {name!r} is searched twice", hint="give it once")
        seen.add(name)
        integer = types[name] is int
        if ":" in spec and "," not in spec:
            parts = spec.split(":")
            log = parts[0] == "log"
            bounds = parts[1:] if log else parts
            try:
                low, high = (float(b) for b in bounds)
            except ValueError:
                raise ConfigError(f"cannot read the range of {name!r}: {spec!r}",
                                  hint="write low:high or log:low:high with numbers") from None
            if types[name] not in (int, float):
                raise ConfigError(f"{name!r} is not numeric: give a list of values instead")
            if not (math.isfinite(low) and math.isfinite(high) and low < high) or \
                    (log and low <= 0):
                raise ConfigError(f"the range of {name!r} must have low < high"
                                  + (" and low > 0 (log scale)" if log else ""))
            dims.append(Dimension(name, low=low, high=high, log=log, integer=integer))
        else:
            values = tuple(v.strip() for v in spec.split(",") if v.strip())
            if not values:
                raise ConfigError(f"no values to search for {name!r}: {spec!r}",
                                  hint="write NAME=a,b,c")
            dims.append(Dimension(name, values=values))
    return dims


def grid(dims: Sequence[Dimension]) -> Iterator[dict[str, Any]]:
    ranged = [d.name for d in dims if d.values is None]
    if ranged:
        raise ConfigError(f"a grid needs lists of values, not ranges ({', '.join(ranged)})",
                          hint="give NAME=a,b,c, or use --sampler random or tpe with --trials")
    for combo in itertools.product(*(d.values for d in dims)):
        yield dict(zip((d.name for d in dims), combo))


@dataclasses.dataclass
class Trial:
    number: int
    params: dict[str, Any]  # the searched values as given
    specs: list[RunSpec]
    scores: list[float | None]  # per seed; None: failed, diverged or undefined
    status: str  # "ok", or why it has no score

    @property
    def score(self) -> float | None:
        if self.status != "ok" or any(s is None for s in self.scores):
            return None
        return float(np.mean(self.scores))

    def resolved(self) -> dict[str, Any]:
        """The values the runs used, after the strategy's own coercion."""
        used = dict(self.specs[0].strategy_params)
        return {k: used[k] for k in self.params}


@dataclasses.dataclass
class TuneResult:
    scenario: str
    strategy: str
    budget: str
    seeds: list[int]
    validation: float
    metric: str
    sampler: str
    space: list[Dimension]
    trials: list[Trial]
    tasks: int = 0  # scored on the first ``tasks`` tasks only (0: all)

    @property
    def best(self) -> Trial | None:
        scored = [t for t in self.trials if t.score is not None]
        if not scored:
            return None
        higher = METRIC_BY_KEY[self.metric].higher_is_better
        return (max if higher else min)(scored, key=lambda t: t.score)

    def marginals(self) -> dict[str, list[tuple[Any, float, int]]]:
        """Per parameter: (value, mean score of the trials with it, number of trials)."""
        out: dict[str, list[tuple[Any, float, int]]] = {}
        for dim in self.space:
            by_value: dict[Any, list[float]] = {}
            for t in self.trials:
                if t.score is not None:
                    by_value.setdefault(t.resolved()[dim.name], []).append(t.score)
            out[dim.name] = sorted((v, float(np.mean(s)), len(s)) for v, s in by_value.items())
        return out

    def defaults_entry(self) -> str | None:
        """The strategy ``defaults`` entry that makes the best values this scenario's and
        budget's defaults, to paste next to the strategy (hyperparameters live there)."""
        best = self.best
        if best is None:
            return None
        # a defaults entry matches the registered scenario name, never "name:k=v" text; the
        # searched parametrisation goes into the comment
        name = best.specs[0].scenario
        where = "" if self.scenario == name else f" on {self.scenario}"
        first = f", first {self.tasks} tasks" if self.tasks else ""
        return (f'("{name}", "{self.budget}", {best.resolved()!r}),  # clbench tune{where}: '
                f"{self.sampler}, validation {self.validation:g}{first}, seeds "
                f"{','.join(map(str, self.seeds))}, {self.metric} {best.score:.4f}")

    def to_json(self) -> dict[str, Any]:
        best = self.best
        return {
            "scenario": self.scenario, "strategy": self.strategy, "budget": self.budget,
            "seeds": self.seeds, "validation": self.validation, "metric": self.metric,
            "sampler": self.sampler, "split": "validation", "tasks": self.tasks or None,
            "best": None if best is None else {"trial": best.number, "params": best.resolved(),
                                                "score": best.score},
            "defaults_entry": self.defaults_entry(),
            "trials": [{"trial": t.number, "params": t.resolved(), "score": t.score,
                        "scores": t.scores, "status": t.status,
                        "spec_hashes": [s.hash for s in t.specs]} for t in self.trials],
            "marginals": {k: [{"value": v, "mean_score": m, "trials": n} for v, m, n in rows]
                          for k, rows in self.marginals().items()},
        }

    def to_markdown(self) -> str:
        label = METRIC_BY_KEY[self.metric].label
        lines = [f"# Search: {self.strategy} on {self.scenario} ({self.budget} budget)", "",
                 f"Scored by validation {label} (fraction {self.validation:g} of each task's "
                 f"training data held out; the test split is not read"
                 + (f"; first {self.tasks} tasks only" if self.tasks else "")
                 + "), mean over seeds "
                 f"{', '.join(map(str, self.seeds))}; sampler {self.sampler}, "
                 f"{len(self.trials)} trial(s).", ""]
        best = self.best
        if best is None:
            lines += ["No trial has a score.", ""]
        else:
            lines += [f"**Best:** {_fmt(best.resolved())}: {label} {best.score:.4f}", "",
                      "Strategy default entry:", "", "```", self.defaults_entry(), "```", ""]
        names = [d.name for d in self.space]
        lines += ["| trial | " + " | ".join(names) + f" | {label} | status |",
                  "|---:|" + "---|" * len(names) + "---:|---|"]
        for t in self.trials:
            values = t.resolved()
            score = "" if t.score is None else f"{t.score:.4f}"
            lines.append(f"| {t.number} | " + " | ".join(_cell(values[n]) for n in names)
                         + f" | {score} | {t.status} |")
        for name, rows in self.marginals().items():
            lines += ["", f"Score against {name}:", "", f"| {name} | mean {label} | trials |",
                      "|---|---:|---:|"]
            lines += [f"| {_cell(v)} | {m:.4f} | {n} |" for v, m, n in rows]
        return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|")


def _fmt(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _score(store: ResultsStore, specs: list[RunSpec], metric: str) -> tuple[list, str]:
    compute = matrix_metric(metric).compute
    scores, status = [], "ok"
    for spec in specs:
        path = store.path(spec.hash)
        if not path.is_file():
            scores.append(None)
            status = "not run"
            continue
        run = store.read(path)
        if run.status != "ok":
            scores.append(None)
            status = run.status
            continue
        value = compute(run.accuracy_matrix)
        scores.append(None if value is None or value != value else float(value))
    return scores, status


MAX_GRID = 100_000  # configurations of a grid search listed at once (each trains a run)


def _grid_size(dims: Sequence[Dimension]) -> int:
    return math.prod(len(d.values) for d in dims if d.values is not None)


def _check_before_training(scenario, strategy, fixed, dims, seeds, budget, validation,
                           metric) -> None:
    """ConfigError for what a trial would refuse, before the first one trains: a bad value
    anywhere in a ``--space`` list (each one checked alone), or a metric undefined on the
    scenario's task count (BWT with one task)."""
    from clbench.metrics import defined_for
    from clbench.spec import make_scenario

    specs = make_specs(scenario, (strategy, dict(fixed)), seeds, budget, validation)
    for d in dims:
        for value in d.values or ():
            make_specs(scenario, (strategy, {**fixed, d.name: value}), seeds, budget,
                       validation)
    n_tasks = make_scenario(specs[0].scenario, dict(specs[0].scenario_params)) \
        .info(seeds[0]).n_tasks
    if not defined_for(metric, n_tasks):
        raise ConfigError(f"metric {metric!r} is undefined on {scenario!r}: it has {n_tasks} "
                          "task(s)", hint="tune on acc or learning_accuracy, or on a scenario "
                          "of at least 2 tasks")


def tune(scenario: str, strategy: str, space: Sequence[str], *, sampler: str = "grid",
         trials: int | None = None, seeds: str | Sequence[int] = (0,), budget: str = "default",
         validation: float = DEFAULT_VALIDATION, metric: str = "acc", search_seed: int = 0,
         tasks: int = 0, run: Callable[..., Any], results: str | Path,
         **run_options: Any) -> TuneResult:
    """Search ``strategy``'s parameters on ``scenario``; ``run`` is :func:`clbench.api.run`
    (with ``results`` and ``run_options`` passed through). ``tasks`` > 0 trains and scores
    every trial on the scenario's first ``tasks`` tasks only (Chaudhry et al. 2019, A-GEM:
    a few leading tasks choose the hyperparameters of the whole stream). Returns every trial
    with its score."""
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}", hint=f"choose {', '.join(SAMPLERS)}")
    validation = check_validation(validation)
    if validation == 0:
        raise ConfigError("tuning needs a validation split",
                          hint="give --validation > 0, e.g. 0.1 (the test split is never used)")
    matrix_metric(metric)
    seed_list = parse_seeds(list(seeds) if isinstance(seeds, (list, tuple)) else seeds)
    st_name, fixed = parse_named(strategy)
    dims = parse_space(st_name, space)
    clash = sorted(set(fixed) & {d.name for d in dims})
    if clash:
        raise ConfigError(f"{', '.join(clash)} both fixed and searched", hint="give it once")
    if sampler != "grid" and (trials is None or trials < 1):
        raise ConfigError(f"the {sampler} sampler needs --trials N (N >= 1)")
    _check_before_training(scenario, st_name, fixed, dims, seed_list, budget, validation,
                           metric)
    if sampler == "grid" and trials is None and _grid_size(dims) > MAX_GRID:
        raise ConfigError(f"the grid has {_grid_size(dims):,} configurations, more than "
                          f"{MAX_GRID:,}", hint="give fewer values, --trials N (its first N), "
                          "or --sampler random/tpe")
    store = ResultsStore(results)
    # checks the names and the number of tasks before any trial runs
    tasks = make_specs(scenario, (st_name, fixed), seed_list[:1], budget, validation,
                       tasks)[0].tasks
    outcome = TuneResult(scenario, st_name, budget, seed_list, validation, metric, sampler,
                         dims, [], tasks)
    pending: list[Trial] = []  # trials with runs another process was running

    def settle(specs: list[RunSpec]) -> None:
        _await_elsewhere(store, specs)
        run(specs, results=results, **run_options)  # what nobody stored: that process died

    def evaluate(number: int, values: dict[str, Any]) -> Trial:
        specs = make_specs(scenario, (st_name, {**fixed, **values}), seed_list, budget,
                           validation, tasks)
        summary = run(specs, results=results, **run_options)
        # runs another process held (a search on the same store): left to it, awaited below
        elsewhere = getattr(summary, "elsewhere", 0) > 0
        if elsewhere and sampler == "tpe":  # the next proposal needs this score now
            settle(specs)
        scores, status = _score(store, specs, metric)
        trial = Trial(number, values, specs, scores, status)
        outcome.trials.append(trial)
        if elsewhere and sampler != "tpe":
            pending.append(trial)
        return trial

    if sampler == "grid":
        configs = list(grid(dims))
        if trials is not None:
            configs = configs[:trials]
        for number, values in enumerate(configs):
            evaluate(number, values)
    elif sampler == "random":
        rng = np.random.default_rng(search_seed)
        for number in range(trials):
            evaluate(number, {d.name: d.sample(rng) for d in dims})
    else:
        _tpe(dims, trials, search_seed, evaluate, METRIC_BY_KEY[metric].higher_is_better)
    # Trials another search on this store was running when this one reached them (api.run
    # leaves a run whose lock is held): wait for them, so that the best is named from every
    # trial, never from those this process happened to run.
    missing = [s for t in pending for s in t.specs if not store.path(s.hash).is_file()]
    if missing:
        settle(missing)
    for trial in pending:  # scored again: stored by the other process after their turn
        trial.scores, trial.status = _score(store, trial.specs, metric)
    return outcome


def _await_elsewhere(store: ResultsStore, specs: list[RunSpec]) -> None:
    """Waits until no other process holds the lock of any of ``specs`` that is not stored
    (up to ``ELSEWHERE_TIMEOUT_S`` in all); ResultsError naming them when they are still held."""
    import time

    from filelock import Timeout

    deadline = time.monotonic() + ELSEWHERE_TIMEOUT_S
    for spec in specs:
        if store.path(spec.hash).is_file():
            continue
        lock = store.lock(spec.hash)
        try:
            lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
        except Timeout:
            held = [s.label() for s in specs if not store.path(s.hash).is_file()]
            raise ResultsError(
                f"{len(held)} trial run(s) still running in another process after "
                f"{ELSEWHERE_TIMEOUT_S:g} s: {'; '.join(held)}; no best is named without them",
                hint="run the same command again when that process has finished (every stored "
                "trial is reused), or stop it") from None
        lock.release()


def _tpe(dims, trials, seed, evaluate, higher_is_better) -> None:
    try:
        import optuna
    except ImportError:
        raise ConfigError("the tpe sampler needs Optuna",
                          hint="pip install 'clbench[tune]' (or use --sampler grid/random)"
                          ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if higher_is_better else "minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    distributions = {}
    for d in dims:
        if d.values is not None:
            distributions[d.name] = optuna.distributions.CategoricalDistribution(d.values)
        elif d.integer:
            distributions[d.name] = optuna.distributions.IntDistribution(
                int(d.low), int(d.high), log=d.log)
        else:
            distributions[d.name] = optuna.distributions.FloatDistribution(
                d.low, d.high, log=d.log)
    for number in range(trials):
        asked = study.ask(distributions)
        trial = evaluate(number, dict(asked.params))
        if trial.score is None:
            study.tell(asked, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(asked, trial.score)

