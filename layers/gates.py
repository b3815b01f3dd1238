"""The lecture's circuit gates: add, multiply, max and copy.

Each gate is one node of a computational graph. Its forward pass computes the output and
caches what the local gradient needs; its backward pass multiplies the upstream gradient by
that local gradient (the chain rule), one input at a time. The four gates show the four
patterns of gradient flow:

    add       distributes: both inputs receive the upstream gradient unchanged
    multiply  swaps: each input receives the upstream gradient times the *other* input
    max       routes: the larger input receives the upstream gradient, the other zero
    copy      adds: one value used n times receives the sum of the n upstream gradients

Operands may be Python numbers, 0-d arrays or arrays of any shape. The binary gates follow
numpy broadcasting; each gradient is then summed back to its own input's shape, since an
input that was broadcast was used once per copy (the copy gate's rule again). Python numbers
(and numpy integer scalars) take the dtype of the array operands; array operands and numpy
floating scalars must share one dtype, float32 or float64. Each cache is a tagged tuple
(layers.validate.cache_type).

Shape letters: S, S_x, S_y stand for any shapes that broadcast together.
"""

from __future__ import annotations

import numpy as np

from layers.cases import LayerCase, normal
from layers.validate import cache_type, check_cache, float_operands, integer, returns_cache, scalar_if_0d, upstream

__all__ = ["add_forward", "add_backward", "multiply_forward", "multiply_backward", "max_forward", "max_backward",
           "copy_forward", "copy_backward"]

AddCache = cache_type("add_forward", "x_shape y_shape dtype")
MultiplyCache = cache_type("multiply_forward", "x y")
MaxCache = cache_type("max_forward", "x_wins x_shape y_shape dtype")
CopyCache = cache_type("copy_forward", "x_shape dtype n")


