"""The tracker contract. The harness builds one tracker per seed group that trains
(``cls(target)``, the text after ``NAME:`` in ``--log NAME:TARGET``), calls :meth:`start` with
the group's specs, then :meth:`log_loss` after every optimiser step, :meth:`log_point` at every
continual-evaluation point (``--eval-every``), and :meth:`finish` with the group's results.
Every call gets all members of the group at once (one run per member in the tracker).

The harness guards every call: a tracker that raises is warned about once and left out for the
rest of the group; the run and the store go on (clbench.app.tracking).
"""

from __future__ import annotations

import importlib.util
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from clbench.metrics import run_metrics
from clbench.schema import RunResult
from clbench.spec import RunSpec


class Tracker(ABC):
    """One experiment tracker, for one seed group's runs."""

    name: ClassVar[str | None] = None
    description: ClassVar[str] = ""
    target_help: ClassVar[str] = ""  # what TARGET in ``--log NAME:TARGET`` is
    modules: ClassVar[tuple[str, ...]] = ()  # the libraries it needs
    install: ClassVar[str] = ""  # the command that installs them

    def __init__(self, target: str) -> None:
        self.target = target

    @classmethod
    def missing(cls) -> str | None:
        """What is not installed for this tracker (None: it can run)."""
        absent = [m for m in cls.modules if importlib.util.find_spec(m) is None]
        return f"{', '.join(absent)} (install: {cls.install})" if absent else None

    @abstractmethod
    def start(self, specs: Sequence[RunSpec]) -> None:
        """Open one run per member and record its hyperparameters."""

    @abstractmethod
    def log_loss(self, step: int, losses: Sequence[float]) -> None:
        """Each member's training loss after optimiser step ``step`` (1, 2, ...)."""

    @abstractmethod
    def log_point(self, step: int, accuracy: Sequence[Sequence[float | None]]) -> None:
        """A continual-evaluation point: per member, the accuracy on each task (None: not
        evaluated) after ``step`` optimiser steps."""

    @abstractmethod
    def finish(self, results: Sequence[RunResult]) -> None:
        """Record each member's final metrics and status, and close its run."""


def hyperparameters(spec: RunSpec) -> dict[str, Any]:
    """A spec as flat scalar hyperparameters: ``strategy.lr``, ``scenario.n_tasks``, the seed,
    the budget, the split and the continual evaluation; nested values as JSON text."""
    doc = spec.to_json()
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            for inner, v in value.items():
                flat[f"{key.removesuffix('_params')}.{inner}"] = _scalar(v)
        else:
            flat[key] = _scalar(value)
    flat["spec_hash"] = spec.hash
    return dict(sorted(flat.items()))


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True)


def final_metrics(result: RunResult) -> dict[str, float]:
    """The run's metrics that have a value (clbench.metrics), under their keys."""
    return {k: v for k, v in run_metrics(result).items() if v is not None}
