"""The run loop: the harness owns training order, evaluation and every measurement.

The unit of execution is a *group*: runs that differ only in seed. A batched strategy trains
the whole group as one model with a member axis; any other strategy gets groups of one. Each
member becomes its own :class:`clbench.schema.RunResult`: ``execute_group`` starts the group
(``start_group``), measures it (``measure_group``) and assembles the results
(``assemble_results``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import torch

from clbench.app import isolation
from clbench.app.continual import ContinualEvaluation
from clbench.app.tracking import Tracking, open_tracking
from clbench.app.warmup import warm_up
from clbench.budget import get_budget
from clbench.errors import ClbenchError, ConfigError, DataError
from clbench.experience import Experience, ScenarioInfo, TaskData, first_tasks, hold_out
from clbench.identity import run_identity
from clbench.models import ModelFactory, member_count, parameter_count
from clbench.params import resolve
from clbench.registry import STRATEGIES
from clbench.scenarios.data import DataConfig, changed_datasets
from clbench.schema import (
    Curve,
    GroupRecord,
    PeakMemory,
    RunError,
    RunIdentity,
    RunResult,
    RunTimes,
    ScenarioRecord,
    TaskRecord,
)
from clbench.seeding import Stream, generator, seed_everything
from clbench.spec import RunSpec, make_scenario

EVAL_SAMPLES_PER_CALL = 4096  # inputs per predict call, all members together


class Progress(Protocol):
    def group_started(self, specs: list[RunSpec], n_tasks: int) -> None: ...
    def task_done(self, specs: list[RunSpec], task: int) -> None: ...
    def group_done(self, specs: list[RunSpec], results: list[RunResult]) -> None: ...


@dataclasses.dataclass(frozen=True)
class RunContext:
    device: torch.device
    data: DataConfig
    executor: str = "local"  # recorded in each result's identity
    logs: tuple[str, ...] = ()  # --log NAME:TARGET trackers (clbench.app.tracking)


def resolve_device(text: str | torch.device | None) -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``."""
    if isinstance(text, torch.device):
        return text
    text = (text or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ConfigError(f"unknown device {text!r}",
                          hint="use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {text!r} requested but CUDA is not available here",
                              hint="use --device cpu or --device auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {text!r} does not exist: "
                              f"{torch.cuda.device_count()} CUDA device(s) visible")
    elif device.type != "cpu":
        raise ConfigError(f"unsupported device {text!r}", hint="use auto, cpu, cuda or cuda:N")
    return device


def plan_groups(specs: Iterable[RunSpec], group_size: int | None = None) -> list[list[RunSpec]]:
    """Specs grouped by everything but the seed; one-member groups for unbatched strategies
    and for scenarios whose task structure depends on the seed; at most ``group_size``."""
    buckets: dict[Any, list[RunSpec]] = defaultdict(list)
    for spec in dict.fromkeys(specs):  # drop duplicates, keep order
        scenario = make_scenario(spec.scenario, dict(spec.scenario_params))
        buckets[(spec.group_key(), scenario.batch_key(spec.seed))].append(spec)
    cap = group_size if group_size and group_size > 0 else None
    groups = []
    for specs_ in buckets.values():
        size = cap or len(specs_)
        if not STRATEGIES.get(specs_[0].strategy).batched:
            size = 1
        groups.extend(specs_[i:i + size] for i in range(0, len(specs_), size))
    return groups


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_host_peak() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux); False if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _host_peak_bytes() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    except (ImportError, OSError):
        return None


