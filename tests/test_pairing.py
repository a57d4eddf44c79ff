"""The pairing that `compare` and `gate` rely on: two strategies run with the same seed on the
same scenario start from the same initial weights (where their architectures agree), see the
same permutations or class order, and the same order of the first task's data. Their per-seed
difference is then a paired quantity; with another seed, all three differ."""

from __future__ import annotations

import pytest
import torch

from clbench import api

PAIRED = ("naive", "ewc", "replay", "joint", "online-ewc")


def _setup(scenario: str, strategy: str, seed: int):
    strategy_obj, data = api.prepare(scenario, strategy, seeds=[seed], budget="smoke",
                                     device="cpu")
    return strategy_obj, data


def _state(strategy) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in strategy.model.state_dict().items()}


def _first_order(strategy, data) -> torch.Tensor:
    return strategy.epoch_order(len(data.train[0]))


def _same_data(a, b) -> bool:
    if a.info.tasks != b.info.tasks:  # class order (split) and task structure
        return False
    for ta, tb in zip(a.train + a.test, b.train + b.test):
        if not (torch.equal(ta.rows, tb.rows) and torch.equal(ta.labels, tb.labels)):
            return False
        if (ta.permutations is None) != (tb.permutations is None):
            return False
        if ta.permutations is not None and not torch.equal(ta.permutations, tb.permutations):
            return False
    return True


@pytest.mark.parametrize("scenario", ["split-digits:class_order=random",
                                      "permuted-digits"])
def test_same_seed_pairs_weights_data_and_first_task_order(scenario):
    base, base_data = _setup(scenario, "naive", 3)
    base_state, base_order = _state(base), _first_order(base, base_data)
    for name in PAIRED[1:]:
        other, data = _setup(scenario, name, 3)
        state = _state(other)
        assert state.keys() == base_state.keys(), name  # the architectures agree
        assert all(torch.equal(state[k], base_state[k]) for k in state), name
        assert _same_data(data, base_data), name
        assert torch.equal(_first_order(other, data), base_order), name


@pytest.mark.parametrize("scenario", ["split-digits:class_order=random",
                                      "permuted-digits"])
def test_another_seed_changes_all_three(scenario):
    a, a_data = _setup(scenario, "naive", 3)
    b, b_data = _setup(scenario, "ewc", 4)
    sa, sb = _state(a), _state(b)
    assert not all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not _same_data(a_data, b_data)
    assert not torch.equal(_first_order(a, a_data), _first_order(b, b_data))
