"""CIFAR-10 from the official "CIFAR-10 python version" batches, unpickled safely.

Each batch file (data_batch_1..5, test_batch) is a pickle of a dict with keys b"data" (a uint8
array of N rows of 3072 values: 1024 red, 1024 green, 1024 blue, each a 32x32 image in row
order), b"labels" (N ints in 0..9), b"batch_label" and b"filenames". A pickle can name any
Python callable and have the loader call it, so this module never uses plain pickle.load: its
unpickler admits exactly the three globals that an array in the format needs, and refuses any
other with an error naming the file, before anything is called.

Shape letters: N images, C = 3 channels, H = W = 32.
"""

from __future__ import annotations

import pathlib
import pickle

import numpy as np

from data.paths import damaged_dataset, data_dir, missing_dataset, split_sizes

try:  # numpy >= 2 keeps it here; older pickles name numpy.core.multiarray, mapped below.
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct

__all__ = ["load_cifar10", "get_cifar10_data", "load_CIFAR10", "get_CIFAR10_data", "CIFAR10_CLASSES",
           "CIFAR10_FOLDER", "SafeUnpickler"]

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
PIXELS = 3 * 32 * 32

# The only globals a CIFAR-10 batch contains: how numpy pickles an array and its dtype.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle named a global outside the allow-list (its message names the file and the global)."""


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy's array-rebuilding globals.

    Any other global (os.system, builtins.eval, ...) raises pickle.UnpicklingError naming the
    file and the global; since a global must be resolved before it can be called, nothing
    outside the allow-list ever runs.

    Args:
        file: a binary file object.
        path: the file's path, for error messages.
    """

    def __init__(self, file, path):
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobal(
                f"{self.path}: refusing to load global {module}.{name}; a CIFAR-10 batch holds only "
                f"numpy arrays, so this file is not one (or has been tampered with)."
            ) from None

    def persistent_load(self, pid):
        raise RefusedGlobal(f"{self.path}: persistent references are not part of a CIFAR-10 batch.")


def _read_batch(path: pathlib.Path):
    """One batch: (images uint8 (N, 3072), labels int64 (N,)), structure fully checked."""
    fn = "load_cifar10"
    try:
        with open(path, "rb") as f:
            batch = SafeUnpickler(f, path).load()
    except RefusedGlobal as exc:
        raise ValueError(f"{fn}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise ValueError(f"{fn}: {path} is truncated or not a CIFAR-10 batch: {type(exc).__name__}: {exc}.") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{fn}: {path} is not a CIFAR-10 batch: expected a dict with b'data' and b'labels'.")
    images, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != PIXELS:
        got = f"{images.shape} {images.dtype}" if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"{fn}: {path}: b'data' must be a uint8 array of shape (N, {PIXELS}), got {got}.")
    labels = np.asarray(labels)
    if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{fn}: {path}: b'labels' must hold {images.shape[0]} integers, got {labels.shape} "
                         f"{labels.dtype}.")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{fn}: {path}: labels must be in 0..9, got {labels.min()}..{labels.max()}.")
    return images, labels.astype(np.int64)


def _batches_folder(root):
    """The folder with the batches: root/cifar-10-batches-py, or root itself."""
    store = root
    root = data_dir() if root is None else pathlib.Path(root)
    candidates = [root / CIFAR10_FOLDER, root]
    for folder in candidates:
        if (folder / TRAIN_BATCHES[0]).is_file():
            return folder
    raise missing_dataset("load_cifar10", "CIFAR-10 (data_batch_1)", candidates, "cifar10", store=store)


def _load_split(folder, names):
    parts = []
    for name in names:
        path = folder / name
        if not path.is_file():
            missing = damaged_dataset(f"load_cifar10: CIFAR-10 batch {name} not found in {folder}.", folder,
                                      CIFAR10_FOLDER, "cifar10")
            raise FileNotFoundError(str(missing))
        try:
            parts.append(_read_batch(path))
        except ValueError as exc:
            raise damaged_dataset(str(exc), folder, CIFAR10_FOLDER, "cifar10") from None
    images = np.concatenate([p[0] for p in parts])  # (N, 3072) uint8
    labels = np.concatenate([p[1] for p in parts])
    return images, labels


def load_cifar10(root=None):
    """Read all six official batches.

    Args:
        root: the data folder holding cifar-10-batches-py (as ``python -m data.download cifar10
            --dir ROOT`` writes it), or that folder itself (default: data.paths.data_dir()).

    Returns:
        X_train, y_train, X_test, y_test: images as uint8 in (N, H, W, C) order, as the course
        returns them (but without a float64 copy), labels as int64 in 0..9.

    Shape:
        X_train: (50000, 32, 32, 3), y_train: (50000,)
        X_test: (10000, 32, 32, 3), y_test: (10000,)
    """
    folder = _batches_folder(root)
    X_train, y_train = _load_split(folder, TRAIN_BATCHES)
    X_test, y_test = _load_split(folder, (TEST_BATCH,))
    # Rows are channel-major (N, C, H, W); present them as (N, H, W, C) views.
    as_hwc = lambda X: X.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # noqa: E731
    return as_hwc(X_train), y_train, as_hwc(X_test), y_test


def get_cifar10_data(num_training=49000, num_validation=1000, num_test=1000, subtract_mean=True, root=None):
    """The course's CIFAR-10 dict: float32 (N, C, H, W) images, training mean subtracted.

    The validation set is the num_validation training images after the first num_training;
    the test set is the first num_test test images. Memory: the uint8 set is converted to
    float32 once, after the channel transpose; nothing is ever held as float64 (the mean is
    accumulated in float64 without a copy).

    Args:
        num_training, num_validation, num_test: split sizes; num_training=None takes every
            training image not used for validation, num_test=None every test image.
        subtract_mean: subtract the mean training image from every split.
        root: as for load_cifar10.

    Returns:
        dict with X_train, y_train, X_val, y_val, X_test, y_test (and mean_image).

    Shape:
        X_*: (N, 3, 32, 32) float32; y_*: (N,) int64; mean_image: (3, 32, 32) float32
    """
    fn = "get_cifar10_data"
    X_train, y_train, X_test, y_test = load_cifar10(root)
    num_training, num_validation, num_test = split_sizes(fn, num_training, num_validation, num_test,
                                                         len(X_train), len(X_test))

    def to_float(X):
        # (N, H, W, C) uint8 view -> (N, C, H, W) float32, C-contiguous, in one pass and one allocation.
        return np.array(X.transpose(0, 3, 1, 2), dtype=np.float32, order="C")

    data = {
        "X_train": to_float(X_train[:num_training]), "y_train": y_train[:num_training],
        "X_val": to_float(X_train[num_training:num_training + num_validation]),
        "y_val": y_train[num_training:num_training + num_validation],
        "X_test": to_float(X_test[:num_test]), "y_test": y_test[:num_test],
    }
    mean = np.zeros((3, 32, 32), dtype=np.float32)
    if subtract_mean and num_training:
        mean = data["X_train"].mean(axis=0, dtype=np.float64).astype(np.float32)
        for key in ("X_train", "X_val", "X_test"):
            data[key] -= mean  # in place: no second float32 copy
    data["mean_image"] = mean
    return data


# The course's names.
load_CIFAR10 = load_cifar10
get_CIFAR10_data = get_cifar10_data
