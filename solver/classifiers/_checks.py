"""Argument checks shared by the assignment-1 classifiers (kNN, linear SVM, softmax).

They add what layers/validate.py has no need for: a data matrix with a hint to flatten
images and labels without a known class count (integer settings go through
layers.validate.integer). Messages name the function, the argument, what was expected and
what was received.

Shape letters: N samples, D features, C classes.
"""

from __future__ import annotations

import numpy as np

from layers.validate import float_array, real_number


def data_matrix(fn: str, name: str, X, *, dtype=None, features=None) -> np.ndarray:
    """Check a data matrix: a 2-D floating-point array of one row per sample; returned unchanged.

    Args:
        fn, name: the calling function and the argument, for the error message.
        dtype: the dtype X must have (that of the stored data or weights), if any.
        features: the number of columns X must have, if any.

    Returns:
        X itself.

    Shape:
        X: (N, D)
    """
    if isinstance(X, np.ndarray) and X.ndim != 2:
        raise ValueError(
            f"{fn}: {name} must be 2-D, one row per sample, got shape {X.shape}; "
            f"flatten images first with {name}.reshape(len({name}), -1)."
        )
    X = float_array(fn, name, X, ndim=2, dtype=dtype)
    if features is not None and X.shape[1] != features:
        raise ValueError(
            f"{fn}: {name} has {X.shape[1]} features per sample (shape {X.shape}) but "
            f"{features} are expected; it must be (N, {features})."
        )
    return X


def class_labels(fn: str, name: str, y, num_samples: int, num_classes=None) -> np.ndarray:
    """Check labels: an integer array of one label per sample, each in [0, C) (or >= 0 if C is None).

    Args:
        fn, name: the calling function and the argument, for the error message.
        num_samples: N, the rows of the data the labels belong to.
        num_classes: C, if known (the columns of W); None only requires labels >= 0.

    Returns:
        y itself.

    Shape:
        y: (N,)
    """
    if not isinstance(y, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy array of integer class labels, got {type(y).__name__}.")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(
            f"{fn}: {name} must hold integer class labels, got dtype {y.dtype}; "
            f"convert it with {name}.astype(np.int64) if the values are whole numbers."
        )
    if y.shape != (num_samples,):
        raise ValueError(
            f"{fn}: {name} must have shape ({num_samples},), one label per row of the data, got shape {y.shape}."
        )
    if num_samples:
        high = np.inf if num_classes is None else num_classes
        bad = y[(y < 0) | (y >= high)]
        if bad.size:
            allowed = ">= 0" if num_classes is None else f"in [0, {num_classes}) for {num_classes} classes"
            raise ValueError(f"{fn}: {name} must hold labels {allowed}, got {bad.size} outside (first: {bad[0]}).")
    return y


def not_empty(fn: str, name: str, X) -> None:
    """Refuse a data matrix without rows, where a mean or a vote over samples is undefined."""
    if X.shape[0] == 0:
        raise ValueError(f"{fn}: {name} must hold at least one sample, got shape {X.shape}.")


def loss_inputs(fn: str, W, X, y, reg):
    """Check the (W, X, y, reg) of a linear classifier's loss; return them, reg as a float.

    Args:
        fn: the calling loss function, for the error message.
        W: weights, floating point.
        X: a minibatch with W's dtype and W's number of rows as features, at least one sample.
        y: integer labels in [0, C).
        reg: regularization strength, a finite number >= 0.

    Returns:
        (W, X, y, reg).

    Shape:
        W: (D, C)
        X: (N, D)
        y: (N,)
    """
    W = float_array(fn, "W", W, ndim=2)
    D, C = W.shape
    if C == 0:
        raise ValueError(f"{fn}: W must have at least one class column, got shape {W.shape}.")
    X = data_matrix(fn, "X", X, dtype=W.dtype, features=D)
    not_empty(fn, "X", X)
    y = class_labels(fn, "y", y, X.shape[0], C)
    reg = real_number(fn, "reg", reg, low=0)
    return W, X, y, reg
