"""Image datasets for clbench: find them on disk, decode them fast, validate them, cache them.

``load_dataset(name, data_dir, download)`` returns an :class:`ImageDataset` whose images are
``uint8`` tensors ``[N, C, H, W]`` and whose labels are ``int64`` tensors ``[N]``. Decoded
datasets are cached in-process, keyed by name and resolved data folder, so a second call is free.

Where the files are looked for
------------------------------
``data_dir`` (default :func:`default_data_dir`: ``$CLBENCH_DATA``, else
``$XDG_CACHE_HOME/clbench/data``, else ``~/.cache/clbench/data``) is searched for these layouts,
in this order; the first complete one wins.

mnist
    ``MNIST/raw/{train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
    t10k-labels-idx1-ubyte}`` (torchvision's layout), each file plain or ``.gz`` (the plain file
    is preferred when both exist). IDX format: a big-endian header (magic ``0x00000803`` for
    images, ``0x00000801`` for labels, then one uint32 per dimension) followed by the bytes.
cifar10
    1. ``cifar-10-batches-py/{data_batch_1..5, test_batch}``: the "python version" pickles, each
       a dict with ``b"data"`` (uint8 ``[N, 3072]``) and ``b"labels"`` (torchvision's layout).
    2. ``cifar-10-batches-bin/{data_batch_1..5.bin, test_batch.bin}``: the official "binary
       version", records of 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B, each plane
       row-major 32x32).
    3. ``cifar-10-subset-bin/{data_batch_1.bin, test_batch.bin}``: the same record format holding
       a 10% subset (``source["subset"]`` is True).
cifar100
    1. ``cifar-100-python/{train, test}``: pickles with ``b"data"`` and ``b"fine_labels"``.
    2. ``cifar-100-binary/{train.bin, test.bin}``: records of 1 coarse label byte + 1 fine label
       byte + 3072 pixel bytes. The fine labels (100 classes) are used.
digits
    scikit-learn's bundled ``load_digits()`` (1797 images 8x8, no files, always offline), scaled
    from 0..16 to 0..255 and split 80/20, stratified, with ``numpy.random.default_rng(0)``.

A CIFAR pixel row of 3072 bytes is channel-planar, so it maps to ``[3, 32, 32]`` by a plain
reshape. Pickles are read only with a restricted unpickler that allows the few numpy globals an
array needs and refuses every other global, so a crafted file cannot run code.

When no layout is complete and ``download`` is true (and ``CLBENCH_OFFLINE`` is not set),
torchvision's dataset class downloads into ``data_dir`` (``MNIST/raw``, ``cifar-10-batches-py``,
``cifar-100-python``). Otherwise, or if that fails, a :class:`~clbench.errors.DataError` names the
folder searched and every accepted path.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from clbench.errors import DataError

DATASETS: tuple[str, ...] = ("mnist", "cifar10", "cifar100", "digits")

_N_CLASSES = {"mnist": 10, "cifar10": 10, "cifar100": 100, "digits": 10}
_STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
_TITLES = {"mnist": "MNIST", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "digits": "digits"}

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
# Low-level readers


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when its name ends in ``.gz``."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(
            f"{path}: corrupt or truncated gzip file ({exc})",
            hint="delete it and fetch it again",
        ) from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc


def _finish(arr: np.ndarray) -> torch.Tensor:
    """A torch tensor owning a writable, contiguous copy when the array is not one already."""
    if not arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr).copy()
    return torch.from_numpy(arr)


def _check_labels(labels: np.ndarray, n_classes: int, path: Path, what: str = "labels") -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(
            f"{path}: {what} must lie in 0..{n_classes - 1}, found values "
            f"{int(labels.min())}..{int(labels.max())}",
            hint="the file is corrupt or belongs to another dataset",
        )


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with ``ndim`` dimensions, as a uint8 array."""
    data = _read_bytes(path)
    magic = 0x00000800 | ndim
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{path}: truncated IDX file: {len(data)} bytes, expected a {header}-byte header "
            f"(magic 0x{magic:08x})"
        )
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataError(
            f"{path}: not an IDX file of {ndim}-d unsigned bytes: magic 0x{found:08x}, "
            f"expected 0x{magic:08x}"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise DataError(
            f"{path}: IDX file of shape {dims} should be {expected} bytes, found {len(data)} "
            f"({'truncated' if len(data) < expected else 'trailing bytes'})"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _read_records(path: Path, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR binary file: records of ``n_labels`` label bytes + 3072 pixel bytes.

    Returns ``(pixels uint8 [N, 3, 32, 32], labels uint8 [N, n_labels])``.
    """
    data = _read_bytes(path)
    size = n_labels + 3072
    if not data or len(data) % size:
        raise DataError(
            f"{path}: truncated or corrupt CIFAR binary file: {len(data)} bytes is not a "
            f"positive multiple of the {size}-byte record ({n_labels} label byte(s) + 3072 pixels)"
        )
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, size)
    return rec[:, n_labels:].reshape(-1, 3, 32, 32), rec[:, :n_labels]


def _numpy_reconstruct() -> Callable:
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global that CIFAR pickles never need."""


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR "python version" files and nothing that needs other globals."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise _RefusedGlobal(f"global {module}.{name} is not allowed")
        if name == "_reconstruct":
            return _numpy_reconstruct()
        return getattr(np, name)

    def persistent_load(self, pid):
        raise _RefusedGlobal("persistent ids are not allowed")


def _read_pickle(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR pickle, as ``(pixels uint8 [N, 3, 32, 32], labels int64 [N])``."""
    raw = _read_bytes(path)
    try:
        obj = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _RefusedGlobal as exc:
        raise DataError(
            f"{path}: refused to load: not a CIFAR pickle ({exc})",
            hint="only the original CIFAR python-version files are read; delete this one",
        ) from exc
    except Exception as exc:  # truncated or garbled: EOFError, ValueError, TypeError, ...
        raise DataError(
            f"{path}: truncated or corrupt CIFAR pickle ({type(exc).__name__}: {exc})",
            hint="delete it and fetch it again",
        ) from exc
    if not isinstance(obj, dict) or b"data" not in obj or label_key not in obj:
        keys = sorted(map(repr, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise DataError(
            f"{path}: not a CIFAR pickle: expected a dict with b'data' and {label_key!r}, "
            f"found {keys}"
        )
    data = obj[b"data"]
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
    ):
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data)
        raise DataError(f"{path}: b'data' should be a uint8 array [N, 3072], found {desc}")
    try:
        labels = np.asarray(obj[label_key])
    except Exception as exc:
        raise DataError(f"{path}: unreadable {label_key!r}: {exc}") from exc
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(
            f"{path}: {label_key!r} should be a list of integers, found {labels.dtype} "
            f"{labels.shape}"
        )
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels in {label_key!r}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Layouts


@dataclass(frozen=True)
class _Layout:
    folder: str  # relative to the data dir
    train: tuple[str, ...]
    test: tuple[str, ...]
    kind: str  # "idx" | "pickle" | "bin"
    subset: bool = False

    @property
    def files(self) -> tuple[str, ...]:
        return self.train + self.test


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

_LAYOUTS: dict[str, tuple[_Layout, ...]] = {
    "mnist": (_Layout("MNIST/raw", _MNIST_FILES[:2], _MNIST_FILES[2:], "idx"),),
    "cifar10": (
        _Layout(
            "cifar-10-batches-py",
            tuple(f"data_batch_{i}" for i in range(1, 6)),
            ("test_batch",),
            "pickle",
        ),
        _Layout(
            "cifar-10-batches-bin",
            tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
            ("test_batch.bin",),
            "bin",
        ),
        _Layout("cifar-10-subset-bin", ("data_batch_1.bin",), ("test_batch.bin",), "bin", True),
    ),
    "cifar100": (
        _Layout("cifar-100-python", ("train",), ("test",), "pickle"),
        _Layout("cifar-100-binary", ("train.bin",), ("test.bin",), "bin"),
    ),
}


def _locate(root: Path, layout: _Layout) -> tuple[dict[str, Path], list[str]]:
    """The layout's files that exist (name -> path) and the names of those missing."""
    folder = root / layout.folder
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in layout.files:
        if layout.kind == "idx":  # plain preferred (faster), else gzip
            candidates = [folder / name, folder / f"{name}.gz"]
        else:
            candidates = [folder / name]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            missing.append(name)
        else:
            found[name] = hit
    return found, missing


def _expected_paths(root: Path, name: str) -> str:
    lines = []
    for i, layout in enumerate(_LAYOUTS[name], 1):
        suffix = "[.gz]" if layout.kind == "idx" else ""
        extra = " (10% subset)" if layout.subset else ""
        lines.append(f"  layout {i}{extra}:")
        lines.extend(f"    {root / layout.folder / f}{suffix}" for f in layout.files)
    return "\n".join(lines)


def _decode_mnist(files: dict[str, Path]) -> tuple[np.ndarray, ...]:
    out = []
    for images_name, labels_name in (_MNIST_FILES[:2], _MNIST_FILES[2:]):
        ipath, lpath = files[images_name], files[labels_name]
        images = _read_idx(ipath, 3)
        labels = _read_idx(lpath, 1)
        if images.shape[1:] != (28, 28):
            raise DataError(f"{ipath}: MNIST images must be 28x28, found {images.shape[1:]}")
        if len(images) != len(labels):
            raise DataError(
                f"{ipath} holds {len(images)} images but {lpath} holds {len(labels)} labels"
            )
        _check_labels(labels, 10, lpath)
        out += [images.reshape(-1, 1, 28, 28), labels.astype(np.int64)]
    return tuple(out)


def _decode_cifar(name: str, layout: _Layout, files: dict[str, Path]) -> tuple[np.ndarray, ...]:
    n_classes = _N_CLASSES[name]
    out = []
    for split in (layout.train, layout.test):
        xs, ys = [], []
        for fname in split:
            path = files[fname]
            if layout.kind == "pickle":
                x, y = _read_pickle(path, b"labels" if name == "cifar10" else b"fine_labels")
            elif name == "cifar10":
                x, lab = _read_records(path, 1)
                y = lab[:, 0].astype(np.int64)
            else:
                x, lab = _read_records(path, 2)
                _check_labels(lab[:, 0], 20, path, "coarse labels")
                y = lab[:, 1].astype(np.int64)
            _check_labels(y, n_classes, path)
            xs.append(x)
            ys.append(y)
        # concatenate copies, so the result is contiguous, writable and owns its memory
        out += [np.concatenate(xs), np.concatenate(ys)]
    return tuple(out)


def _from_files(name: str, root: Path) -> tuple[ImageDataset | None, list[str]]:
    """The dataset from the first complete layout, or None and notes on incomplete ones."""
    incomplete: list[str] = []
    for layout in _LAYOUTS[name]:
        files, missing = _locate(root, layout)
        if missing:
            if (root / layout.folder).is_dir():
                incomplete.append(
                    f"{root / layout.folder} is incomplete: missing {', '.join(missing)}"
                )
            continue
        if layout.kind == "idx":
            arrays = _decode_mnist(files)
        else:
            arrays = _decode_cifar(name, layout, files)
        train_x, train_y, test_x, test_y = arrays
        mean, std = _STATS[name]
        source = {
            "layout": layout.folder,
            "path": str(root / layout.folder),
            "files": [files[f].name for f in layout.files],
            "n_train": len(train_y),
            "n_test": len(test_y),
            "subset": layout.subset,
        }
        ds = ImageDataset(
            name=name,
            train_x=_finish(train_x),
            train_y=_finish(train_y),
            test_x=_finish(test_x),
            test_y=_finish(test_y),
            n_classes=_N_CLASSES[name],
            mean=mean,
            std=std,
            source=source,
        )
        return ds, incomplete
    return None, incomplete


def _load_digits() -> ImageDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(np.asarray(bunch.images, dtype=np.float64) * 255.0 / 16.0)
    images = np.clip(images, 0, 255).astype(np.uint8).reshape(-1, 1, 8, 8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    rng = np.random.default_rng(0)
    train_idx, test_idx = [], []
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = round(0.2 * len(idx))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    tr = np.sort(np.concatenate(train_idx))
    te = np.sort(np.concatenate(test_idx))
    train_x = images[tr]
    scaled = train_x.astype(np.float64) / 255.0
    return ImageDataset(
        name="digits",
        train_x=_finish(train_x),
        train_y=_finish(labels[tr]),
        test_x=_finish(images[te]),
        test_y=_finish(labels[te]),
        n_classes=10,
        mean=(float(scaled.mean()),),
        std=(float(scaled.std()),),
        source={
            "layout": "sklearn-digits",
            "path": "sklearn.datasets.load_digits",
            "files": [],
            "n_train": len(tr),
            "n_test": len(te),
            "subset": False,
        },
    )


def _download(name: str, root: Path) -> None:
    """Fetch the dataset with torchvision into ``root``; any failure is a DataError."""
    try:
        from torchvision import datasets as tv_datasets

        cls = {
            "mnist": tv_datasets.MNIST,
            "cifar10": tv_datasets.CIFAR10,
            "cifar100": tv_datasets.CIFAR100,
        }[name]
        root.mkdir(parents=True, exist_ok=True)
        cls(root=str(root), train=True, download=True)
    except Exception as exc:
        raise DataError(
            f"{_TITLES[name]} download failed: {type(exc).__name__}: {exc}\n"
            f"{_missing_message(name, root, [])}",
            hint=_HINT,
        ) from exc


def _missing_message(name: str, root: Path, incomplete: list[str]) -> str:
    lines = [f"{_TITLES[name]} ({name}) not found in data dir {root}"]
    lines += [f"  {note}" for note in incomplete]
    lines.append("expected one of these layouts:")
    lines.append(_expected_paths(root, name))
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
    if name not in DATASETS:
        raise DataError(
            f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}",
            hint=f"use one of: {', '.join(DATASETS)}",
        )
    if name == "digits":
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
            ds = _load_digits()
        else:
            ds, incomplete = _from_files(name, root)
            if ds is None and download and not offline_from_env():
                _download(name, root)
                ds, incomplete = _from_files(name, root)
            if ds is None:
                raise DataError(_missing_message(name, root, incomplete), hint=_HINT)
        _CACHE[key] = ds
        return ds


def forget_dataset(ds: ImageDataset) -> None:
    """Drops ``ds`` from the in-process cache (its tensors were changed): the next
    :func:`load_dataset` reads it afresh."""
    with _LOCK:
        for key in [k for k, v in _CACHE.items() if v is ds]:
            del _CACHE[key]
