"""Classification losses on class scores: softmax (cross-entropy) and multiclass SVM (hinge).

Each returns the loss averaged over the batch and its gradient with respect to the scores in
one call, as the last node of a network's graph (its upstream gradient is dL/dL = 1).

Shape letters: N batch, C classes.
"""

from __future__ import annotations

import numpy as np

from layers.cases import LayerCase, normal
from layers.validate import float_array, labels, real_number

__all__ = ["softmax_loss", "svm_loss"]


def _check_scores_and_labels(fn: str, x, y):
    x = float_array(fn, "x", x, ndim=2, batch=True)
    N, C = x.shape
    if C == 0:
        raise ValueError(f"{fn}: x must hold at least one class, got shape {x.shape}.")
    y = labels(fn, y, N, C)
    return x, y


def softmax_loss(x, y):
    """Softmax cross-entropy loss, averaged over the batch.

    L = -(1/N) sum_i log( exp(x[i, y_i]) / sum_j exp(x[i, j]) ),  dL/dx = (softmax(x) - onehot(y)) / N.

    Args:
        x: class scores.
        y: integer labels in [0, C).

    Returns:
        loss: a scalar of x's dtype.
        dx: gradient of the loss with respect to x.

    Shape:
        x: (N, C)
        y: (N,)
        dx: (N, C)
    """
    x, y = _check_scores_and_labels("softmax_loss", x, y)
    # BEGIN SOLUTION
    N = x.shape[0]
    rows = np.arange(N)
    # Shifting each row by its max leaves softmax unchanged and keeps exp() from overflowing.
    shifted = x - x.max(axis=1, keepdims=True)  # (N, C)
    correct = shifted[rows, y]  # (N,), a copy: taken before shifted is exponentiated in place
    sums = np.exp(shifted, out=shifted).sum(axis=1)  # (N,); shifted now holds exp(shifted)
    # log p[i, y_i] = shifted[i, y_i] - log(sums[i]): one exp pass, no full log-probability array.
    loss = -(correct - np.log(sums)).sum() / N
    dx = shifted
    dx /= (sums * N)[:, None]  # softmax / N
    dx[rows, y] -= x.dtype.type(1 / N)
    return x.dtype.type(loss), dx
    # END SOLUTION


def svm_loss(x, y, delta=1.0):
    """Multiclass SVM (hinge) loss, averaged over the batch.

    L = (1/N) sum_i sum_{j != y_i} max(0, x[i, j] - x[i, y_i] + delta). Where a margin is
    exactly zero the subgradient 0 is used.

    Args:
        x: class scores.
        y: integer labels in [0, C).
        delta: the margin, a positive number, Python or numpy (1.0 in the course).

    Returns:
        loss: a scalar of x's dtype.
        dx: gradient of the loss with respect to x.

    Shape:
        x: (N, C)
        y: (N,)
        dx: (N, C)
    """
    fn = "svm_loss"
    x, y = _check_scores_and_labels(fn, x, y)
    delta = real_number(fn, "delta (the margin)", delta, low=0.0, low_open=True)
    # BEGIN SOLUTION
    N = x.shape[0]
    rows = np.arange(N)
    correct = x[rows, y][:, None]  # (N, 1)
    margins = np.maximum(0, x - correct + x.dtype.type(delta))
    margins[rows, y] = 0
    loss = margins.sum() / N
    positive = margins > 0
    dx = positive.astype(x.dtype)
    # Each violated margin pushes its own score up and the correct class's score down.
    dx[rows, y] = -positive.sum(axis=1)
    dx /= N
    return x.dtype.type(loss), dx
    # END SOLUTION


# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests and the benchmarks run for this family (layers/cases.py).

def svm_kink_distance(x, y):
    """Distance to the SVM hinge: min over samples i and classes j != y_i of |x_ij - x_iy_i + 1|.

    Args:
        x: class scores.
        y: integer labels.

    Returns:
        float.

    Shape:
        x: (N, C); y: (N,)
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"svm_kink_distance: x must be (N, C) and y (N,), got {x.shape} and {y.shape}.")
    margins = np.abs(x - x[np.arange(x.shape[0]), y][:, None] + 1.0)
    margins[np.arange(x.shape[0]), y] = np.inf
    return float(margins.min())


# (N, C) at each size.
_SIZES = {"check": (6, 4), "course": (100, 10), "training": (1024, 1000)}


def _scores(scale):
    def make(rng, size, dtype):
        N, C = _SIZES[size]
        y = rng.integers(0, C, N)
        return {"x": normal(rng, (N, C), dtype, scale=scale)}, {"y": y}
    return make


CASES = (
    LayerCase("softmax_loss", softmax_loss, None, _scores(3.0), kind="loss", graded=False,
              torch=lambda torch, t, p: torch.nn.functional.cross_entropy(t["x"], torch.from_numpy(p["y"])),
              target=1.3),
    LayerCase("svm_loss", svm_loss, None, _scores(1.0), kind="loss", graded=False, bench=False,
              kinks=lambda inputs, params: svm_kink_distance(inputs["x"], params["y"]),
              torch=lambda torch, t, p: torch.nn.functional.multi_margin_loss(t["x"], torch.from_numpy(p["y"]),
                                                                              reduction="sum")
              * t["x"].shape[1] / t["x"].shape[0]),
)
