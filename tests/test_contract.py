"""The harness contract at the smoke budget: the reference strategies on every scenario and
setting; every other native strategy on a short list covering each data path (split, permuted
with per-member permutations, real MNIST). Avalanche baselines have their own contract tests."""

import math

import pytest

from clbench import api
from clbench.models import ModelFactory, parameter_count
from clbench.params import parse_named
from clbench.registry import STRATEGIES
from clbench.spec import make_scenario

SCENARIOS = [
    ("split-digits:setting=class", []),
    ("split-digits:setting=task", []),
    ("split-digits:setting=domain", []),
    ("permuted-digits:n_tasks=3,setting=domain", []),
    ("permuted-digits:n_tasks=3,setting=task", []),
    ("permuted-digits:n_tasks=2,setting=class", []),
    ("split-mnist:setting=class", ["MNIST"]),
    ("split-mnist:setting=task", ["MNIST"]),
    ("permuted-mnist:n_tasks=3", ["MNIST"]),
    ("split-cifar10:setting=task,backbone=convnet", ["cifar-10-subset-bin"]),
    ("split-cifar100:setting=class,backbone=convnet", []),  # generated CIFAR-100 files
    ("split-cifar100:n_tasks=20,setting=task,backbone=convnet", []),
]


def requires(data_dir, *names: str) -> None:
    for name in names:
        if not (data_dir / name).exists():
            pytest.skip(f"{name} is not in ../shared/data")


REFERENCE = ("naive", "joint")
SHORT = [
    ("split-digits:setting=class", []),
    ("split-digits:setting=task", []),
    ("permuted-digits:n_tasks=2,setting=domain", []),
    ("split-mnist:setting=task", ["MNIST"]),
]


def _grid():
    for strategy in STRATEGIES.names():
        if strategy.startswith("avalanche."):
            continue
        for scenario, needs in SCENARIOS if strategy in REFERENCE else SHORT:
            sc = make_scenario(*parse_named(scenario))
            if STRATEGIES.get(strategy).unsupported(sc.info(0)) is None:
                yield pytest.param(strategy, scenario, needs, id=f"{strategy}-{scenario}")


@pytest.mark.parametrize("strategy,scenario,needs", list(_grid()))
def test_strategy_contract(strategy, scenario, needs, data_dir, tmp_path):
    requires(data_dir, *needs)
    specs, _ = api.plan(scenarios=[scenario], strategies=[strategy], seeds="0,1", budget="smoke")
    summary = api.run(specs, results=tmp_path, device="cpu", data_dir=data_dir, download=False)
    assert (summary.ran, summary.failed, summary.not_run) == (2, 0, [])
    loaded = api.ResultsStore(tmp_path).load()
    assert loaded.problems == [] and len(loaded.runs) == 2
    sc = make_scenario(specs[0].scenario, dict(specs[0].scenario_params))
    info = sc.info(0)
    T = info.n_tasks
    expected_params = parameter_count(
        ModelFactory(info.backbone, info.input_shape, info.n_outputs, "cpu")([0]))
    for doc in loaded.runs:
        assert doc.status == "ok", doc.error
        R = doc.accuracy_matrix
        assert len(R) == T + 1 and all(len(row) == T for row in R)
        assert all(v is not None and 0.0 <= v <= 1.0 for row in R for v in row)
        counts = list(doc.param_counts)
        assert len(counts) == T + 1 and all(isinstance(c, int) and c > 0 for c in counts)
        assert counts == sorted(counts)  # models may grow, never shrink
        if strategy in REFERENCE:
            assert counts == [expected_params] * (T + 1)
        assert len(doc.times.train_s) == T and all(t > 0 for t in doc.times.train_s)
        assert len(doc.times.eval_s) == T + 1
        assert doc.group.size == (2 if STRATEGIES.get(strategy).batched else 1)
        assert doc.scenario.setting == info.setting
        assert doc.scenario.data["n_train"] > 0
        assert doc.identity.torch and doc.identity.device == "cpu"
        assert doc.memory.host_bytes > 0
        assert not math.isnan(doc.times.wall_s)
    # Members of a group are distinct runs, not copies.
    a, b = sorted(loaded.runs, key=lambda d: d.spec.seed)
    assert (a.spec.seed, b.spec.seed) == (0, 1)
