"""Tests for clbench.scenarios.datasets and its readers: every on-disk layout (tiny generated
files), validation, the restricted unpickler, the missing-data and download paths, digits, and
the real shared data."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import struct
import sys
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from clbench.errors import DataError
from clbench.scenarios import datasets as ds_mod
from clbench.scenarios import readers
from clbench.scenarios.datasets import (
    DATASETS,
    ImageDataset,
    default_data_dir,
    load_dataset,
    offline_from_env,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    """No cache carried between tests; no download ever reaches the network."""
    ds_mod._CACHE.clear()
    monkeypatch.setenv("CLBENCH_OFFLINE", "1")
    yield
    ds_mod._CACHE.clear()


# ---------------------------------------------------------------------------------------------
# Writers of tiny files in each layout


def write_idx(path: Path, arr: np.ndarray, gz: bool) -> Path:
    """An IDX file of unsigned bytes (big-endian header), gzipped when ``gz``."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack(">I", 0x00000800 | arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def mnist_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10).astype(np.uint8)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = labels  # a known pixel
    return images, labels


def write_mnist(root: Path, gz: bool = True, n_train: int = 30, n_test: int = 20) -> dict:
    raw = root / "MNIST" / "raw"
    tr_x, tr_y = mnist_arrays(n_train, 1)
    te_x, te_y = mnist_arrays(n_test, 2)
    write_idx(raw / "train-images-idx3-ubyte", tr_x, gz)
    write_idx(raw / "train-labels-idx1-ubyte", tr_y, gz)
    write_idx(raw / "t10k-images-idx3-ubyte", te_x, gz)
    write_idx(raw / "t10k-labels-idx1-ubyte", te_y, gz)
    return {"train_x": tr_x, "train_y": tr_y, "test_x": te_x, "test_y": te_y}


def cifar_images(labels: np.ndarray, offset: int) -> np.ndarray:
    """[N, 3072] channel-planar rows: R plane = row index h, G plane = column index w,
    B plane = (sample number + offset) % 256, so each channel is distinguishable."""
    n = len(labels)
    hh, ww = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    img = np.empty((n, 3, 32, 32), dtype=np.uint8)
    img[:, 0] = hh
    img[:, 1] = ww
    img[:, 2] = ((np.arange(n) + offset) % 256)[:, None, None]
    return img.reshape(n, 3072)


def check_cifar_pattern(x: torch.Tensor, offsets: list[tuple[int, int]]) -> None:
    """``offsets``: (start index in x, offset used when writing) for each written file."""
    assert x.dtype == torch.uint8 and x.shape[1:] == (3, 32, 32)
    assert int(x[0, 0, 5, 17]) == 5  # R plane = row
    assert int(x[0, 1, 5, 17]) == 17  # G plane = column
    hh = torch.arange(32).view(32, 1).expand(32, 32).to(torch.uint8)
    assert torch.equal(x[:, 0], hh.expand(len(x), 32, 32))
    assert torch.equal(x[:, 1], hh.T.expand(len(x), 32, 32))
    ends = [s for s, _ in offsets[1:]] + [len(x)]
    for (start, off), end in zip(offsets, ends, strict=True):
        want = (torch.arange(end - start) + off) % 256
        assert torch.equal(x[start:end, 2, 31, 31].long(), want)