def _sum_to_shape(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a broadcast gradient back down to ``shape`` (undoing numpy broadcasting)."""
    lead = grad.ndim - len(shape)
    # Axes numpy prepended, plus axes where the input had length 1 and was stretched.
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return scalar_if_0d(grad.reshape(shape))


def _broadcast_shape(fn: str, x: np.ndarray, y: np.ndarray) -> tuple:
    try:
        return np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise ValueError(
            f"{fn}: x of shape {x.shape} and y of shape {y.shape} do not broadcast together; "
            f"trailing dimensions must be equal or 1."
        ) from None


@returns_cache(AddCache)
def add_forward(x, y):
    """Add two values: the gradient distributor.

    Args:
        x, y: Python numbers or floating-point arrays that broadcast together.

    Returns:
        out: x + y.
        cache: (x_shape, y_shape, dtype), all that backward needs.

    Shape:
        x: S_x, y: S_y, out: broadcast(S_x, S_y)
    """
    (x_arr, y_arr), dtype = float_operands("add_forward", x=x, y=y)
    _broadcast_shape("add_forward", x_arr, y_arr)
    out = x_arr + y_arr
    return out, (x_arr.shape, y_arr.shape, dtype)


def add_backward(dout, cache):
    """Backward pass of add: both inputs receive the upstream gradient (summed to their shape).

    Args:
        dout: upstream gradient, shaped like add_forward's output.
        cache: from add_forward.

    Returns:
        (dx, dy), shaped like x and y.

    Shape:
        dout: broadcast(S_x, S_y), dx: S_x, dy: S_y
    """
    x_shape, y_shape, dtype = check_cache("add_backward", cache, AddCache)
    dout = upstream("add_backward", dout, np.broadcast_shapes(x_shape, y_shape), dtype)
    # d(x + y)/dx = d(x + y)/dy = 1: upstream times one, copied so dx and dy never alias dout.
    dx = _sum_to_shape(dout, x_shape).copy()
    dy = _sum_to_shape(dout, y_shape).copy()
    return dx, dy


@returns_cache(MultiplyCache)
def multiply_forward(x, y):
    """Multiply two values elementwise: the gradient swapper.

    Args:
        x, y: Python numbers or floating-point arrays that broadcast together.

    Returns:
        out: x * y.
        cache: (x, y) as arrays; each input's local gradient is the other input.

    Shape:
        x: S_x, y: S_y, out: broadcast(S_x, S_y)
    """
    (x_arr, y_arr), _ = float_operands("multiply_forward", x=x, y=y)
    _broadcast_shape("multiply_forward", x_arr, y_arr)
    return x_arr * y_arr, (x_arr, y_arr)


def multiply_backward(dout, cache):
    """Backward pass of multiply: dx = dout * y, dy = dout * x, each summed to its input's shape.

    Args:
        dout: upstream gradient, shaped like multiply_forward's output.
        cache: from multiply_forward.

    Returns:
        (dx, dy), shaped like x and y.

    Shape:
        dout: broadcast(S_x, S_y), dx: S_x, dy: S_y
    """
    x, y = check_cache("multiply_backward", cache, MultiplyCache)
    dout = upstream("multiply_backward", dout, np.broadcast_shapes(x.shape, y.shape), x.dtype)
    dx = _sum_to_shape(dout * y, x.shape)
    dy = _sum_to_shape(dout * x, y.shape)
    return dx, dy


@returns_cache(MaxCache)
def max_forward(x, y):
    """Elementwise maximum of two values: the gradient router.

    Ties: where x == y the whole gradient goes to x and none to y, so the two gradients always
    add up to the upstream gradient (a valid subgradient; giving 1 to both would double it).

    Args:
        x, y: Python numbers or floating-point arrays that broadcast together.

    Returns:
        out: np.maximum(x, y).
        cache: (x_wins, x_shape, y_shape, dtype), where x_wins is the boolean mask of x >= y.

    Shape:
        x: S_x, y: S_y, out and x_wins: broadcast(S_x, S_y)
    """
    (x_arr, y_arr), dtype = float_operands("max_forward", x=x, y=y)
    _broadcast_shape("max_forward", x_arr, y_arr)
    x_wins = x_arr >= y_arr
    out = scalar_if_0d(np.maximum(x_arr, y_arr))
    return out, (x_wins, x_arr.shape, y_arr.shape, dtype)


def max_backward(dout, cache):
    """Backward pass of max: the upstream gradient flows to the input that was larger.

    Args:
        dout: upstream gradient, shaped like max_forward's output.
        cache: from max_forward.

    Returns:
        (dx, dy), shaped like x and y; dx + dy (before summing to shape) equals dout.

    Shape:
        dout: broadcast(S_x, S_y), dx: S_x, dy: S_y
    """
    x_wins, x_shape, y_shape, dtype = check_cache("max_backward", cache, MaxCache)
    dout = upstream("max_backward", dout, x_wins.shape, dtype)
    dx = _sum_to_shape(dout * x_wins, x_shape)
    dy = _sum_to_shape(dout * ~x_wins, y_shape)
    return dx, dy


@returns_cache(CopyCache)
def copy_forward(x, n=2):
    """Use one value n times (a fan-out in the graph): the gradient adder.

    Args:
        x: a Python number or floating-point array.
        n: how many copies, an int >= 1.

    Returns:
        outs: a tuple of n independent copies of x.
        cache: (x_shape, dtype, n).

    Shape:
        x: S, each of outs: S
    """
    n = integer("copy_forward", "n", n, low=1)
    (x_arr,), dtype = float_operands("copy_forward", x=x)
    outs = tuple(scalar_if_0d(x_arr.copy()) for _ in range(int(n)))
    return outs, (x_arr.shape, dtype, int(n))


def copy_backward(douts, cache):
    """Backward pass of copy: the gradient of x is the sum of the gradients of its copies.

    Args:
        douts: a sequence of n upstream gradients, one per copy, each shaped like x.
        cache: from copy_forward.

    Returns:
        dx, shaped like x.

    Shape:
        douts: n arrays of shape S, dx: S
    """
    x_shape, dtype, n = check_cache("copy_backward", cache, CopyCache)
    if not isinstance(douts, (tuple, list)) or len(douts) != n:
        got = f"{type(douts).__name__} of length {len(douts)}" if isinstance(
            douts, (tuple, list)) else type(douts).__name__
        raise ValueError(
            f"copy_backward: douts must be a tuple or list of {n} upstream gradients, "
            f"one per copy, got {got}."
        )
    dx = np.zeros(x_shape, dtype=dtype)
    for i, dout in enumerate(douts):
        dx += upstream(f"copy_backward (douts[{i}])", dout, x_shape, dtype)
    return scalar_if_0d(dx)


# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests and the benchmarks run for this family (layers/cases.py).

def max_kink_distance(x, y):
    """Distance from (x, y) to the max gate's tie x == y: min |x - y| (broadcast as the gate does).

    Args:
        x, y: the gate's inputs.

    Returns:
        float (inf when the broadcast shape is empty).

    Shape:
        x: S_x; y: S_y
    """
    d = np.abs(np.asarray(x, dtype=np.float64) - np.asarray(y, dtype=np.float64))
    return float(d.min()) if d.size else float("inf")


def _pair(x_shape, y_shape):
    def make(rng, size, dtype):
        return {"x": normal(rng, x_shape, dtype), "y": normal(rng, y_shape, dtype)}, {}
    return make


CASES = (
    LayerCase("add_forward", add_forward, add_backward, _pair((3, 4), (4,)), graded=False, bench=False),
    LayerCase("multiply_forward", multiply_forward, multiply_backward, _pair((3, 1), (3, 4)),
              graded=False, bench=False),
    LayerCase("max_forward", max_forward, max_backward, _pair((3, 4), (3, 4)),
              kinks=lambda inputs, params: max_kink_distance(inputs["x"], inputs["y"]), graded=False, bench=False),
    LayerCase("copy_forward", copy_forward, copy_backward,
              lambda rng, size, dtype: ({"x": normal(rng, (3, 4), dtype)}, {"n": 3}), graded=False, bench=False),
)
