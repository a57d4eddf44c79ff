"""Strategies used by tests/test_cli.py through ``--strategy tests.plugins_for_tests:Name``
(the repository root must be on ``sys.path``)."""

from __future__ import annotations

from scenarios.base import Experience
from strategies.naive import Naive


class Boom(Naive):
    """Naive fine-tuning that crashes when it is given the second task."""

    description = "naive, but train raises RuntimeError('boom') on the second task"

    def train(self, experience: Experience) -> None:
        if experience.task.index == 1:
            raise RuntimeError("boom")
        super().train(experience)
