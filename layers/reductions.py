"""Tuned reductions of the normalization layers: BLAS-shaped sums and fused arithmetic.

These are the layers' speed, kept out of the solution regions so that a learner reading
layers/normalization.py sees the plain formulas; each computes exactly what its docstring's
plain numpy expression does, with fewer passes over memory or fewer temporaries.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sum_product", "mean", "fused_subtract_scale"]


def sum_product(a, b, axis):
    """sum(a * b) over axis (non-negative), keeping the reduced axes, without the (a * b) temporary:
    by BLAS (a @ b) when b is a vector along a 2-D a's last axis (layernorm's gamma), else by einsum.

    Shape:
        a: any shape S; b: S, or (S[1],) with axis 1; out: S with the reduced axes of length 1
    """
    if b.ndim == 1 and a.ndim == 2 and axis == 1:
        return (a @ b)[:, None]
    axes = (axis,) if isinstance(axis, int) else axis
    index = list(range(a.ndim))
    total = np.einsum(a, index, b, index, [i for i in index if i not in axes])
    return total.reshape([1 if i in axes else n for i, n in enumerate(a.shape)])


def mean(x, axis):
    """x.mean(axis, keepdims=True); for a 2-D x and axis 0 or 1 as a matrix-vector product with a
    vector of 1 / n, which BLAS does in one pass over x (about twice as fast as x.mean in float32).

    Shape:
        x: any shape S; out: S with the reduced axis of length 1
    """
    if x.ndim != 2 or axis not in (0, 1):
        return x.mean(axis=axis, keepdims=True)
    ones = np.full(x.shape[axis], 1 / x.shape[axis], dtype=x.dtype)
    return (ones @ x)[None, :] if axis == 0 else (x @ ones)[:, None]


def fused_subtract_scale(a, b, c, d, scale):
    """(a - b * c - d) * scale in one new buffer, where the plain expression needs two (tuned path).

    Shape:
        a, b, out: any shape S; c, d, scale: broadcast to S
    """
    out = np.multiply(b, c)
    np.subtract(a, out, out=out)
    out -= d
    out *= scale
    return out
