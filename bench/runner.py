"""The run loop: the harness owns training order, evaluation and every measurement.

The unit of execution is a *group*: runs that differ only in seed. A batched strategy trains
the whole group as one model with a member axis; any other strategy gets groups of one. Each
member becomes its own result document.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import traceback
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import torch

from clbench.budget import get_budget
from clbench.errors import ClbenchError, ConfigError, DataError
from clbench.experience import Experience, ScenarioInfo, TaskData
from clbench.identity import run_identity
from clbench.models import ModelFactory, member_count, parameter_count
from clbench.params import resolve
from clbench.registry import STRATEGIES
from clbench.results import SCHEMA_VERSION, ResultsStore
from clbench.scenarios.data import DataConfig
from clbench.seeding import seed_everything
from clbench.spec import RunSpec, make_scenario

EVAL_SAMPLES_PER_CALL = 4096  # inputs per predict call, all members together


class Progress(Protocol):
    def group_started(self, specs: list[RunSpec], n_tasks: int) -> None: ...
    def task_done(self, specs: list[RunSpec], task: int) -> None: ...
    def group_done(self, specs: list[RunSpec], docs: list[dict]) -> None: ...


@dataclasses.dataclass(frozen=True)
class RunContext:
    device: torch.device
    data: DataConfig
    store: ResultsStore


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
def evaluate(strategy, info: ScenarioInfo, tests: list[TaskData]) -> torch.Tensor:
    """Test accuracy of every member on every task: float ``[S, T]``."""
    mask = info.class_mask(tests[0].rows.device)
    accs = []
    for data in tests:
        members, n = data.members, len(data)
        chunk = max(1, EVAL_SAMPLES_PER_CALL // members)
        correct = torch.zeros(members, device=data.rows.device)
        for start in range(0, n, chunk):
            index = torch.arange(start, min(start + chunk, n), device=data.rows.device)
            x, y, t = data.batch(index.expand(members, -1))
            logits = strategy.predict(x, t if info.task_id_at_test else None)
            if info.task_id_at_test:
                logits = logits.masked_fill(~mask[t], float("-inf"))
            correct += (logits.argmax(-1) == y).sum(1)
        accs.append(correct / max(n, 1))
    return torch.stack(accs, dim=1).float()


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
    strategy = strategy_cls(params)
    if strategy.batched is False and len(seeds) != 1:
        raise RuntimeError("an unbatched strategy was given a group of several seeds")
    info = scenario_data.info
    factory = ModelFactory(info.backbone, info.input_shape, info.n_outputs, device)
    strategy.setup(info, factory, seeds, device)
    return strategy, scenario_data


def execute_group(specs: list[RunSpec], ctx: RunContext,
                  progress: Progress | None = None) -> list[dict]:
    """Run one group; returns one result document per member (not yet stored).

    Bad input (unknown names, missing data) raises ClbenchError before anything is measured; an
    exception from the strategy is recorded as status ``failed`` for every member."""
    first, seeds, device = specs[0], [s.seed for s in specs], ctx.device
    started_at = _now()
    scenario = make_scenario(first.scenario, dict(first.scenario_params))
    strategy_cls = STRATEGIES.get(first.strategy)
    S = len(seeds)

    seed_everything(seeds[0])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    host_peak_scope = "group" if _reset_host_peak() else "process"
    t_start = time.perf_counter()
    info = scenario.info(seeds[0])
    data_source: dict[str, Any] = {}
    T = info.n_tasks
    if progress:
        progress.group_started(specs, T)

    R = torch.full((S, T + 1, T), float("nan"))
    counts: list[int | None] = [None] * (T + 1)
    train_times: list[float | None] = [None] * T
    eval_times: list[float | None] = [None] * (T + 1)
    diverged_after = [None] * S
    error = None
    setup_time = None
    try:
        strategy, data = set_up_group(first, seeds, device, ctx.data)
        data_source = data.data_source
        _sync(device)
        setup_time = time.perf_counter() - t_start
        for t in range(T + 1):
            if t > 0:
                _sync(device)
                t0 = time.perf_counter()
                strategy.train(Experience(info.tasks[t - 1], data.train[t - 1]))
                _sync(device)
                train_times[t - 1] = time.perf_counter() - t0
            model = strategy.model
            if member_count(model) != S:
                raise RuntimeError(f"the strategy's model has {member_count(model)} members, "
                                   f"expected {S}")
            finite = _finite_members(model, S)
            for s in range(S):
                if not finite[s] and diverged_after[s] is None:
                    diverged_after[s] = t
            t0 = time.perf_counter()
            row = evaluate(strategy, info, data.test).cpu()
            _sync(device)
            eval_times[t] = time.perf_counter() - t0
            for s in range(S):
                if diverged_after[s] is None:
                    R[s, t] = row[s]
            counts[t] = parameter_count(model)
            if progress and t > 0:
                progress.task_done(specs, t - 1)
            if all(d is not None for d in diverged_after):
                break
    except ClbenchError:
        raise  # bad input (missing data): nothing was measured, nothing is stored
    except Exception as exc:  # the strategy's failure is a result, not a crash of the suite
        error = {
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(limit=20),
        }
    _sync(device)
    wall = time.perf_counter() - t_start
    finished_at = _now()
    identity = run_identity(device)
    docs = []
    for s, spec in enumerate(specs):
        status = "failed" if error else ("diverged" if diverged_after[s] is not None else "ok")
        docs.append({
            "schema_version": SCHEMA_VERSION,
            "spec": spec.to_json(),
            "spec_hash": spec.hash,
            "status": status,
            "error": error,
            "diverged_after_task": diverged_after[s],
            "identity": identity,
            "scenario": {**info.to_json(), "data": data_source},
            "hyperparameters": {
                "strategy": dict(spec.strategy_params),
                "scenario": dict(spec.scenario_params),
            },
            "accuracy_matrix": [
                [None if v != v else float(v) for v in row] for row in R[s].tolist()
            ],
            "param_counts": counts,
            "train_time_s": train_times,
            "eval_time_s": eval_times,
            "setup_time_s": setup_time,
            "wall_time_s": wall,
            "peak_host_memory_bytes": _host_peak_bytes(),
            "peak_host_memory_scope": host_peak_scope,
            "peak_device_memory_bytes": (
                torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
            ),
            "group": {"size": S, "member": s, "seeds": seeds,
                      "batched": bool(strategy_cls.batched)},
            "started_at": started_at,
            "finished_at": finished_at,
        })
    if progress:
        progress.group_done(specs, docs)
    return docs
