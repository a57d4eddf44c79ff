"""Joint training: the upper bound, trained on the union of every task seen so far."""

from __future__ import annotations

import dataclasses

from clbench.experience import Experience, TaskData
from clbench.registry import STRATEGIES
from clbench.strategies.base import SGD_DEFAULTS, SupervisedParams, SupervisedStrategy


@dataclasses.dataclass(frozen=True)
class JointParams(SupervisedParams):
    # False: keep training the current model on the union (Avalanche's "Cumulative");
    # True: train a freshly initialised model on the union after every task.
    reinit: bool = False


@STRATEGIES.register("joint")
class Joint(SupervisedStrategy):
    """After task t, trains on the data of tasks 1..t together (stored in full)."""

    version = "2"  # 2: class-IL trains the seen classes' outputs by default (active_outputs)
    description = "trains on the union of all tasks seen so far (upper bound)"
    Params = JointParams
    defaults = SGD_DEFAULTS

    def setup(self, info, model_factory, seeds, device) -> None:
        super().setup(info, model_factory, seeds, device)
        self.model_factory = model_factory
        self.seen: list[TaskData] = []

    def train(self, experience: Experience) -> None:
        self.seen.append(experience.train)
        if self.params.reinit:
            self.net = self.model_factory(self.seeds)
        self.fit(TaskData.union(self.seen))
