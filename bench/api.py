"""The Python API behind the ``clbench`` command: plan, run, report, list.

Only :func:`run` and :func:`prepare` train, so only they import torch (through the runner):
``report``, ``compare``, ``gate`` and listings start in well under a second."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clbench.budget import BUDGETS
from clbench.errors import ConfigError, DataError, ResultsError
from clbench.files import write_output
from clbench.params import describe
from clbench.registry import BACKBONES, REPORTERS, SCENARIOS, STRATEGIES
from clbench.results import InvalidResultError, ResultsStore
from clbench.spec import RunSpec, check_validation, make_specs, parse_seeds
from clbench.suite import builtin_suites, load_suite
from clbench.versions import version_of

if TYPE_CHECKING:
    from clbench.executors import Executor
    from clbench.runner import Progress

DEFAULT_RESULTS = "clbench-results"


@dataclasses.dataclass
class RunSummary:
    planned: int = 0
    ran: int = 0
    skipped: int = 0  # results already in the store
    failed: int = 0
    diverged: int = 0
    without_data: int = 0  # runs not run because their dataset is missing
    elsewhere: int = 0  # runs another process held the lock of: left to it
    not_run: list[str] = dataclasses.field(default_factory=list)  # why, once per dataset
    notes: list[str] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)

    allow_missing_data: bool = False  # runs skipped for missing data do not fail the exit

    @property
    def exit_code(self) -> int:
        """1 when a run failed; else 2 when any run was skipped for missing data (whether one
        run or a suite: the same rule), unless ``allow_missing_data``; else 0."""
        if self.failed:
            return 1
        if self.without_data and not self.allow_missing_data:
            return 2
        return 0


def plan(
    suite: str | None = None,
    scenarios: Sequence[str] = (),
    strategies: Sequence[str] = (),
    seeds: str | Sequence[int] | None = None,
    budget: str | None = None,
    validation: float = 0.0,
) -> tuple[list[RunSpec], list[str]]:
    """The run specs of a suite and/or an explicit scenarios x strategies grid, with notes;
    ``validation`` > 0 evaluates each on that fraction of its training data (not the test
    split)."""
    validation = check_validation(validation)
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


def check_run_options(device: str = "auto", group_size: int | None = None,
                      results: str | Path | None = None, dry_run: bool = False,
                      executor: Executor | None = None):
    """Checks the options a run needs besides its specs, before anything trains (a dry run
    checks them too, writing nothing: it answers whether the real run would start). Returns
    the run's device under the local executor (``executor`` None or local); another executor
    checks ``device`` for its workers, which resolve it where they run (returns None)."""
    from clbench.runner import resolve_device

    if group_size is not None and group_size < 1:
        raise ConfigError(f"group size must be at least 1, got {group_size}")
    if executor is None or executor.name == "local":
        resolved = resolve_device(device)
    else:
        executor.check_device(device)
        resolved = None
    if results is not None:  # last: the real check creates the directory
        ResultsStore(results).check_writable(create=not dry_run)
    return resolved


def run(
    specs: Sequence[RunSpec],
    results: str | Path = DEFAULT_RESULTS,
    device: str = "auto",
    data_dir: str | Path | None = None,
    download: bool | None = None,
    rerun: bool = False,
    group_size: int | None = None,
    progress: Progress | None = None,
    executor: str | Executor = "local",
    allow_missing_data: bool = False,
) -> RunSummary:
    """Run every spec whose result is not in the store yet (all of them with ``rerun``);
    each result is written as soon as it is assembled. Several processes may run on one store:
    each run is taken by one of them (its lock), the others leave it and go on. A run whose
    data is missing is recorded in the store as not run (``clbench report`` lists it) and
    makes the exit status 2 unless ``allow_missing_data``.

    ``executor`` trains the groups: ``"local"`` (in this process, one after another),
    ``"ray"`` (a local Ray instance with default options) or an executor from
    :func:`clbench.executors.make_executor` (e.g. ``make_executor("ray", address="auto",
    gpus_per_group=0.25)``). Whatever trains them, this process writes every result, and holds
    each run's lock while its group is in flight."""
    from clbench.executors import Job, make_executor
    from clbench.runner import plan_groups

    chosen = make_executor(executor) if isinstance(executor, str) else executor
    check_run_options(device, group_size, results, executor=chosen)
    store = ResultsStore(results)
    store.remove_stale_temporaries()
    summary = RunSummary(planned=len(specs), allow_missing_data=allow_missing_data)
    done = set() if rerun else store.completed_hashes()  # one pass over the store
    pending = [s for s in specs if s.hash not in done]
    summary.skipped = len(specs) - len(pending)
    if not pending:
        return summary
    held: dict[tuple[str, ...], contextlib.ExitStack] = {}  # in-flight group -> its locks

    def claimed_groups():  # pulled by the executor as it has room: locks taken just in time
        for group in plan_groups(pending, group_size):
            locks = contextlib.ExitStack()
            claimed = locks.enter_context(_claimed(store, group, rerun, summary))
            if not claimed:
                locks.close()
                continue
            held[tuple(s.hash for s in claimed)] = locks
            yield claimed

    chosen.open(Job(device, None if data_dir is None else str(data_dir), download))
    try:
        with contextlib.closing(chosen.execute(claimed_groups(), progress)) as finished:
            for group, outcome in finished:
                try:
                    _record(group, outcome, store, summary)
                finally:
                    held.pop(tuple(s.hash for s in group)).close()
    finally:
        for locks in held.values():
            locks.close()
        chosen.close()
    return summary


