"""Writes the hand-made golden results store in tests/golden/results (run it only to change
the fixture; the documents are committed). Two scenarios (class- and task-incremental), a
budget split, complete cells, an incomplete cell with a failed seed, one with a missing seed,
one with a diverged run whose later rows are null, a strategy named ``<script>alert(1)</script>``
and a parameter holding ``|``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent / "results"

IDENTITY = {
    "clbench_version": "0.1.0",
    "git": {"sha": "0123456789abcdef0123456789abcdef01234567", "dirty": False},
    "python": "3.11.7", "torch": "2.3.0", "cuda": None, "platform": "Linux", "cpu": "Test CPU",
    "cpu_count": 2, "torch_threads": 2, "device": "cpu", "device_name": "Test CPU", "argv": [],
}


def doc(scenario, setting, params, strategy, sparams, seed, budget, R, counts=None,
        status="ok", error=None, diverged_after=None, group_seeds=(0, 1, 2), wall=10.0,
        mem=100 * 2**20):
    T = len(R[0])
    spec = {"scenario": scenario, "scenario_version": "1", "scenario_params": params,
            "strategy": strategy, "strategy_params": sparams, "seed": seed, "budget": budget}
    spec_hash = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]
    return {
        "schema_version": 1, "spec": spec, "spec_hash": spec_hash, "status": status,
        "error": error, "diverged_after_task": diverged_after, "identity": IDENTITY,
        "scenario": {
            "name": scenario, "version": "1", "params": params, "setting": setting,
            "n_tasks": T, "tasks": [{"classes": [2 * t, 2 * t + 1]} for t in range(T)],
            "backbone": "mlp", "primary_metric": "acc",
            "data": {"layout": "sklearn-digits", "n_train": 100, "n_test": 50,
                     "subset": False},
        },
        "hyperparameters": {"strategy": sparams, "scenario": params},
        "accuracy_matrix": R,
        "param_counts": counts or [1000] * (T + 1),
        "train_time_s": [1.0] * T, "eval_time_s": [0.1] * (T + 1),
        "wall_time_s": wall, "peak_host_memory_bytes": mem, "peak_device_memory_bytes": None,
        "group": {"size": len(group_seeds), "member": seed, "seeds": list(group_seeds),
                  "batched": False},
        "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:01:00+00:00",
    }


def class_R(final, diag=0.9, b=0.1):
    """3 tasks, class-incremental shape: the new task learnt, old ones partly forgotten."""
    return [[b, b, b], [diag, 0.0, 0.0], [final[0] + 0.1, diag, 0.0], list(final)]


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for p in HERE.glob("*.json"):
        p.unlink()
    A = ("split-digits", "class", {"setting": "class", "n_tasks": 3})
    B = ("permuted-digits", "task", {"setting": "task", "n_tasks": 2})
    docs = []
    naive = {"lr": 0.01, "epochs": 1}
    joint = {"lr": 0.01, "epochs": 1, "reinit": False}
    for seed, final in enumerate([(0.2, 0.3, 0.9), (0.25, 0.3, 0.85), (0.2, 0.35, 0.9)]):
        docs.append(doc(*A, "naive", naive, seed, "smoke", class_R(final), wall=10 + seed))
    for seed, final in enumerate([(0.8, 0.8, 0.85), (0.82, 0.78, 0.86), (0.8, 0.8, 0.8)]):
        docs.append(doc(*A, "joint", joint, seed, "smoke", class_R(final), wall=20 + seed,
                        counts=[1000, 1000, 1200, 1400]))
    xss = "<script>alert(1)</script>"
    for seed, final in enumerate([(0.5, 0.5, 0.9), (0.55, 0.45, 0.9)]):
        docs.append(doc(*A, xss, {"k": 1}, seed, "smoke", class_R(final)))
    docs.append(doc(*A, xss, {"k": 1}, 2, "smoke",
                    [[0.1, 0.1, 0.1], [0.9, 0.0, 0.0], [None] * 3, [None] * 3], status="failed",
                    error={"type": "RuntimeError", "message": "boom <b>|</b>",
                           "traceback": "Traceback...\nRuntimeError: boom"}))
    # The same scenario at another budget: a separate table, never mixed.
    docs.append(doc(*A, "naive", naive, 0, "default", class_R((0.3, 0.3, 0.95)),
                    group_seeds=(0,)))
    # Task-incremental, 2 tasks.
    for seed, (f1, f2) in enumerate([(0.7, 0.95), (0.72, 0.93)]):  # seed 2 missing
        docs.append(doc(*B, "naive", naive, seed, "smoke",
                        [[0.5, 0.5], [0.96, 0.55], [f1, f2]]))
    for seed, (f1, f2) in enumerate([(0.9, 0.94), (0.91, 0.95), (0.9, 0.96)]):
        docs.append(doc(*B, "sep", {"sep": "a|b", "tag": "*x*"}, seed, "smoke",
                        [[0.5, 0.5], [0.95, 0.6], [f1, f2]]))
    for seed in range(3):
        if seed == 1:
            docs.append(doc(*B, "joint", joint, seed, "smoke",
                            [[0.5, 0.5], [0.9, 0.55], [None, None]], status="diverged",
                            diverged_after=2))
        else:
            docs.append(doc(*B, "joint", joint, seed, "smoke",
                            [[0.5, 0.5], [0.95, 0.6], [0.93, 0.94 + 0.01 * seed]]))
    for d in docs:
        (HERE / f"{d['spec_hash']}.json").write_text(json.dumps(d, indent=1) + "\n")


if __name__ == "__main__":
    main()
