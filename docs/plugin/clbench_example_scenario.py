"""A plugin scenario on its own dataset: six classes of noisy 6x6 grey "blobs" (each class a
random prototype image plus Gaussian noise, generated from fixed seeds: no download), split
into tasks of equal size like Split MNIST.

Registered by the entry point ``split-blobs`` in the group ``clbench.scenarios``."""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch

from clbench.experience import ScenarioData, ScenarioInfo, TaskData, TaskInfo
from clbench.registry import BACKBONES
from clbench.scenarios.base import Scenario
from clbench.scenarios.data import subset_rows

N_CLASSES, SHAPE = 6, (1, 6, 6)
N_TRAIN, N_TEST = 200, 50  # per class


def blobs(per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [N, 1, 6, 6] and their labels [N]; the prototypes are the same for every
    ``seed`` (the class is the prototype), the noise is the seed's."""
    prototypes = torch.rand(N_CLASSES, *SHAPE, generator=torch.Generator().manual_seed(0)) * 255
    labels = torch.arange(N_CLASSES).repeat_interleave(per_class)
    noise = torch.randn(len(labels), *SHAPE, generator=torch.Generator().manual_seed(seed)) * 40
    return (prototypes[labels] + noise).clamp(0, 255).to(torch.uint8), labels


@dataclasses.dataclass(frozen=True)
class BlobsParams:
    setting: Literal["class", "task"] = "class"
    n_tasks: int = 3
    backbone: str = "mlp"

    def validate(self) -> None:
        BACKBONES.get(self.backbone)  # unknown: a ConfigError listing the backbones
        if self.n_tasks < 1 or N_CLASSES % self.n_tasks:
            raise ValueError(f"n_tasks must divide the {N_CLASSES} classes, got {self.n_tasks}")


class SplitBlobs(Scenario):
    version = "1"  # bump when a change alters results
    description = "synthetic 6x6 blobs, 6 classes in tasks of equal size (no download)"
    Params = BlobsParams

    def info(self, seed: int) -> ScenarioInfo:
        p = self.params
        per_task = N_CLASSES // p.n_tasks
        tasks = tuple(TaskInfo(t, tuple(range(t * per_task, (t + 1) * per_task)),
                               tuple(range(t * per_task, (t + 1) * per_task)))
                      for t in range(p.n_tasks))
        return ScenarioInfo(name=self.name, version=self.version, params=dataclasses.asdict(p),
                            setting=p.setting, input_shape=SHAPE, n_outputs=N_CLASSES,
                            tasks=tasks, backbone=p.backbone)

    def build(self, seeds, budget, device, data) -> ScenarioData:
        info, members = self.info(seeds[0]), len(seeds)
        train_x, train_y = blobs(N_TRAIN, seed=1)
        test_x, test_y = blobs(N_TEST, seed=2)
        images = torch.cat([train_x, test_x]).to(device)  # one tensor: rows index into it
        scaled = train_x.float() / 255
        mean = scaled.mean().view(1, 1, 1).to(device)
        std = scaled.std().view(1, 1, 1).to(device)
        splits: dict[str, list[TaskData]] = {"train": [], "test": []}
        for split, labels, offset, limit in (
                ("train", train_y, 0, budget.max_train_per_task),
                ("test", test_y, len(train_y), budget.max_test_per_task)):
            for task in info.tasks:
                rows = torch.nonzero(torch.isin(labels, torch.tensor(task.classes))).squeeze(1)
                rows = subset_rows(rows, limit)
                splits[split].append(TaskData(
                    images,
                    (rows + offset).to(device)[None].expand(members, -1),
                    labels[rows].to(device)[None].expand(members, -1),
                    torch.full((members, len(rows)), task.index, device=device),
                    mean, std))
        source = {"generator": "split-blobs", "n_train": len(train_y), "n_test": len(test_y),
                  "subset": False}
        return ScenarioData(info, splits["train"], splits["test"], source)