@dataclasses.dataclass
class Estimate:
    """A dry run's time estimate, from measurements only: the wall times of groups of the same
    scenario, strategy and budget already in the results store (any version, any device)."""

    runs: int
    groups: int
    measured_groups: int  # groups with a stored measurement of their cell
    seconds: float  # sum of those groups' median stored wall times, one after another
    devices: list[str]  # the devices the stored measurements ran on
    store: str

    def line(self) -> str:
        head = f"{self.runs} runs in {self.groups} groups"
        if not self.measured_groups:
            return (f"{head}; no estimate: {self.store} holds no result of these cells to "
                    "time them by (run a few seeds first, then --dry-run again)")
        on = ", ".join(self.devices) or "unknown devices"
        missing = self.groups - self.measured_groups
        return (f"{head}; estimate {_hours(self.seconds)} of group time one after another "
                f"(divide by the groups that run at once under --executor ray), from the "
                f"median wall time of stored runs of the same cells in {self.store} (measured "
                f"on {on})" + (f"; {missing} group(s) have no stored measurement and are not "
                               "counted" if missing else ""))


def _hours(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes / 60:.1f} h" if minutes >= 90 else f"{minutes:.1f} min"


def estimate(specs: Sequence[RunSpec], results: str | Path = DEFAULT_RESULTS,
             group_size: int | None = None) -> Estimate:
    """How long ``specs`` would take, from the stored wall times of the same cells (see
    :class:`Estimate`). Reads the store; trains nothing."""
    import statistics

    from clbench.runner import plan_groups

    store = ResultsStore(results)
    walls: dict[tuple, list[float]] = {}
    devices: set[str] = set()

    def cell(spec: RunSpec) -> tuple:
        return (spec.scenario, spec.scenario_params, spec.strategy, spec.strategy_params,
                spec.budget)

    if store.root.is_dir():
        for run in store.load().runs:
            if run.times.wall_s is not None and run.status != "failed":
                walls.setdefault(cell(run.spec), []).append(run.times.wall_s)
                devices.add(run.identity.device_name or run.identity.device or "unknown")
    groups = plan_groups(specs, group_size)
    measured = [statistics.median(walls[cell(g[0])]) for g in groups if cell(g[0]) in walls]
    return Estimate(len(specs), len(groups), len(measured), sum(measured), sorted(devices),
                    str(results))


