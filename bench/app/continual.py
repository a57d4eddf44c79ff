"""Continual evaluation: accuracy on each task *during* training, every N optimiser steps.

De Lange, van de Ven & Tuytelaars (ICLR 2023, "Continual evaluation for lifelong learning:
identifying the stability gap") evaluate every few iterations instead of at task ends only,
and find that an old task's accuracy drops sharply in the first steps of a new task and
recovers later (the *stability gap*). A run with ``spec.eval_every = N`` records such a curve:
a point at step 0, after every N-th optimiser step of the strategy's model, and at each task's
end. Each point scores every task up to the one being trained (or just trained) and the next
(for forward transfer curves), on a fixed subset of each task's evaluation split
(``spec.eval_subset`` samples, drawn once per member from ``Stream.EVAL_SUBSET``; the
validation split when the run has one). A batched group is scored in one pass for all its members.

The evaluation never changes what is trained: it draws no random number from any stream the
training reads, runs without gradients, and puts every module of the model back in the
training mode it found it in. The accuracy matrix is measured as without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from clbench.experience import ScenarioInfo, TaskData
from clbench.schema import Curve
from clbench.seeding import Stream, generator

Evaluate = Callable[[object, ScenarioInfo, list[TaskData]], tuple[torch.Tensor, torch.Tensor]]


def evaluation_subset(data: TaskData, k: int, seeds: list[int], task: int) -> TaskData:
    """``k`` samples of task ``task``'s evaluation split per member (all when ``k`` is 0 or at
    least the split's size), fixed by each member's seed, in their stored order."""
    n = len(data)
    if k <= 0 or k >= n:
        return data
    index = torch.stack([torch.randperm(n, generator=generator(seed, Stream.EVAL_SUBSET, task))
                         [:k].sort().values for seed in seeds])
    return data.gather(index.to(data.rows.device))


class ContinualEvaluation:
    """The step observer of one group's run: counts optimiser steps and scores the strategy
    every ``every`` steps; :meth:`curves` gives each member's :class:`Curve`."""

    def __init__(self, strategy, info: ScenarioInfo, tests: list[TaskData], seeds: list[int],
                 every: int, subset: int, evaluate: Evaluate,
                 sync: Callable[[], None] = lambda: None) -> None:
        self.strategy, self.info, self.every = strategy, info, every
        self.evaluate, self.sync = evaluate, sync
        self.tests = [evaluation_subset(d, subset, seeds, t) for t, d in enumerate(tests)]
        self.step = 0  # optimiser steps so far
        self.task = 0  # the task being trained, or just trained (0-based)
        self.steps: list[int] = []
        self.points: list[torch.Tensor] = []  # float [S, T] per point, NaN: not evaluated
        self.task_ends: list[int] = []
        self.eval_s = 0.0
        self.listeners: list[Callable[[int, torch.Tensor], None]] = []  # (step, [S, T])

    def __call__(self, loss: torch.Tensor | None = None) -> None:
        self.step += 1
        if self.step % self.every == 0:
            self.measure()

    def task_done(self, task: int) -> None:
        """Task ``task``'s training ended: a point there (unless its last step made one, with
        the same tasks), then the next task is the one being trained."""
        self.task_ends.append(self.step)
        if not self.steps or self.steps[-1] != self.step:
            self.measure()
        self.task = task + 1

    def measure(self) -> None:
        """One point: every task up to the one being trained (or just trained), and the next,
        each scored on its subset."""
        self.sync()
        t0 = time.perf_counter()
        T, members = self.info.n_tasks, self.tests[0].members
        predicts_next = getattr(self.strategy, "predicts_untrained_tasks", True)
        n = min(T, self.task + (2 if predicts_next else 1))
        row = torch.full((members, T), float("nan"))
        if n:
            model = self.strategy.model
            modes = [m.training for m in model.modules()]
            try:
                accs, finite = self.evaluate(self.strategy, self.info, self.tests[:n])
            finally:  # predict switched to eval mode: training goes on as it was
                for module, mode in zip(model.modules(), modes):
                    module.train(mode)
            accs = accs.cpu()
            accs[~finite] = float("nan")  # a diverged member has no accuracy
            row[:, :n] = accs
        self.steps.append(self.step)
        self.points.append(row)
        self.sync()
        self.eval_s += time.perf_counter() - t0
        for listener in self.listeners:
            listener(self.step, row)

    def curves(self) -> list[Curve]:
        """One :class:`Curve` per member."""
        out = []
        for s in range(self.points[0].shape[0] if self.points else 0):
            out.append(Curve(
                steps=tuple(self.steps), task_ends=tuple(self.task_ends),
                accuracy=tuple(tuple(None if v != v else round(v, 6) for v in p[s].tolist())
                               for p in self.points),
                eval_s=self.eval_s))
        return out
