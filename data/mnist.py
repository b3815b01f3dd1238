"""MNIST and Fashion-MNIST from their IDX files (gzip-compressed or raw).

IDX layout (big-endian): two zero bytes, a type byte (0x08 = unsigned byte), a byte giving
the number of dimensions d, then d 32-bit sizes, then the values. So the magic number is
0x00000801 for a label file (d = 1) and 0x00000803 for an image file (d = 3). Every header
and size is checked, so a truncated or mislabeled file raises an error naming it.

Shape letters: N images, H = W = 28.
"""

from __future__ import annotations

import gzip
import math
import pathlib
import struct
import zlib

import numpy as np

from data.paths import damaged_dataset, data_dir, missing_dataset, split_sizes

__all__ = ["read_idx", "load_mnist", "load_fashion_mnist", "get_mnist_data", "get_fashion_mnist_data",
           "MNIST_FILES", "DEBIAN_FASHION_MNIST", "FASHION_MNIST_CLASSES"]

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# Where Debian's dataset-fashion-mnist package installs the four files.
DEBIAN_FASHION_MNIST = pathlib.Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path, ndim, max_shape=None):
    """Read one IDX file of unsigned bytes, gzip-compressed or raw, checking its header and size.

    The header is read first and the data only up to the size it declares (computed without
    overflow), so a file whose header or compressed stream claims more than ``max_shape``
    allows is refused before its data is read, and memory never exceeds the declared size.

    Args:
        path: the file (".gz" or not; the content decides).
        ndim: the number of dimensions the file must have (1 for labels, 3 for images).
        max_shape: the largest size allowed in each dimension (None: any).

    Returns:
        A uint8 array of the shape the header declares.

    Shape:
        labels: (N,); images: (N, H, W)
    """
    fn = "read_idx"
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as raw_file:
            compressed = raw_file.read(2) == GZIP_MAGIC
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            raw = f.read(4)
            if len(raw) < 4:
                raise ValueError(f"{fn}: {path} is too short for an IDX header ({len(raw)} bytes).")
            zero1, zero2, dtype_code, dims = raw[0], raw[1], raw[2], raw[3]
            magic = int.from_bytes(raw[:4], "big")
            expected_magic = (UBYTE << 8) | ndim
            if zero1 or zero2 or dtype_code != UBYTE or dims != ndim:
                raise ValueError(f"{fn}: {path} has magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
                                 f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''}).")
            header = 4 + 4 * ndim
            raw += f.read(header - 4)
            if len(raw) < header:
                raise ValueError(f"{fn}: {path} is truncated inside its header ({len(raw)} of {header} bytes).")
            shape = struct.unpack(f">{ndim}I", raw[4:header])
            if max_shape is not None and any(n > m for n, m in zip(shape, max_shape)):
                raise ValueError(f"{fn}: {path} declares shape {shape}, larger than this dataset's "
                                 f"{tuple(max_shape)}.")
            expected = math.prod(shape)  # a Python int: no int64 wrap-around
            data = _read_at_most(f, expected + 1)
    except FileNotFoundError:
        raise FileNotFoundError(f"{fn}: no such file: {path}.") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{fn}: {path} is a damaged gzip file: {exc}.") from None
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        got = len(data) if len(data) <= expected else "more"
        raise ValueError(f"{fn}: {path} is {what}: the header declares shape {shape} = {expected} values, "
                         f"the file holds {got}.")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _read_at_most(f, limit):
    """Up to ``limit`` bytes of f, read in chunks so that memory follows what the file really holds."""
    data = bytearray()
    while len(data) < limit:
        chunk = f.read(min(limit - len(data), 1 << 24))
        if not chunk:
            break
        data += chunk
    return data


# The official sets' sizes, which bound what read_idx accepts (smaller sets load too).
MAX_SHAPES = {"train_images": (60000, 28, 28), "train_labels": (60000,), "test_images": (10000, 28, 28),
              "test_labels": (10000,)}


def _find(folder: pathlib.Path, stem: str):
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _load_idx_set(fn, folders, download_name, extra="", store=None):
    folders = [pathlib.Path(f) for f in folders]
    for folder in folders:
        paths = {key: _find(folder, stem) for key, stem in MNIST_FILES.items()}
        if all(paths.values()):
            break
    else:
        raise missing_dataset(fn, f"the four IDX files ({', '.join(MNIST_FILES.values())})", folders, download_name,
                              extra, store=store)
    try:
        arrays = {key: read_idx(path, len(MAX_SHAPES[key]), MAX_SHAPES[key]) for key, path in paths.items()}
        for split in ("train", "test"):
            images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
            if images.shape[1:] != (28, 28):
                raise ValueError(f"{fn}: {paths[split + '_images']} holds images of {images.shape[1:]} pixels; "
                                 f"expected 28 x 28.")
            if len(images) != len(labels):
                raise ValueError(f"{fn}: the {split} images hold {len(images)} samples but the labels {len(labels)} "
                                 f"({paths[split + '_images']}, {paths[split + '_labels']}).")
            if labels.size and labels.max() > 9:
                raise ValueError(f"{fn}: {paths[split + '_labels']} has labels up to {labels.max()}; expected 0..9.")
    except ValueError as exc:
        reinstall = "\nor reinstall Debian's package: apt-get install --reinstall dataset-fashion-mnist"
        raise damaged_dataset(str(exc), folder, download_name, download_name,
                              reinstall if folder == DEBIAN_FASHION_MNIST else "") from None
    return (arrays["train_images"], arrays["train_labels"].astype(np.int64), arrays["test_images"],
            arrays["test_labels"].astype(np.int64))


