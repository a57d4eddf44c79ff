"""The strategy protocol, and the seed-batched supervised trainer that native strategies share.

A strategy is set up once per group of seeds, then trained on one experience at a time; the
harness owns the outer loop, the evaluation and every measurement. All tensors carry a leading
member axis ``S`` (one member per seed; ``S = 1`` is the ordinary case): a strategy that sets
``batched = True`` receives whole groups, any other receives one seed at a time.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from abc import ABC, abstractmethod
from collections.abc import Mapping
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


class SupervisedStrategy(Strategy):
    """Seed-batched minibatch training with cross-entropy.

    One model holds every member; the loss is the sum of the per-member mean losses, so each
    member's gradient is exactly its own, and elementwise optimisers (SGD, Adam) update each
    member as if it trained alone. Each member shuffles with its own generator. Subclasses
    change ``loss`` or ``train``.
    """

    batched = True
    Params = SGDParams
    defaults = SGD_DEFAULTS

    def setup(self, info, model_factory, seeds, device) -> None:
        self.info = info
        self.seeds = list(seeds)
        self.device = device
        self.net = model_factory(seeds)
        self.class_mask = info.class_mask(device)
        self.shufflers = [generator(seed, Stream.SHUFFLE) for seed in seeds]

    @property
    def model(self) -> nn.Module:
        return self.net

    def make_optimizer(self) -> torch.optim.Optimizer:
        p = self.params
        if p.optimizer == "adam":
            return torch.optim.Adam(self.net.parameters(), lr=p.lr, weight_decay=p.weight_decay)
        return torch.optim.SGD(
            self.net.parameters(), lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay
        )

    def logits(self, x: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """Training logits; in the task-incremental setting only the task's outputs compete."""
        out = self.net(x)
        if self.info.setting == "task":
            out = out.masked_fill(~self.class_mask[task_ids], float("-inf"))
        return out

    def loss(self, x: torch.Tensor, y: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """Per-member mean cross-entropy, ``[S]``."""
        out = self.logits(x, task_ids)
        ce = F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none")
        return ce.view(y.shape).mean(1)

    def epoch_order(self, n: int) -> torch.Tensor:
        """``[S, n]``: each member's own shuffle of positions 0..n-1."""
        order = torch.stack([torch.randperm(n, generator=g) for g in self.shufflers])
        return order.to(self.device)

    def fit(self, data: TaskData, epochs: int | None = None) -> None:
        p = self.params
        self.net.train()
        optimizer = self.make_optimizer()  # fresh optimiser state per experience
        n = len(data)
        for _ in range(p.epochs if epochs is None else epochs):
            order = self.epoch_order(n)
            for start in range(0, n, p.batch_size):
                x, y, t = data.batch(order[:, start:start + p.batch_size])
                optimizer.zero_grad(set_to_none=True)
                self.loss(x, y, t).sum().backward()
                optimizer.step()

    def train(self, experience: Experience) -> None:
        self.fit(experience.train)

    @torch.no_grad()
    def predict(self, x, task_ids):
        self.net.eval()
        return self.net(x)
