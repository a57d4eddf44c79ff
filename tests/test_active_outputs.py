"""Class-incremental training scores the seen classes' outputs only (``active_outputs="seen"``,
Hsu et al. 2018; van de Ven et al.'s ``active_classes``), or every output (``"all"``)."""

from __future__ import annotations

import pytest
import torch
from strategy_setup import set_up, train

from clbench.registry import STRATEGIES

NATIVE_CLASS_IL = ["naive", "ewc", "online-ewc", "replay", "generative-replay", "joint",
                   "net2net"]


def _head_rows(st, classes):
    head, rows = st.net.head, list(classes)
    return head.weight.detach()[:, rows].clone(), head.bias.detach()[:, rows].clone()


@pytest.mark.parametrize("name", ["naive", "ewc", "replay"])
def test_seen_outputs_leave_the_unseen_classes_untouched(name):
    st, data = set_up(name, "split-digits", [0, 3], ":momentum=0.0")
    unseen = [c for task in data.info.tasks[1:] for c in task.classes]
    before = _head_rows(st, unseen)
    train(st, data, 1)
    after = _head_rows(st, unseen)
    for b, a in zip(before, after):  # no gradient ever reached them
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    seen = list(data.info.tasks[0].classes)
    assert st.seen_outputs.nonzero().flatten().tolist() == sorted(seen)
    train(st, data, [1])
    assert st.seen_outputs.nonzero().flatten().tolist() == sorted(
        seen + list(data.info.tasks[1].classes))


def test_all_outputs_push_the_unseen_classes_down():
    st, data = set_up("naive", "split-digits", [0], ":momentum=0.0,active_outputs=all")
    unseen = [c for task in data.info.tasks[1:] for c in task.classes]
    before_bias = _head_rows(st, unseen)[1]
    train(st, data, 1)
    after_bias = _head_rows(st, unseen)[1]
    assert (after_bias < before_bias).all()  # the softmax lowered every unseen class


def test_seen_and_all_give_different_models_and_task_il_ignores_the_choice():
    runs = {}
    for choice in ("seen", "all"):
        for scenario in ("split-digits", "split-digits:setting=task"):
            st, data = set_up("naive", scenario, [0], f":active_outputs={choice}")
            train(st, data, 2)
            runs[choice, scenario] = st.net.head.weight.detach()
    assert not torch.equal(runs["seen", "split-digits"], runs["all", "split-digits"])
    assert torch.equal(runs["seen", "split-digits:setting=task"],
                       runs["all", "split-digits:setting=task"])


@pytest.mark.parametrize("name", NATIVE_CLASS_IL)
def test_seen_is_the_default_and_is_a_recorded_hyperparameter(name):
    params = STRATEGIES.get(name).resolve_params("split-mnist", "default", {})
    assert params.active_outputs == "seen"


def test_the_ewc_fisher_uses_the_training_mask():
    """With seen outputs, the Fisher of the unseen classes' head rows is zero (their logits are
    -inf in training, so no sampled label and no gradient reaches them)."""
    st, data = set_up("ewc", "split-digits", [0], ":fisher_samples=32")
    train(st, data, 1)
    unseen = [c for task in data.info.tasks[1:] for c in task.classes]
    fisher = st.fisher_information(data.train[0])
    assert fisher["head.bias"][:, unseen].abs().max() == 0
    assert fisher["head.bias"][:, list(data.info.tasks[0].classes)].abs().max() > 0
