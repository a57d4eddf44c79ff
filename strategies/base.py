"""The strategy protocol, and the seed-batched supervised trainer that native strategies share.

A strategy is set up once per group of seeds, then trained on one experience at a time; the
harness owns the outer loop, the evaluation and every measurement. All tensors carry a leading
member axis ``S`` (one member per seed; ``S = 1`` is the ordinary case): a strategy that sets
``batched = True`` receives whole groups, any other receives one seed at a time.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from clbench.experience import Experience, ScenarioInfo, TaskData
from clbench.models import ModelFactory
from clbench.params import resolve
from clbench.seeding import Stream, generator


class Strategy(ABC):
    """Protocol every strategy implements (subclass it, or provide the same methods).

    ``Params``: a frozen dataclass of hyperparameters with documented defaults.
    ``defaults``: per scenario and budget overrides of those defaults, as
    ``(scenario_glob, budget_glob, {param: value})`` entries applied in order.
    """

    name: ClassVar[str | None] = None
    description: ClassVar[str] = ""
    batched: ClassVar[bool] = False
    settings: ClassVar[tuple[str, ...]] = ("class", "task", "domain")
    backbones: ClassVar[tuple[str, ...] | None] = None  # None: any backbone
    # False: the model has no prediction for a task before training on it (a per-task column
    # or head that does not exist yet). The harness then records R[i][j] for j > i, row 0
    # included, as not measured (null), so FWT is not defined rather than 0 by construction.
    predicts_untrained_tasks: ClassVar[bool] = True

    @dataclasses.dataclass(frozen=True)
    class Params:
        pass

    defaults: ClassVar[tuple[tuple[str, str, Mapping[str, Any]], ...]] = ()

    def __init__(self, params: Any):
        self.params = params

    @classmethod
    def resolve_params(cls, scenario: str, budget: str, given: Mapping[str, Any]) -> Any:
        """Defaults, then the matching per-scenario/budget entries, then ``given``."""
        layers = [
            values
            for scenario_glob, budget_glob, values in cls.defaults
            if fnmatch.fnmatchcase(scenario, scenario_glob)
            and fnmatch.fnmatchcase(budget, budget_glob)
        ]
        return resolve(cls.Params, [*layers, given], f"strategy {cls.name!r}")

    @classmethod
    def unsupported(cls, info: ScenarioInfo) -> str | None:
        """Why this strategy cannot run ``info`` (None when it can)."""
        if info.setting not in cls.settings:
            return (
                f"strategy {cls.name!r} is defined for the {', '.join(cls.settings)} "
                f"setting(s) only, not {info.setting!r}"
            )
        if cls.backbones is not None and info.backbone not in cls.backbones:
            return (f"strategy {cls.name!r} supports the {', '.join(cls.backbones)} backbone(s) "
                    f"only, not {info.backbone!r}")
        return None

    @abstractmethod
    def setup(
        self, info: ScenarioInfo, model_factory: ModelFactory, seeds: list[int],
        device: torch.device,
    ) -> None:
        """Build the model(s) for ``seeds`` (one member each)."""

    @abstractmethod
    def train(self, experience: Experience) -> None:
        """Learn one experience (every member on its own data)."""

    @abstractmethod
    def predict(self, x: torch.Tensor, task_ids: torch.Tensor | None) -> torch.Tensor:
        """Logits ``[S, B, n_outputs]`` for inputs ``[S, B, C, H, W]``; ``task_ids`` ``[S, B]``
        is given in the task-incremental setting only."""

    @property
    @abstractmethod
    def model(self) -> nn.Module:
        """The current network (all members); the harness counts its parameters."""

    # The harness's one per-step seam: what runs after every optimiser step of ``model``
    # (continual evaluation, trackers); None (the default) costs nothing.
    step_observer: Callable[[torch.Tensor | None], None] | None = None

    def step_done(self, loss: torch.Tensor | None = None) -> None:
        """Call after every optimiser step of :attr:`model` with the step's per-member loss
        ``[S]`` if known (the native loop does; a strategy with its own loop calls it too, or
        the harness sees its tasks' ends only)."""
        if self.step_observer is not None:
            self.step_observer(loss)


@dataclasses.dataclass(frozen=True)
class SGDParams:
    """Hyperparameters shared by the native strategies' training loop."""

    optimizer: Literal["sgd", "adam"] = "sgd"  # SGD with momentum, or Adam
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 1

    def validate(self) -> None:
        if self.lr <= 0 or self.batch_size < 1 or self.epochs < 0:
            raise ValueError("lr must be > 0, batch_size >= 1 and epochs >= 0")
        # torch refuses these only when the optimiser is built, after the data is loaded
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")


@dataclasses.dataclass(frozen=True)
class SupervisedParams(SGDParams):
    """The training loop's hyperparameters and which outputs compete in class-incremental
    training."""

    # "seen": in the class-incremental setting the softmax of training runs over the outputs of
    # the classes seen so far (the "active" outputs of Hsu et al. 2018, "Re-evaluating continual
    # learning scenarios", and of van de Ven et al.'s reference code: ``active_classes``), so
    # classes not seen yet are not pushed down. "all": every output competes from the first
    # task. Other settings ignore it (task-IL masks the task's outputs; domain-IL shares them).
    # Evaluation scores every output either way (the harness's predict).
    active_outputs: Literal["seen", "all"] = "seen"

    def validate(self) -> None:
        super().validate()
        if self.active_outputs not in ("seen", "all"):
            raise ValueError(f"active_outputs must be 'seen' or 'all', "
                             f"got {self.active_outputs!r}")


# Literature defaults shared by the native strategies (see docs/strategies.md):
# default budget: SGD lr 0.01, momentum 0.9, batch 128, 1 epoch (the reference benchmark loop);
# paper budget: Hsu et al. 2018 ("Re-evaluating continual learning scenarios") for MNIST
# (Adam lr 1e-3, batch 128; 4 epochs split, 10 epochs permuted) and A-GEM (Chaudhry et al.
# 2019) for CIFAR (SGD lr 0.03, batch 10, one epoch, no momentum).
SGD_DEFAULTS: tuple[tuple[str, str, Mapping[str, Any]], ...] = (
    ("*", "smoke", {"batch_size": 64, "epochs": 1}),
    ("split-mnist", "paper", {"optimizer": "adam", "lr": 0.001, "epochs": 4}),
    ("permuted-mnist", "paper", {"optimizer": "adam", "lr": 0.001, "epochs": 10}),
    ("split-cifar*", "paper", {"lr": 0.03, "momentum": 0.0, "batch_size": 10, "epochs": 1}),
    ("*-digits", "default", {"epochs": 5, "batch_size": 32}),
    ("*-digits", "paper", {"epochs": 20, "batch_size": 32}),
)


def make_optimizer(params: SGDParams, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """The optimiser ``params`` names (SGD with momentum, or Adam) over ``parameters``: the one
    factory of the native strategies and the Avalanche adapter."""
    if params.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=params.lr, weight_decay=params.weight_decay)
    return torch.optim.SGD(parameters, lr=params.lr, momentum=params.momentum,
                           weight_decay=params.weight_decay)


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # x [S, B, C, H, W], y [S, B], task ids


def _nothing(*_: Any) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class Loop:
    """One network's minibatch training, as :meth:`SupervisedStrategy.run_loop` runs it.

    Per epoch: each member shuffles the data with its own generator (``shufflers``); then
    ``prepare_epoch(steps)`` draws at once whatever the epoch's ``steps`` minibatches need (no
    host round trip per step), and its result ``prepared`` goes to every step and to
    ``end_epoch``; then per minibatch ``i``, ``step(batch, i, prepared)`` returns the
    per-member loss ``[S]``, whose sum ``optimizer`` backpropagates and steps (each member's
    gradient is its own loss's), and ``after_step(loss)`` runs.
    """

    module: nn.Module  # put in training mode first
    optimizer: torch.optim.Optimizer
    shufflers: Sequence[torch.Generator]  # one per member
    batch_size: int
    epochs: int
    step: Callable[[Batch, int, Any], torch.Tensor]
    prepare_epoch: Callable[[int], Any] = _nothing
    end_epoch: Callable[[Any], None] = _nothing
    # after every optimiser step: Strategy.step_done for the evaluated network, else nothing
    after_step: Callable[[torch.Tensor], None] = _nothing


class SupervisedStrategy(Strategy):
    """Seed-batched minibatch training with cross-entropy.

    One model holds every member; the loss is the sum of the per-member mean losses, so each
    member's gradient is exactly its own, and elementwise optimisers (SGD, Adam) update each
    member as if it trained alone. Each member shuffles with its own generator.

    Every native strategy trains through the one loop, :meth:`run_loop` (a fresh optimiser per
    :meth:`fit`). A subclass changes what a step does, not the loop: ``loss`` (the per-member
    loss of a batch), ``training_step`` (one step's loss: add replayed samples, change the
    batch, add a penalty; mammoth's ``observe`` without the optimiser calls), and
    ``prepare_epoch`` (per-epoch draws for the steps). A second network (generative replay's
    VAE) trains through ``run_loop`` with its own :class:`Loop`.
    """

    batched = True
    Params = SupervisedParams
    defaults = SGD_DEFAULTS

    def setup(self, info, model_factory, seeds, device) -> None:
        self.info = info
        self.seeds = list(seeds)
        self.device = device
        self.net = model_factory(seeds)
        self.class_mask = info.class_mask(device)
        self.shufflers = [generator(seed, Stream.SHUFFLE) for seed in seeds]
        # outputs whose classes some training data so far had (see SupervisedParams)
        self.seen_outputs = torch.zeros(info.n_outputs, dtype=torch.bool, device=device)

    @property
    def model(self) -> nn.Module:
        return self.net

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What the optimiser updates: the parameters that require gradients (all of them,
        except in PNN, whose frozen columns do not)."""
        return [p for p in self.net.parameters() if p.requires_grad]

    def output_mask(self, task_ids: torch.Tensor) -> torch.Tensor | None:
        """The outputs that compete in training, broadcastable to the logits (None: all): the
        task's outputs in the task-incremental setting; the seen classes' outputs in the
        class-incremental setting with ``active_outputs = "seen"``."""
        if self.info.setting == "task":
            return self.class_mask[task_ids]
        # Params without the field (plugins built on SGDParams) train every output
        if self.info.setting == "class" and getattr(self.params, "active_outputs",
                                                    "all") == "seen":
            return self.seen_outputs
        return None

    def logits(self, x: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """Training logits, ``-inf`` outside :meth:`output_mask`."""
        out = self.net(x)
        mask = self.output_mask(task_ids)
        return out if mask is None else out.masked_fill(~mask, float("-inf"))

    def loss(self, x: torch.Tensor, y: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """Per-member mean cross-entropy, ``[S]``."""
        out = self.logits(x, task_ids)
        ce = F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none")
        return ce.view(y.shape).mean(1)

    def prepare_epoch(self, steps: int) -> Any:
        """What every step of one epoch of ``steps`` minibatches needs, drawn once after the
        epoch's shuffle (e.g. all its replay draws); given to :meth:`training_step`."""
        return None

    def training_step(self, batch: Batch, step: int, prepared: Any) -> torch.Tensor:
        """The per-member loss ``[S]`` of minibatch ``step`` of the epoch (``prepared``: what
        :meth:`prepare_epoch` returned)."""
        return self.loss(*batch)

    def epoch_order(self, n: int, shufflers: Sequence[torch.Generator] | None = None
                    ) -> torch.Tensor:
        """``[S, n]``: each member's own shuffle of positions 0..n-1 (default generators: the
        ``SHUFFLE`` stream's)."""
        gens = self.shufflers if shufflers is None else shufflers
        order = torch.stack([torch.randperm(n, generator=g) for g in gens])
        return order.to(self.device)

    def run_loop(self, loop: Loop, data: TaskData) -> None:
        """Train ``loop.module`` on ``data``: the minibatch loop of every native strategy (see
        :class:`Loop`); the one place for a change to how steps are taken."""
        loop.module.train()
        n, batch_size = len(data), loop.batch_size
        steps = math.ceil(n / batch_size)
        for _ in range(loop.epochs):
            order = self.epoch_order(n, loop.shufflers)
            prepared = loop.prepare_epoch(steps)
            for i, start in enumerate(range(0, n, batch_size)):
                batch = data.batch(order[:, start:start + batch_size])
                loop.optimizer.zero_grad(set_to_none=True)
                loss = loop.step(batch, i, prepared)
                loss.sum().backward()
                loop.optimizer.step()
                loop.after_step(loss.detach())
            loop.end_epoch(prepared)

    def fit(self, data: TaskData, epochs: int | None = None) -> None:
        """Train the network on ``data`` with a fresh optimiser (no state carried over from the
        previous experience), through :meth:`prepare_epoch` and :meth:`training_step`."""
        p = self.params
        if self.info.setting == "class":  # before the first step on them
            self.seen_outputs[data.labels.unique()] = True
        self.run_loop(Loop(
            module=self.net,
            optimizer=make_optimizer(p, self.trainable_parameters()),
            shufflers=self.shufflers,
            batch_size=p.batch_size,
            epochs=p.epochs if epochs is None else epochs,
            step=self.training_step,
            prepare_epoch=self.prepare_epoch,
            after_step=self.step_done,
        ), data)

    def train(self, experience: Experience) -> None:
        self.fit(experience.train)

    @torch.no_grad()
    def predict(self, x, task_ids):
        self.net.eval()
        return self.net(x)
