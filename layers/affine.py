"""The fully connected (affine) layer: out = x w + b.

Backward uses the matrix-multiply rule from the lecture, never the Jacobian (which for
N = 64, D = M = 4096 would take 256 GiB in float32):

    dL/dx = dL/dout w^T      (N, M) @ (M, D) -> (N, D)
    dL/dw = x^T dL/dout      (D, N) @ (N, M) -> (D, M)
    dL/db = sum over N of dL/dout                -> (M,)

These are the only products whose shapes match, which makes them easy to remember.

Shape letters: N batch, D features in (d_1 * ... * d_k), M features out.
"""

from __future__ import annotations

import math

from layers.cases import LayerCase, normal
from layers.validate import cache_type, check_cache, float_array, param_array, returns_cache, upstream

__all__ = ["affine_forward", "affine_backward"]

AffineCache = cache_type("affine_forward", "x w")


@returns_cache(AffineCache)
def affine_forward(x, w, b):
    """Fully connected layer: flatten each sample of x, then out = x w + b.

    Args:
        x: input, one sample per row of the first axis; the other axes are flattened.
        w: weights.
        b: biases, exactly of shape (M,) (no silent broadcasting of other shapes).

    Returns:
        out: x.reshape(N, D) @ w + b.
        cache: (x, w), all that backward reads.

    Shape:
        x: (N, d_1, ..., d_k), flattened to (N, D) with D = d_1 * ... * d_k
        w: (D, M)
        b: (M,)
        out: (N, M)
    """
    fn = "affine_forward"
    x = float_array(fn, "x", x, min_ndim=2, batch=True)
    w = param_array(fn, "w", w, x.dtype, ndim=2)
    b = param_array(fn, "b", b, x.dtype)
    N = x.shape[0]
    D = math.prod(x.shape[1:])
    if w.shape[0] != D:
        raise ValueError(
            f"{fn}: x has {D} features per sample (shape {x.shape}) but w has shape {w.shape}; "
            f"w must be ({D}, M)."
        )
    M = w.shape[1]
    if b.shape != (M,):
        raise ValueError(f"{fn}: b must have shape ({M},) to match w of shape {w.shape}, got {b.shape}.")
    # BEGIN SOLUTION
    out = x.reshape(N, D) @ w + b  # (N, M)
    # END SOLUTION
    return out, (x, w)


def affine_backward(dout, cache, need_dx=True):
    """Backward pass of the affine layer.

    Args:
        dout: upstream gradient.
        cache: (x, w) from affine_forward.
        need_dx: False skips the gradient of x and returns None for it. A net's first layer
            does so, since its x is the data; that saves a third of the layer's work.

    Returns:
        dx: gradient with respect to x, in x's original shape (None if not need_dx).
        dw: gradient with respect to w.
        db: gradient with respect to b.

    Shape:
        dout: (N, M)
        dx: (N, d_1, ..., d_k)
        dw: (D, M)
        db: (M,)
    """
    x, w = check_cache("affine_backward", cache, AffineCache)
    N, M = x.shape[0], w.shape[1]
    dout = upstream("affine_backward", dout, (N, M), x.dtype)
    # BEGIN SOLUTION
    dw = x.reshape(N, -1).T @ dout  # (D, N) @ (N, M) -> (D, M)
    db = dout.sum(axis=0)  # (M,)
    # END SOLUTION
    if not need_dx:  # tuned path: a net's first layer needs no gradient for its data
        return None, dw, db
    # BEGIN SOLUTION
    dx = (dout @ w.T).reshape(x.shape)  # (N, D) -> (N, d_1, ..., d_k)
    # END SOLUTION
    return dx, dw, db


# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests and the benchmarks run for this family (layers/cases.py).

# x's shape (N, d_1, ..., d_k) and M at each size; D = d_1 * ... * d_k.
_SIZES = {"check": ((4, 2, 3), 5), "course": ((100, 3072), 100), "training": ((256, 1024), 1024)}


def _make_affine(rng, size, dtype):
    x_shape, M = _SIZES[size]
    D = math.prod(x_shape[1:])
    scale = 1.0 if size == "check" else 0.05
    return {"x": normal(rng, x_shape, dtype), "w": normal(rng, (D, M), dtype, scale=scale),
            "b": normal(rng, (M,), dtype)}, {}


CASES = (
    LayerCase("affine_forward", affine_forward, affine_backward, _make_affine, graded=False,
              torch=lambda torch, t, p: torch.nn.functional.linear(t["x"].reshape(t["x"].shape[0], -1), t["w"].T, t["b"]),
              target=1.0,
              gemm=lambda inputs, params: (inputs["x"].shape[0], inputs["w"].shape[0], inputs["w"].shape[1])),
)
