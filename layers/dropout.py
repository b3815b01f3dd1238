"""Inverted dropout.

In training each unit is kept with probability p and the kept ones are scaled by 1/p, so the
expected output equals the input and test mode is simply the identity (Srivastava et al.,
2014, with the scaling moved to training time).

Randomness never comes from numpy's global state: the mask is drawn from
``dropout_param["rng"]`` (a numpy Generator, advanced by each call) if given, else from a
generator seeded with ``dropout_param["seed"]`` (the same mask on every call, as gradient
checks need), else from a fresh unseeded generator.

Tiny keep probabilities (p < SPARSE_KEEP_P) are drawn another way: comparing uniform draws
with p keeps a unit with probability p rounded up to the draws' step (2^-24 in float32), which
for p = 1e-39 would keep one unit in 16 million rather than none; there the number of kept
units is drawn from the binomial distribution and their places without replacement, so each
unit is kept with probability p exactly, and the dropped units are exact zeros. Where 1/p is
beyond x's dtype (p below 2.9e-39 in float32, 5.6e-309 in float64) a kept unit, which then
has probability p, is scaled by inf.

Shape letters: S is any shape.
"""

from __future__ import annotations

import math

import numpy as np

from layers.cases import LayerCase, normal
from layers.validate import cache_type, check_cache, float_array, integer, real_number, returns_cache, upstream

__all__ = ["dropout_forward", "dropout_backward"]

DROPOUT_KEYS = ("p", "mode", "seed", "rng")
# Keep probabilities below this take the exact sparse draw (see the module docstring); from it
# up, float32 draws (steps of 2^-24) bias the keep rate by less than 2^-12 of p.
SPARSE_KEEP_P = 2.0**-12

DropoutCache = cache_type("dropout_forward", "mode mask shape dtype")


def _sparse_mask(rng, shape, dtype, p):
    """The mask for a tiny p: a binomial count of kept units at distinct random places, each 1/p."""
    size = math.prod(shape)
    kept = int(rng.binomial(size, p))
    mask = np.zeros(shape, dtype=dtype)
    if kept:
        with np.errstate(over="ignore"):  # 1/p beyond the dtype's range is inf, as documented
            scale = dtype.type(1 / p)
        mask.flat[rng.choice(size, kept, replace=False)] = scale
    return mask


@returns_cache(DropoutCache)
def dropout_forward(x, dropout_param):
    """Inverted dropout: keep each unit with probability p and scale it by 1/p (train mode).

    Args:
        x: input.
        dropout_param: dict with "p" (the probability of KEEPING a unit, in (0, 1]), "mode"
            ("train" or "test"), and optionally "seed" (an int >= 0) or "rng" (a numpy Generator).

    Returns:
        out: x * mask in train mode, a copy of x in test mode.
        cache: (mode, mask, shape, dtype): mask is the kept units scaled by 1/p (None in test
            mode); shape and dtype are x's, which dout must have.

    Shape:
        x, out, mask: S
    """
    fn = "dropout_forward"
    x = float_array(fn, "x", x, batch=True)
    if not isinstance(dropout_param, dict):
        raise TypeError(f"{fn}: dropout_param must be a dict, got {type(dropout_param).__name__}.")
    unknown = sorted(set(dropout_param) - set(DROPOUT_KEYS))
    if unknown:
        raise ValueError(f"{fn}: dropout_param has unknown key(s) {unknown}; valid keys are {list(DROPOUT_KEYS)}.")
    if "p" not in dropout_param:
        raise ValueError(f"{fn}: dropout_param['p'], the probability of keeping a unit, is required.")
    p = real_number(fn, "dropout_param['p'] (the keep probability)", dropout_param["p"], low=0.0, high=1.0)
    if p == 0:
        raise ValueError(f"{fn}: dropout_param['p'] (the keep probability) must be in (0, 1], got 0.0; "
                         f"p = 0 would drop every unit.")
    mode = dropout_param.get("mode")
    if mode not in ("train", "test"):
        raise ValueError(f"{fn}: dropout_param['mode'] must be 'train' or 'test', got {mode!r}.")
    seed = integer(fn, "dropout_param['seed']", dropout_param.get("seed"), low=0, allow_none=True,
                   hint="leave it out for a fresh mask, or for a new mask on every call pass a numpy Generator "
                        "as dropout_param['rng'] instead")
    if mode == "test":
        # BEGIN SOLUTION
        out = x.copy()
        # END SOLUTION
        return out, ("test", None, x.shape, x.dtype)
    rng = dropout_param.get("rng")
    if rng is None:
        rng = np.random.default_rng(seed)
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"{fn}: dropout_param['rng'] must be a numpy Generator, got {type(rng).__name__}.")
    if p < SPARSE_KEEP_P:
        mask = _sparse_mask(rng, x.shape, x.dtype, p)
        out = x * mask
    else:
        # BEGIN SOLUTION
        keep = rng.random(x.shape, dtype=x.dtype if x.dtype in (np.float32, np.float64) else np.float64) < p
        mask = keep.astype(x.dtype)
        mask *= x.dtype.type(1 / p)
        out = x * mask
        # END SOLUTION
    return out, ("train", mask, x.shape, x.dtype)


def dropout_backward(dout, cache):
    """Backward pass of dropout: the upstream gradient through the same mask.

    Args:
        dout: upstream gradient, shaped and typed like x (in both modes).
        cache: from dropout_forward.

    Returns:
        dx.

    Shape:
        dout, dx: S
    """
    mode, mask, shape, dtype = check_cache("dropout_backward", cache, DropoutCache)
    dout = upstream("dropout_backward", dout, shape, dtype)
    if mode == "test":
        # BEGIN SOLUTION
        return dout.copy()
        # END SOLUTION
    # BEGIN SOLUTION
    return dout * mask
    # END SOLUTION


# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests and the benchmarks run for this family (layers/cases.py). A fixed
# seed makes the mask the same in every call, so the layer is a fixed function to check.
_SIZES = {"check": (5, 6), "course": (100, 100), "training": (256, 4096)}  # (N, D)
_KEEP = {"check": 0.7, "course": 0.5, "training": 0.5}


def _make_dropout(rng, size, dtype):
    return {"x": normal(rng, _SIZES[size], dtype)}, {"dropout_param": {"p": _KEEP[size], "mode": "train", "seed": 3}}


CASES = (
    # PyTorch's p is the probability of dropping a unit; its mask differs from ours, its cost does not.
    LayerCase("dropout_forward", dropout_forward, dropout_backward, _make_dropout, graded=False, target=1.3,
              torch=lambda torch, t, p: torch.nn.functional.dropout(t["x"], 1 - p["dropout_param"]["p"], training=True),
              torch_exact=False),
)
