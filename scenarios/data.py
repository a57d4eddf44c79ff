"""Datasets on the run's device, loaded once per process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from clbench.scenarios.datasets import (
    ImageDataset,
    default_data_dir,
    load_dataset,
    offline_from_env,
)


@dataclass(frozen=True)
class DataConfig:
    """Where datasets are read from, and whether a missing one may be downloaded."""

    data_dir: Path
    download: bool

    @staticmethod
    def from_options(data_dir: str | Path | None = None, download: bool | None = None):
        """Explicit options win; else ``CLBENCH_DATA`` / ``CLBENCH_OFFLINE``; else defaults."""
        resolved = Path(data_dir).expanduser() if data_dir else default_data_dir()
        if download is None:
            download = not offline_from_env()
        return DataConfig(resolved.resolve(), download)


@dataclass(frozen=True)
class DeviceDataset:
    """An :class:`ImageDataset` whose images live on a device, with labels kept on the CPU
    too (task splits are computed from them once)."""

    dataset: ImageDataset
    train_images: torch.Tensor
    test_images: torch.Tensor
    mean: torch.Tensor  # [C, 1, 1]
    std: torch.Tensor


_CACHE: dict[tuple[str, DataConfig, str], DeviceDataset] = {}


def on_device(name: str, data: DataConfig, device: torch.device) -> DeviceDataset:
    key = (name, data, str(device))
    if key not in _CACHE:
        ds = load_dataset(name, data.data_dir, download=data.download)
        shape = (-1, 1, 1)
        _CACHE[key] = DeviceDataset(
            ds,
            ds.train_x.to(device),
            ds.test_x.to(device),
            torch.tensor(ds.mean, device=device).view(shape),
            torch.tensor(ds.std, device=device).view(shape),
        )
    return _CACHE[key]


def subset_rows(rows: torch.Tensor, limit: int | None) -> torch.Tensor:
    """At most ``limit`` of ``rows``: a fixed random subset (the same for every seed), in order."""
    if limit is None or len(rows) <= limit:
        return rows
    keep = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))[:limit]
    return rows[keep.sort().values]
