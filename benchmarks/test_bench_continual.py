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

import pytest
import torch
from data_dir import DATA

from clbench import api

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


def cost(rounds: int = 2) -> dict[str, float | str]:
    """Best-of-``rounds`` seconds of the group without and with continual evaluation, timed
    alternately after one warm-up, and their ratio (also run by ``reference/gpu-rows.sh``)."""
    group()  # warm-up
    plain, continual = [], []
    for _ in range(rounds):
        plain.append(group())
        continual.append(group(eval_every=10, eval_subset=1000))
    return {"plain_s": min(plain), "continual_s": min(continual),
            "ratio": min(continual) / min(plain), "device": DEVICE}


def test_continual_evaluation_cost(benchmark):
    figures = cost()
    benchmark.extra_info.update(figures)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)  # the numbers are in extra_info
    print(f"\ncontinual evaluation on {DEVICE}: plain {figures['plain_s']:.1f} s, "
          f"--eval-every 10 --eval-subset 1000 {figures['continual_s']:.1f} s, "
          f"ratio {figures['ratio']:.2f}")
