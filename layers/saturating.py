"""Saturating activations: sigmoid and tanh, the classic squashing functions (shipped complete).

Both flatten out for large |x|, where their local gradient vanishes: the reason the lecture
prefers ReLU and its relatives (layers/activations.py) in deep nets. Like every elementwise
function they have a diagonal Jacobian, so backward multiplies the upstream gradient by the
local derivative, element by element.

Every function takes a Python number or a float32 or float64 numpy array of any shape S and
returns values of that shape and dtype (a 0-d result comes back as a numpy scalar). Each cache
holds the local gradient as a new array, never ``out`` itself, so editing ``out`` in place
leaves backward unchanged.

Shape letters: S is any shape.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from layers.cases import LayerCase, elementwise
from layers.validate import cache_type, check_cache, float_operands, returns_cache, scalar_if_0d, upstream

__all__ = ["sigmoid_forward", "sigmoid_backward", "tanh_forward", "tanh_backward"]

SigmoidCache = cache_type("sigmoid_forward", "local_grad")
TanhCache = cache_type("tanh_forward", "local_grad")


def elementwise_backward(fn, dout, cache, kind):
    """dx = dout * local_grad for an elementwise layer whose forward cached (local_grad,): the
    chain rule through a diagonal Jacobian, element by element.

    Args:
        fn: the backward function's name, for messages; dout: upstream gradient;
        cache: the forward's cache; kind: its tagged cache type.

    Returns:
        dx (a numpy scalar for a 0-d x).

    Shape:
        dout, local_grad, dx: S
    """
    (local_grad,) = check_cache(fn, cache, kind)
    dout = upstream(fn, dout, local_grad.shape, local_grad.dtype)
    return scalar_if_0d(dout * local_grad)


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
    return elementwise_backward("sigmoid_backward", dout, cache, SigmoidCache)


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
    return elementwise_backward("tanh_backward", dout, cache, TanhCache)


# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests and the benchmarks run for this family (layers/cases.py).

CASES = (
    LayerCase("sigmoid_forward", sigmoid_forward, sigmoid_backward, elementwise(3.0), graded=False,
              torch=lambda torch, t, p: torch.sigmoid(t["x"])),
    LayerCase("tanh_forward", tanh_forward, tanh_backward, elementwise(2.0), graded=False,
              torch=lambda torch, t, p: torch.tanh(t["x"])),
)
