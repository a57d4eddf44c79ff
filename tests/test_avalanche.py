"""Avalanche baselines run as clbench strategies (strategies/avalanche_baselines.py).

Kept small: split-digits at the smoke budget, one seed. Importing Avalanche alone takes several
seconds on a loaded CPU.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys

import pytest
import torch

pytest.importorskip("avalanche", reason="avalanche-lib is not installed: "
                    "pip install 'clbench[avalanche]'")

from strategy_setup import CPU, DATA, set_up, train  # noqa: E402

import clbench.strategies.avalanche_baselines as AB  # noqa: E402  (registers avalanche.*)
from clbench import api, metrics  # noqa: E402
from clbench.budget import BUDGETS  # noqa: E402
from clbench.experience import Experience  # noqa: E402
from clbench.models import member_state  # noqa: E402
from clbench.registry import STRATEGIES  # noqa: E402
from clbench.spec import make_scenario, make_specs  # noqa: E402

CLASS, TASK = "split-digits:setting=class", "split-digits:setting=task"


def _train(strategy_name, scenario, seed=0, params="", tasks=2, budget="smoke"):
    """Set up and train ``tasks`` experiences like the harness does; returns the strategy."""
    strategy, data = set_up(strategy_name, scenario, [seed], params, budget)
    train(strategy, data, tasks)
    return strategy


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


# --------------------------------------------------------------------------- contract


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Every avalanche.* strategy, smoke budget, seed 0 (pnn: task setting; others: class)."""
    root = tmp_path_factory.mktemp("avl")
    specs = []
    for name in AB.ALL:
        scenario = TASK if name == "avalanche.pnn" else CLASS
        specs += api.plan(scenarios=[scenario], strategies=[name], seeds="0",
                          budget="smoke")[0]
    api.run(specs, results=root, device="cpu")
    docs = api.ResultsStore(root).load().runs
    return {d.spec.strategy: d for d in docs}


@pytest.mark.parametrize("name", AB.ALL)
def test_contract_every_baseline_runs_at_smoke_budget(smoke_runs, name):
    doc = smoke_runs[name]
    assert doc.status == "ok", doc.error
    R = doc.accuracy_matrix
    T = len(R[0])
    assert len(R) == T + 1
    if name == "avalanche.pnn":  # no prediction for an untrained task's missing column
        assert all((v is None) == (j >= i) for i, row in enumerate(R) for j, v in enumerate(row))
        assert metrics.run_metrics(doc)["fwt"] is None  # not defined (was 0 by construction)
        assert metrics.run_metrics(doc)["acc"] is not None
    else:
        assert all(v is not None for row in R for v in row)
    assert all(0.0 <= v <= 1.0 for row in R for v in row if v is not None)
    counts = list(doc.param_counts)
    assert all(isinstance(c, int) and c > 0 for c in counts)
    if name == "avalanche.pnn":  # one new column per task
        assert counts == sorted(counts)
        assert counts[-1] > counts[1]
    # wall time measured by the harness, as for native runs
    assert all(t is not None and t > 0 for t in doc.times.train_s)
    assert doc.times.wall_s > 0 and doc.group.batched is False


def test_avalanche_evaluation_and_logging_are_off():
    strategy = _train("avalanche.naive", CLASS, tasks=1)
    template = strategy.template
    assert template.evaluator.metrics == [] and list(template.evaluator.loggers) == []
    names = [type(p).__name__.lower() for p in template.plugins]
    assert not any("time" in n or "logger" in n or "metric" in n for n in names), names


def test_module_import_does_not_import_avalanche():
    code = ("import sys, clbench.strategies.avalanche_baselines; "
            "from clbench.registry import STRATEGIES; STRATEGIES.get('avalanche.naive'); "
            "assert 'avalanche' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_avalanche_is_a_clear_refusal(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("avalanche", "quadprog")
                        else real(name, *a))
    info = make_scenario("split-digits", {}).info(0)
    reason = STRATEGIES.get("avalanche.gem").unsupported(info)
    assert "pip install 'clbench[avalanche]'" in reason


def test_list_names_the_extra_when_avalanche_is_missing(monkeypatch, capsys):
    from clbench import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("avalanche", "quadprog")
                        else real(name, *a))
    assert cli.main(["list", "strategies"]) == 0
    out = capsys.readouterr().out
    entries = {m.group(1): m.group(0)  # one strategy's lines each
               for m in re.finditer(r"\n  (\S+) .*?(?=\n  \S|\Z)", out, re.S)}
    assert "not installed: pip install 'clbench[avalanche]'" in entries["avalanche.naive"]
    assert "not installed" not in entries["naive"]