@contextlib.contextmanager
def _claimed(store: ResultsStore, group: list[RunSpec], rerun: bool, summary: RunSummary):
    """The runs of ``group`` this process takes: their locks held until the block ends. A run
    locked by another process is left to it; one that process stored meanwhile is done."""
    from filelock import Timeout

    taken, locks = [], []
    try:
        for spec in group:
            lock = store.lock(spec.hash)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                summary.elsewhere += 1
                continue
            except OSError as exc:  # no space or inodes left for the lock file, no permission
                raise ResultsError(
                    f"cannot create the lock file of {spec.label()} in {store.root}: "
                    f"{exc.strerror or exc} (every earlier result is stored)",
                    hint="free some space (or inodes) there, then run the same command again "
                         "to resume") from exc
            locks.append(lock)
            if not rerun and store.stored(spec.hash):  # finished elsewhere since planning
                summary.skipped += 1
                continue
            taken.append(spec)
        yield taken
    finally:
        for lock in locks:
            lock.release()


def _record(group: list[RunSpec], outcome, store: ResultsStore, summary: RunSummary) -> None:
    """Writes a finished group's results (``outcome``), or counts why it could not run."""
    if isinstance(outcome, DataError):
        summary.without_data += len(group)
        message = str(outcome)
        if message not in summary.not_run:
            summary.not_run.append(message)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        for spec in group:  # for the report: joined to `run` only through the store
            store.record_not_run(spec, message, now)
        return
    for result in outcome:
        try:
            store.write(result)  # a full disk raises: the suite stops, nothing is lost
        except InvalidResultError as exc:  # this run's bug: recorded, the suite goes on
            summary.ran += 1
            summary.failed += 1
            summary.failures.append(exc.message)
            continue
        summary.ran += 1
        if result.error is not None:
            summary.failed += 1
            summary.failures.append(f"{result.spec.label()}: {result.error.type}: "
                                    f"{_first_line(result.error.message)}")
        elif result.status == "diverged":
            summary.diverged += 1


def _first_line(message: str, limit: int = 500) -> str:
    """A stored error message as one summary line (the document keeps all of it)."""
    lines = message.strip().splitlines() or [""]
    line = lines[0]
    more = len(lines) > 1 or len(line) > limit
    return line[:limit] + (" [...]" if more else "")


def tune(scenario: str, strategy: str, space: Sequence[str], *, sampler: str = "grid",
         trials: int | None = None, seeds: str | Sequence[int] = (0,), budget: str = "default",
         validation: float = 0.1, metric: str = "acc", search_seed: int = 0,
         results: str | Path = DEFAULT_RESULTS, outputs: dict[str, str | Path] | None = None,
         **run_options: Any):
    """Search ``strategy``'s parameters on ``scenario``, scored on the validation split (see
    :mod:`clbench.tune`); every trial runs through :func:`run` (``run_options``: device,
    data_dir, group_size, ...) into ``results``. ``outputs`` maps ``markdown``/``json`` to a
    file (``-``: returned only). Returns ``(TuneResult, {format: text})``."""
    from clbench import tune as tuning

    check_run_options(run_options.get("device", "auto"), run_options.get("group_size"),
                      results)
    result = tuning.tune(scenario, strategy, space, sampler=sampler, trials=trials, seeds=seeds,
                         budget=budget, validation=validation, metric=metric,
                         search_seed=search_seed, run=run, results=results, **run_options)
    rendered = {}
    for fmt, path in (outputs or {}).items():
        text = (json.dumps(result.to_json(), indent=1, default=str) + "\n" if fmt == "json"
                else result.to_markdown())
        rendered[fmt] = text
        if str(path) != "-":
            _write(path, text)
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
    from clbench.runner import resolve_device, set_up_group
    from clbench.scenarios.data import DataConfig
    from clbench.seeding import seed_everything

    seed_everything(seeds[0])
    return set_up_group(spec, seeds, resolve_device(device),
                        DataConfig.from_options(data_dir, download))


def report(results: str | Path = DEFAULT_RESULTS, outputs: dict[str, str | Path] | None = None,
           generated_at: str | None = None, metadata: dict[str, Any] | None = None,
           warn: Callable[[str], None] | None = None,
           skipped: Callable[[str], None] | None = None) -> dict[str, str]:
    """Render the store with each requested reporter; ``outputs`` maps a reporter name to a
    file path (``-`` for the returned text only). Returns reporter -> rendered text.
    ``generated_at`` and ``metadata`` freeze the report date and metadata entries (every
    reporter takes them: :class:`clbench.reports.base.Reporter`). ``warn`` is called with one line
    per stale cell (results of other versions than the current ones, not in the tables),
    ``skipped`` with one line per document that could not be read (named, with the reason)."""
    from clbench.reports.aggregate import leaderboard_for

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
        reporter = REPORTERS.get(name)(generated_at=generated_at, metadata=metadata)
        text = reporter.render(loaded)
        rendered[name] = text
        _write(path, text)
    return rendered


