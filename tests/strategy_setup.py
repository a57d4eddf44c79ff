"""One strategy set up on a scenario's data outside the runner (``clbench.api.prepare``), for
tests that look inside a strategy between tasks.

Imported as ``strategy_setup`` (pytest puts ``tests/`` on the path): never as ``tests.*``,
because avalanche-lib installs a top-level package of that name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from clbench import api
from clbench.experience import Experience
from clbench.scenarios.data import DataConfig

CPU = torch.device("cpu")
DATA = DataConfig.from_options(None, download=False)


def set_up(name: str, scenario: str, seeds: Sequence[int], params: str = "",
           budget: str = "smoke"):
    """``(strategy, data)``: strategy ``name`` (``params`` as ``":k=v,..."``) set up for the
    members ``seeds`` on ``scenario``'s data at ``budget``, on the CPU, offline."""
    return api.prepare(scenario, f"{name}{params}", seeds, budget, device="cpu",
                       download=False)


def train(strategy, data, tasks: int | Iterable[int]) -> None:
    """Train on tasks ``0..tasks-1`` (or on the given task indices) in order."""
    for t in range(tasks) if isinstance(tasks, int) else tasks:
        strategy.train(Experience(data.info.tasks[t], data.train[t]))
