"""Naive fine-tuning: the lower bound every continual-learning method must beat."""

from __future__ import annotations

from clbench.registry import STRATEGIES
from clbench.strategies.base import SupervisedStrategy


@STRATEGIES.register("naive")
class Naive(SupervisedStrategy):
    """Trains on each new task with plain SGD/Adam and nothing against forgetting."""

    version = "2"  # 2: class-IL trains the seen classes' outputs by default (active_outputs)
    description = "plain fine-tuning on each task in turn (lower bound)"
