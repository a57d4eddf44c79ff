"""``--executor ray`` against ``--executor local`` on the CPU (pytest-benchmark; one command:

    CLBENCH_OFFLINE=1 .venv/bin/python -m pytest benchmarks/test_bench_executors.py \\
        --benchmark-enable -s

prints the ratio and stores it in the benchmark's ``extra_info``).

The suite: 9 CPU-bound groups (naive, replay and EWC on the offline digits scenarios, class- and
task-IL split and permuted, 3 seeds each as one batched model, the default budget: 1-5 s a
group). ``local`` trains them one after another in this process with torch's default threads;
``ray`` runs them on a local Ray instance of 2 CPUs, one group per CPU, each worker with one
torch thread. One warm-up round of each first: the Ray workers have imported torch and clbench
and loaded the data, as they have for all but the first groups of a long suite; the local
process likewise has its data cached. Both executors must give the same accuracy matrices.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
import torch

from clbench import api
from clbench.app.executors import make_executor
from clbench.app.runner import plan_groups
from clbench.results import ResultsStore

ray = pytest.importorskip("ray")

ROUNDS = 2
SPECS, _ = api.plan(None, ["split-digits", "split-digits:setting=task", "permuted-digits"],
                    ["naive", "replay", "ewc"], [0, 1, 2], "default")


@pytest.fixture(scope="module")
def two_cpu_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


def run_suite(executor) -> tuple[float, dict[str, list]]:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        summary = api.run(SPECS, Path(folder), device="cpu", executor=executor)
        seconds = time.perf_counter() - start
        assert summary.ran == len(SPECS) and not summary.failed
        matrices = {r.spec_hash: r.accuracy_matrix for r in ResultsStore(folder).load().runs}
    return seconds, matrices


def test_ray_two_one_thread_workers_against_local(benchmark, two_cpu_ray):
    assert len(plan_groups(SPECS)) >= 8
    run_suite("local")  # warm-up
    local = [run_suite("local") for _ in range(ROUNDS)]
    executor = make_executor("ray", cpus_per_group=1)
    ray_matrices = {}

    def ray_round():
        seconds, ray_matrices["last"] = run_suite(executor)
        return seconds

    benchmark.pedantic(ray_round, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    assert ray_matrices["last"] == local[0][1]  # the same results, bit for bit
    local_min = min(s for s, _ in local)
    stats = benchmark.stats.stats if benchmark.stats else None
    if stats is None:  # --benchmark-disable (the default test run): nothing to report
        return
    ratio = local_min / stats.min
    benchmark.extra_info.update({
        "groups": 9, "runs": len(SPECS), "local_min_s": round(local_min, 3),
        "local_torch_threads": torch.get_num_threads(), "ray_min_s": round(stats.min, 3),
        "ray_workers": 2, "ray_threads_per_worker": 1, "ratio_local_over_ray": round(ratio, 2),
    })
    print(f"\nlocal {local_min:.2f} s (min of {ROUNDS}, {torch.get_num_threads()} torch "
          f"threads), ray {stats.min:.2f} s (min of {ROUNDS}, 2 workers x 1 thread): "
          f"ray is {ratio:.2f}x faster")
