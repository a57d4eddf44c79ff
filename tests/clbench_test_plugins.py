"""Strategies used by tests/test_cli.py through ``--strategy clbench_test_plugins:Name``
(``tests/`` must be on ``sys.path``: pytest puts it there)."""

from __future__ import annotations

from clbench.experience import Experience
from clbench.strategies.naive import Naive


class Boom(Naive):
    """Naive fine-tuning that crashes when it is given the second task."""

    description = "naive, but train raises RuntimeError('boom') on the second task"

    def train(self, experience: Experience) -> None:
        if experience.task.index == 1:
            raise RuntimeError("boom")
        super().train(experience)
