"""Elementwise activations: relu, leaky_relu, sigmoid, tanh.

An elementwise function has a diagonal Jacobian, so backward never forms it: the downstream
gradient is the upstream gradient times the local derivative, element by element.

Every function takes a Python number or a float32 or float64 numpy array of any shape S and
returns values of that shape and dtype (a 0-d result comes back as a numpy scalar). Each cache
is a tagged tuple (layers.validate.cache_type) that never shares memory with the output, so
editing ``out`` in place leaves backward unchanged.

Shape letters: S is any shape.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from layers.cases import LayerCase, normal
from layers.validate import (
    cache_type,
    check_cache,
    float_operands,
    real_number,
    returns_cache,
    scalar_if_0d,
    upstream,
)

__all__ = ["relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward", "sigmoid_forward",
           "sigmoid_backward", "tanh_forward", "tanh_backward"]

ReluCache = cache_type("relu_forward", "mask dtype")
LeakyReluCache = cache_type("leaky_relu_forward", "mask slope dtype")
SigmoidCache = cache_type("sigmoid_forward", "local_grad")
TanhCache = cache_type("tanh_forward", "local_grad")


@returns_cache(ReluCache)
def relu_forward(x):
    """Rectified linear unit, max(0, x).

    Args:
        x: Python number or floating-point array.

    Returns:
        out: max(0, x).
        cache: (mask, dtype), mask being x > 0: the local gradient is 1 there and 0
            elsewhere, including at x == 0.

    Shape:
        x, out, mask: S
    """
    (x,), dtype = float_operands("relu_forward", x=x)
    # BEGIN SOLUTION
    mask = x > 0
    # np.maximum rather than np.where(mask, x, 0): the same values (NaN stays NaN), many times faster.
    return scalar_if_0d(np.maximum(x, np.zeros((), dtype))), (mask, dtype)
    # END SOLUTION


def relu_backward(dout, cache):
    """Backward pass of relu: the upstream gradient passes where x > 0 and is zero elsewhere.

    Args:
        dout: upstream gradient, shaped like x.
        cache: the mask from relu_forward.

    Returns:
        dx, shaped like x.

    Shape:
        dout, dx: S
    """
    mask, dtype = check_cache("relu_backward", cache, ReluCache)
    dout = upstream("relu_backward", dout, mask.shape, dtype)
    # BEGIN SOLUTION
    return scalar_if_0d(dout * mask)
    # END SOLUTION


@returns_cache(LeakyReluCache)
def leaky_relu_forward(x, negative_slope=0.01):
    """Leaky ReLU: x where x > 0, negative_slope * x elsewhere.

    Args:
        x: Python number or floating-point array.
        negative_slope: the slope for x <= 0, a number in [0, 1); 0 gives plain relu.

    Returns:
        out: the activation.
        cache: (mask, negative_slope, dtype) with mask = x > 0.

    Shape:
        x, out, mask: S
    """
    (x,), dtype = float_operands("leaky_relu_forward", x=x)
    slope = real_number("leaky_relu_forward", "negative_slope", negative_slope,
                        low=0.0, high=1.0, high_open=True)
    # BEGIN SOLUTION
    mask = x > 0
    # For 0 <= slope < 1, max(x, slope x) is x where x > 0 and slope x elsewhere.
    return scalar_if_0d(np.maximum(x, slope * x)), (mask, slope, dtype)
    # END SOLUTION


def leaky_relu_backward(dout, cache):
    """Backward pass of leaky relu: dout where x > 0, negative_slope * dout elsewhere.

    Args:
        dout: upstream gradient, shaped like x.
        cache: from leaky_relu_forward.

    Returns:
        dx, shaped like x.

    Shape:
        dout, dx: S
    """
    mask, slope, dtype = check_cache("leaky_relu_backward", cache, LeakyReluCache)
    dout = upstream("leaky_relu_backward", dout, mask.shape, dtype)
    # BEGIN SOLUTION
    local = mask.astype(dtype)  # the local gradient: 1 where x > 0, slope elsewhere
    local *= 1 - slope
    local += slope
    return scalar_if_0d(dout * local)
    # END SOLUTION


@returns_cache(SigmoidCache)
def sigmoid_forward(x):
    """Logistic sigmoid, 1 / (1 + exp(-x)), computed without overflow for any x.

    Args:
        x: Python number or floating-point array.

    Returns:
        out: sigmoid(x), in [0, 1].
        cache: (local_grad,), the local gradient sigma'(x) = sigma(x) (1 - sigma(x)), a new
            array rather than out itself, so that editing out cannot change backward.

    Shape:
        x, out, local_grad: S
    """
    (x,), _ = float_operands("sigmoid_forward", x=x)
    # Written naively, 1 / (1 + exp(-x)) overflows exp for x below about -88 (float32). scipy's
    # expit evaluates the two algebraically equal forms 1 / (1 + e^-x) for x >= 0 and
    # e^x / (1 + e^x) for x < 0, so exp only ever sees -|x| <= 0; it keeps float32 as float32.
    out = np.asarray(expit(x))
    local_grad = 1 - out
    local_grad *= out
    return scalar_if_0d(out), (local_grad,)


def sigmoid_backward(dout, cache):
    """Backward pass of sigmoid: dx = dout * out * (1 - out).

    Args:
        dout: upstream gradient, shaped like x.
        cache: from sigmoid_forward.

    Returns:
        dx, shaped like x.

    Shape:
        dout, dx: S
    """
    (local_grad,) = check_cache("sigmoid_backward", cache, SigmoidCache)
    dout = upstream("sigmoid_backward", dout, local_grad.shape, local_grad.dtype)
    return scalar_if_0d(dout * local_grad)


@returns_cache(TanhCache)
def tanh_forward(x):
    """Hyperbolic tangent.

    Args:
        x: Python number or floating-point array.

    Returns:
        out: tanh(x), in [-1, 1].
        cache: (local_grad,), the local gradient tanh'(x) = 1 - tanh(x)^2, a new array rather
            than out itself, so that editing out cannot change backward.

    Shape:
        x, out, local_grad: S
    """
    (x,), _ = float_operands("tanh_forward", x=x)
    out = np.asarray(np.tanh(x))
    local_grad = 1 - out
    local_grad *= 1 + out  # (1 - t)(1 + t) = 1 - t^2, without the cancellation of 1 - t*t near |t| = 1
    return scalar_if_0d(out), (local_grad,)


def tanh_backward(dout, cache):
    """Backward pass of tanh: dx = dout * (1 - out^2).

    Args:
        dout: upstream gradient, shaped like x.
        cache: from tanh_forward.

    Returns:
        dx, shaped like x.

    Shape:
        dout, dx: S
    """
    (local_grad,) = check_cache("tanh_backward", cache, TanhCache)
    dout = upstream("tanh_backward", dout, local_grad.shape, local_grad.dtype)
    return scalar_if_0d(dout * local_grad)


# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests, the grader and the benchmarks run for this family (layers/cases.py).

def relu_kink_distance(x):
    """Distance from x to ReLU's (and leaky ReLU's) kink at 0: min |x|.

    Args:
        x: the input.

    Returns:
        float (inf for an empty x).

    Shape:
        x: S
    """
    x = np.asarray(x, dtype=np.float64)
    return float(np.abs(x).min()) if x.size else float("inf")


# (N, D) of the elementwise cases at each size.
_SHAPES = {"check": (4, 5), "course": (100, 100), "training": (256, 4096)}


def _elementwise(scale=1.0, **params):
    def make(rng, size, dtype):
        return {"x": normal(rng, _SHAPES[size], dtype, scale=scale)}, dict(params)
    return make


def _x_kinks(inputs, params):
    return relu_kink_distance(inputs["x"])


CASES = (
    LayerCase("relu_forward", relu_forward, relu_backward, _elementwise(), kinks=_x_kinks, graded=False,
              torch=lambda torch, t, p: torch.relu(t["x"]), target=1.3),
    LayerCase("leaky_relu_forward", leaky_relu_forward, leaky_relu_backward, _elementwise(negative_slope=0.1),
              kinks=_x_kinks, torch=lambda torch, t, p: torch.nn.functional.leaky_relu(t["x"], p["negative_slope"])),
    LayerCase("sigmoid_forward", sigmoid_forward, sigmoid_backward, _elementwise(3.0), graded=False,
              torch=lambda torch, t, p: torch.sigmoid(t["x"])),
    LayerCase("tanh_forward", tanh_forward, tanh_backward, _elementwise(2.0), graded=False,
              torch=lambda torch, t, p: torch.tanh(t["x"])),
)
