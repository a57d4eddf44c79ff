"""Split scenarios: a dataset's classes divided into tasks of equal size.

Split MNIST (5 x 2), Split CIFAR-10 (5 x 2), Split CIFAR-100 (10 x 10 or 20 x 5) and the offline
Split Digits demo (5 x 2, scikit-learn's 8x8 digits). Settings (van de Ven & Tolias 2019,
"Three scenarios for continual learning"):

* ``class``: one head over every class; the model must tell all classes seen apart;
* ``task``: the task id is given; predictions are restricted to the task's classes
  (multi-head, implemented as a masked shared output layer);
* ``domain``: each task's classes map to the same outputs 0..k-1; no task id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from clbench.experience import TaskData, TaskInfo
from clbench.registry import BACKBONES, SCENARIOS
from clbench.scenarios.data import subset_rows
from clbench.scenarios.datasets import DATASET_DEFS
from clbench.scenarios.on_dataset import DatasetScenario
from clbench.seeding import Stream, derive_seed


class SplitScenario(DatasetScenario):
    def class_order(self, seed: int) -> list[int]:
        if self.params.class_order == "standard":
            return list(range(self.n_classes))
        rng = np.random.default_rng(derive_seed(seed, Stream.SCENARIO))
        return [int(c) for c in rng.permutation(self.n_classes)]

    def batch_key(self, seed: int):
        # A seeded class order gives each seed other tasks (of other sizes): no batching across.
        return seed if self.params.class_order == "random" else None

    def tasks(self, seed: int) -> tuple[list[TaskInfo], int]:
        p = self.params
        order = self.class_order(seed)
        per_task = self.n_classes // p.n_tasks
        tasks = []
        for t in range(p.n_tasks):
            source = tuple(order[t * per_task:(t + 1) * per_task])
            outputs = tuple(range(per_task)) if p.setting == "domain" else source
            tasks.append(TaskInfo(t, outputs, source))
        return tasks, per_task if p.setting == "domain" else self.n_classes

    def split_tasks(self, info, seeds, labels, images, limit, ds, device) -> list[TaskData]:
        members = len(seeds)
        out = []
        for task in info.tasks:
            # Label lookup: dataset class id -> output unit of this task.
            lookup = torch.full((self.n_classes,), -1, dtype=torch.long)
            lookup[list(task.source_classes)] = torch.tensor(task.classes)
            rows = torch.nonzero(lookup[labels] >= 0).squeeze(1)
            rows = subset_rows(rows, limit)
            task_labels = lookup[labels[rows]]
            out.append(
                TaskData(
                    images,
                    rows.to(device)[None].expand(members, -1),
                    task_labels.to(device)[None].expand(members, -1),
                    torch.full((members, len(rows)), task.index, device=device),
                    ds.mean,
                    ds.std,
                )
            )
        return out


def _split_params(default_tasks: int, default_backbone: str, n_classes: int):
    """A Params dataclass for a split scenario with the given defaults."""

    @dataclass(frozen=True)
    class Params:
        setting: Literal["class", "task", "domain"] = "class"
        n_tasks: int = default_tasks
        class_order: Literal["standard", "random"] = "standard"
        backbone: str = default_backbone

        def validate(self) -> None:
            BACKBONES.get(self.backbone)  # unknown: a ConfigError listing the backbones
            if self.n_tasks < 1 or n_classes % self.n_tasks:
                raise ValueError(
                    f"n_tasks must divide the {n_classes} classes, got {self.n_tasks}"
                )

    return Params


@SCENARIOS.register("split-mnist")
class SplitMNIST(SplitScenario):
    description = "MNIST digits in 5 tasks of 2 classes (0/1, 2/3, ...)"
    version = "1"
    dataset = DATASET_DEFS["mnist"]
    Params = _split_params(5, "mlp", dataset.n_classes)


@SCENARIOS.register("split-cifar10")
class SplitCIFAR10(SplitScenario):
    description = "CIFAR-10 in 5 tasks of 2 classes"
    version = "1"
    dataset = DATASET_DEFS["cifar10"]
    Params = _split_params(5, "resnet18-reduced", dataset.n_classes)


@SCENARIOS.register("split-cifar100")
class SplitCIFAR100(SplitScenario):
    description = "CIFAR-100 in 10 tasks of 10 classes (n_tasks=20: 20 tasks of 5)"
    version = "1"
    dataset = DATASET_DEFS["cifar100"]
    Params = _split_params(10, "resnet18-reduced", dataset.n_classes)


@SCENARIOS.register("split-digits")
class SplitDigits(SplitScenario):
    description = "scikit-learn's bundled 8x8 digits in 5 tasks of 2 classes (offline demo)"
    version = "1"
    dataset = DATASET_DEFS["digits"]
    Params = _split_params(5, "mlp", dataset.n_classes)
