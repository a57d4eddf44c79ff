"""Running specs: the groups planned, each run's lock taken just in time, the groups handed
to an executor, and every finished group's results written to the store by this process (its
only writer). :mod:`clbench.api` re-exports :func:`run`, :func:`check_run_options`,
:func:`estimate` and the summaries.

Importing this module does not import torch: only :func:`run` does (through the runner)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from clbench.errors import ConfigError, DataError, ResultsError
from clbench.results import InvalidResultError, ResultsStore
from clbench.spec import RunSpec

if TYPE_CHECKING:
    from clbench.app.executors import Executor
    from clbench.app.runner import Progress

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


def check_run_options(device: str = "auto", group_size: int | None = None,
                      results: str | Path | None = None, dry_run: bool = False,
                      executor: Executor | None = None, run_timeout: float | None = None):
    """Checks the options a run needs besides its specs, before anything trains (a dry run
    checks them too, writing nothing: it answers whether the real run would start). Returns
    what ``executor`` (default: local) makes of ``device``: the torch device this process
    trains on, or None where its workers resolve the device where they run."""
    from clbench.app.executors import make_executor

    if group_size is not None and group_size < 1:
        raise ConfigError(f"group size must be at least 1, got {group_size}")
    if run_timeout is not None and not (isinstance(run_timeout, int | float)
                                        and not isinstance(run_timeout, bool)
                                        and math.isfinite(run_timeout) and run_timeout > 0):
        raise ConfigError(f"--run-timeout must be a positive number of seconds, got "
                          f"{run_timeout!r}", hint="e.g. --run-timeout 3600, or leave it out "
                          "for no limit")
    resolved = (executor or make_executor()).check_device(device)
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
    run_timeout: float | None = None,
    logs: Sequence[str] = (),
) -> RunSummary:
    """Run every spec whose result is not in the store yet (all of them with ``rerun``);
    each result is written as soon as it is assembled. Several processes may run on one store:
    each run is taken by one of them (its lock), the others leave it and go on. A run whose
    data is missing is recorded in the store as not run (``clbench report`` lists it) and
    makes the exit status 2 unless ``allow_missing_data``.

    ``executor`` trains the groups: a registered executor's name with its default options
    (``"local"``: in this process, one after another; ``"ray"``: a local Ray instance), or an
    executor from
    :func:`clbench.app.executors.make_executor` (e.g. ``make_executor("ray", address="auto",
    gpus_per_group=0.25)``). Whatever trains them, this process writes every result, and holds
    each run's lock while its group is in flight.

    ``run_timeout`` (seconds) limits each group: one that overruns it is stopped and recorded
    ``failed`` with error type ``timeout``, and the suite goes on (the local executor then runs
    each group in a child process; Ray cancels the group's task).

    ``logs`` (``"NAME:TARGET"``, as ``--log``) streams every group's runs to experiment
    trackers (:mod:`clbench.app.tracking`), checked here before anything trains."""
    from clbench.app.executors import Job, make_executor
    from clbench.app.runner import plan_groups
    from clbench.app.tracking import check_logs

    chosen = make_executor(executor) if isinstance(executor, str) else executor
    check_run_options(device, group_size, results, executor=chosen, run_timeout=run_timeout)
    logs = check_logs(logs)
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

    chosen.open(Job(device, None if data_dir is None else str(data_dir), download,
                    None if run_timeout is None else float(run_timeout), logs))
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

    from clbench.app.runner import plan_groups

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
