"""Image datasets for clbench: one :class:`DatasetDef` record per dataset says all clbench knows
of it (classes, image shape, normalisation, where its files lie and in which format, how to
download it); :func:`load_dataset` finds, decodes (:mod:`clbench.scenarios.readers`), validates
and caches it.

``load_dataset(name, data_dir, download)`` returns an :class:`ImageDataset` whose images are
``uint8`` tensors ``[N, C, H, W]`` and whose labels are ``int64`` tensors ``[N]``. Decoded
datasets are cached in-process, keyed by name and resolved data folder, so a second call is free.

Where the files are looked for
------------------------------
``data_dir`` (default :func:`default_data_dir`: ``$CLBENCH_DATA``, else
``$XDG_CACHE_HOME/clbench/data``, else ``~/.cache/clbench/data``) is searched for each layout of
the dataset's record, in order; the first complete one wins:

mnist
    ``MNIST/raw/{train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
    t10k-labels-idx1-ubyte}`` (torchvision's layout), each file plain or ``.gz``.
cifar10
    1. ``cifar-10-batches-py/{data_batch_1..5, test_batch}``: the "python version" pickles
       (torchvision's layout).
    2. ``cifar-10-batches-bin/{data_batch_1..5.bin, test_batch.bin}``: the "binary version".
    3. ``cifar-10-subset-bin/{data_batch_1.bin, test_batch.bin}``: the same record format holding
       a 10% subset (``source["subset"]`` is True).
cifar100
    1. ``cifar-100-python/{train, test}``: pickles with ``b"data"`` and ``b"fine_labels"``.
    2. ``cifar-100-binary/{train.bin, test.bin}``: records of 1 coarse label byte + 1 fine label
       byte + 3072 pixel bytes. The fine labels (100 classes) are used.
digits
    scikit-learn's bundled ``load_digits()`` (1797 images 8x8, no files, always offline).

When no layout is complete and ``download`` is true (and ``CLBENCH_OFFLINE`` is not set),
torchvision's dataset class downloads into ``data_dir`` (``MNIST/raw``, ``cifar-10-batches-py``,
``cifar-100-python``). Otherwise, or if that fails, a :class:`~clbench.errors.DataError` names the
folder searched and every accepted path.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from clbench.errors import DataError
from clbench.scenarios.readers import (
    SKLEARN_DIGITS,
    Arrays,
    Bundled,
    CifarPickles,
    CifarRecords,
    Format,
    IdxImagesAndLabels,
)

_HINT = (
    "put the files there, or set --data-dir / CLBENCH_DATA to the folder that holds them, "
    "or allow downloads (unset CLBENCH_OFFLINE / drop --no-download)"
)


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """A decoded image-classification dataset (train and test splits)."""

    name: str
    train_x: torch.Tensor  # uint8 [N, C, H, W]
    train_y: torch.Tensor  # int64 [N]
    test_x: torch.Tensor  # uint8 [M, C, H, W]
    test_y: torch.Tensor  # int64 [M]
    n_classes: int
    mean: tuple[float, ...]  # per channel, of pixel / 255
    std: tuple[float, ...]
    source: dict  # JSON-serialisable provenance


@dataclass(frozen=True)
class Layout:
    """One way a dataset's files lie in the data folder."""

    folder: str  # relative to the data dir
    train: tuple[str, ...]  # the training split's files, in the order the format reads them
    test: tuple[str, ...]
    format: Format
    subset: bool = False  # the files hold a subset of the dataset

    @property
    def files(self) -> tuple[str, ...]:
        return self.train + self.test


@dataclass(frozen=True)
class DatasetDef:
    """Everything clbench knows of one dataset."""

    name: str
    title: str  # as people write it, for messages
    n_classes: int
    input_shape: tuple[int, int, int]  # C, H, W
    layouts: tuple[Layout, ...] = ()  # where its files may lie, in order of preference
    # Per-channel mean and standard deviation of pixel / 255; None: measured on the train split.
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    download: str | None = None  # the torchvision.datasets class that fetches it
    bundled: Bundled | None = None  # shipped with a library: no files


