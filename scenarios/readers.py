"""The file formats clbench reads datasets from, each as a :class:`Format` that decodes one split
(its files, in order) into ``uint8`` images ``[N, C, H, W]`` and ``int64`` labels ``[N]``,
validating as it goes: a truncated, garbled or foreign file is a :class:`DataError` naming it.

IDX (MNIST)
    A big-endian header (magic ``0x00000803`` for images, ``0x00000801`` for labels, then one
    uint32 per dimension) followed by the bytes; each file plain or ``.gz`` (the plain file is
    preferred when both exist). A split is an images file and a labels file.
CIFAR binary
    Records of the label byte(s) + 3072 pixel bytes (1024 R, 1024 G, 1024 B, each plane
    row-major 32x32): channel-planar, so a row maps to ``[3, 32, 32]`` by a plain reshape.
CIFAR pickle
    The "python version": a dict with ``b"data"`` (uint8 ``[N, 3072]``) and the labels. Read
    only with a restricted unpickler that allows the few numpy globals an array needs and
    refuses every other global, so a crafted file cannot run code.
"""

from __future__ import annotations

import gzip
import io
import pickle
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from clbench.errors import DataError

Arrays = tuple[np.ndarray, np.ndarray]  # images uint8 [N, C, H, W], labels int64 [N]


def read_bytes(path: Path) -> bytes:
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


def check_labels(labels: np.ndarray, n_classes: int, path: Path, what: str = "labels") -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(
            f"{path}: {what} must lie in 0..{n_classes - 1}, found values "
            f"{int(labels.min())}..{int(labels.max())}",
            hint="the file is corrupt or belongs to another dataset",
        )


class Format:
    """How one split of a dataset is stored: its files' names and how to decode them."""

    suffixes: ClassVar[tuple[str, ...]] = ("",)  # accepted file-name endings, preferred first

    def read(self, paths: Sequence[Path], n_classes: int,
             shape: tuple[int, int, int]) -> Arrays:
        """The split stored in ``paths``, labels checked against ``n_classes`` and images
        against ``shape``."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# IDX


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with ``ndim`` dimensions, as a uint8 array."""
    data = read_bytes(path)
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


@dataclass(frozen=True)
class IdxImagesAndLabels(Format):
    """A split as two IDX files: the images ``[N, H, W]`` and the labels ``[N]``."""

    suffixes: ClassVar[tuple[str, ...]] = ("", ".gz")

    def read(self, paths, n_classes, shape):
        ipath, lpath = paths
        images = read_idx(ipath, 3)
        labels = read_idx(lpath, 1)
        if images.shape[1:] != shape[1:]:
            raise DataError(f"{ipath}: images must be {shape[1]}x{shape[2]}, found "
                            f"{images.shape[1:]}")
        if len(images) != len(labels):
            raise DataError(
                f"{ipath} holds {len(images)} images but {lpath} holds {len(labels)} labels"
            )
        check_labels(labels, n_classes, lpath)
        return images.reshape(-1, *shape), labels.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# CIFAR binary and pickle: one file after another, concatenated


class _PerFile(Format):
    def read(self, paths, n_classes, shape):
        xs, ys = [], []
        for path in paths:
            x, y = self.read_file(path)
            check_labels(y, n_classes, path)
            xs.append(x)
            ys.append(y)
        # concatenate copies, so the result is contiguous, writable and owns its memory
        return np.concatenate(xs), np.concatenate(ys)

    def read_file(self, path: Path) -> Arrays:
        raise NotImplementedError


def read_records(path: Path, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR binary file: records of ``n_labels`` label bytes + 3072 pixel bytes.

    Returns ``(pixels uint8 [N, 3, 32, 32], labels uint8 [N, n_labels])``.
    """
    data = read_bytes(path)
    size = n_labels + 3072
    if not data or len(data) % size:
        raise DataError(
            f"{path}: truncated or corrupt CIFAR binary file: {len(data)} bytes is not a "
            f"positive multiple of the {size}-byte record ({n_labels} label byte(s) + 3072 pixels)"
        )
    rec = np.frombuffer(data, dtype=np.uint8).reshape(-1, size)
    return rec[:, n_labels:].reshape(-1, 3, 32, 32), rec[:, :n_labels]


@dataclass(frozen=True)
class CifarRecords(_PerFile):
    """CIFAR's binary version. With ``coarse_classes``, each record has a coarse label byte
    (checked against that many classes) before the label that is used (CIFAR-100's fine one)."""

    coarse_classes: int | None = None

    def read_file(self, path):
        if self.coarse_classes is None:
            x, lab = read_records(path, 1)
            return x, lab[:, 0].astype(np.int64)
        x, lab = read_records(path, 2)
        check_labels(lab[:, 0], self.coarse_classes, path, "coarse labels")
        return x, lab[:, 1].astype(np.int64)


def _numpy_reconstruct() -> Callable:
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global that CIFAR pickles never need."""


class CifarUnpickler(pickle.Unpickler):
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


def read_pickle(path: Path, label_key: bytes) -> Arrays:
    """A CIFAR pickle, as ``(pixels uint8 [N, 3, 32, 32], labels int64 [N])``."""
    raw = read_bytes(path)
    try:
        obj = CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
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


@dataclass(frozen=True)
class CifarPickles(_PerFile):
    """CIFAR's python version, its labels under ``label_key``."""

    label_key: bytes = b"labels"

    def read_file(self, path):
        return read_pickle(path, self.label_key)


# ---------------------------------------------------------------------------------------------
# Bundled with a library: no files


def sklearn_digits() -> tuple[Arrays, Arrays]:
    """scikit-learn's bundled ``load_digits()`` (1797 images 8x8), scaled from 0..16 to 0..255
    and split 80/20, stratified, with ``numpy.random.default_rng(0)``: (train, test)."""
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
    return (images[tr], labels[tr]), (images[te], labels[te])


@dataclass(frozen=True)
class Bundled:
    """A dataset shipped with a library: how to load it and what its source records say."""

    layout: str
    path: str
    load: Callable[[], tuple[Arrays, Arrays]]  # (train, test)


SKLEARN_DIGITS = Bundled("sklearn-digits", "sklearn.datasets.load_digits", sklearn_digits)
