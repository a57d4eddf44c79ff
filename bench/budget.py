"""Budgets: how much of each task a run sees.

A budget caps the data per task; each strategy picks its epochs and batch size per budget next
to its other hyperparameters (``paper`` uses the reference papers' settings there).
"""

from __future__ import annotations

from dataclasses import dataclass

from clbench.errors import ConfigError


@dataclass(frozen=True)
class Budget:
    name: str
    max_train_per_task: int | None  # None: the whole training split of the task
    max_test_per_task: int | None
    description: str


BUDGETS: dict[str, Budget] = {
    b.name: b
    for b in (
        Budget("smoke", 128, 64, "tiny subsets of every task (128 train, 64 test), for tests"),
        Budget("default", None, None, "full tasks, short training: the everyday benchmark"),
        Budget("paper", None, None, "full tasks at the reference papers' epochs and batch sizes"),
    )
}


def get_budget(name: str) -> Budget:
    try:
        return BUDGETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown budget {name!r}", hint=f"choose one of: {', '.join(BUDGETS)}"
        ) from None
