"""What a scenario hands a strategy: a description of its tasks and their data on the device.

These types are the contract between the scenarios and the strategies, so they live in the core:
neither layer imports the other.

Data layout: every split of every task is a :class:`TaskData`, a *view* over one uint8 image
tensor that lives on the run's device. Rows, labels and an optional pixel permutation carry a
leading member axis ``S`` (one member per seed of a batched group), so a batch for all members
is gathered and normalised in a few tensor ops, with no per-sample Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch

Setting = Literal["class", "task", "domain"]

SETTING_NAMES = {
    "class": "class-incremental (single head over all classes seen; no task id at test)",
    "task": "task-incremental (task id given; prediction restricted to the task's classes)",
    "domain": "domain-incremental (same label space in every task; no task id at test)",
}


@dataclass(frozen=True)
class TaskInfo:
    index: int  # 0-based position in the sequence
    classes: tuple[int, ...]  # output units this task's labels use
    source_classes: tuple[int, ...]  # the dataset's class ids in this task


@dataclass(frozen=True)
class ScenarioInfo:
    """Everything about a scenario that a strategy may know: no data."""

    name: str
    version: str
    params: dict[str, Any]
    setting: Setting
    input_shape: tuple[int, ...]  # (C, H, W) of one sample
    n_outputs: int  # units of the (single, possibly masked) output layer
    tasks: tuple[TaskInfo, ...]
    backbone: str
    primary_metric: str = "acc"

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def task_id_at_test(self) -> bool:
        return self.setting == "task"

    def class_mask(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """bool [T, n_outputs]: row t marks the outputs of task t."""
        mask = torch.zeros(self.n_tasks, self.n_outputs, dtype=torch.bool)
        for task in self.tasks:
            mask[task.index, list(task.classes)] = True
        return mask.to(device)


@dataclass
class TaskData:
    """One split (train or test) of one or more tasks, for S members.

    ``images``: uint8 [N, C, H, W] on the device, shared by every task and member.
    ``rows``: int64 [S, n] rows of ``images``; ``labels``: int64 [S, n] target output units;
    ``task_ids``: int64 [S, n] the task each row belongs to.
    ``permutations``: optional int64 [S, K, C*H*W] pixel permutations, ``perm_ids`` int64 [S, n]
    picks one of the K for each row (permuted scenarios; K > 1 only for unions of tasks).
    """

    images: torch.Tensor
    rows: torch.Tensor
    labels: torch.Tensor
    task_ids: torch.Tensor
    mean: torch.Tensor  # float [C, 1, 1]
    std: torch.Tensor
    permutations: torch.Tensor | None = None
    perm_ids: torch.Tensor | None = None
    _members: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._members = torch.arange(self.rows.shape[0], device=self.rows.device)[:, None]

    @property
    def members(self) -> int:
        return self.rows.shape[0]

    def __len__(self) -> int:
        return self.rows.shape[1]

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inputs float [S, B, C, H, W], labels [S, B] and task ids [S, B] at positions
        ``index`` (int64 [S, B], each member its own positions)."""
        rows = self.rows.gather(1, index)
        x = self.images[rows]  # [S, B, C, H, W] uint8
        if self.permutations is not None:
            flat = x.flatten(2)
            if self.permutations.shape[1] == 1:
                perm = self.permutations[:, 0, None, :].expand_as(flat)
            else:
                perm = self.permutations[self._members, self.perm_ids.gather(1, index)]
            x = flat.gather(2, perm).view_as(x)
        x = x.float().div_(255.0).sub_(self.mean).div_(self.std)
        return x, self.labels.gather(1, index), self.task_ids.gather(1, index)

    def gather(self, index: torch.Tensor) -> TaskData:
        """The rows at positions ``index`` (int64 [S, m], each member its own) as a TaskData
        over the same images and permutations."""
        return TaskData(
            self.images,
            self.rows.gather(1, index),
            self.labels.gather(1, index),
            self.task_ids.gather(1, index),
            self.mean,
            self.std,
            self.permutations,
            None if self.perm_ids is None else self.perm_ids.gather(1, index),
        )

    def select(self, members: list[int]) -> TaskData:
        """The same data for a subset of members (used to run members one at a time)."""
        m = torch.as_tensor(members, device=self.rows.device)
        return TaskData(
            self.images,
            self.rows[m],
            self.labels[m],
            self.task_ids[m],
            self.mean,
            self.std,
            None if self.permutations is None else self.permutations[m],
            None if self.perm_ids is None else self.perm_ids[m],
        )

    @staticmethod
    def union(parts: list[TaskData]) -> TaskData:
        """All rows of ``parts`` (the same images and members) as one TaskData."""
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        permutations = perm_ids = None
        if first.permutations is not None:
            permutations = torch.cat([p.permutations for p in parts], dim=1)
            offsets, ids = 0, []
            for p in parts:
                ids.append(p.perm_ids + offsets)
                offsets += p.permutations.shape[1]
            perm_ids = torch.cat(ids, dim=1)
        return TaskData(
            first.images,
            torch.cat([p.rows for p in parts], dim=1),
            torch.cat([p.labels for p in parts], dim=1),
            torch.cat([p.task_ids for p in parts], dim=1),
            first.mean,
            first.std,
            permutations,
            perm_ids,
        )


@dataclass(frozen=True)
class Experience:
    """What a strategy trains on: one task's training data for every member of the group."""

    task: TaskInfo
    train: TaskData


@dataclass
class ScenarioData:
    info: ScenarioInfo
    train: list[TaskData]
    test: list[TaskData]
    data_source: dict[str, Any]


def hold_out(data: ScenarioData, fraction: float, generators: list[torch.Generator]
             ) -> ScenarioData:
    """``data`` with ``fraction`` of every task's training samples held out as its evaluation
    split: member ``s`` shuffles each task's training positions with ``generators[s]`` and keeps
    the first ``round(fraction * n)`` (at least one) for validation, the rest for training, so
    the two are disjoint and the test split is never read. The validation split replaces
    ``test``."""
    train, validation = [], []
    for task in data.train:
        n = len(task)
        k = min(max(1, round(fraction * n)), n - 1)
        order = torch.stack([torch.randperm(n, generator=g) for g in generators])
        order = order.to(task.rows.device)
        validation.append(task.gather(order[:, :k].sort(1).values))
        train.append(task.gather(order[:, k:].sort(1).values))
    return ScenarioData(data.info, train, validation,
                        {**data.data_source, "evaluated_on": "validation",
                         "validation_fraction": fraction})


def first_tasks(data: ScenarioData, k: int) -> ScenarioData:
    """``data`` cut to its first ``k`` tasks (the same network and outputs, fewer tasks): the
    tuning protocol of Chaudhry et al. 2019 (A-GEM), where a few leading tasks of the stream
    choose the hyperparameters."""
    info = replace(data.info, tasks=data.info.tasks[:k])
    return ScenarioData(info, data.train[:k], data.test[:k],
                        {**data.data_source, "first_tasks": k})
