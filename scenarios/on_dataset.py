"""The shared path of the scenarios that cut one image dataset into tasks (split and permuted):
the scenario's record, its dataset on the device, and the train and test data of every task for
a group of seeds. A subclass says only which dataset it cuts and how (:meth:`tasks` and
:meth:`split_tasks`)."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import asdict
from typing import Any, ClassVar

import torch

from clbench.budget import Budget
from clbench.experience import ScenarioData, ScenarioInfo, TaskData, TaskInfo
from clbench.scenarios.base import Scenario
from clbench.scenarios.data import DeviceDataset, on_device
from clbench.scenarios.datasets import DatasetDef


class DatasetScenario(Scenario):
    """A task sequence cut from the dataset ``dataset``. ``Params`` has ``setting`` and
    ``backbone`` fields."""

    dataset: ClassVar[DatasetDef]

    @property
    def n_classes(self) -> int:
        return self.dataset.n_classes

    @abstractmethod
    def tasks(self, seed: int) -> tuple[list[TaskInfo], int]:
        """The tasks as run with ``seed``, and the number of output units."""

    @abstractmethod
    def split_tasks(self, info: ScenarioInfo, seeds: list[int], labels: torch.Tensor,
                    images: torch.Tensor, limit: int | None, ds: DeviceDataset,
                    device: torch.device) -> list[TaskData]:
        """Each task's data from one split of the dataset (``labels`` on the CPU, ``images`` on
        the device), at most ``limit`` samples a task, for the members ``seeds``."""

    def info(self, seed: int) -> ScenarioInfo:
        p = self.params
        tasks, n_outputs = self.tasks(seed)
        return ScenarioInfo(
            name=self.name,
            version=self.version,
            params=asdict(p),
            setting=p.setting,
            input_shape=self.dataset.input_shape,
            n_outputs=n_outputs,
            tasks=tuple(tasks),
            backbone=p.backbone,
        )

    def build(self, seeds: list[int], budget: Budget, device: torch.device,
              data: Any) -> ScenarioData:
        ds = on_device(self.dataset.name, data, device)
        info = self.info(seeds[0])
        train, test = (
            self.split_tasks(info, seeds, labels, images, limit, ds, device)
            for labels, images, limit in (
                (ds.dataset.train_y, ds.train_images, budget.max_train_per_task),
                (ds.dataset.test_y, ds.test_images, budget.max_test_per_task),
            )
        )
        return ScenarioData(info, train, test, ds.dataset.source)
