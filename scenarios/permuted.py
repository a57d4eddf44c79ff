"""Permuted scenarios: every task is the whole dataset under its own fixed pixel permutation.

Permuted MNIST (Goodfellow et al. 2013; the EWC and GEM benchmark) and the offline Permuted
Digits demo. Permutations are drawn from the run seed, one per task; the first task may be the
identity. Settings: ``domain`` (the default: the same 10 outputs for every task, no task id),
``task`` (a head of 10 outputs per task, task id given) and ``class`` (10 outputs per task, no
task id), as in van de Ven & Tolias 2019.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar, Literal

import numpy as np
import torch

from clbench.experience import ScenarioData, ScenarioInfo, TaskData, TaskInfo
from clbench.registry import BACKBONES, SCENARIOS
from clbench.scenarios.base import Scenario
from clbench.scenarios.data import on_device, subset_rows
from clbench.seeding import Stream, derive_seed


class PermutedScenario(Scenario):
    dataset: ClassVar[str]
    n_classes: ClassVar[int]
    input_shape: ClassVar[tuple[int, int, int]]

    def permutation(self, seed: int, task: int) -> np.ndarray:
        size = math.prod(self.input_shape)
        if task == 0 and self.params.first_task_identity:
            return np.arange(size)
        return np.random.default_rng(derive_seed(seed, Stream.SCENARIO, task)).permutation(size)

    def info(self, seed: int) -> ScenarioInfo:
        p, k = self.params, self.n_classes
        tasks = []
        for t in range(p.n_tasks):
            outputs = range(k) if p.setting == "domain" else range(t * k, (t + 1) * k)
            tasks.append(TaskInfo(t, tuple(outputs), tuple(range(k))))
        return ScenarioInfo(
            name=self.name,
            version=self.version,
            params=asdict(p),
            setting=p.setting,
            input_shape=self.input_shape,
            n_outputs=k if p.setting == "domain" else k * p.n_tasks,
            tasks=tuple(tasks),
            backbone=p.backbone,
        )

    def build(self, seeds, budget, device, data) -> ScenarioData:
        ds = on_device(self.dataset, data, device)
        info = self.info(seeds[0])
        members = len(seeds)
        splits = {"train": [], "test": []}
        for split, labels_cpu, images, limit in (
            ("train", ds.dataset.train_y, ds.train_images, budget.max_train_per_task),
            ("test", ds.dataset.test_y, ds.test_images, budget.max_test_per_task),
        ):
            rows = subset_rows(torch.arange(len(labels_cpu)), limit)
            base_labels = labels_cpu[rows].to(device)
            rows = rows.to(device)[None].expand(members, -1)
            for task in info.tasks:
                perms = torch.from_numpy(
                    np.stack([self.permutation(seed, task.index) for seed in seeds])
                ).to(device)
                offset = 0 if self.params.setting == "domain" else task.index * self.n_classes
                splits[split].append(
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
        return ScenarioData(info, splits["train"], splits["test"], ds.dataset.source)


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
    dataset, n_classes, input_shape = "mnist", 10, (1, 28, 28)
    Params = _permuted_params(10)


@SCENARIOS.register("permuted-digits")
class PermutedDigits(PermutedScenario):
    description = "scikit-learn's 8x8 digits under a pixel permutation per task (offline demo)"
    version = "1"
    dataset, n_classes, input_shape = "digits", 10, (1, 8, 8)
    Params = _permuted_params(5)
