"""Speed of the run loop (pytest-benchmark; run with `tox -e benchmark` or
`pytest benchmarks --benchmark-enable`).

The reference task: ``naive`` on class-incremental Split MNIST, MLP 2 x 400, SGD lr 0.01
momentum 0.9, batch 128, one epoch per task, evaluation on every task's test set before
training and after each task. ``test_plain_loop`` is the same work written plainly in PyTorch
(data pre-normalised on the device, no harness): the harness should stay within ~15% of it.
"""

from __future__ import annotations

import tempfile

import pytest
import torch
import torch.nn.functional as F
from data_dir import DATA

from clbench import api
from clbench.scenarios.datasets import load_dataset

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

pytestmark = pytest.mark.skipif(not (DATA / "MNIST").is_dir(), reason="needs ../shared/data")


def plain_loop() -> list[list[float]]:
    ds = load_dataset("mnist", DATA, download=False)
    norm = lambda x: ((x.to(DEVICE).float() / 255) - 0.1307) / 0.3081  # noqa: E731
    xtr, ytr = norm(ds.train_x).flatten(1), ds.train_y.to(DEVICE)
    xte, yte = norm(ds.test_x).flatten(1), ds.test_y.to(DEVICE)
    tasks = [(2 * t, 2 * t + 1) for t in range(5)]
    tr = [torch.nonzero((ytr == a) | (ytr == b)).squeeze(1) for a, b in tasks]
    te = [torch.nonzero((yte == a) | (yte == b)).squeeze(1) for a, b in tasks]
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(784, 400), torch.nn.ReLU(), torch.nn.Linear(400, 400), torch.nn.ReLU(),
        torch.nn.Linear(400, 10)).to(DEVICE)

    @torch.no_grad()
    def evaluate():
        return [float((net(xte[i]).argmax(1) == yte[i]).float().mean()) for i in te]

    R = [evaluate()]
    for rows in tr:
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        order = rows[torch.randperm(len(rows), device=DEVICE)]
        for start in range(0, len(order), 128):
            i = order[start:start + 128]
            loss = F.cross_entropy(net(xtr[i]), ytr[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
        R.append(evaluate())
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    return R


def harness_loop(seeds: str) -> None:
    specs, _ = api.plan(scenarios=["split-mnist:setting=class"],
                        strategies=["naive:optimizer=sgd,lr=0.01,momentum=0.9,batch_size=128,"
                                    "epochs=1"], seeds=seeds, budget="default")
    with tempfile.TemporaryDirectory() as results:
        summary = api.run(specs, results=results, device=DEVICE, data_dir=DATA, download=False)
    assert summary.ran == len(specs) and summary.failed == 0


def test_plain_loop(benchmark):
    plain_loop()  # warm-up: dataset decode, allocator, lazy imports
    R = benchmark.pedantic(plain_loop, rounds=3, iterations=1)
    assert len(R) == 6


@pytest.mark.parametrize("seeds", [
    "0",
    "0-4",
    # Seeds are a batch dimension: 100 seeds train as one batched model. Only worth timing on a
    # GPU; on a CPU the cost simply grows with the seed count.
    pytest.param("0-99", marks=pytest.mark.skipif(DEVICE != "cuda", reason="needs a GPU")),
], ids=["1-seed", "5-seeds", "100-seeds"])
def test_harness_naive(benchmark, seeds):
    harness_loop(seeds)
    benchmark.pedantic(harness_loop, args=(seeds,), rounds=3, iterations=1)