_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))

DATASET_DEFS: dict[str, DatasetDef] = {d.name: d for d in (
    DatasetDef(
        "mnist", "MNIST", 10, (1, 28, 28),
        layouts=(Layout("MNIST/raw", _MNIST_FILES[:2], _MNIST_FILES[2:], IdxImagesAndLabels()),),
        stats=((0.1307,), (0.3081,)), download="MNIST"),
    DatasetDef(
        "cifar10", "CIFAR-10", 10, (3, 32, 32),
        layouts=(
            Layout("cifar-10-batches-py", _CIFAR10_TRAIN, ("test_batch",),
                   CifarPickles(b"labels")),
            Layout("cifar-10-batches-bin", tuple(f"{f}.bin" for f in _CIFAR10_TRAIN),
                   ("test_batch.bin",), CifarRecords()),
            Layout("cifar-10-subset-bin", ("data_batch_1.bin",), ("test_batch.bin",),
                   CifarRecords(), subset=True),
        ),
        stats=((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)), download="CIFAR10"),
    DatasetDef(
        "cifar100", "CIFAR-100", 100, (3, 32, 32),
        layouts=(
            Layout("cifar-100-python", ("train",), ("test",), CifarPickles(b"fine_labels")),
            Layout("cifar-100-binary", ("train.bin",), ("test.bin",),
                   CifarRecords(coarse_classes=20)),
        ),
        stats=((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)), download="CIFAR100"),
    DatasetDef("digits", "digits", 10, (1, 8, 8), bundled=SKLEARN_DIGITS),
)}
DATASETS: tuple[str, ...] = tuple(DATASET_DEFS)


def dataset_def(name: str) -> DatasetDef:
    """The record of ``name``; a DataError listing the datasets for an unknown one."""
    if name not in DATASET_DEFS:
        raise DataError(
            f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}",
            hint=f"use one of: {', '.join(DATASETS)}",
        )
    return DATASET_DEFS[name]


# ---------------------------------------------------------------------------------------------
# Environment


def default_data_dir() -> Path:
    """``$CLBENCH_DATA`` if set, else ``$XDG_CACHE_HOME/clbench/data`` or ``~/.cache/...``."""
    env = os.environ.get("CLBENCH_DATA", "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "clbench" / "data"


def offline_from_env() -> bool:
    """True when ``CLBENCH_OFFLINE`` is "1", "true" or "yes" (any case)."""
    return os.environ.get("CLBENCH_OFFLINE", "").strip().lower() in ("1", "true", "yes")


# ---------------------------------------------------------------------------------------------
# From files


def _finish(arr: np.ndarray) -> torch.Tensor:
    """A torch tensor owning a writable, contiguous copy when the array is not one already."""
    if not arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr).copy()
    return torch.from_numpy(arr)


def _dataset(d: DatasetDef, train: Arrays, test: Arrays, layout: str, path: str,
             files: list[str], subset: bool) -> ImageDataset:
    if d.stats is None:
        scaled = train[0].astype(np.float64) / 255.0
        mean, std = (float(scaled.mean()),), (float(scaled.std()),)
    else:
        mean, std = d.stats
    return ImageDataset(
        name=d.name,
        train_x=_finish(train[0]),
        train_y=_finish(train[1]),
        test_x=_finish(test[0]),
        test_y=_finish(test[1]),
        n_classes=d.n_classes,
        mean=mean,
        std=std,
        source={"layout": layout, "path": path, "files": files, "n_train": len(train[1]),
                "n_test": len(test[1]), "subset": subset},
    )


def _locate(root: Path, layout: Layout) -> tuple[dict[str, Path], list[str]]:
    """The layout's files that exist (name -> path) and the names of those missing."""
    folder = root / layout.folder
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in layout.files:
        candidates = [folder / f"{name}{suffix}" for suffix in layout.format.suffixes]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            missing.append(name)
        else:
            found[name] = hit
    return found, missing


