"""Strategies used by tests/test_cli.py through ``--strategy clbench_test_plugins:Name``, and
reporters used by tests/test_reports.py as ``clbench_test_plugins:Name`` (``tests/`` must be on
``sys.path``: pytest puts it there)."""

from __future__ import annotations

from clbench.experience import Experience
from clbench.reports.base import Reporter
from clbench.strategies.naive import Naive


class Boom(Naive):
    """Naive fine-tuning that crashes when it is given the second task."""

    description = "naive, but train raises RuntimeError('boom') on the second task"

    def train(self, experience: Experience) -> None:
        if experience.task.index == 1:
            raise RuntimeError("boom")
        super().train(experience)


class StoreSizeReporter(Reporter):
    """A plugin reporter as the contract asks: the number of runs, and the frozen date."""

    description = "number of runs"

    def render(self, loaded) -> str:
        return f"{len(loaded.runs)} runs, {self.generated_at}"


class BrokenReporter(Reporter):
    """A reporter whose constructor has a bug (a TypeError) once it is given a report date;
    built without options it would work, so a fallback to ``cls()`` would hide the bug."""

    description = "raises TypeError while it is built with generated_at"

    def __init__(self, *, generated_at=None, metadata=None):
        super().__init__(generated_at=generated_at, metadata=metadata)
        if generated_at is not None:
            self.year = generated_at[:4] + 1  # the bug: str + int

    def render(self, loaded) -> str:
        return "never"


class OldStyleReporter:
    """A reporter that takes no options: refused by the registry, with the fix."""

    description = "no generated_at / metadata"

    def render(self, loaded) -> str:
        return "old"
