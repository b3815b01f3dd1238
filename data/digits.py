"""Small datasets that need no download: the real 8x8 handwritten digits, and spirals.

Shape letters: N samples, C classes.
"""

from __future__ import annotations

import hashlib
import numbers
import pathlib

import numpy as np

from layers.validate import integer

__all__ = ["DIGITS_PATH", "DIGITS_SHA256", "load_digits", "make_spiral"]

DIGITS_PATH = pathlib.Path(__file__).with_name("digits.csv.gz")
# The checksum recorded in data/README.md; a different file is refused, not half-read.
DIGITS_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
DIGITS_SAMPLES = 1797
DIGITS_MAX_PIXEL = 16


def _read_digits(path: pathlib.Path):
    """Read and check the digits file: returns pixels (N, 64) uint8 and labels (N,) int64."""
    fn = "load_digits"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FileNotFoundError(f"{fn}: cannot read the digits file {path}: {exc.strerror}.") from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != DIGITS_SHA256:
        raise ValueError(f"{fn}: {path} has SHA-256 {digest}, expected {DIGITS_SHA256}; "
                         f"the file is damaged or not the digits set (see data/README.md).")
    table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    if table.shape != (DIGITS_SAMPLES, 65):
        raise ValueError(f"{fn}: {path} should hold {DIGITS_SAMPLES} rows of 65 values, got {table.shape}.")
    return table[:, :64].astype(np.uint8), table[:, 64]


def load_digits(num_validation=180, num_test=360, seed=0, dtype=np.float32, subtract_mean=True, flatten=False):
    """The 1,797 real 8x8 handwritten digits, split into train, validation and test sets.

    Pixels are scaled from 0..16 to [0, 1]; with subtract_mean the training set's mean image is
    then subtracted from every split (as the course does for CIFAR-10). The split is a random
    permutation drawn from a private generator seeded with ``seed``.

    Args:
        num_validation: samples in the validation split.
        num_test: samples in the test split; the rest (1,257 by default) is for training.
        seed: seed of the split.
        dtype: np.float32 or np.float64 for the images.
        subtract_mean: subtract the training mean image.
        flatten: return (N, 64) rows instead of (N, 1, 8, 8) images.

    Returns:
        dict with X_train, y_train, X_val, y_val, X_test, y_test (labels int64 in [0, 10))
        and mean_image (the subtracted mean, zeros without subtract_mean).

    Shape:
        X_*: (N, 1, 8, 8), or (N, 64) with flatten
        y_*: (N,)
        mean_image: (1, 8, 8), or (64,) with flatten
    """
    fn = "load_digits"
    num_validation = integer(fn, "num_validation", num_validation, low=0)
    num_test = integer(fn, "num_test", num_test, low=0)
    if num_validation + num_test >= DIGITS_SAMPLES:
        raise ValueError(f"{fn}: num_validation + num_test = {num_validation + num_test} leaves no training "
                         f"samples out of {DIGITS_SAMPLES}.")
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{fn}: dtype must be np.float32 or np.float64, got {np.dtype(dtype)}.")
    pixels, y = _read_digits(DIGITS_PATH)
    X = pixels.astype(dtype) / np.asarray(DIGITS_MAX_PIXEL, dtype=dtype)
    X = X.reshape(-1, 64) if flatten else X.reshape(-1, 1, 8, 8)

    order = np.random.default_rng(seed).permutation(DIGITS_SAMPLES)
    test, val, train = np.split(order, [num_test, num_test + num_validation])
    mean = X[train].mean(axis=0) if subtract_mean else np.zeros(X.shape[1:], dtype=dtype)
    return {
        "X_train": X[train] - mean, "y_train": y[train],
        "X_val": X[val] - mean, "y_val": y[val],
        "X_test": X[test] - mean, "y_test": y[test],
        "mean_image": mean,
    }


def make_spiral(num_per_class=100, num_classes=3, noise=0.2, seed=None, dtype=np.float32):
    """The classic spiral toy set: C arms winding out from the origin, one per class.

    Arm j holds points at radius r in [0, 1] and angle theta = 4 r + 2 pi j / C, with Gaussian
    noise of std ``noise`` (radians) on the angle. No linear classifier separates the arms.

    Args:
        num_per_class: points per arm (>= 2).
        num_classes: C, the number of arms (>= 2).
        noise: std of the angular noise, >= 0.
        seed: seed of the private generator.
        dtype: np.float32 or np.float64.

    Returns:
        X (points), y (int64 labels in [0, C)), classes in order.

    Shape:
        X: (N, 2) with N = num_per_class * C
        y: (N,)
    """
    fn = "make_spiral"
    K = integer(fn, "num_per_class", num_per_class, low=2)
    C = integer(fn, "num_classes", num_classes, low=2)
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"{fn}: noise must be a finite number >= 0, got {noise!r}.")
    rng = np.random.default_rng(seed)
    r = np.tile(np.linspace(0.0, 1.0, K), C)  # (N,)
    y = np.repeat(np.arange(C, dtype=np.int64), K)  # (N,)
    theta = 4.0 * r + 2 * np.pi * y / C + noise * rng.standard_normal(K * C)
    X = np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1)  # (N, 2)
    return X.astype(dtype), y
