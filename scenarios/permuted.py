"""Permuted scenarios: every task is the whole dataset under its own fixed pixel permutation.

Permuted MNIST (Goodfellow et al. 2013; the EWC and GEM benchmark) and the offline Permuted
Digits demo. Permutations are drawn from the run seed, one per task; the first task may be the
identity. Settings: ``domain`` (the default: the same 10 outputs for every task, no task id),
``task`` (a head of 10 outputs per task, task id given) and ``class`` (10 outputs per task, no
task id), as in van de Ven & Tolias 2019.
"""

from __future__ import annotations

import math
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


class PermutedScenario(DatasetScenario):
    def permutation(self, seed: int, task: int) -> np.ndarray:
        size = math.prod(self.dataset.input_shape)
        if task == 0 and self.params.first_task_identity:
            return np.arange(size)
        return np.random.default_rng(derive_seed(seed, Stream.SCENARIO, task)).permutation(size)

    def tasks(self, seed: int) -> tuple[list[TaskInfo], int]:
        p, k = self.params, self.n_classes
        tasks = []
        for t in range(p.n_tasks):
            outputs = range(k) if p.setting == "domain" else range(t * k, (t + 1) * k)
            tasks.append(TaskInfo(t, tuple(outputs), tuple(range(k))))
        return tasks, k if p.setting == "domain" else k * p.n_tasks

    def split_tasks(self, info, seeds, labels, images, limit, ds, device) -> list[TaskData]:
        members = len(seeds)
        rows = subset_rows(torch.arange(len(labels)), limit)
        base_labels = labels[rows].to(device)
        rows = rows.to(device)[None].expand(members, -1)
        out = []
        for task in info.tasks:
            perms = torch.from_numpy(
                np.stack([self.permutation(seed, task.index) for seed in seeds])
            ).to(device)
            offset = 0 if self.params.setting == "domain" else task.index * self.n_classes
            out.append(
                TaskData(
                    images,
                    rows,
                    (base_labels + offset)[None].expand(members, -1),
                    torch.full(rows.shape, task.index, device=device),
                    ds.mean,
                    ds.std,
                    permutations=perms[:, None, :],
                    perm_ids=torch.zeros(rows.shape, dtype=torch.long, device=device),
                )
            )
        return out


# The longest permuted sequences in the literature have 100 tasks (von Oswald et al. 2020,
# PermutedMNIST-100); the accuracy matrix grows as T^2 evaluations, so more is a typo.
MAX_TASKS = 100


def _permuted_params(default_tasks: int):
    @dataclass(frozen=True)
    class Params:
        n_tasks: int = default_tasks
        setting: Literal["domain", "task", "class"] = "domain"
        first_task_identity: bool = False
        backbone: str = "mlp"

        def validate(self) -> None:
            BACKBONES.get(self.backbone)  # unknown: a ConfigError listing the backbones
            if not 1 <= self.n_tasks <= MAX_TASKS:
                raise ValueError(f"n_tasks must be between 1 and {MAX_TASKS}, got "
                                 f"{self.n_tasks}")

    return Params


@SCENARIOS.register("permuted-mnist")
class PermutedMNIST(PermutedScenario):
    description = "MNIST under a fixed random pixel permutation per task (10 tasks)"
    version = "1"
    dataset = DATASET_DEFS["mnist"]
    Params = _permuted_params(10)


@SCENARIOS.register("permuted-digits")
class PermutedDigits(PermutedScenario):
    description = "scikit-learn's 8x8 digits under a pixel permutation per task (offline demo)"
    version = "1"
    dataset = DATASET_DEFS["digits"]
    Params = _permuted_params(5)
