"""Small datasets written in the exact official file formats, for the loader and download tests.

CIFAR-10 batches are Python 2 protocol-2 pickles (strings as BINSTRING opcodes, arrays through
numpy.core.multiarray._reconstruct). Python 3's pickler cannot emit that form for bytes, so the
opcodes are written here by hand, in the order the official files use.
"""

from __future__ import annotations

import gzip
import io
import pathlib
import struct
import tarfile

import numpy as np

PROTO2, MARK, STOP = b"\x80\x02", b"(", b"."
EMPTY_DICT, EMPTY_LIST, SETITEMS, APPENDS = b"}", b"]", b"u", b"e"
TUPLE, TUPLE1, TUPLE2, TUPLE3 = b"t", b"\x85", b"\x86", b"\x87"
REDUCE, BUILD, NONE, NEWFALSE = b"R", b"b", b"N", b"\x89"


def _str(value: bytes) -> bytes:
    """A Python 2 str: SHORT_BINSTRING below 256 bytes, BINSTRING above."""
    if len(value) < 256:
        return b"U" + bytes([len(value)]) + value
    return b"T" + struct.pack("<I", len(value)) + value


def _int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)
    return b"J" + struct.pack("<i", value)


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _uint8_matrix(a: np.ndarray) -> bytes:
    """An (N, D) uint8 array as numpy pickles it: _reconstruct, then its state via BUILD."""
    n, d = a.shape
    dtype = (_global("numpy", "dtype") + _str(b"u1") + _int(0) + _int(1) + TUPLE3 + REDUCE
             + MARK + _int(3) + _str(b"|") + NONE + NONE + NONE + b"J\xff\xff\xff\xff" + b"J\xff\xff\xff\xff"
             + _int(0) + TUPLE + BUILD)
    return (_global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray") + _int(0) + TUPLE1
            + _str(b"b") + TUPLE3 + REDUCE
            + MARK + _int(1) + _int(n) + _int(d) + TUPLE2 + dtype + NEWFALSE + _str(a.tobytes()) + TUPLE + BUILD)


def cifar_batch_bytes(images: np.ndarray, labels, batch_label=b"training batch 1 of 5") -> bytes:
    """The bytes of one CIFAR-10 batch file holding these (N, 3072) uint8 images and labels."""
    filenames = [f"img_{i:05d}.png".encode() for i in range(len(labels))]
    return (PROTO2 + EMPTY_DICT + MARK
            + _str(b"data") + _uint8_matrix(images)
            + _str(b"labels") + EMPTY_LIST + MARK + b"".join(_int(int(v)) for v in labels) + APPENDS
            + _str(b"batch_label") + _str(batch_label)
            + _str(b"filenames") + EMPTY_LIST + MARK + b"".join(_str(f) for f in filenames) + APPENDS
            + SETITEMS + STOP)


def write_cifar10(folder, rows_per_batch=4, seed=0):
    """Write data_batch_1..5, test_batch and batches.meta; returns (train images, labels, test ...)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train_x, train_y = [], []
    for i in range(1, 7):
        x = rng.integers(0, 256, (rows_per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, rows_per_batch)
        name = f"data_batch_{i}" if i <= 5 else "test_batch"
        (folder / name).write_bytes(cifar_batch_bytes(x, y))
        if i <= 5:
            train_x.append(x)
            train_y.append(y)
        else:
            test_x, test_y = x, y
    meta = PROTO2 + EMPTY_DICT + MARK + _str(b"num_cases_per_batch") + _int(rows_per_batch) + SETITEMS + STOP
    (folder / "batches.meta").write_bytes(meta)
    return np.concatenate(train_x), np.concatenate(train_y), test_x, test_y


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file of unsigned bytes: magic 0x0000080d, d sizes, then the data."""
    magic = (0x08 << 8) | array.ndim if magic is None else magic
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


MNIST_STEMS = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
               "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}


def write_mnist(folder, n_train=12, n_test=5, gz=True, seed=0):
    """Write the four IDX files (gzipped or raw); returns X_train, y_train, X_test, y_test."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    for key, stem in MNIST_STEMS.items():
        raw = idx_bytes(arrays[key])
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(raw, mtime=0))
        else:
            (folder / stem).write_bytes(raw)
    return arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"]


def tar_gz_of(folder, arcname) -> bytes:
    """A .tar.gz holding ``folder`` under the name ``arcname``, as the CIFAR-10 archive is laid out."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return buf.getvalue()


def labels_only_batch_bytes(labels) -> bytes:
    """A well-formed batch-style pickle that lacks b"data" (a dict with b"labels" only)."""
    return (PROTO2 + EMPTY_DICT + MARK + _str(b"labels") + EMPTY_LIST + MARK
            + b"".join(_int(int(v)) for v in labels) + APPENDS + SETITEMS + STOP)