def figures(results: str | Path = DEFAULT_RESULTS, directory: str | Path = "figures",
            generated_at: str | None = None) -> list[Path]:
    """Write the leaderboard's figures (per scenario: each strategy's accuracy-matrix heatmap
    and per-task accuracy curves, and the parameter growth) as SVG and PDF files into
    ``directory`` (:mod:`clbench.reports.figures`); the paths written."""
    from clbench.reports.aggregate import leaderboard_for
    from clbench.reports.figures import write_figures

    loaded = ResultsStore(results).load()
    try:
        return write_figures(leaderboard_for(loaded, generated_at), directory)
    except OSError as exc:
        raise ConfigError(f"cannot write figures to {directory}: {exc.strerror or exc}",
                          hint="choose a writable directory with --figures") from exc


def _write(path: str | Path, text: str) -> None:
    """Write a report (:func:`clbench.files.write_output`): a regular file atomically (a full
    disk leaves the old file, or none, never a part), a device or FIFO straight into it, a
    symlink's target through the link. ``-`` is the caller's stdout: nothing written here."""
    if str(path) == "-":
        return
    try:
        write_output(path, text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}",
                          hint="choose a writable path with free space") from exc


def _leaderboard(results: str | Path, generated_at: str | None = None):
    from clbench.reports.aggregate import aggregate

    loaded = ResultsStore(results).load()
    if not loaded.runs:
        raise ResultsError(f"no readable results in {results}"
                           + (f" ({len(loaded.problems)} unreadable)" if loaded.problems else ""),
                           hint="point it at a directory written by `clbench run`")
    return aggregate(loaded.runs, loaded.problems, generated_at)


def compare(candidate: str, baselines: Sequence[str] = (),
            results: str | Path = DEFAULT_RESULTS,
            outputs: dict[str, str | Path] | None = None, alpha: float = 0.05,
            generated_at: str | None = None) -> dict[str, str]:
    """The candidate strategy against baselines (every other strategy by default), per
    scenario, with Welch's t-test. ``outputs`` maps ``markdown``/``html`` to a path (``-``:
    returned only); the Markdown is always returned."""
    from clbench.reports.compare import compare as compare_cells
    from clbench.reports.compare import render_comparison_html, render_comparison_markdown

    cmp = compare_cells(_leaderboard(results, generated_at), candidate, baselines)
    rendered = {"markdown": render_comparison_markdown(cmp, alpha)}
    for name, path in (outputs or {}).items():
        if name == "html":
            rendered["html"] = render_comparison_html(cmp, alpha)
        elif name != "markdown":
            raise ConfigError(f"no {name!r} output for compare", hint="markdown or html")
        _write(path, rendered[name])
    return rendered


def gate(baseline: str | Path, current: str | Path, metric: str = "acc",
         max_drop: float = 0.01, alpha: float = 0.05):
    """Compare two results stores cell by cell: (GateResult, Markdown summary).
    ``GateResult.exit_code`` is 1 when a cell regressed significantly, else 0."""
    from clbench.reports.compare import gate as gate_cells
    from clbench.reports.compare import render_gate_markdown

    result = gate_cells(_leaderboard(baseline), _leaderboard(current), metric, max_drop, alpha)
    return result, render_gate_markdown(result)


def describe_registered(kind: str) -> list[dict[str, Any]]:
    """Names, versions, descriptions and parameters of the scenarios, strategies, backbones,
    suites or budgets."""
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
    if kind == "suites":
        return [{"name": n, "description": load_suite(n).description}
                for n in sorted(builtin_suites())]
    if kind == "budgets":
        return [{"name": b.name, "description": b.description} for b in BUDGETS.values()]
    raise ConfigError(f"cannot list {kind!r}",
                      hint="list scenarios, strategies, backbones, suites or budgets")
