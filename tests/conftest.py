"""Shared fixtures: an offline data folder with the real MNIST and CIFAR-10 subset from
``../shared/data`` (linked, never written) and a small generated CIFAR-100."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _offline():
    os.environ["CLBENCH_OFFLINE"] = "1"  # tests never download
    yield


def write_cifar100_binary(folder: Path, per_class_train: int = 4, per_class_test: int = 2,
                          seed: int = 0) -> None:
    """The official CIFAR-100 binary layout: records of coarse label, fine label, 3072 pixels."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for name, per_class in (("train.bin", per_class_train), ("test.bin", per_class_test)):
        fine = np.repeat(np.arange(100, dtype=np.uint8), per_class)
        records = np.empty((len(fine), 3074), dtype=np.uint8)
        records[:, 0] = fine // 5
        records[:, 1] = fine
        records[:, 2:] = rng.integers(0, 256, (len(fine), 3072), dtype=np.uint8)
        (folder / name).write_bytes(records.tobytes())


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A data folder for every scenario: real MNIST / CIFAR-10 subset where ../shared/data has
    them, generated CIFAR-100 (no offline copy exists)."""
    root = tmp_path_factory.mktemp("data")
    for name in ("MNIST", "cifar-10-subset-bin"):
        if (SHARED_DATA / name).is_dir():
            (root / name).symlink_to(SHARED_DATA / name, target_is_directory=True)
    write_cifar100_binary(root / "cifar-100-binary")
    return root