class Py2StylePickler(pickle._Pickler):
    """Protocol-2 pickles as Python 2's cPickle wrote the original CIFAR files: every byte
    string and str is a (SHORT_)BINSTRING, so the only globals are numpy's (no _codecs)."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        if isinstance(obj, str):
            obj = obj.encode("latin1")
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def write_py2_pickle(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Py2StylePickler(buf, protocol=2).dump(obj)
    path.write_bytes(buf.getvalue())


def write_cifar10_py(root: Path, per_batch: int = 10, n_test: int = 10) -> Path:
    folder = root / "cifar-10-batches-py"
    for i in range(1, 6):
        labels = [(j + i) % 10 for j in range(per_batch)]
        batch = {
            b"batch_label": b"training batch %d of 5" % i,
            b"labels": labels,
            b"data": cifar_images(np.array(labels), offset=100 * i),
            b"filenames": [b"img_%d.png" % j for j in range(per_batch)],
        }
        write_py2_pickle(folder / f"data_batch_{i}", batch)
    labels = [j % 10 for j in range(n_test)]
    write_py2_pickle(
        folder / "test_batch",
        {b"labels": labels, b"data": cifar_images(np.array(labels), offset=7)},
    )
    return folder


def cifar_records(labels: np.ndarray, offset: int, coarse: np.ndarray | None = None) -> bytes:
    pixels = cifar_images(labels, offset)
    cols = [labels.astype(np.uint8)[:, None]]
    if coarse is not None:
        cols.insert(0, coarse.astype(np.uint8)[:, None])
    return np.concatenate([*cols, pixels], axis=1).tobytes()


def write_cifar10_bin(
    root: Path,
    folder: str = "cifar-10-batches-bin",
    n_batches: int = 5,
    per_batch: int = 10,
    n_test: int = 10,
) -> Path:
    path = root / folder
    path.mkdir(parents=True, exist_ok=True)
    for i in range(1, n_batches + 1):
        labels = (np.arange(per_batch) + i) % 10
        (path / f"data_batch_{i}.bin").write_bytes(cifar_records(labels, offset=100 * i))
    (path / "test_batch.bin").write_bytes(cifar_records(np.arange(n_test) % 10, offset=7))
    return path


def fine_labels(n: int, shift: int) -> np.ndarray:
    return (np.arange(n) * 7 + shift) % 100


def write_cifar100_py(root: Path, n_train: int = 20, n_test: int = 10) -> Path:
    folder = root / "cifar-100-python"
    for name, n, shift, off in (("train", n_train, 3, 0), ("test", n_test, 5, 50)):
        fine = fine_labels(n, shift)
        write_py2_pickle(
            folder / name,
            {
                b"filenames": [b"f%d.png" % j for j in range(n)],
                b"batch_label": b"training batch 1 of 1",
                b"fine_labels": fine.tolist(),
                b"coarse_labels": (fine // 5).tolist(),
                b"data": cifar_images(fine, offset=off),
            },
        )
    return folder


def write_cifar100_bin(root: Path, n_train: int = 20, n_test: int = 10) -> Path:
    folder = root / "cifar-100-binary"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n, shift, off in (("train.bin", n_train, 3, 0), ("test.bin", n_test, 5, 50)):
        fine = fine_labels(n, shift)
        (folder / name).write_bytes(cifar_records(fine, offset=off, coarse=fine // 5))
    return folder


# ---------------------------------------------------------------------------------------------
# MNIST


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx(tmp_path, gz):
    want = write_mnist(tmp_path, gz=gz)
    d = load_dataset("mnist", tmp_path, download=False)
    assert isinstance(d, ImageDataset) and d.name == "mnist" and d.n_classes == 10
    assert d.train_x.shape == (30, 1, 28, 28) and d.test_x.shape == (20, 1, 28, 28)
    assert d.train_x.dtype == torch.uint8 and d.train_y.dtype == torch.int64
    assert np.array_equal(d.train_x[:, 0].numpy(), want["train_x"])
    assert np.array_equal(d.test_x[:, 0].numpy(), want["test_x"])
    assert d.train_y.tolist() == want["train_y"].tolist()
    assert d.test_y.tolist() == want["test_y"].tolist()
    assert d.mean == (0.1307,) and d.std == (0.3081,)
    suffix = ".gz" if gz else ""
    assert d.source == {
        "layout": "MNIST/raw",
        "path": str(tmp_path.resolve() / "MNIST" / "raw"),
        "files": [f + suffix for f in ds_mod._MNIST_FILES],
        "n_train": 30,
        "n_test": 20,
        "subset": False,
    }
    json.dumps(d.source)
    d.train_x[0, 0, 0, 0] = 1  # writable tensors (no numpy read-only buffer underneath)


def test_mnist_prefers_plain_over_gz(tmp_path):
    write_mnist(tmp_path, gz=True)
    want = write_mnist(tmp_path, gz=False, n_train=40)  # a different, plain train set
    d = load_dataset("mnist", tmp_path, download=False)
    assert len(d.train_y) == 40 and np.array_equal(d.train_x[:, 0].numpy(), want["train_x"])
    assert d.source["files"][0] == "train-images-idx3-ubyte"


def test_cache_returns_same_object(tmp_path):
    write_mnist(tmp_path)
    a = load_dataset("mnist", tmp_path, download=False)
    # same resolved dir, spelled differently
    b = load_dataset("mnist", str(tmp_path / "MNIST" / ".."), download=False)
    assert a is b
    other = tmp_path / "other"
    write_mnist(other, n_train=12)
    assert len(load_dataset("mnist", other, download=False).train_y) == 12


def test_mnist_truncated_gz(tmp_path):
    write_mnist(tmp_path, gz=True)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataError) as e:
        load_dataset("mnist", tmp_path, download=False)
    assert str(path) in str(e.value)


def test_mnist_truncated_plain(tmp_path):
    write_mnist(tmp_path, gz=False)
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match="truncated") as e:
        load_dataset("mnist", tmp_path, download=False)
    assert str(path) in str(e.value)


def test_mnist_bad_magic_and_shape(tmp_path):
    write_mnist(tmp_path, gz=False)
    raw = tmp_path / "MNIST" / "raw"
    # labels file where images are expected: wrong magic
    (raw / "train-images-idx3-ubyte").write_bytes((raw / "train-labels-idx1-ubyte").read_bytes())
    with pytest.raises(DataError, match="magic 0x00000801, expected 0x00000803"):
        load_dataset("mnist", tmp_path, download=False)
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((30, 27, 28), np.uint8), gz=False)
    with pytest.raises(DataError, match="28x28"):
        load_dataset("mnist", tmp_path, download=False)


def test_mnist_count_mismatch_and_label_range(tmp_path):
    write_mnist(tmp_path, gz=False)
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw / "train-labels-idx1-ubyte", np.zeros(29, np.uint8), gz=False)
    with pytest.raises(DataError, match="30 images but .* 29 labels"):
        load_dataset("mnist", tmp_path, download=False)
    bad = np.zeros(30, np.uint8)
    bad[3] = 10
    path = write_idx(raw / "train-labels-idx1-ubyte", bad, gz=False)
    with pytest.raises(DataError, match=r"0\.\.9") as e:
        load_dataset("mnist", tmp_path, download=False)
    assert str(path) in str(e.value)


# ---------------------------------------------------------------------------------------------
# CIFAR-10


def test_cifar10_python_pickles(tmp_path):
    write_cifar10_py(tmp_path)
    d = load_dataset("cifar10", tmp_path, download=False)
    assert d.n_classes == 10 and d.train_x.shape == (50, 3, 32, 32)
    assert d.test_x.shape == (10, 3, 32, 32) and d.test_y.dtype == torch.int64
    assert d.train_y[:10].tolist() == [(j + 1) % 10 for j in range(10)]
    assert d.train_y[40:].tolist() == [(j + 5) % 10 for j in range(10)]
    check_cifar_pattern(d.train_x, [(10 * (i - 1), 100 * i) for i in range(1, 6)])
    check_cifar_pattern(d.test_x, [(0, 7)])
    assert d.mean == (0.4914, 0.4822, 0.4465) and d.std == (0.2470, 0.2435, 0.2616)
    assert d.source["layout"] == "cifar-10-batches-py" and d.source["subset"] is False
    assert d.source["files"] == [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    assert (d.source["n_train"], d.source["n_test"]) == (50, 10)


def test_cifar10_binary(tmp_path):
    write_cifar10_bin(tmp_path)
    d = load_dataset("cifar10", tmp_path, download=False)
    assert d.train_x.shape == (50, 3, 32, 32) and d.train_y.dtype == torch.int64
    assert d.train_y[:10].tolist() == [(j + 1) % 10 for j in range(10)]
    check_cifar_pattern(d.train_x, [(10 * (i - 1), 100 * i) for i in range(1, 6)])
    check_cifar_pattern(d.test_x, [(0, 7)])
    assert d.source["layout"] == "cifar-10-batches-bin" and d.source["subset"] is False


def test_cifar10_subset_binary(tmp_path):
    write_cifar10_bin(tmp_path, folder="cifar-10-subset-bin", n_batches=1, per_batch=30)
    d = load_dataset("cifar10", tmp_path, download=False)
    assert d.train_x.shape == (30, 3, 32, 32) and d.test_x.shape == (10, 3, 32, 32)
    check_cifar_pattern(d.train_x, [(0, 100)])
    assert d.source["layout"] == "cifar-10-subset-bin" and d.source["subset"] is True
    assert d.source["files"] == ["data_batch_1.bin", "test_batch.bin"]


def test_cifar10_layout_order(tmp_path):
    write_cifar10_bin(tmp_path, folder="cifar-10-subset-bin", n_batches=1)
    write_cifar10_bin(tmp_path)
    write_cifar10_py(tmp_path)
    assert load_dataset("cifar10", tmp_path, download=False).source["layout"] == (
        "cifar-10-batches-py"
    )


def test_cifar10_incomplete_folder_lists_missing(tmp_path):
    folder = write_cifar10_bin(tmp_path)
    (folder / "data_batch_3.bin").unlink()
    (folder / "test_batch.bin").unlink()
    with pytest.raises(DataError) as e:
        load_dataset("cifar10", tmp_path, download=False)
    msg = str(e.value)
    assert "incomplete" in msg and "data_batch_3.bin, test_batch.bin" in msg
    # a complete later layout is still used
    write_cifar10_bin(tmp_path, folder="cifar-10-subset-bin", n_batches=1)
    assert load_dataset("cifar10", tmp_path, download=False).source["subset"] is True


def test_cifar10_truncated_binary(tmp_path):
    folder = write_cifar10_bin(tmp_path)
    path = folder / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match="3073-byte record") as e:
        load_dataset("cifar10", tmp_path, download=False)
    assert str(path) in str(e.value)


def test_cifar10_truncated_pickle(tmp_path):
    folder = write_cifar10_py(tmp_path)
    path = folder / "data_batch_4"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated or corrupt") as e:
        load_dataset("cifar10", tmp_path, download=False)
    assert str(path) in str(e.value)


def test_cifar10_label_out_of_range(tmp_path):
    folder = write_cifar10_bin(tmp_path)
    path = folder / "test_batch.bin"
    path.write_bytes(cifar_records(np.array([0, 3, 10]), offset=0))
    with pytest.raises(DataError, match=r"0\.\.9") as e:
        load_dataset("cifar10", tmp_path, download=False)
    assert str(path) in str(e.value)


def test_cifar10_pickle_wrong_contents(tmp_path):
    folder = write_cifar10_py(tmp_path)
    write_py2_pickle(
        folder / "data_batch_2", {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    )
    with pytest.raises(DataError, match=r"uint8 array \[N, 3072\]"):
        load_dataset("cifar10", tmp_path, download=False)
    write_py2_pickle(folder / "data_batch_2", [1, 2, 3])
    with pytest.raises(DataError, match="not a CIFAR pickle"):
        load_dataset("cifar10", tmp_path, download=False)


class _RunShell:
    def __init__(self, cmd: str):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


class _Eval:
    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return (eval, (self.code,))


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval"])
def test_malicious_pickle_is_refused_and_not_run(tmp_path, kind):
    folder = write_cifar10_py(tmp_path / "data")
    marker = tmp_path / "pwned"
    if kind == "os.system":
        payload = _RunShell(f"touch {marker}")
    else:
        payload = _Eval(f"open({str(marker)!r}, 'w').close()")
    evil = {b"data": payload, b"labels": [0]}
    (folder / "data_batch_1").write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(DataError, match="refused to load") as e:
        load_dataset("cifar10", tmp_path / "data", download=False)
    assert "not a CIFAR pickle" in str(e.value)
    assert str(folder / "data_batch_1") in str(e.value)
    assert not marker.exists()


def test_unpickler_allows_only_numpy_globals():
    up = readers.CifarUnpickler(io.BytesIO(b""), encoding="bytes")
    assert up.find_class("numpy", "ndarray") is np.ndarray
    assert up.find_class("numpy", "dtype") is np.dtype
    assert callable(up.find_class("numpy.core.multiarray", "_reconstruct"))
    assert callable(up.find_class("numpy._core.multiarray", "_reconstruct"))
    for module, name in [
        ("builtins", "eval"),
        ("os", "system"),
        ("numpy", "load"),
        ("_codecs", "encode"),
        ("collections", "OrderedDict"),
    ]:
        with pytest.raises(pickle.UnpicklingError):
            up.find_class(module, name)


# ---------------------------------------------------------------------------------------------
# CIFAR-100


@pytest.mark.parametrize("writer", [write_cifar100_py, write_cifar100_bin])
def test_cifar100(tmp_path, writer):
    folder = writer(tmp_path)
    d = load_dataset("cifar100", tmp_path, download=False)
    assert d.n_classes == 100 and d.train_x.shape == (20, 3, 32, 32)
    assert d.test_x.shape == (10, 3, 32, 32) and d.train_y.dtype == torch.int64
    assert d.train_y.tolist() == fine_labels(20, 3).tolist()  # fine labels, not coarse
    assert d.test_y.tolist() == fine_labels(10, 5).tolist()
    check_cifar_pattern(d.train_x, [(0, 0)])
    check_cifar_pattern(d.test_x, [(0, 50)])
    assert d.mean == (0.5071, 0.4865, 0.4409) and d.std == (0.2673, 0.2564, 0.2762)
    assert d.source["layout"] == folder.name and d.source["path"] == str(folder.resolve())


def test_cifar100_truncated_and_label_range(tmp_path):
    folder = write_cifar100_bin(tmp_path)
    path = folder / "train.bin"
    data = path.read_bytes()
    path.write_bytes(data[:-1537])
    with pytest.raises(DataError, match="3074-byte record") as e:
        load_dataset("cifar100", tmp_path, download=False)
    assert str(path) in str(e.value)
    path.write_bytes(cifar_records(np.array([5, 100]), offset=0, coarse=np.array([1, 2])))
    with pytest.raises(DataError, match=r"0\.\.99"):
        load_dataset("cifar100", tmp_path, download=False)


# ---------------------------------------------------------------------------------------------
# Missing data, downloads, names, environment


def test_unknown_name():
    with pytest.raises(DataError) as e:
        load_dataset("imagenet")
    for name in DATASETS:
        assert name in str(e.value)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100"])
def test_missing_without_download(tmp_path, name):
    with pytest.raises(DataError) as e:
        load_dataset(name, tmp_path / "nowhere", download=False)
    msg = str(e.value)
    root = (tmp_path / "nowhere").resolve()
    assert str(root) in msg and name in msg
    for layout in ds_mod.DATASET_DEFS[name].layouts:
        for f in layout.files:
            assert str(root / layout.folder / f) in msg
    hint = e.value.hint
    assert "CLBENCH_DATA" in hint and "--data-dir" in hint and "CLBENCH_OFFLINE" in hint
    assert "--no-download" in hint
    assert not (tmp_path / "nowhere").exists()


def test_missing_mnist_message_names_gz(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("mnist", tmp_path, download=False)
    expected = tmp_path.resolve() / "MNIST" / "raw" / "train-images-idx3-ubyte[.gz]"
    assert str(expected) in str(e.value)


def _fake_torchvision(monkeypatch, mnist_cls):
    tv = types.ModuleType("torchvision")
    tv.datasets = types.SimpleNamespace(MNIST=mnist_cls, CIFAR10=mnist_cls, CIFAR100=mnist_cls)
    monkeypatch.setitem(sys.modules, "torchvision", tv)


def test_download_called_when_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("CLBENCH_OFFLINE")
    calls = []

    class FakeMNIST:
        def __init__(self, root, train=True, download=False):
            calls.append((root, download))
            write_mnist(Path(root), gz=True)

    _fake_torchvision(monkeypatch, FakeMNIST)
    d = load_dataset("mnist", tmp_path / "new", download=True)
    assert calls == [(str((tmp_path / "new").resolve()), True)]
    assert d.train_x.shape == (30, 1, 28, 28)


def test_download_failure_is_data_error(tmp_path, monkeypatch):
    monkeypatch.delenv("CLBENCH_OFFLINE")

    class Broken:
        def __init__(self, **kwargs):
            raise RuntimeError("no route to host")

    _fake_torchvision(monkeypatch, Broken)
    with pytest.raises(DataError, match="download failed: RuntimeError: no route to host") as e:
        load_dataset("cifar10", tmp_path, download=True)
    assert str(tmp_path.resolve() / "cifar-10-batches-py" / "test_batch") in str(e.value)
    assert e.value.hint


def test_offline_env_blocks_download(tmp_path, monkeypatch):
    def boom(**kwargs):
        raise AssertionError("must not download")

    _fake_torchvision(monkeypatch, boom)
    with pytest.raises(DataError, match="not found"):
        load_dataset("mnist", tmp_path, download=True)  # CLBENCH_OFFLINE=1 (fixture)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("True", True),
        ("0", False),
        ("", False),
        ("no", False),
        (None, False),
    ],
)
def test_offline_from_env(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("CLBENCH_OFFLINE", raising=False)
    else:
        monkeypatch.setenv("CLBENCH_OFFLINE", value)
    assert offline_from_env() is expected


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CLBENCH_DATA", str(tmp_path / "d"))
    assert default_data_dir() == tmp_path / "d"
    monkeypatch.delenv("CLBENCH_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "clbench" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_data_dir() == Path.home() / ".cache" / "clbench" / "data"


def test_default_dir_used_by_load(monkeypatch, tmp_path):
    write_mnist(tmp_path)
    monkeypatch.setenv("CLBENCH_DATA", str(tmp_path))
    assert load_dataset("mnist", download=False).source["path"] == str(
        tmp_path.resolve() / "MNIST" / "raw"
    )


# ---------------------------------------------------------------------------------------------
# digits


def test_digits():
    d = load_dataset("digits", download=False)
    assert d.name == "digits" and d.n_classes == 10
    assert len(d.train_y) + len(d.test_y) == 1797
    assert d.train_x.shape[1:] == (1, 8, 8) and d.train_x.dtype == torch.uint8
    assert d.train_y.dtype == torch.int64
    assert 0.19 < len(d.test_y) / 1797 < 0.21
    assert set(d.train_y.tolist()) == set(range(10)) == set(d.test_y.tolist())
    assert int(d.train_x.max()) == 255 and int(d.train_x.min()) == 0
    assert d.mean[0] == pytest.approx(d.train_x.double().div(255).mean().item())
    assert d.std[0] == pytest.approx(d.train_x.double().div(255).std(unbiased=False).item())
    assert d.source["layout"] == "sklearn-digits" and d.source["n_train"] == len(d.train_y)
    json.dumps(d.source)

    ds_mod._CACHE.clear()
    again = load_dataset("digits", download=False)
    assert again is not d
    for field in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(d, field), getattr(again, field))

    from sklearn.datasets import load_digits

    raw = load_digits()
    all_x = torch.cat([d.train_x, d.test_x]).reshape(-1, 64).long()
    want = np.rint(raw.data * 255 / 16).astype(np.int64)
    # every image of the split is an image of the original set, with its label
    rows = {tuple(r) + (int(y),) for r, y in zip(want, raw.target, strict=True)}
    labels = torch.cat([d.train_y, d.test_y]).tolist()
    assert all(tuple(r) + (y,) in rows for r, y in zip(all_x.tolist(), labels, strict=True))


# ---------------------------------------------------------------------------------------------
# The real shared data (read-only; skipped where it is absent)

needs_shared = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"no shared data folder at {SHARED_DATA}"
)


@needs_shared
def test_real_mnist():
    if not (SHARED_DATA / "MNIST" / "raw").is_dir():
        pytest.skip(f"no MNIST/raw in {SHARED_DATA}")
    d = load_dataset("mnist", SHARED_DATA, download=False)
    assert d.train_x.shape == (60000, 1, 28, 28) and d.test_x.shape == (10000, 1, 28, 28)
    assert len(d.train_y) == 60000 and len(d.test_y) == 10000
    assert abs(d.train_x.float().mean().item() / 255 - 0.1307) < 1e-3
    assert np.bincount(d.test_y.numpy()).tolist()[:2] == [980, 1135]
    assert d.source["n_train"] == 60000 and d.source["subset"] is False


@needs_shared
def test_real_cifar10_subset():
    if not (SHARED_DATA / "cifar-10-subset-bin").is_dir():
        pytest.skip(f"no cifar-10-subset-bin in {SHARED_DATA}")
    d = load_dataset("cifar10", SHARED_DATA, download=False)
    assert d.train_x.shape == (5000, 3, 32, 32) and d.test_x.shape == (1000, 3, 32, 32)
    assert np.bincount(d.train_y.numpy(), minlength=10).tolist() == [500] * 10
    assert np.bincount(d.test_y.numpy(), minlength=10).tolist() == [100] * 10
    assert d.source["layout"] == "cifar-10-subset-bin" and d.source["subset"] is True
    # channel means of the subset are close to the published CIFAR-10 ones
    means = d.train_x.float().div(255).mean(dim=(0, 2, 3)).tolist()
    assert means == pytest.approx(list(d.mean), abs=0.01)


# ---------------------------------------------------------------------------------------------
# A dataset is one record


def test_every_record_holds_its_facts_once():
    from clbench.registry import SCENARIOS

    for name, d in ds_mod.DATASET_DEFS.items():
        assert d.name == name and d.n_classes > 1 and len(d.input_shape) == 3
        assert (d.bundled is None) == bool(d.layouts)  # files or a library, never both
        assert d.stats is None or len(d.stats[0]) == len(d.stats[1]) == d.input_shape[0]
    digits = load_dataset("digits")
    assert tuple(digits.train_x.shape[1:]) == ds_mod.DATASET_DEFS["digits"].input_shape
    for scenario in ("split-digits", "permuted-digits", "split-mnist", "split-cifar100"):
        cls = SCENARIOS.get(scenario)
        info = cls(cls.Params()).info(0)
        assert info.input_shape == cls.dataset.input_shape
        classes = {c for t in info.tasks for c in t.source_classes}
        assert classes == set(range(cls.dataset.n_classes))


def test_a_new_dataset_is_one_record_and_a_scenario_class(tmp_path, monkeypatch):
    """A dataset in CIFAR's binary format in a folder of its own: a DatasetDef, and a split
    scenario that names it, are all it takes to load it and cut it into tasks."""
    from clbench.budget import BUDGETS
    from clbench.scenarios.data import DataConfig
    from clbench.scenarios.datasets import DatasetDef, Layout
    from clbench.scenarios.split import SplitScenario, _split_params

    tiny = DatasetDef("tiny4", "Tiny-4", 4, (3, 32, 32),
                      layouts=(Layout("tiny-4", ("train.bin",), ("test.bin",),
                                      readers.CifarRecords()),),
                      stats=((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)))
    monkeypatch.setitem(ds_mod.DATASET_DEFS, "tiny4", tiny)
    (tmp_path / "tiny-4").mkdir()
    (tmp_path / "tiny-4" / "train.bin").write_bytes(cifar_records(np.arange(40) % 4, 0))
    (tmp_path / "tiny-4" / "test.bin").write_bytes(cifar_records(np.arange(20) % 4, 3))

    class SplitTiny(SplitScenario):
        name, version, description = "split-tiny4", "1", "Tiny-4 in 2 tasks of 2 classes"
        dataset = tiny
        Params = _split_params(2, "mlp", tiny.n_classes)

    scenario = SplitTiny(SplitTiny.Params())
    data = scenario.build([0, 1], BUDGETS["default"], torch.device("cpu"),
                          DataConfig(tmp_path, download=False))
    assert data.info.input_shape == (3, 32, 32) and data.info.n_outputs == 4
    assert [len(t.rows[0]) for t in data.train] == [20, 20]
    assert [len(t.rows[0]) for t in data.test] == [10, 10]
    assert data.data_source["layout"] == "tiny-4" and data.data_source["n_train"] == 40
    with pytest.raises(DataError, match="Tiny-4 .tiny4. not found"):
        load_dataset("tiny4", tmp_path / "elsewhere", download=False)
