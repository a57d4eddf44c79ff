"""The scenario base class: a registered description of a task sequence that builds its data."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

from clbench.budget import Budget
from clbench.experience import ScenarioData, ScenarioInfo


class Scenario(ABC):
    """Base class of scenarios. Subclasses set ``version``, ``Params`` and ``description``."""

    name: ClassVar[str]
    version: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type]

    def __init__(self, params: Any):
        self.params = params

    @abstractmethod
    def info(self, seed: int) -> ScenarioInfo:
        """The scenario as run with ``seed`` (task order may depend on it)."""

    def batch_key(self, seed: int) -> Any:
        """Seeds with equal keys can train as one batched group (same task structure)."""
        return None

    @abstractmethod
    def build(
        self, seeds: list[int], budget: Budget, device: torch.device, data: Any
    ) -> ScenarioData:
        """Data for the members ``seeds`` (which share one ``batch_key``) on ``device``."""
