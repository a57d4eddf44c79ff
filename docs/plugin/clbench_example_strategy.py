"""A plugin strategy: fine-tuning whose learning rate shrinks by ``decay`` with every task
(task t trains at ``lr * decay**t``), so later tasks overwrite less of the earlier ones.

Registered by the entry point ``shrinking-lr`` in the group ``clbench.strategies``."""

from __future__ import annotations

import dataclasses

from clbench.experience import Experience
from clbench.strategies.base import SupervisedParams, SupervisedStrategy


@dataclasses.dataclass(frozen=True)
class ShrinkingLRParams(SupervisedParams):
    decay: float = 0.5  # the learning rate's factor per task

    def validate(self) -> None:
        super().validate()
        if not 0 < self.decay <= 1:
            raise ValueError(f"decay must be in (0, 1], got {self.decay}")


class ShrinkingLR(SupervisedStrategy):
    """The batched training loop of every native strategy, at a smaller rate each task."""

    version = "1"  # bump when a change alters results
    description = "fine-tuning at lr * decay**t on task t"
    Params = ShrinkingLRParams

    def train(self, experience: Experience) -> None:
        given = self.params
        self.params = dataclasses.replace(given, lr=given.lr * given.decay
                                          ** experience.task.index)
        try:
            self.fit(experience.train)
        finally:
            self.params = given
