"""One training loop: every native strategy trains through ``SupervisedStrategy.run_loop``; its
per-step hook sees every step, its per-epoch preparation runs once per epoch before the steps,
and the loss the hook returns is what the optimiser minimises."""

import dataclasses
import math

import pytest
import torch
from strategy_setup import set_up, train
from torch.optim.optimizer import register_optimizer_step_post_hook

from clbench.models import member_state
from clbench.strategies.base import SGDParams, SupervisedStrategy, make_optimizer
from clbench.strategies.naive import Naive
from clbench.strategies.replay import Replay

EPOCHS, BATCH = 2, 50  # smoke tasks hold 128 samples: 3 steps per epoch, the last of 28


class CountingNaive(Naive):
    """Naive fine-tuning that logs every call of the loop's hooks."""

    def setup(self, *args) -> None:
        super().setup(*args)
        self.events: list[tuple] = []

    def prepare_epoch(self, steps):
        self.events.append(("prepare", steps))
        return sum(event[0] == "prepare" for event in self.events)  # this epoch's number

    def training_step(self, batch, step, prepared):
        self.events.append(("step", step, prepared, batch[1].shape[1]))
        return super().training_step(batch, step, prepared)


class ZeroLossNaive(Naive):
    """A step hook whose loss has zero gradient: the loop must then leave the weights alone."""

    def training_step(self, batch, step, prepared):
        return 0.0 * super().training_step(batch, step, prepared)


class RecordingReplay(Replay):
    """Replay that records, per step, the minibatch size and the labels of the joint batch its
    step hook hands to ``loss``."""

    def setup(self, *args) -> None:
        super().setup(*args)
        self.joint_batches: list[tuple[int, torch.Tensor]] = []

    def training_step(self, batch, step, prepared):
        self._minibatch = batch[1].shape[1]
        return super().training_step(batch, step, prepared)

    def loss(self, x, y, task_ids):
        self.joint_batches.append((self._minibatch, y.clone()))
        return super().loss(x, y, task_ids)


def test_the_step_hook_sees_every_step_after_the_epochs_preparation():
    strategy, data = set_up(f"{__name__}:CountingNaive", "split-digits:setting=class", [0, 1],
                            f":epochs=3,batch_size={BATCH}")
    n = len(data.train[0])
    steps = math.ceil(n / BATCH)
    assert n % BATCH  # a short last step is part of what is checked
    train(strategy, data, 1)
    assert sum(event[0] == "step" for event in strategy.events) == steps * 3
    expected = []
    for epoch in (1, 2, 3):
        expected.append(("prepare", steps))
        expected += [("step", i, epoch, min(BATCH, n - i * BATCH)) for i in range(steps)]
    assert strategy.events == expected


def test_the_optimiser_minimises_what_the_step_hook_returns():
    trained = {}
    for name in ("naive", f"{__name__}:ZeroLossNaive"):
        strategy, data = set_up(name, "split-digits:setting=class", [0], f":epochs={EPOCHS}")
        before = {k: v.clone() for k, v in member_state(strategy.model, 0).items()}
        train(strategy, data, 1)
        after = member_state(strategy.model, 0)
        trained[name] = any(not torch.equal(before[k], after[k]) for k in before)
    assert trained == {"naive": True, f"{__name__}:ZeroLossNaive": False}


@pytest.fixture
def loop_counts(monkeypatch):
    """Counts every optimiser step in the process, and the steps taken inside run_loop per
    trained module (``"net"``: the strategy's model, ``"gen"``: generative replay's VAE)."""
    counts = {"optimizer": 0, "net": 0, "gen": 0}

    def count_optimizer_step(optimizer, args, kwargs):
        counts["optimizer"] += 1

    handle = register_optimizer_step_post_hook(count_optimizer_step)
    run_loop = SupervisedStrategy.run_loop

    def counting_run_loop(self, loop, data):
        which = "gen" if loop.module is getattr(self, "gen", None) else "net"
        assert which == "gen" or loop.module is self.net
        step = loop.step

        def counted_step(*args):
            counts[which] += 1
            return step(*args)

        run_loop(self, dataclasses.replace(loop, step=counted_step), data)

    monkeypatch.setattr(SupervisedStrategy, "run_loop", counting_run_loop)
    yield counts
    handle.remove()


@pytest.mark.parametrize("name", ["naive", "joint", "ewc", "online-ewc", "replay",
                                  "generative-replay", "pnn", "net2net"])
def test_every_native_strategy_trains_through_the_one_loop(name, loop_counts):
    gen_epochs = 3
    params = f":epochs={EPOCHS},batch_size={BATCH}"
    if name == "generative-replay":
        params += f",gen_epochs={gen_epochs}"
    strategy, data = set_up(name, "split-digits:setting=task", [0, 1], params)
    train(strategy, data, 3)
    sizes = [len(data.train[t]) for t in range(3)]
    if name == "joint":  # task t trains on the union of tasks 1..t
        sizes = [sum(sizes[:t + 1]) for t in range(3)]
    steps = sum(math.ceil(n / BATCH) for n in sizes)
    vae_steps = steps * gen_epochs if name == "generative-replay" else 0
    assert loop_counts["net"] == steps * EPOCHS
    assert loop_counts["gen"] == vae_steps
    # no optimiser stepped anywhere else: there is no other training loop
    assert loop_counts["optimizer"] == steps * EPOCHS + vae_steps


def test_replay_adds_replay_batch_size_memory_samples_to_every_step():
    replayed = 16
    strategy, data = set_up(f"{__name__}:RecordingReplay", "split-digits:setting=class", [0, 1],
                            f":epochs={EPOCHS},batch_size={BATCH},replay_batch_size={replayed}")
    steps = [math.ceil(len(data.train[t]) / BATCH) * EPOCHS for t in range(2)]
    train(strategy, data, 1)
    assert len(strategy.joint_batches) == steps[0]
    assert all(y.shape[1] == b for b, y in strategy.joint_batches)  # empty memory: nothing added
    strategy.joint_batches.clear()
    train(strategy, data, [1])
    assert len(strategy.joint_batches) == steps[1]
    old, new = data.info.tasks[0].classes, data.info.tasks[1].classes
    for b, y in strategy.joint_batches:
        assert y.shape == (2, b + replayed)
        # the minibatch is the new task's; the samples added come from the memory (task 1)
        assert set(y[:, :b].unique().tolist()) <= set(new)
        assert set(y[:, b:].unique().tolist()) <= set(old)


def test_the_optimiser_factory():
    net = torch.nn.Linear(3, 2)
    sgd = make_optimizer(SGDParams(lr=0.1, momentum=0.5, weight_decay=0.01), net.parameters())
    assert type(sgd) is torch.optim.SGD
    assert (sgd.defaults["lr"], sgd.defaults["momentum"], sgd.defaults["weight_decay"]) == \
        (0.1, 0.5, 0.01)
    adam = make_optimizer(SGDParams(optimizer="adam", lr=0.001), [net.weight])
    assert type(adam) is torch.optim.Adam and adam.defaults["lr"] == 0.001
    assert adam.param_groups[0]["params"] == [net.weight]


def test_pnn_optimises_only_its_newest_column():
    strategy, data = set_up("pnn", "split-digits:setting=task", [0], f":epochs={EPOCHS}")
    train(strategy, data, 2)
    newest = list(strategy.model.columns[-1].parameters())
    trainable = strategy.trainable_parameters()
    assert len(trainable) == len(newest)
    assert all(p is q for p, q in zip(trainable, newest))
