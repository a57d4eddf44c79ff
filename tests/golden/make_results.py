"""Writes the hand-made golden results store in tests/golden/results (run it only to change
the fixture; the documents are committed). Two scenarios (class- and task-incremental), a
budget split, complete cells, an incomplete cell with a failed seed, one with a missing seed,
one with a diverged run whose later rows are null, a strategy named ``<script>alert(1)</script>``
and a parameter holding ``|``.

Every document is a :class:`clbench.schema.RunResult` of a :class:`clbench.spec.RunSpec`, so its
``spec_hash`` is the spec's hash. ``tests/golden/schema1``, ``schema2`` and ``schema3`` hold
the same runs as the schema-1, -2 and -3 documents this script wrote before (kept as they
were: they test the migrations).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clbench import versions
from clbench.schema import (
    GitState,
    GroupRecord,
    PeakMemory,
    RunError,
    RunIdentity,
    RunResult,
    RunTimes,
    ScenarioRecord,
    TaskRecord,
)
from clbench.spec import RunSpec

HERE = Path(__file__).resolve().parent / "results"

IDENTITY = RunIdentity(
    clbench_version="0.1.0",
    git=GitState(sha="0123456789abcdef0123456789abcdef01234567", dirty=False),
    python="3.11.7", torch="2.3.0", cuda=None, platform="Linux", cpu="Test CPU", cpu_count=2,
    torch_threads=2, device="cpu", device_name="Test CPU", argv=(),
)


def run_result(scenario: str, setting: str, params: dict[str, Any], strategy: str,
               sparams: dict[str, Any], seed: int, budget: str,
               R: Sequence[Sequence[float | None]], counts: Sequence[int] | None = None,
               status: str = "ok", error: RunError | None = None,
               diverged_after: int | None = None, group_seeds: Sequence[int] = (0, 1, 2),
               wall: float = 10.0, mem: int = 100 * 2**20, version: str = "1",
               strategy_version: str | None = None, backbone_version: str = "1",
               finished_at: str = "2026-01-01T00:01:00+00:00") -> RunResult:
    """One run at version 1 of everything (unless told), on an 8x8 digits MLP; a built-in
    strategy at its recorded version (so the fixture's cells are current, not stale)."""
    if strategy_version is None:
        recorded = versions.recorded().get("strategy", {})
        strategy_version = recorded.get(strategy, {}).get("version", "1")
    T = len(R[0])
    spec = RunSpec(scenario=scenario, scenario_version=version,
                   scenario_params=tuple(sorted(params.items())), strategy=strategy,
                   strategy_version=strategy_version,
                   strategy_params=tuple(sorted(sparams.items())), backbone="mlp",
                   backbone_version=backbone_version, seed=seed, budget=budget)
    group_seeds = tuple(group_seeds)
    return RunResult(
        spec=spec, status=status, error=error, diverged_after_task=diverged_after,
        identity=IDENTITY,
        scenario=ScenarioRecord(
            params=params, setting=setting, input_shape=(1, 8, 8), n_outputs=2 * T,
            primary_metric="acc",
            tasks=tuple(TaskRecord(classes=(2 * t, 2 * t + 1), source_classes=(2 * t, 2 * t + 1))
                        for t in range(T)),
            data={"layout": "sklearn-digits", "n_train": 100, "n_test": 50, "subset": False}),
        accuracy_matrix=tuple(tuple(row) for row in R),
        param_counts=tuple(counts or [1000] * (T + 1)),
        times=RunTimes(setup_s=0.5, train_s=(1.0,) * T, eval_s=(0.1,) * (T + 1), wall_s=wall),
        memory=PeakMemory(host_bytes=mem, host_scope="group", device_bytes=None),
        group=GroupRecord(member=group_seeds.index(seed), seeds=group_seeds, batched=False),
        started_at="2026-01-01T00:00:00+00:00", finished_at=finished_at,
    )


def class_R(final, diag=0.9, b=0.1):
    """3 tasks, class-incremental shape: the new task learnt, old ones partly forgotten."""
    return [[b, b, b], [diag, 0.0, 0.0], [final[0] + 0.1, diag, 0.0], list(final)]


def golden_runs() -> list[RunResult]:
    A = ("split-digits", "class", {"setting": "class", "n_tasks": 3})
    B = ("permuted-digits", "task", {"setting": "task", "n_tasks": 2})
    runs = []
    naive = {"lr": 0.01, "epochs": 1}
    joint = {"lr": 0.01, "epochs": 1, "reinit": False}
    for seed, final in enumerate([(0.2, 0.3, 0.9), (0.25, 0.3, 0.85), (0.2, 0.35, 0.9)]):
        runs.append(run_result(*A, "naive", naive, seed, "smoke", class_R(final),
                               wall=10 + seed))
    for seed, final in enumerate([(0.8, 0.8, 0.85), (0.82, 0.78, 0.86), (0.8, 0.8, 0.8)]):
        runs.append(run_result(*A, "joint", joint, seed, "smoke", class_R(final),
                               wall=20 + seed, counts=[1000, 1000, 1200, 1400]))
    xss = "<script>alert(1)</script>"
    for seed, final in enumerate([(0.5, 0.5, 0.9), (0.55, 0.45, 0.9)]):
        runs.append(run_result(*A, xss, {"k": 1}, seed, "smoke", class_R(final)))
    runs.append(run_result(*A, xss, {"k": 1}, 2, "smoke",
                           [[0.1, 0.1, 0.1], [0.9, 0.0, 0.0], [None] * 3, [None] * 3],
                           status="failed",
                           error=RunError(type="RuntimeError", message="boom <b>|</b>",
                                          traceback="Traceback...\nRuntimeError: boom")))
    # The same scenario at another budget: a separate table, never mixed.
    runs.append(run_result(*A, "naive", naive, 0, "default", class_R((0.3, 0.3, 0.95)),
                           group_seeds=(0,)))
    # Task-incremental, 2 tasks.
    for seed, (f1, f2) in enumerate([(0.7, 0.95), (0.72, 0.93)]):  # seed 2 missing
        runs.append(run_result(*B, "naive", naive, seed, "smoke",
                               [[0.5, 0.5], [0.96, 0.55], [f1, f2]]))
    for seed, (f1, f2) in enumerate([(0.9, 0.94), (0.91, 0.95), (0.9, 0.96)]):
        runs.append(run_result(*B, "sep", {"sep": "a|b", "tag": "*x*"}, seed, "smoke",
                               [[0.5, 0.5], [0.95, 0.6], [f1, f2]]))
    for seed in range(3):
        if seed == 1:
            runs.append(run_result(*B, "joint", joint, seed, "smoke",
                                   [[0.5, 0.5], [0.9, 0.55], [None, None]], status="diverged",
                                   diverged_after=2))
        else:
            runs.append(run_result(*B, "joint", joint, seed, "smoke",
                                   [[0.5, 0.5], [0.95, 0.6], [0.93, 0.94 + 0.01 * seed]]))
    return runs


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for p in HERE.glob("*.json"):
        p.unlink()
    for run in golden_runs():
        (HERE / f"{run.spec_hash}.json").write_text(json.dumps(run.to_json(), indent=1) + "\n")


if __name__ == "__main__":
    main()
