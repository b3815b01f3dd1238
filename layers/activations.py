"""The activations of the lecture's slide beside sigmoid and tanh (layers/saturating.py): relu,
leaky_relu, elu, gelu and silu, elementwise, and maxout.

An elementwise function has a diagonal Jacobian, so backward never forms it: the downstream
gradient is the upstream gradient times the local derivative, element by element.

Every function takes a Python number or a float32 or float64 numpy array of any shape S and
returns values of that shape and dtype (a 0-d result comes back as a numpy scalar). Each cache
is a tagged tuple (layers.validate.cache_type) that never shares memory with the output, so
editing ``out`` in place leaves backward unchanged.

maxout is not elementwise: each unit is the largest of its k pieces, and its gradient is routed
to that piece, as the max gate routes it.

Shape letters: S is any shape; for maxout N batch, D features in.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf, expit

from layers.cases import LayerCase, elementwise, normal
from layers.saturating import elementwise_backward
from layers.validate import (
    cache_type,
    check_cache,
    float_array,
    float_operands,
    integer,
    real_number,
    returns_cache,
    scalar_if_0d,
    upstream,
)

__all__ = ["relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward", "elu_forward", "elu_backward",
           "gelu_forward", "gelu_backward", "silu_forward", "silu_backward", "maxout_forward", "maxout_backward"]

ReluCache = cache_type("relu_forward", "mask dtype")
LeakyReluCache = cache_type("leaky_relu_forward", "mask slope dtype")
EluCache = cache_type("elu_forward", "local_grad")
GeluCache = cache_type("gelu_forward", "local_grad")
SiluCache = cache_type("silu_forward", "local_grad")
MaxoutCache = cache_type("maxout_forward", "winner features dtype")


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


# The tanh approximation of GELU (Hendrycks and Gimpel, 2016): sqrt(2 / pi) and the cubic's coefficient.
GELU_TANH_SCALE = math.sqrt(2.0 / math.pi)
GELU_TANH_CUBIC = 0.044715
GELU_APPROXIMATIONS = ("none", "tanh")


@returns_cache(EluCache)
def elu_forward(x, alpha=1.0):
    """Exponential linear unit: x where x > 0, alpha (exp(x) - 1) elsewhere.

    Args:
        x: Python number or floating-point array.
        alpha: the value approached as x -> -inf is -alpha; a number > 0 (1.0 by default).

    Returns:
        out: the activation.
        cache: (local_grad,): 1 where x > 0, alpha exp(x) elsewhere.

    Shape:
        x, out, local_grad: S
    """
    (x,), dtype = float_operands("elu_forward", x=x)
    alpha = real_number("elu_forward", "alpha", alpha, low=0.0, low_open=True)
    # BEGIN SOLUTION
    positive, negative = x > 0, np.minimum(x, 0)
    # expm1 keeps exp(x) - 1 accurate for small |x|; the local gradient alpha exp(x) is computed
    # directly, since out + alpha would cancel to 0 for x << 0
    out = np.where(positive, x, alpha * np.expm1(negative))
    local_grad = np.where(positive, dtype.type(1), alpha * np.exp(negative))
    return scalar_if_0d(out), (local_grad,)
    # END SOLUTION


def elu_backward(dout, cache):
    """Backward pass of elu: dout where x > 0, dout * alpha exp(x) elsewhere.

    Args:
        dout: upstream gradient; cache: from elu_forward.

    Returns:
        dx.

    Shape:
        dout, dx: S
    """
    return elementwise_backward("elu_backward", dout, cache, EluCache)


@returns_cache(GeluCache)
def gelu_forward(x, approximate="none"):
    """Gaussian error linear unit, x Phi(x), Phi the standard normal distribution function.

    approximate="none" (the default) computes Phi(x) = (1 + erf(x / sqrt 2)) / 2 exactly, with
    scipy.special.erf; approximate="tanh" uses Phi(x) ~ (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2,
    the form of GPT-2 and BERT, as torch.nn.functional.gelu(x, approximate="tanh") does.

    Args:
        x: Python number or floating-point array.
        approximate: "none" or "tanh".

    Returns:
        out: the activation.
        cache: (local_grad,), the derivative of the chosen form at x.

    Shape:
        x, out, local_grad: S
    """
    (x,), dtype = float_operands("gelu_forward", x=x)
    if approximate not in GELU_APPROXIMATIONS:
        raise ValueError(f"gelu_forward: approximate must be one of {GELU_APPROXIMATIONS}, got {approximate!r}.")
    # BEGIN SOLUTION
    if approximate == "none":
        cdf = (1 + erf(x / dtype.type(math.sqrt(2.0)))) / 2
        pdf = np.exp(-x * x / 2) / dtype.type(math.sqrt(2.0 * math.pi))
        # d/dx [x Phi(x)] = Phi(x) + x phi(x)
        return scalar_if_0d(x * cdf), (cdf + x * pdf,)
    inner = GELU_TANH_SCALE * (x + GELU_TANH_CUBIC * x**3)
    t = np.tanh(inner)
    # d/dx [x (1 + t) / 2] = (1 + t) / 2 + x (1 - t^2) / 2 * d inner / dx
    d_inner = GELU_TANH_SCALE * (1 + 3 * GELU_TANH_CUBIC * x * x)
    local_grad = (1 + t) / 2 + x * (1 - t) * (1 + t) / 2 * d_inner
    return scalar_if_0d(x * (1 + t) / 2), (local_grad,)
    # END SOLUTION


def gelu_backward(dout, cache):
    """Backward pass of gelu: dx = dout * d gelu / dx, of the form forward used.

    Args:
        dout: upstream gradient; cache: from gelu_forward.

    Returns:
        dx.

    Shape:
        dout, dx: S
    """
    return elementwise_backward("gelu_backward", dout, cache, GeluCache)


@returns_cache(SiluCache)
def silu_forward(x):
    """SiLU, also called Swish: x sigmoid(x).

    Args:
        x: Python number or floating-point array.

    Returns:
        out: the activation.
        cache: (local_grad,), the derivative sigmoid(x) (1 + x (1 - sigmoid(x))).

    Shape:
        x, out, local_grad: S
    """
    (x,), _ = float_operands("silu_forward", x=x)
    # BEGIN SOLUTION
    s = np.asarray(expit(x))  # overflow-free, as in sigmoid_forward
    # product rule: d/dx [x s] = s + x s (1 - s)
    return scalar_if_0d(x * s), (s * (1 + x * (1 - s)),)
    # END SOLUTION


def silu_backward(dout, cache):
    """Backward pass of silu: dx = dout * sigmoid(x) (1 + x (1 - sigmoid(x))).

    Args:
        dout: upstream gradient; cache: from silu_forward.

    Returns:
        dx.

    Shape:
        dout, dx: S
    """
    return elementwise_backward("silu_backward", dout, cache, SiluCache)


def _maxout_groups(fn, x, k):
    """x checked as (N, D) with D a multiple of k, viewed as (N, D / k, k): one row of k pieces per unit."""
    x = float_array(fn, "x", x, ndim=2, batch=True)
    k = integer(fn, "k (pieces per unit)", k, low=1)
    if x.shape[1] % k:
        raise ValueError(f"{fn}: x has {x.shape[1]} features, not a multiple of k = {k} (pieces per unit); "
                         f"feed it an affine layer of k * units outputs.")
    return x.reshape(x.shape[0], x.shape[1] // k, k), k


@returns_cache(MaxoutCache)
def maxout_forward(x, k=2):
    """Maxout (Goodfellow et al., 2013): each unit outputs the largest of its k pieces.

    The features of x are k pieces per unit, contiguous: unit j of sample n is
    max(x[n, j k], ..., x[n, j k + k - 1]). After an affine layer of k M outputs this is the
    lecture's max(w_1^T x + b_1, ..., w_k^T x + b_k) for M units; k = 2 with one piece fixed at 0
    would be ReLU.

    Args:
        x: inputs, (N, D) with D a multiple of k.
        k: pieces per unit, an int >= 1.

    Returns:
        out: the largest piece of each unit.
        cache: (winner, D, dtype): the index of each unit's largest piece (the first on a tie),
            D and x's dtype.

    Shape:
        x: (N, D); out, winner: (N, D / k)
    """
    groups, k = _maxout_groups("maxout_forward", x, k)
    # BEGIN SOLUTION
    winner = np.argmax(groups, axis=2)
    out = np.take_along_axis(groups, winner[:, :, None], axis=2)[:, :, 0]
    return out, (winner, groups.shape[1] * k, groups.dtype)
    # END SOLUTION


def maxout_backward(dout, cache):
    """Backward pass of maxout: each unit's upstream gradient goes to its largest piece, the others get 0.

    Args:
        dout: upstream gradient; cache: from maxout_forward.

    Returns:
        dx.

    Shape:
        dout: (N, D / k); dx: (N, D)
    """
    winner, D, dtype = check_cache("maxout_backward", cache, MaxoutCache)
    dout = upstream("maxout_backward", dout, winner.shape, dtype)
    # BEGIN SOLUTION
    N, M = winner.shape
    dx = np.zeros((N, M, D // M), dtype=dout.dtype)
    np.put_along_axis(dx, winner[:, :, None], dout[:, :, None], axis=2)  # route, as the max gate does
    return dx.reshape(N, D)
    # END SOLUTION

# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests, the grader and the benchmarks run for this family (layers/cases.py).

def _x_kinks(inputs, params):
    """Distance to the kink at 0 of relu and its relatives: min |x|."""
    return float(np.abs(inputs["x"]).min())


def maxout_kink_distance(x, k):
    """Distance to a tie between a maxout unit's two largest pieces.

    Args:
        x: the maxout input; k: pieces per unit.

    Returns:
        float: the smallest gap between a unit's two largest pieces (inf for k = 1).

    Shape:
        x: (N, D)
    """
    x = np.asarray(x, dtype=np.float64)
    if k < 2:
        return float("inf")
    top2 = np.sort(x.reshape(x.shape[0], -1, k), axis=2)[:, :, -2:]
    return float((top2[:, :, 1] - top2[:, :, 0]).min())


# (N, D) and the pieces k of the maxout case at each size.
_MAXOUT = {"check": ((4, 6), 3), "course": ((100, 200), 2), "training": ((256, 4096), 4)}


def _make_maxout(rng, size, dtype):
    return {"x": normal(rng, _MAXOUT[size][0], dtype)}, {"k": _MAXOUT[size][1]}


CASES = (
    LayerCase("relu_forward", relu_forward, relu_backward, elementwise(), kinks=_x_kinks, graded=False,
              torch=lambda torch, t, p: torch.relu(t["x"]), target=1.3),
    LayerCase("leaky_relu_forward", leaky_relu_forward, leaky_relu_backward, elementwise(negative_slope=0.1),
              kinks=_x_kinks, torch=lambda torch, t, p: torch.nn.functional.leaky_relu(t["x"], p["negative_slope"])),
    LayerCase("elu_forward", elu_forward, elu_backward, elementwise(2.0, alpha=0.7), kinks=_x_kinks,
              torch=lambda torch, t, p: torch.nn.functional.elu(t["x"], p["alpha"])),
    LayerCase("gelu_forward", gelu_forward, gelu_backward, elementwise(2.0),
              torch=lambda torch, t, p: torch.nn.functional.gelu(t["x"])),
    LayerCase("gelu_forward (tanh)", gelu_forward, gelu_backward, elementwise(2.0, approximate="tanh"),
              torch=lambda torch, t, p: torch.nn.functional.gelu(t["x"], approximate="tanh")),
    LayerCase("silu_forward", silu_forward, silu_backward, elementwise(3.0),
              torch=lambda torch, t, p: torch.nn.functional.silu(t["x"])),
    LayerCase("maxout_forward", maxout_forward, maxout_backward, _make_maxout,
              kinks=lambda inputs, params: maxout_kink_distance(inputs["x"], params["k"]),
              torch=lambda torch, t, p: t["x"].reshape(t["x"].shape[0], -1, p["k"]).amax(dim=2)),
)
