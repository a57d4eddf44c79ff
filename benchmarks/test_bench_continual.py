"""The cost of continual evaluation (pytest-benchmark; run with `tox -e benchmark` or
`pytest benchmarks/test_bench_continual.py --benchmark-enable`).

The task of issue 23: the default-budget class-incremental Split MNIST ``naive`` group of 5
seeds (one batched model), with ``--eval-every 10 --eval-subset 1000`` against the same group
without continual evaluation. ``test_continual_evaluation_cost`` times the two alternately
(so a load that changes during the test hits both alike) and reports the ratio of their best
times in ``extra_info["ratio"]`` (a benchmark reports, never asserts, a time; the goal is at most
1.3 on the CPU; README, "Continual evaluation", gives the figures measured).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
import torch

from clbench import api

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

pytestmark = pytest.mark.skipif(not (DATA / "MNIST").is_dir(), reason="needs ../shared/data")


def group(eval_every: int = 0, eval_subset: int = 0) -> float:
    """Seconds to run the group into an empty store."""
    specs, _ = api.plan(scenarios=["split-mnist:setting=class"], strategies=["naive"],
                        seeds="0-4", budget="default", eval_every=eval_every,
                        eval_subset=eval_subset)
    with tempfile.TemporaryDirectory() as results:
        t0 = time.perf_counter()
        summary = api.run(specs, results=results, device=DEVICE, data_dir=DATA, download=False)
        seconds = time.perf_counter() - t0
    assert summary.ran == len(specs) == 5 and summary.failed == 0
    return seconds


@pytest.mark.parametrize("continual", [False, True], ids=["plain", "eval-every-10"])
def test_naive_group(benchmark, continual):
    benchmark.group = "continual evaluation"
    options = {"eval_every": 10, "eval_subset": 1000} if continual else {}
    group(**options)  # warm-up: dataset decode, allocator, lazy imports
    benchmark.pedantic(group, kwargs=options, rounds=2, iterations=1)


def test_continual_evaluation_cost(benchmark):
    group()  # warm-up
    plain, continual = [], []
    for _ in range(2):
        plain.append(group())
        continual.append(group(eval_every=10, eval_subset=1000))
    ratio = min(continual) / min(plain)
    benchmark.extra_info.update(plain_s=min(plain), continual_s=min(continual), ratio=ratio,
                                device=DEVICE)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)  # the numbers are in extra_info
    print(f"\ncontinual evaluation on {DEVICE}: plain {min(plain):.1f} s, "
          f"--eval-every 10 --eval-subset 1000 {min(continual):.1f} s, ratio {ratio:.2f}")
