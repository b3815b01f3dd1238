"""Activations of the ReLU kind: relu and leaky_relu (sigmoid and tanh: layers/saturating.py).

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

from layers.cases import LayerCase, elementwise
from layers.validate import (
    cache_type,
    check_cache,
    float_operands,
    real_number,
    returns_cache,
    scalar_if_0d,
    upstream,
)

__all__ = ["relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward"]

ReluCache = cache_type("relu_forward", "mask dtype")
LeakyReluCache = cache_type("leaky_relu_forward", "mask slope dtype")


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


# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests, the grader and the benchmarks run for this family (layers/cases.py).

def _x_kinks(inputs, params):
    """Distance to the kink at 0 of relu and its relatives: min |x|."""
    return float(np.abs(inputs["x"]).min())


CASES = (
    LayerCase("relu_forward", relu_forward, relu_backward, elementwise(), kinks=_x_kinks, graded=False,
              torch=lambda torch, t, p: torch.relu(t["x"]), target=1.3),
    LayerCase("leaky_relu_forward", leaky_relu_forward, leaky_relu_backward, elementwise(negative_slope=0.1),
              kinks=_x_kinks, torch=lambda torch, t, p: torch.nn.functional.leaky_relu(t["x"], p["negative_slope"])),
)
