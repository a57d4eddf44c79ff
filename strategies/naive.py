"""Naive fine-tuning: the lower bound every continual-learning method must beat."""

from __future__ import annotations

from bench.registry import STRATEGIES
from strategies.base import SupervisedStrategy


@STRATEGIES.register("naive")
class Naive(SupervisedStrategy):
    """Trains on each new task with plain SGD/Adam and nothing against forgetting."""

    description = "plain fine-tuning on each task in turn (lower bound)"
