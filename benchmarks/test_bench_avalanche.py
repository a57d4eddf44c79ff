"""Cost of the Avalanche adapter's batch fetching (pytest-benchmark; `tox -e benchmark`).

Times ``avalanche.naive`` training one experience of Split MNIST (4,096 samples, batch 64,
4 epochs: 256 steps) with the adapter's tensor fetching (``TensorRows``: Avalanche's samplers,
batches cut from tensors) against Avalanche's own per-sample ``__getitem__`` and collate. The
two train bit-identical models (tests/test_avalanche.py); compare the ``mean`` columns.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from data_dir import DATA

pytest.importorskip("avalanche", reason="avalanche-lib is not installed")

import clbench.strategies.avalanche_adapter as adapter  # noqa: E402
from clbench import api  # noqa: E402
from clbench.experience import Experience  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
SAMPLES, BATCH, EPOCHS = 4096, 64, 4

pytestmark = pytest.mark.skipif(not (DATA / "MNIST").is_dir(), reason="needs ../shared/data")


@pytest.mark.parametrize("fetching", ["tensors", "avalanche"])
def test_one_experience(benchmark, monkeypatch, fetching):
    if fetching == "avalanche":
        monkeypatch.setattr(adapter.AvalancheStrategy, "_fetch_tensors",
                            lambda self, template: None)

    def setup():
        strategy, data = api.prepare(
            "split-mnist:setting=class", f"avalanche.naive:batch_size={BATCH},epochs={EPOCHS}",
            [0], "default", device=DEVICE, data_dir=DATA, download=False)
        d = data.train[0]
        head = dataclasses.replace(d, rows=d.rows[:, :SAMPLES], labels=d.labels[:, :SAMPLES],
                                   task_ids=d.task_ids[:, :SAMPLES], perm_ids=None)
        return (strategy, Experience(data.info.tasks[0], head)), {}

    def train(strategy, experience):
        strategy.train(experience)
        if DEVICE == "cuda":
            torch.cuda.synchronize()

    benchmark.pedantic(train, setup=setup, rounds=3, iterations=1)
    steps = EPOCHS * SAMPLES // BATCH
    benchmark.extra_info.update(steps=steps,
                                ms_per_step=1000 * benchmark.stats.stats.mean / steps)
