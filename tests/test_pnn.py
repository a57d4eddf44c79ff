"""Progressive neural networks: frozen columns never change, so nothing is forgotten."""

import copy
import math

import pytest
import torch
from strategy_setup import CPU, set_up, train

import clbench.strategies.pnn  # noqa: F401  (registers "pnn")
from clbench import api, metrics
from clbench.errors import ConfigError
from clbench.models import member_state, parameter_count
from clbench.strategies.pnn import column_parameter_count

TASK = "split-digits:setting=task"


def _strategy(seeds, params="", scenario=TASK, budget="smoke"):
    return set_up("pnn", scenario, seeds, params, budget)


def _train(strategy, data, task):
    train(strategy, data, [task])


def _expected_counts(T, d=64, w=100, L=2, o=10, adapter="mlp"):
    """param_counts of a run: row 0 (before training) and row 1 hold column 0 only; after
    task t the t columns 0..t-1, column k costing column_parameter_count(k) (its docstring)."""
    cols = [column_parameter_count(k, d, w, L, o, adapter) for k in range(T)]
    return [cols[0]] + [sum(cols[:t]) for t in range(1, T + 1)]


def test_column_formula_written_out():
    # d=64 inputs, w=100, L=2, o=10: column 0 = 64*100+100 + 100*100+100 + 100*10+10
    assert column_parameter_count(0, 64, 100, 2, 10, "mlp") == 17610
    # column k, mlp adapters into layer 2 and the head: alphas k, V (k*100 -> 100) + bias 100,
    # U 100x100 and 100x10 (no bias)
    k = 3
    lateral = 2 * (k + k * 100 * 100 + 100) + 100 * 100 + 100 * 10
    assert column_parameter_count(k, 64, 100, 2, 10, "mlp") == 17610 + lateral
    # linear laterals: U^(k:j) for each earlier column j into layer 2 and the head
    assert column_parameter_count(k, 64, 100, 2, 10, "linear") == 17610 + k * (100 * 100 + 100 * 10)


@pytest.mark.parametrize("adapter", ["mlp", "linear", "none"])
def test_earlier_columns_stay_bit_identical_and_counts_follow_formula(adapter):
    strategy, data = _strategy([0, 5], f":adapter={adapter},column_width=32,epochs=2")
    x, _, _ = data.test[0].batch(torch.arange(40).expand(2, -1))
    snapshots = []
    for t in range(3):
        _train(strategy, data, t)
        net = strategy.model
        assert net.clbench_members == 2
        assert parameter_count(net) == sum(
            column_parameter_count(k, 64, 32, 2, 10, adapter) for k in range(t + 1))
        tid = torch.full((2, 40), t)
        snapshots.append((copy.deepcopy(net.columns[t].state_dict()),
                          strategy.predict(x, tid).clone()))
        for j, (state, out) in enumerate(snapshots):  # every column so far, unchanged
            for name, value in net.columns[j].state_dict().items():
                assert torch.equal(value, state[name]), f"column {j} {name} after task {t}"
            assert torch.equal(strategy.predict(x, torch.full((2, 40), j)), out)
            if j < t:
                assert all(not p.requires_grad for p in net.columns[j].parameters())
    # the newest column did learn, and columns differ from one another
    assert not torch.equal(snapshots[2][1], snapshots[1][1])
    # mixed task ids in one batch: each row gets its own task's column
    mixed = torch.tensor([0, 1, 2, 9] * 10).expand(2, -1)
    out = strategy.predict(x, mixed)
    for j in range(3):
        rows = mixed[0] == j
        assert torch.equal(out[:, rows], snapshots[j][1][:, rows])
    assert torch.equal(out[:, mixed[0] == 9], snapshots[2][1][:, mixed[0] == 9])  # unseen: last


def test_without_laterals_a_column_ignores_the_earlier_columns():
    """``adapter="none"`` is the paper's baseline 1: column k is a network of its own, so its
    output does not move when an earlier column's weights do; with laterals it does."""
    for adapter, reads_earlier in (("none", False), ("mlp", True)):
        strategy, data = _strategy([0], f":adapter={adapter},column_width=16,epochs=1")
        for t in range(2):
            _train(strategy, data, t)
        x, _, _ = data.test[1].batch(torch.arange(20).expand(1, -1))
        tid = torch.full((1, 20), 1)
        before = strategy.predict(x, tid).clone()
        with torch.no_grad():
            for p in strategy.model.columns[0].parameters():
                p.add_(1.0)
        assert torch.equal(strategy.predict(x, tid), before) is not reads_earlier, adapter


def test_full_run_has_no_forgetting_and_counts_columns(tmp_path):
    specs, _ = api.plan(scenarios=[TASK], strategies=["pnn:epochs=4"], seeds="0,1",
                        budget="smoke")
    summary = api.run(specs, results=tmp_path, device="cpu")
    assert summary.failed == 0
    docs = api.ResultsStore(tmp_path).load().runs
    assert len(docs) == 2
    for doc in docs:
        R = doc.accuracy_matrix
        T = len(R[0])
        for j in range(1, T + 1):
            for i in range(j, T + 1):
                assert R[i][j - 1] == R[j][j - 1], (i, j)  # exactly: frozen columns
        assert metrics.bwt(R) == 0.0
        assert metrics.learning_accuracy(R) > 0.7  # and each column learns its task
        assert list(doc.param_counts) == _expected_counts(T)


def test_batched_members_match_unbatched_runs():
    seeds = [0, 5, 9]
    params = ":column_width=32"
    group, data = _strategy(seeds, params)
    for t in range(2):
        _train(group, data, t)
    for s, seed in enumerate(seeds):
        alone, data1 = _strategy([seed], params)
        for t in range(2):
            _train(alone, data1, t)
        batched, single = member_state(group.model, s), member_state(alone.model, 0)
        assert batched.keys() == single.keys()
        for name in single:
            torch.testing.assert_close(batched[name], single[name], rtol=1e-5, atol=1e-6,
                                       msg=f"{name} of seed {seed}")
    # members differ (own initialisation streams)
    assert not torch.equal(member_state(group.model, 0)["columns.1.laterals.0.V.weight"],
                           member_state(group.model, 1)["columns.1.laterals.0.V.weight"])


def test_refuses_class_incremental_and_other_backbones():
    with pytest.raises(ConfigError, match="task"):
        api.plan(scenarios=["split-digits:setting=class"], strategies=["pnn"], seeds="0")
    with pytest.raises(ConfigError, match="mlp backbone"):
        api.plan(scenarios=["split-digits:setting=task,backbone=convnet"], strategies=["pnn"],
                 seeds="0")


@pytest.mark.parametrize("bad,word", [
    ("column_width=0", "column_width"), ("depth=0", "depth"), ("adapter=conv", "adapter"),
    ("alpha_init=-1", "alpha_init"), ("lr=0", "lr"),
])
def test_bad_hyperparameters_are_config_errors(bad, word):
    with pytest.raises(ConfigError, match=word):
        api.plan(scenarios=[TASK], strategies=[f"pnn:{bad}"], seeds="0")


def test_alpha_is_small_and_positive():
    strategy, data = _strategy([0, 1], ":column_width=8")
    _train(strategy, data, 0)
    strategy.net.add_column([0, 1], CPU)
    alpha = strategy.net.columns[1].laterals[0].alpha
    assert alpha.shape == (2, 1) and (alpha >= 0).all() and (alpha <= 0.1).all()
    assert not math.isclose(float(alpha[0, 0].detach()), float(alpha[1, 0].detach()))