def _expected_paths(root: Path, d: DatasetDef) -> str:
    lines = []
    for i, layout in enumerate(d.layouts, 1):
        optional = [s for s in layout.format.suffixes if s]
        suffix = "".join(f"[{s}]" for s in optional)
        extra = " (10% subset)" if layout.subset else ""
        lines.append(f"  layout {i}{extra}:")
        lines.extend(f"    {root / layout.folder / f}{suffix}" for f in layout.files)
    return "\n".join(lines)


def _from_files(d: DatasetDef, root: Path) -> tuple[ImageDataset | None, list[str]]:
    """The dataset from the first complete layout, or None and notes on incomplete ones."""
    incomplete: list[str] = []
    for layout in d.layouts:
        files, missing = _locate(root, layout)
        if missing:
            if (root / layout.folder).is_dir():
                incomplete.append(
                    f"{root / layout.folder} is incomplete: missing {', '.join(missing)}"
                )
            continue
        train, test = (layout.format.read([files[f] for f in split], d.n_classes,
                                          d.input_shape)
                       for split in (layout.train, layout.test))
        return _dataset(d, train, test, layout.folder, str(root / layout.folder),
                        [files[f].name for f in layout.files], layout.subset), incomplete
    return None, incomplete


def _from_library(d: DatasetDef) -> ImageDataset:
    train, test = d.bundled.load()
    return _dataset(d, train, test, d.bundled.layout, d.bundled.path, [], False)


def _download(d: DatasetDef, root: Path) -> None:
    """Fetch the dataset with torchvision into ``root``; any failure is a DataError."""
    try:
        from torchvision import datasets as tv_datasets

        cls = getattr(tv_datasets, d.download)
        root.mkdir(parents=True, exist_ok=True)
        cls(root=str(root), train=True, download=True)
    except Exception as exc:
        raise DataError(
            f"{d.title} download failed: {type(exc).__name__}: {exc}\n"
            f"{_missing_message(d, root, [])}",
            hint=_HINT,
        ) from exc


def _missing_message(d: DatasetDef, root: Path, incomplete: list[str]) -> str:
    lines = [f"{d.title} ({d.name}) not found in data dir {root}"]
    lines += [f"  {note}" for note in incomplete]
    lines.append("expected one of these layouts:")
    lines.append(_expected_paths(root, d))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Public entry point

_CACHE: dict[tuple[str, str], ImageDataset] = {}
_LOCK = threading.Lock()


def load_dataset(
    name: str, data_dir: Path | str | None = None, download: bool = True
) -> ImageDataset:
    """Load ``name`` from ``data_dir`` (default :func:`default_data_dir`), cached in-process.

    With ``download`` true and ``CLBENCH_OFFLINE`` unset, missing data is fetched with
    torchvision; otherwise the network is never touched. Raises :class:`DataError` for an
    unknown name and for missing, incomplete or corrupt data.
    """
    d = dataset_def(name)
    if d.bundled is not None:
        key = (name, "")
        root = None
    else:
        root = Path(data_dir if data_dir is not None else default_data_dir())
        root = root.expanduser().resolve()
        key = (name, str(root))
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            return cached
        if root is None:
            ds = _from_library(d)
        else:
            ds, incomplete = _from_files(d, root)
            if ds is None and download and d.download and not offline_from_env():
                _download(d, root)
                ds, incomplete = _from_files(d, root)
            if ds is None:
                raise DataError(_missing_message(d, root, incomplete), hint=_HINT)
        _CACHE[key] = ds
        return ds


def forget_dataset(ds: ImageDataset) -> None:
    """Drops ``ds`` from the in-process cache (its tensors were changed): the next
    :func:`load_dataset` reads it afresh."""
    with _LOCK:
        for key in [k for k, v in _CACHE.items() if v is ds]:
            del _CACHE[key]
