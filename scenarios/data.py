"""Datasets on the run's device, loaded once per process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from clbench.scenarios.datasets import (
    ImageDataset,
    default_data_dir,
    forget_dataset,
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
_FINGERPRINTS: dict[tuple[str, DataConfig, str], list[tuple]] = {}  # of each entry, as loaded


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
        _FINGERPRINTS[key] = _fingerprints(_CACHE[key])
    return _CACHE[key]


def changed_datasets() -> list[str]:
    """The cached datasets whose tensors were changed in place since they were loaded (a
    strategy wrote into its training images): each is dropped from the cache, so the next run
    reads it afresh. Cheap next to a run: one sum per tensor."""
    changed = []
    for key, entry in list(_CACHE.items()):
        if _fingerprints(entry) != _FINGERPRINTS.get(key):
            changed.append(f"{key[0]} on {key[2]}")
            del _CACHE[key]
            _FINGERPRINTS.pop(key, None)
            forget_dataset(entry.dataset)
    return changed


def _fingerprints(entry: DeviceDataset) -> list[tuple]:
    ds = entry.dataset
    tensors = (entry.train_images, entry.test_images, entry.mean, entry.std,
               ds.train_x, ds.train_y, ds.test_x, ds.test_y)
    return [_fingerprint(t) for t in tensors]


@torch.no_grad()
def _fingerprint(t: torch.Tensor) -> tuple:
    """The tensor's version counter (every in-place torch op bumps it, through any view), its
    storage, shape and a checksum of its bytes (a write that bypasses the counter: ``.data``,
    NumPy)."""
    flat = t.detach().reshape(-1)
    try:
        checksum = flat.view(torch.int64).sum().item()  # the bytes, wrapping: cheap
    except RuntimeError:  # a size or alignment the view cannot take
        checksum = flat.double().sum().item()
    return t._version, t.data_ptr(), tuple(t.shape), t.dtype, checksum


def subset_rows(rows: torch.Tensor, limit: int | None) -> torch.Tensor:
    """At most ``limit`` of ``rows``: a fixed random subset (the same for every seed), in order."""
    if limit is None or len(rows) <= limit:
        return rows
    keep = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))[:limit]
    return rows[keep.sort().values]