@torch.no_grad()
def evaluate(strategy, info: ScenarioInfo, tests: list[TaskData]
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Test accuracy of every member on every task, float ``[S, T]``, and whether each member's
    logits were all finite, bool ``[S]`` (NaN or +inf: the member diverged; -inf is a class
    ruled out, as the task-incremental mask does). Logits of the wrong shape are the
    strategy's bug: a RuntimeError naming the shapes, never an accuracy computed from them."""
    mask = info.class_mask(tests[0].rows.device)
    accs = []
    finite = torch.ones(tests[0].members, dtype=torch.bool, device=tests[0].rows.device)
    for data in tests:
        members, n = data.members, len(data)
        chunk = max(1, EVAL_SAMPLES_PER_CALL // members)
        correct = torch.zeros(members, device=data.rows.device)
        for start in range(0, n, chunk):
            index = torch.arange(start, min(start + chunk, n), device=data.rows.device)
            x, y, t = data.batch(index.expand(members, -1))
            logits = strategy.predict(x, t if info.task_id_at_test else None)
            expected = (members, len(index), info.n_outputs)
            if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
                got = tuple(logits.shape) if isinstance(logits, torch.Tensor) \
                    else type(logits).__name__
                raise RuntimeError(
                    f"predict returned logits of shape {got}, expected {expected} (members, "
                    f"inputs, the scenario's {info.n_outputs} outputs)")
            finite &= ~(logits.isnan() | (logits == float("inf"))).flatten(1).any(1)
            if info.task_id_at_test:
                logits = logits.masked_fill(~mask[t], float("-inf"))
            correct += (logits.argmax(-1) == y).sum(1)
        accs.append(correct / max(n, 1))
    return torch.stack(accs, dim=1).float(), finite.cpu()


def _finite_members(model: torch.nn.Module, members: int) -> torch.Tensor:
    ok = torch.ones(members, dtype=torch.bool)
    for p in model.parameters():
        if p.is_floating_point():
            ok &= p.detach().reshape(members, -1).isfinite().all(1).cpu()
    return ok


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def set_up_group(spec: RunSpec, seeds: list[int], device: torch.device, data: DataConfig):
    """``(strategy, scenario_data)``: ``spec``'s strategy set up for the members ``seeds`` on its
    scenario's data, as every run starts (``execute_group``; ``api.prepare`` for use by hand).
    Call ``seed_everything(seeds[0])`` first, as the runner does."""
    scenario = make_scenario(spec.scenario, dict(spec.scenario_params))
    strategy_cls = STRATEGIES.get(spec.strategy)
    params = resolve(strategy_cls.Params, [dict(spec.strategy_params)],
                     f"strategy {spec.strategy!r}")
    try:
        scenario_data = scenario.build(seeds, get_budget(spec.budget), device, data)
    except ClbenchError:
        raise
    except Exception as exc:  # a broken file caught late is still the data's fault
        raise DataError(f"cannot build {spec.scenario!r}: {type(exc).__name__}: {exc}") from exc
    if spec.tasks:
        scenario_data = first_tasks(scenario_data, spec.tasks)
    if spec.validation:
        scenario_data = hold_out(scenario_data, spec.validation,
                                 [generator(seed, Stream.VALIDATION) for seed in seeds])
    strategy = strategy_cls(params)
    if strategy.batched is False and len(seeds) != 1:
        raise RuntimeError("an unbatched strategy was given a group of several seeds")
    info = scenario_data.info
    factory = ModelFactory(info.backbone, info.input_shape, info.n_outputs, device)
    strategy.setup(info, factory, seeds, device)
    return strategy, scenario_data


@dataclasses.dataclass
class GroupMeasurement:
    """What the run of one group observed: every member's accuracies (``S`` members, ``T``
    tasks) and the group's counts, times and peak memory."""

    info: ScenarioInfo
    started_at: str
    t_start: float  # perf_counter at the start of the group
    host_peak_scope: str  # "group" when the peak-RSS counter was reset, else "process"
    accuracy: torch.Tensor  # float [S, T + 1, T]; NaN where not measured
    param_counts: list[int | None]  # after each row of the accuracy matrix
    train_times: list[float | None]
    eval_times: list[float | None]
    diverged_after: list[int | None]  # per member: the first row with non-finite weights
    setup_time: float | None = None
    data_source: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: RunError | None = None  # the strategy's exception: every member failed
    wall_time: float | None = None
    finished_at: str | None = None
    peak_host_bytes: int | None = None
    peak_device_bytes: int | None = None
    curves: list[Curve] | None = None  # per member, with continual evaluation (spec.eval_every)


def _scenario_info(spec: RunSpec) -> ScenarioInfo:
    """The scenario of ``spec`` as it runs: cut to its first ``spec.tasks`` tasks if set."""
    info = make_scenario(spec.scenario, dict(spec.scenario_params)).info(spec.seed)
    return dataclasses.replace(info, tasks=info.tasks[:spec.tasks]) if spec.tasks else info


def start_group(specs: list[RunSpec], device: torch.device) -> GroupMeasurement:
    """Seeds the process and resets the peak-memory counters, so that every group starts
    alike; an empty measurement of the group's scenario."""
    first, seeds = specs[0], [s.seed for s in specs]
    started_at = _now()
    seed_everything(seeds[0])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    host_peak_scope = "group" if _reset_host_peak() else "process"
    t_start = time.perf_counter()
    info = _scenario_info(first)
    S, T = len(seeds), info.n_tasks
    return GroupMeasurement(
        info=info, started_at=started_at, t_start=t_start, host_peak_scope=host_peak_scope,
        accuracy=torch.full((S, T + 1, T), float("nan")), param_counts=[None] * (T + 1),
        train_times=[None] * T, eval_times=[None] * (T + 1), diverged_after=[None] * S)


def measure_group(specs: list[RunSpec], ctx: RunContext, m: GroupMeasurement,
                  progress: Progress | None = None, tracking: Tracking | None = None) -> None:
    """Sets the strategy up, then trains and evaluates it task by task, recording into ``m``.

    Bad input (missing data) raises ClbenchError; an exception of the strategy is recorded in
    ``m.error`` (the failure is a result, not a crash of the suite)."""
    try:
        _train_and_evaluate(specs, ctx, m, progress, tracking)
    except ClbenchError:
        if m.setup_time is None:
            raise  # bad input found while setting up: nothing was measured, nothing is stored
        m.error = _run_error(specs)  # a strategy's own ConfigError while training: its failure
    except (Exception, SystemExit):  # sys.exit in a strategy fails its run, not the suite
        m.error = _run_error(specs)
    _sync(ctx.device)
    m.wall_time = time.perf_counter() - m.t_start
    m.finished_at = _now()
    m.peak_host_bytes = _host_peak_bytes()
    if ctx.device.type == "cuda":
        m.peak_device_bytes = torch.cuda.max_memory_allocated(ctx.device)


MAX_ERROR_CHARS = 64 * 1024  # of a stored message or traceback: a result stays a few KiB


def _capped(text: str) -> str:
    """``text``, cut to :data:`MAX_ERROR_CHARS` with a note of how much was cut (a 70 MB
    exception message would make a document too large to report)."""
    if len(text) <= MAX_ERROR_CHARS:
        return text
    cut = len(text) - MAX_ERROR_CHARS
    return f"{text[:MAX_ERROR_CHARS]}\n[... {cut:,} more characters cut by clbench]"


def _run_error(specs: list[RunSpec]) -> RunError:
    """The exception being handled as the run's error. The strategy's exception is untrusted:
    its ``__str__`` may itself raise, which must not abort the suite."""
    exc = sys.exc_info()[1]
    if isinstance(exc, SystemExit):
        message = f"the strategy called sys.exit({exc.code!r})"
    else:
        try:
            message = str(exc)
        except Exception as inner:  # noqa: BLE001 - any failure of a plugin's __str__
            message = (f"<the {type(exc).__name__} raised by {specs[0].strategy} could not "
                       f"be turned into text: its __str__ raised {type(inner).__name__}>")
    try:
        trace = traceback.format_exc(limit=20)
    except Exception:  # noqa: BLE001
        trace = "<traceback unavailable>"
    return RunError(type=type(exc).__name__, message=_capped(message), traceback=_capped(trace))


def _train_and_evaluate(specs: list[RunSpec], ctx: RunContext, m: GroupMeasurement,
                        progress: Progress | None, tracking: Tracking | None = None) -> None:
    first, seeds, device = specs[0], [s.seed for s in specs], ctx.device
    info = m.info
    strategy, data = set_up_group(first, seeds, device, ctx.data)
    m.data_source = data.data_source
    continual = None
    if first.eval_every:
        continual = ContinualEvaluation(strategy, info, data.test, seeds, first.eval_every,
                                        first.eval_subset, evaluate, lambda: _sync(device))
        if tracking is not None:
            continual.listeners.append(tracking.point)
    strategy.step_observer = _step_observer(continual, tracking.step if tracking else None)
    _sync(device)
    m.setup_time = time.perf_counter() - m.t_start
    try:
        _train_tasks(specs, strategy, data, m, continual, device, progress)
    finally:  # a failed run keeps the points it measured
        if continual is not None:
            m.curves = continual.curves() or None


def _step_observer(*observers):
    """The one per-step observer of the observers given (None, without any: the strategy's
    loop then calls nothing)."""
    active = [o for o in observers if o is not None]
    if len(active) < 2:
        return active[0] if active else None

    def every(loss=None):
        for observer in active:
            observer(loss)
    return every


def _train_tasks(specs: list[RunSpec], strategy, data, m: GroupMeasurement,
                 continual: ContinualEvaluation | None, device: torch.device,
                 progress: Progress | None) -> None:
    info, S = m.info, len(specs)
    for t in range(info.n_tasks + 1):
        if t == 0 and continual is not None:
            continual.measure()  # step 0: the untrained model
        if t > 0:
            _sync(device)
            t0 = time.perf_counter()
            evaluating = continual.eval_s if continual else 0.0
            strategy.train(Experience(info.tasks[t - 1], data.train[t - 1]))
            if continual is not None:
                continual.task_done(t - 1)
            _sync(device)
            # the continual evaluation's time is not training time
            m.train_times[t - 1] = time.perf_counter() - t0 - (
                continual.eval_s - evaluating if continual else 0.0)
        model = strategy.model
        if member_count(model) != S:
            raise RuntimeError(f"the strategy's model has {member_count(model)} members, "
                               f"expected {S}")
        finite = _finite_members(model, S)
        for s in range(S):
            if not finite[s] and m.diverged_after[s] is None:
                m.diverged_after[s] = t
        t0 = time.perf_counter()
        row, finite_logits = evaluate(strategy, info, data.test)
        row = row.cpu()
        if not getattr(strategy, "predicts_untrained_tasks", True):
            row[:, t:] = float("nan")  # its tasks t.. have no prediction yet: not measured
        _sync(device)
        m.eval_times[t] = time.perf_counter() - t0
        for s in range(S):
            if not finite_logits[s] and m.diverged_after[s] is None:
                m.diverged_after[s] = t
            if m.diverged_after[s] is None:
                m.accuracy[s, t] = row[s]
        m.param_counts[t] = parameter_count(model)
        if progress and t > 0:
            progress.task_done(specs, t - 1)
        if all(d is not None for d in m.diverged_after):
            break


def assemble_results(specs: list[RunSpec], m: GroupMeasurement,
                     identity: RunIdentity) -> list[RunResult]:
    """One RunResult per member of the group."""
    info, seeds = m.info, tuple(s.seed for s in specs)
    scenario = ScenarioRecord(
        params=info.params, setting=info.setting, input_shape=tuple(info.input_shape),
        n_outputs=info.n_outputs, primary_metric=info.primary_metric,
        tasks=tuple(TaskRecord(classes=tuple(t.classes), source_classes=tuple(t.source_classes))
                    for t in info.tasks),
        data=m.data_source)
    times = RunTimes(setup_s=m.setup_time, train_s=tuple(m.train_times),
                     eval_s=tuple(m.eval_times), wall_s=m.wall_time)
    memory = PeakMemory(host_bytes=m.peak_host_bytes, host_scope=m.host_peak_scope,
                        device_bytes=m.peak_device_bytes)
    batched = bool(STRATEGIES.get(specs[0].strategy).batched)
    results = []
    for s, spec in enumerate(specs):
        diverged = m.diverged_after[s]
        status = "failed" if m.error else ("diverged" if diverged is not None else "ok")
        results.append(RunResult(
            spec=spec, status=status, error=m.error, diverged_after_task=diverged,
            identity=identity, scenario=scenario,
            accuracy_matrix=tuple(tuple(None if v != v else float(v) for v in row)
                                  for row in m.accuracy[s].tolist()),
            param_counts=tuple(m.param_counts), times=times, memory=memory,
            group=GroupRecord(member=s, seeds=seeds, batched=batched),
            started_at=m.started_at, finished_at=m.finished_at,
            curve=m.curves[s] if m.curves else None))
    return results


def lost_group_results(specs: list[RunSpec], error: RunError,
                       identity: RunIdentity) -> list[RunResult]:
    """One ``failed`` RunResult per member of a group whose worker never reported (its process
    or node died, and its retries too): nothing measured, ``error`` says why."""
    info = _scenario_info(specs[0])
    S, T = len(specs), info.n_tasks
    m = GroupMeasurement(
        info=info, started_at=None, t_start=0.0, host_peak_scope=None,
        accuracy=torch.full((S, T + 1, T), float("nan")), param_counts=[None] * (T + 1),
        train_times=[None] * T, eval_times=[None] * (T + 1), diverged_after=[None] * S,
        error=error, finished_at=_now())
    return assemble_results(specs, m, identity)


def _fail_for_changes(m: GroupMeasurement, changed: list[str]) -> None:
    """The group changed what later runs share: it fails, naming each change (kept after its
    own error, if it had one); the runner has put everything back."""
    what = "; ".join(changed)
    note = f"the strategy changed state that every later run shares (restored): {what}"
    if m.error is None:
        m.error = RunError(type="SharedStateChanged", message=note, traceback="\n".join(changed))
    else:
        m.error = dataclasses.replace(m.error, message=f"{m.error.message}; {note}")


def execute_group(specs: list[RunSpec], ctx: RunContext,
                  progress: Progress | None = None) -> list[RunResult]:
    """Run one group; returns one RunResult per member (not yet stored).

    Bad input (unknown names, missing data) raises ClbenchError before anything is measured; an
    exception from the strategy is recorded as status ``failed`` for every member. The
    process's one-time costs are paid first, outside the group's timer
    (:mod:`clbench.app.warmup`)."""
    warmup_s = warm_up(specs[0], len(specs), ctx.device, ctx.data)
    tracking = open_tracking(ctx.logs, specs)  # before the group's clock starts
    measurement = start_group(specs, ctx.device)
    if progress:
        progress.group_started(specs, measurement.info.n_tasks)
    settings = isolation.snapshot()
    try:
        measure_group(specs, ctx, measurement, progress, tracking)
    finally:  # every group starts from clean global state and clean cached data
        changed = isolation.restore(settings) + [
            f"the cached data of {name} (changed in place; reloaded for the next run)"
            for name in changed_datasets()]
    if changed:
        _fail_for_changes(measurement, changed)
    results = assemble_results(specs, measurement,
                               run_identity(ctx.device, ctx.executor, warmup_s))
    if tracking is not None:
        tracking.finish(results)
    if progress:
        progress.group_done(specs, results)
    return results
