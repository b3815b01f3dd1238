"""Inverted dropout.

In training each unit is kept with probability p and the kept ones are scaled by 1/p, so the
expected output equals the input and test mode is simply the identity (Srivastava et al.,
2014, with the scaling moved to training time).

Randomness never comes from numpy's global state: the mask is drawn from
``dropout_param["rng"]`` (a numpy Generator, advanced by each call) if given, else from a
generator seeded with ``dropout_param["seed"]`` (the same mask on every call, as gradient
checks need), else from a fresh unseeded generator.

Shape letters: S is any shape.
"""

from __future__ import annotations

import numpy as np

from layers._validate import float_array, real_number, upstream

__all__ = ["dropout_forward", "dropout_backward"]

DROPOUT_KEYS = ("p", "mode", "seed", "rng")


def dropout_forward(x, dropout_param):
    """Inverted dropout: keep each unit with probability p and scale it by 1/p (train mode).

    Args:
        x: input.
        dropout_param: dict with "p" (the probability of KEEPING a unit, in (0, 1]), "mode"
            ("train" or "test"), and optionally "seed" (an int) or "rng" (a numpy Generator).

    Returns:
        out: x * mask in train mode, a copy of x in test mode.
        cache: (mode, mask), mask being the kept units scaled by 1/p (None in test mode).

    Shape:
        x, out, mask: S
    """
    fn = "dropout_forward"
    x = float_array(fn, "x", x)
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
    if mode == "test":
        # BEGIN SOLUTION
        return x.copy(), ("test", None)
        # END SOLUTION
    rng = dropout_param.get("rng")
    if rng is None:
        rng = np.random.default_rng(dropout_param.get("seed"))
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"{fn}: dropout_param['rng'] must be a numpy Generator, got {type(rng).__name__}.")
    # BEGIN SOLUTION
    keep = rng.random(x.shape, dtype=x.dtype if x.dtype in (np.float32, np.float64) else np.float64) < p
    mask = keep.astype(x.dtype)
    mask *= x.dtype.type(1 / p)
    return x * mask, ("train", mask)
    # END SOLUTION


def dropout_backward(dout, cache):
    """Backward pass of dropout: the upstream gradient through the same mask.

    Args:
        dout: upstream gradient.
        cache: from dropout_forward.

    Returns:
        dx.

    Shape:
        dout, dx: S
    """
    mode, mask = cache
    dout = float_array("dropout_backward", "dout", dout)
    if mode == "test":
        # BEGIN SOLUTION
        return dout.copy()
        # END SOLUTION
    dout = upstream("dropout_backward", dout, mask.shape, mask.dtype)
    # BEGIN SOLUTION
    return dout * mask
    # END SOLUTION
