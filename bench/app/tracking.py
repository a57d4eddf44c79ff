"""``clbench run --log NAME:TARGET``: the experiment trackers of a run (clbench.trackers), read
from the command line and checked before anything trains, then built per seed group in the
process that trains it, each call guarded.

A tracker is never in the way of a run: without ``--log`` nothing here runs (no per-step hook,
no host synchronisation); a tracker that raises is named in one warning, per tracker and
process, and left out for the rest of the group, while the run and the store go on.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clbench.errors import ConfigError
from clbench.registry import TRACKERS
from clbench.schema import RunResult
from clbench.spec import RunSpec

if TYPE_CHECKING:
    import torch

_warned: set[str] = set()  # "name:target" of each tracker already warned about


class TrackerWarning(UserWarning):
    """A tracker failed; the run goes on without it."""


def parse_log(text: str) -> tuple[str, str]:
    """``"tensorboard:runs/tb"`` -> ``("tensorboard", "runs/tb")``; ConfigError for a missing
    target, an unknown tracker or one whose library is not installed."""
    name, sep, target = str(text).partition(":")
    hint = (f"write --log NAME:TARGET with NAME one of {', '.join(TRACKERS.names())}, e.g. "
            "--log tensorboard:runs/tb or --log mlflow:sqlite:///mlflow.db")
    if not sep or not name or not target:
        raise ConfigError(f"cannot read --log {text!r}", hint=hint)
    cls = TRACKERS.get(name)
    missing = cls.missing()
    if missing:
        raise ConfigError(f"the {name} tracker needs {missing}",
                          hint=f"install it, or leave --log {name}:... out")
    return name, target


def check_logs(logs: Sequence[str]) -> tuple[str, ...]:
    """The ``--log`` values, each checked by :func:`parse_log`, as given."""
    for text in logs:
        parse_log(text)
    return tuple(logs)


class Tracking:
    """The trackers of one seed group's run. ``step`` is its per-step observer, ``point`` its
    continual-evaluation listener; ``finish`` closes the runs."""

    def __init__(self, logs: Sequence[str], specs: list[RunSpec]) -> None:
        self.active: list[tuple[str, Any]] = []
        self.steps = 0
        for text in logs:
            name, target = parse_log(text)
            self._guarded(text, None,
                          lambda lb=text, n=name, t=target: self._start(lb, n, t, specs))

    def _start(self, label: str, name: str, target: str, specs: list[RunSpec]) -> None:
        tracker = TRACKERS.get(name)(target)
        tracker.start(specs)
        self.active.append((label, tracker))

    def _guarded(self, label: str, tracker: Any, call) -> None:
        """``call()``; on an exception, warn once (per tracker and process) and drop
        ``tracker`` for the rest of the group."""
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - a tracker's failure is never the run's
            self.active = [(lb, t) for lb, t in self.active if t is not tracker]
            if label not in _warned:
                _warned.add(label)
                warnings.warn(f"tracker --log {label} failed and is off for this group "
                              f"({type(exc).__name__}: {exc}); the run and the store go on",
                              TrackerWarning, stacklevel=2)

    def _each(self, method: str, *args: Any) -> None:
        for label, tracker in list(self.active):
            self._guarded(label, tracker, lambda t=tracker: getattr(t, method)(*args))

    def step(self, loss: torch.Tensor | None = None) -> None:
        self.steps += 1
        if loss is not None and self.active:
            self._each("log_loss", self.steps, loss.detach().float().cpu().tolist())

    def point(self, step: int, accuracy: torch.Tensor) -> None:
        rows = [[None if v != v else float(v) for v in row] for row in accuracy.tolist()]
        self._each("log_point", step, rows)

    def finish(self, results: list[RunResult]) -> None:
        self._each("finish", results)
        self.active = []


def open_tracking(logs: Sequence[str], specs: list[RunSpec]) -> Tracking | None:
    """The group's :class:`Tracking`, or None without ``--log``."""
    return Tracking(logs, specs) if logs else None
