"""What tests/test_classifiers.py and tests/test_classifiers_losses.py share: random loss problems,
the digits with a bias column, the losses by kind, and a closeness check that names the worst index.

Shape letters: N samples, D features, C classes.
"""

from __future__ import annotations

import numpy as np

from data import load_digits
from solver.classifiers import softmax_loss_naive, softmax_loss_vectorized, svm_loss_naive, svm_loss_vectorized

LOSSES = {"svm": (svm_loss_naive, svm_loss_vectorized), "softmax": (softmax_loss_naive, softmax_loss_vectorized)}
ALL_LOSSES = [fn for pair in LOSSES.values() for fn in pair]

# Two float64 computations of the same sums in a different order agree far closer than this.
EXACT_TOL = 1e-10


def problem(N=8, D=5, C=4, seed=0, dtype=np.float64):
    """A random (W, X, y) of a linear classifier's loss."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((D, C)).astype(dtype)
    X = rng.standard_normal((N, D)).astype(dtype)
    return W, X, rng.integers(0, C, N)


def assert_close(actual, expected, tol, what):
    """Assert |actual - expected| <= tol * max(1, |expected|) everywhere, naming the worst index."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    err = np.abs(actual - expected)
    worst = np.unravel_index(np.argmax(err), err.shape) if err.size else ()
    assert not err.size or err[worst] <= tol * max(1.0, abs(expected[worst])), (
        f"{what}: at index {worst} got {actual[worst]!r}, expected {expected[worst]!r} (tolerance {tol})")


def digits_with_bias():
    """The shipped digits in float64, with X_train_bias and X_val_bias: X and a column of ones."""
    d = load_digits(flatten=True, dtype=np.float64)
    ones = {k: np.ones((len(d[k]), 1)) for k in ("X_train", "X_val")}
    return dict(d, X_train_bias=np.hstack([d["X_train"], ones["X_train"]]),
                X_val_bias=np.hstack([d["X_val"], ones["X_val"]]))
