"""Cost of each native strategy over ``naive`` (pytest-benchmark; `tox -e benchmark`).

Each benchmark times the training of the *second* task of task-incremental Split MNIST (the
first is trained in the untimed setup), because that is where the methods differ from
fine-tuning: EWC's penalty, replay's memory batches, generative replay's generated batches,
the new PNN column, the widened Net2Net layers. The timed call includes the strategy's
end-of-task work (EWC's Fisher, the VAE's training, the memory update). ``extra_info`` records
the number of optimiser steps and the time per step; compare the ``mean`` column with naive's.

One seed, 2,048 training samples per task, batch 128 (16 steps), the MLP 2 x 400.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from data_dir import DATA

from clbench import api
from clbench.experience import Experience, TaskData

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
SCENARIO = "split-mnist:setting=task"
SAMPLES, BATCH = 2048, 128
STRATEGIES = ["naive", "joint", "ewc", "online-ewc", "replay", "generative-replay", "pnn",
              "net2net"]

pytestmark = pytest.mark.skipif(not (DATA / "MNIST").is_dir(), reason="needs ../shared/data")


def _head(d: TaskData, n: int) -> TaskData:
    """The first ``n`` samples of every member."""
    return dataclasses.replace(d, rows=d.rows[:, :n], labels=d.labels[:, :n],
                               task_ids=d.task_ids[:, :n],
                               perm_ids=None if d.perm_ids is None else d.perm_ids[:, :n])


def _sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


@pytest.mark.parametrize("name", STRATEGIES)
def test_second_task(benchmark, name):
    def setup():
        strategy, data = api.prepare(SCENARIO, f"{name}:batch_size={BATCH},epochs=1", [0],
                                     "default", device=DEVICE, data_dir=DATA, download=False)
        first, second = (Experience(data.info.tasks[t], _head(data.train[t], SAMPLES))
                         for t in (0, 1))
        strategy.train(first)
        _sync()
        return (strategy, second), {}

    def train_second(strategy, experience):
        strategy.train(experience)
        _sync()

    benchmark.pedantic(train_second, setup=setup, rounds=3, iterations=1)
    steps = SAMPLES // BATCH
    benchmark.extra_info.update(steps=steps,
                                ms_per_step=1000 * benchmark.stats.stats.mean / steps)