# --------------------------------------------------------------------------- not a no-op


def test_si_importance_is_nonzero_on_cpu():
    strategy = _train("avalanche.si", CLASS, tasks=1, params=":epochs=2")
    (plugin,) = [p for p in strategy.template.plugins if "Synaptic" in type(p).__name__]
    importance = torch.cat([v.data.flatten() for v in plugin.ewc_data[1].values()])
    assert importance.abs().sum() > 0
    for name, param in plugin.allowed_parameters(strategy.model, plugin.excluded_parameters):
        # the anchor is a copy, not a view of the live weights
        assert plugin.ewc_data[0][name].data.data_ptr() != param.data_ptr()


@pytest.mark.skipif(not importlib.util.find_spec("avalanche")
                    or __import__("avalanche").__version__ != "0.6.0",
                    reason="documents the bug of avalanche-lib 0.6.0")
def test_unpatched_si_is_naive_on_cpu():
    """The reason for the patch: Avalanche 0.6.0's own plugin has zero importance on CPU."""
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin, SynapticIntelligencePlugin

    strategy = _train("avalanche.naive", CLASS, tasks=0)
    plugin = SynapticIntelligencePlugin(si_lambda=1.0, eps=0.001)
    model = strategy.template.model
    template = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
                     plugins=[plugin], evaluator=EvaluationPlugin(loggers=[]),
                     train_mb_size=32, device=CPU)
    strategy.template = template
    spec = make_specs(CLASS, "avalanche.naive", [0], "smoke")[0]
    sc = make_scenario(spec.scenario, dict(spec.scenario_params))
    data = sc.build([0], BUDGETS["smoke"], CPU, DATA)
    strategy.train(Experience(data.info.tasks[0], data.train[0]))
    importance = torch.cat([v.data.flatten() for v in plugin.ewc_data[1].values()])
    assert importance.abs().sum() == 0


# Settings strong enough that a working method moves the parameters measurably.
DIFFERS = [
    ("avalanche.ewc", ":ewc_lambda=1000"),
    ("avalanche.online-ewc", ":ewc_lambda=1000,decay_factor=0.9"),
    ("avalanche.si", ":si_lambda=100"),
    ("avalanche.lwf", ""),
    ("avalanche.mas", ":lambda_reg=100"),
    ("avalanche.replay", ""),
    ("avalanche.gem", ""),
    ("avalanche.agem", ""),
    ("avalanche.der", ""),
    ("avalanche.gss", ":mem_strength=2"),
]


@pytest.fixture(scope="module")
def naive_params():
    return _flat(_train("avalanche.naive", CLASS, params=":epochs=3", tasks=2).model)


@pytest.mark.parametrize("name,params", DIFFERS)
def test_baseline_differs_from_naive(naive_params, name, params):
    theirs = _flat(_train(name, CLASS, params=":epochs=3" + params.replace(":", ","),
                          tasks=2).model)
    assert theirs.shape == naive_params.shape
    # same seed, same data order (reseeded per experience), deterministic CPU kernels: a
    # silent no-op would be bitwise equal to naive
    assert (theirs - naive_params).abs().max() > 1e-5, f"{name} trains like naive"


def test_task_setting_masks_and_lwf_sees_every_head():
    """Task setting: the trained outputs are masked to the task's classes, ``model(x, None)``
    gives every known task's outputs (what LwF distils), and LwF differs from naive there."""
    naive = _train("avalanche.naive", TASK, params=":epochs=3", tasks=2)
    lwf = _train("avalanche.lwf", TASK, params=":epochs=3", tasks=2)
    x = torch.randn(4, 1, 8, 8)
    out = lwf.model(x, torch.tensor([0, 1, 1, 0]))
    mask = lwf.info.class_mask()
    assert (out[0, ~mask[0]] == -1e9).all() and (out[1, ~mask[1]] == -1e9).all()
    assert set(lwf.model(x, None)) == {0, 1}
    assert (_flat(lwf.model) - _flat(naive.model)).abs().max() > 1e-5


@pytest.mark.parametrize("name", ["avalanche.gss", "avalanche.der"])
def test_buffers_without_task_labels_are_refused_in_the_task_setting(name):
    info = make_scenario("split-digits", {"setting": "task"}).info(0)
    assert "task" in STRATEGIES.get(name).unsupported(info)