def _folders(root, name, default):
    """(folders to search, the data folder for messages): <root>/<name> then root itself, else the defaults."""
    if root is None:
        return default, None
    root = pathlib.Path(root)
    return [root / name, root], root


def load_mnist(root=None):
    """Read MNIST's four IDX files.

    Args:
        root: the data folder holding mnist/ (as ``python -m data.download mnist --dir ROOT``
            writes it), or the folder holding the four files (default: <data_dir>/mnist).

    Returns:
        X_train, y_train, X_test, y_test: images uint8, labels int64 in 0..9.

    Shape:
        X_train: (60000, 28, 28), y_train: (60000,), X_test: (10000, 28, 28), y_test: (10000,)
    """
    folders, store = _folders(root, "mnist", [data_dir() / "mnist"])
    return _load_idx_set("load_mnist", folders, "mnist", store=store)


def load_fashion_mnist(root=None):
    """Read Fashion-MNIST's four IDX files.

    Args:
        root: the data folder holding fashion-mnist/, or the folder holding the four files.
            Without it, <data_dir>/fashion-mnist and then Debian's
            /usr/share/datasets/fashion-mnist (package dataset-fashion-mnist) are searched.

    Returns:
        X_train, y_train, X_test, y_test: images uint8, labels int64 in 0..9 (FASHION_MNIST_CLASSES).

    Shape:
        X_train: (60000, 28, 28), y_train: (60000,), X_test: (10000, 28, 28), y_test: (10000,)
    """
    folders, store = _folders(root, "fashion-mnist", [data_dir() / "fashion-mnist", DEBIAN_FASHION_MNIST])
    return _load_idx_set("load_fashion_mnist", folders, "fashion-mnist",
                         "\nOn Debian or Ubuntu: apt-get install dataset-fashion-mnist", store=store)


def _as_dict(arrays, num_training, num_validation, num_test, subtract_mean, fn):
    X_train, y_train, X_test, y_test = arrays
    num_training, num_validation, num_test = split_sizes(fn, num_training, num_validation, num_test,
                                                         len(X_train), len(X_test))

    def to_float(X):
        # (N, H, W) uint8 -> (N, 1, H, W) float32 in [0, 1], one allocation.
        out = X[:, None].astype(np.float32)
        out /= 255
        return out

    data = {
        "X_train": to_float(X_train[:num_training]), "y_train": y_train[:num_training],
        "X_val": to_float(X_train[num_training:num_training + num_validation]),
        "y_val": y_train[num_training:num_training + num_validation],
        "X_test": to_float(X_test[:num_test]), "y_test": y_test[:num_test],
    }
    mean = np.zeros((1, 28, 28), dtype=np.float32)
    if subtract_mean and num_training:
        mean = data["X_train"].mean(axis=0, dtype=np.float64).astype(np.float32)
        for key in ("X_train", "X_val", "X_test"):
            data[key] -= mean
    data["mean_image"] = mean
    return data


def get_mnist_data(num_training=59000, num_validation=1000, num_test=10000, subtract_mean=True, root=None):
    """MNIST as a Solver-ready dict: float32 (N, 1, 28, 28) images scaled to [0, 1], mean subtracted.

    The validation set is the num_validation training images after the first num_training.

    Args:
        num_training, num_validation, num_test: split sizes; num_training=None takes every
            training image not used for validation, num_test=None every test image.
        subtract_mean: subtract the mean training image from every split.
        root: as for load_mnist.

    Returns:
        dict with X_train, y_train, X_val, y_val, X_test, y_test and mean_image.

    Shape:
        X_*: (N, 1, 28, 28); y_*: (N,); mean_image: (1, 28, 28)
    """
    return _as_dict(load_mnist(root), num_training, num_validation, num_test, subtract_mean, "get_mnist_data")


def get_fashion_mnist_data(num_training=59000, num_validation=1000, num_test=10000, subtract_mean=True, root=None):
    """Fashion-MNIST as a Solver-ready dict, exactly as get_mnist_data.

    Args:
        num_training, num_validation, num_test: as for get_mnist_data.
        subtract_mean: subtract the mean training image from every split.
        root: as for load_fashion_mnist.

    Returns:
        dict with X_train, y_train, X_val, y_val, X_test, y_test and mean_image.

    Shape:
        X_*: (N, 1, 28, 28); y_*: (N,); mean_image: (1, 28, 28)
    """
    return _as_dict(load_fashion_mnist(root), num_training, num_validation, num_test, subtract_mean,
                    "get_fashion_mnist_data")