# --------------------------------------------------------------------------- same method


@pytest.mark.parametrize("scenario", [CLASS, TASK])
def test_naive_and_avalanche_naive_agree(scenario):
    """Same init, same batches in the same order (order=native), same optimiser (fresh SGD
    with momentum per experience), same masked loss: the parameters agree to float rounding
    after three experiences of two epochs each."""
    native = _train("naive", scenario, seed=3, params=":epochs=2,active_outputs=all", tasks=3)
    avl = _train("avalanche.naive", scenario, seed=3, params=":epochs=2,order=native",
                 tasks=3)
    ours = member_state(native.model, 0)
    theirs = [p.detach().flatten() for p in avl.model.parameters()]
    assert len(ours) == len(theirs)
    for (name, a), b in zip(ours.items(), theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    # and the default (Avalanche's own shuffling) is a different, seeded order
    other = _train("avalanche.naive", scenario, seed=3, params=":epochs=2", tasks=1)
    again = _train("avalanche.naive", scenario, seed=3, params=":epochs=2", tasks=1)
    assert torch.equal(_flat(other.model), _flat(again.model))


def _batches(loader, epochs=2):
    torch.manual_seed(11)
    batches = [b for _ in range(epochs) for b in loader]
    return batches, torch.rand(3)  # the global RNG after the epochs (the loaders draw from it)


def test_tensor_fetching_yields_avalanche_batches_bit_for_bit():
    """Two task groups (so the multi-dataset sampler mixes them): the same batches, values
    and dtypes, in the same order, with the same draws from the global RNG."""
    from avalanche.benchmarks.utils import (
        _make_taskaware_tensor_classification_dataset as make_dataset,
    )
    from avalanche.benchmarks.utils.data_loader import TaskBalancedDataLoader

    from clbench.strategies.avalanche_adapter import fetching_tensors

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, 5, generator=g), torch.randint(0, 4, (300,), generator=g)
    tasks = [0] * 200 + [1] * 100
    data = make_dataset(x, y, targets=y, task_labels=tasks).train()

    def loader():
        return TaskBalancedDataLoader(data, oversample_small_groups=True, batch_size=16,
                                      shuffle=True, num_workers=0, drop_last=False)

    theirs, rng_after = _batches(loader())
    ours, rng_after_ours = _batches(fetching_tensors(loader()))
    assert len(ours) == len(theirs) > 2 * 200 // 16
    for a, b in zip(theirs, ours):
        assert [t.dtype for t in a] == [t.dtype for t in b]
        assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert torch.equal(rng_after, rng_after_ours)


@pytest.mark.parametrize("name", ["avalanche.ewc", "avalanche.gdumb", "avalanche.replay"])
def test_tensor_fetching_trains_the_model_avalanches_loader_trains(monkeypatch, name):
    """End to end, against the template's own loader: bit-identical weights after two
    experiences (GDumb swaps the adapted dataset; replay installs its own loader)."""
    ours = _flat(_train(name, CLASS, seed=1, params=":epochs=2").model)
    monkeypatch.setattr(AB.AvalancheStrategy, "_fetch_tensors", lambda self, template: None)
    theirs = _flat(_train(name, CLASS, seed=1, params=":epochs=2").model)
    assert torch.equal(ours, theirs)


def _default_runs(tmp_path, scenario, strategy, seeds="0,1,2"):
    specs, _ = api.plan(scenarios=[scenario], strategies=[strategy], seeds=seeds,
                        budget="default")
    api.run(specs, results=tmp_path, device="cpu")
    docs = api.ResultsStore(tmp_path).load().runs
    assert all(d.status == "ok" for d in docs)
    return [metrics.acc(d.accuracy_matrix) for d in docs]


@pytest.mark.accuracy
@pytest.mark.parametrize("native,scenario,tol", [
    ("ewc", TASK, 0.05),
    ("replay", CLASS, 0.10),
])
def test_native_and_avalanche_agree_at_default_budget(tmp_path, native, scenario, tol):
    """Different implementations of one method (EWC: per-sample vs minibatch Fisher and
    different lambda scales; replay: reservoir vs experience-balanced buffer): mean ACC over
    three seeds within ``tol``."""
    ours = _default_runs(tmp_path / "n", scenario, native)
    theirs = _default_runs(tmp_path / "a", scenario, f"avalanche.{native}")
    assert abs(sum(ours) / 3 - sum(theirs) / 3) < tol, (ours, theirs)
