"""Normalization layers: batch normalization and layer normalization.

Batch normalization (Ioffe and Szegedy, 2015) normalizes each feature over the batch; layer
normalization (Ba, Kiros and Hinton, 2016) normalizes each sample over its features. Both then
scale by gamma and shift by beta:

    xhat = (x - mean) / sqrt(var + eps),   out = gamma * xhat + beta

with mean and (biased) var over axis 0 for batchnorm and axis 1 for layernorm. Their backward
passes share one closed form, derived by collapsing the computational graph; with M the
number of values in each sum and dxhat = dout * gamma:

    dx = (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)) / (M * sqrt(var + eps))

``normalized_input_grad`` computes it (its tuned reductions are in layers/reductions.py) for ``batchnorm_backward_alt``, ``layernorm_backward`` and
the spatial norms (batchnorm's sums are gamma * dbeta and gamma * dgamma): about 2.5x faster at
1024 x 4096 than ``batchnorm_backward``, which walks the graph node by node, as a learner would
on paper, from the same cache. Running statistics are the one documented side effect in this
library: ``batchnorm_forward`` writes ``running_mean`` and ``running_var`` back into ``bn_param``.

eps must be positive in x's dtype (1e-50 is 0 in float32): with eps = 0 a constant feature
would divide 0 by 0. A running_var given in bn_param must hold no negative value, since its
square root is taken. Both are refused with a message rather than returning NaN.

Shape letters: N batch, D features.
"""

from __future__ import annotations

import numpy as np

from layers.cases import LayerCase, normal
from layers.reductions import fused_subtract_scale, mean, sum_product
from layers.validate import cache_type, check_cache, float_array, param_array, real_number, returns_cache, upstream

__all__ = ["batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt", "layernorm_forward", "layernorm_backward"]

BN_KEYS = ("mode", "eps", "momentum", "running_mean", "running_var")
# "mode" is accepted and ignored, as the course passes it: layernorm is the same in both modes.
LN_KEYS = ("eps", "mode")

BatchnormCache = cache_type("batchnorm_forward", "mode xhat xc std gamma")
LayernormCache = cache_type("layernorm_forward", "xhat std gamma")


def gamma_beta(fn, x, gamma, beta, shape, meaning):
    """(gamma, beta) checked for the checked input x of ``fn``: x's dtype (param_array converts exact
    integers) and ``shape``; ``meaning`` follows the shape in the message (", one value per feature ...").

    Shape:
        gamma, beta: ``shape``
    """
    def check(name, value):
        value = param_array(fn, name, value, x.dtype)
        if value.shape != shape:
            raise ValueError(f"{fn}: {name} must have shape {shape}{meaning}, got {value.shape}.")
        return value
    return check("gamma", gamma), check("beta", beta)


def _check_param(fn, name, param, allowed, dtype):
    if not isinstance(param, dict):
        raise TypeError(f"{fn}: {name} must be a dict, got {type(param).__name__}.")
    unknown = sorted(set(param) - set(allowed))
    if unknown:
        raise ValueError(f"{fn}: {name} has unknown key(s) {unknown}; valid keys are {list(allowed)}.")
    return positive_eps(fn, name, param, dtype)


def positive_eps(fn, name, param, dtype):
    """param["eps"] (default 1e-5) as a float: finite and positive, also once rounded to dtype.

    eps keeps sqrt(var + eps) away from zero; with eps = 0 (or an eps that x's dtype rounds to 0)
    a feature that is constant over the values averaged would give 0 / 0 = NaN.
    """
    eps = real_number(fn, f"{name}['eps']", param.get("eps", 1e-5), low=0.0)
    if eps <= np.finfo(dtype).smallest_subnormal / 2:  # below half the smallest step, dtype rounds eps to 0
        raise ValueError(f"{fn}: {name}['eps'] must be positive in {np.dtype(dtype)}, got {eps!r}; with no eps a "
                         f"constant feature divides 0 by 0. Use the default 1e-5.")
    return eps


def ignored_mode(fn, name, param):
    """Check the optional "mode" of a layer that behaves the same in both modes (it is then ignored)."""
    if "mode" in param and param["mode"] not in ("train", "test"):
        raise ValueError(f"{fn}: {name}['mode'] must be 'train' or 'test' if given (it changes nothing here), "
                         f"got {param['mode']!r}.")


def _normalize(x, axis, eps):
    """(xhat, xc, mu, var, std) along ``axis``; the statistics keep their reduced axis."""
    # BEGIN SOLUTION
    mu = mean(x, axis)
    xc = x - mu
    var = sum_product(xc, xc, axis) / (x.size // mu.size)
    std = np.sqrt(var + eps)
    return xc * (1 / std), xc, mu, var, std
    # END SOLUTION


def normalized_input_grad(dxhat, xhat, std, axis, sums=None, gamma=None):
    """dx from dxhat for xhat = (x - mean) / std along ``axis``: the closed form of the module docstring.

    Args:
        dxhat, xhat: the gradient with respect to xhat, and xhat.
        std: sqrt(var + eps), with the reduced axes kept.
        axis: the axis (or axes) the statistics were taken over.
        sums: (sum(dxhat), sum(dxhat * xhat)) over axis, if the caller has them; else computed.
        gamma: a gamma constant along axis (batchnorm's, not layernorm's), with dout passed for
            dxhat and its sums (dbeta, dgamma): the form is linear in dxhat, so gamma factors out.

    Returns:
        dx = (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)) / (M * std) (times gamma if given).

    Shape:
        dxhat, xhat, dx: any shape S; std, the sums, gamma: S with the reduced axes of length 1
    """
    # BEGIN SOLUTION
    M = dxhat.size // std.size  # values per statistic
    if sums is None:
        sums = dxhat.sum(axis=axis, keepdims=True), sum_product(dxhat, xhat, axis)
    sum_dxhat, sum_dxhat_xhat = sums
    scale = 1 / std if gamma is None else gamma / std
    # dx = (dxhat - xhat * sum_dxhat_xhat / M - sum_dxhat / M) * scale
    return fused_subtract_scale(dxhat, xhat, sum_dxhat_xhat / M, sum_dxhat / M, scale)
    # END SOLUTION


def bn_settings(fn, bn_param, D, dtype):
    """Validate a bn_param dict: (mode, eps, momentum, running) with running the two (D,) averages.

    Missing running averages start as zeros of dtype; bn_param is not written here.
    """
    dtype = np.dtype(dtype)
    eps = _check_param(fn, "bn_param", bn_param, BN_KEYS, dtype)
    mode = bn_param.get("mode")
    if mode not in ("train", "test"):
        raise ValueError(f"{fn}: bn_param['mode'] must be 'train' or 'test', got {mode!r}.")
    momentum = real_number(fn, "bn_param['momentum']", bn_param.get("momentum", 0.9), low=0.0, high=1.0)
    running = {}
    for key in ("running_mean", "running_var"):
        value = bn_param.get(key)
        if value is None:
            value = np.zeros(D, dtype=dtype)
        elif not isinstance(value, np.ndarray) or value.shape != (D,) or value.dtype != dtype:
            got = f"{value.shape} {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
            raise ValueError(f"{fn}: bn_param[{key!r}] must be an array of shape ({D},) and dtype {dtype}, got {got}.")
        running[key] = value
    negative = running["running_var"] < 0  # one pass over D values
    if negative.any():
        first = int(np.flatnonzero(negative)[0])
        raise ValueError(f"{fn}: bn_param['running_var'] must hold variances (>= 0), got "
                         f"{float(running['running_var'][first])!r} for feature {first}; its square root is taken.")
    return mode, eps, momentum, running


@returns_cache(BatchnormCache)
def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalization: normalize each feature over the batch, then scale and shift.

    In "train" mode the batch's own mean and variance are used and the running averages are
    updated, running = momentum * running + (1 - momentum) * batch statistic. In "test" mode
    the running averages are used instead.

    Args:
        x: input.
        gamma, beta: per-feature scale and shift.
        bn_param: dict with "mode" ("train" or "test", required), "eps" (1e-5), "momentum"
            (0.9), "running_mean" and "running_var" (created as zeros of x's dtype and written
            back into bn_param).

    Returns:
        out: the normalized, scaled and shifted input.
        cache: (mode, xhat, xc, std, gamma); xc is None in test mode.

    Shape:
        x, out: (N, D)
        gamma, beta, running_mean, running_var: (D,)
    """
    fn = "batchnorm_forward"
    x = float_array(fn, "x", x, ndim=2, batch=True)
    gamma, beta = gamma_beta(fn, x, gamma, beta, (x.shape[1],), f", one value per feature of x {x.shape}")
    N, D = x.shape
    mode, eps, momentum, running = bn_settings(fn, bn_param, D, x.dtype)
    if mode == "train":
        if N < 2:
            raise ValueError(f"{fn}: train mode needs at least 2 samples to estimate a variance, got x of shape {x.shape}.")
        # BEGIN SOLUTION
        xhat, xc, mu, var, std = _normalize(x, 0, eps)  # xhat, xc: (N, D); mu, var, std: (1, D)
        bn_param["running_mean"] = momentum * running["running_mean"] + (1 - momentum) * mu[0]
        bn_param["running_var"] = momentum * running["running_var"] + (1 - momentum) * var[0]
        # END SOLUTION
    else:
        # BEGIN SOLUTION
        std = np.sqrt(running["running_var"] + eps)[None, :]  # (1, D)
        xc = None
        xhat = (x - running["running_mean"]) / std
        # END SOLUTION
        bn_param.setdefault("running_mean", running["running_mean"])
        bn_param.setdefault("running_var", running["running_var"])
    # BEGIN SOLUTION
    out = xhat * gamma
    out += beta  # in place: no third (N, D) array
    # END SOLUTION
    return out, (mode, xhat, xc, std, gamma)


def batchnorm_backward(dout, cache):
    """Backward pass of batchnorm, node by node through its computational graph.

    Forward graph (train mode), each line a node:
        1. mu = sum(x) / N           5. std = sqrt(var + eps)
        2. xc = x - mu               6. istd = 1 / std
        3. sq = xc ** 2              7. xhat = xc * istd
        4. var = sum(sq) / N         8. out = gamma * xhat + beta
    Backward visits them from 8 to 1, multiplying each upstream gradient by the node's local
    gradient, and adds the two paths into xc (through 7 and through 3) and into x (through 2
    and through 1).

    Args:
        dout: upstream gradient.
        cache: from batchnorm_forward.

    Returns:
        (dx, dgamma, dbeta).

    Shape:
        dout, dx: (N, D); dgamma, dbeta: (D,)
    """
    mode, xhat, xc, std, gamma = check_cache("batchnorm_backward", cache, BatchnormCache)
    dout = upstream("batchnorm_backward", dout, xhat.shape, xhat.dtype)
    if mode == "test":
        return _closed_form_test(dout, xhat, std, gamma)
    # BEGIN SOLUTION
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)                            # node 8: out = gamma * xhat + beta
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    istd = 1 / std
    dxc = dxhat * istd                                  # node 7, path into xc
    distd = (dxhat * xc).sum(axis=0, keepdims=True)     # node 7, path into istd
    dstd = -distd / (std * std)                         # node 6: d(1/s) = -1/s^2
    dvar = dstd * 0.5 / std                             # node 5: d sqrt(v + eps) = 1 / (2 std)
    dsq = np.broadcast_to(dvar / N, xc.shape)           # node 4: mean spreads evenly over N
    dxc = dxc + 2 * xc * dsq                            # node 3, second path into xc
    dmu = -dxc.sum(axis=0, keepdims=True)               # node 2, path into mu
    dx = dxc + dmu / N                                  # nodes 2 and 1: both paths into x
    # END SOLUTION
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """Backward pass of batchnorm in closed form (see the module docstring); same cache.

    Args:
        dout: upstream gradient.
        cache: from batchnorm_forward.

    Returns:
        (dx, dgamma, dbeta).

    Shape:
        dout, dx: (N, D); dgamma, dbeta: (D,)
    """
    mode, xhat, _, std, gamma = check_cache("batchnorm_backward_alt", cache, BatchnormCache)
    dout = upstream("batchnorm_backward_alt", dout, xhat.shape, xhat.dtype)
    if mode == "test":
        return _closed_form_test(dout, xhat, std, gamma)
    # BEGIN SOLUTION
    dbeta = dout.sum(axis=0)
    dgamma = sum_product(dout, xhat, 0)[0]  # sum(dout * xhat, axis=0)
    # gamma is the same down each column: the sums of dxhat = dout * gamma are gamma * (dbeta, dgamma)
    dx = normalized_input_grad(dout, xhat, std, 0, sums=(dbeta, dgamma), gamma=gamma)
    # END SOLUTION
    return dx, dgamma, dbeta


def _closed_form_test(dout, xhat, std, gamma, axis=0):
    # In test mode mean and var are constants, so the layer is affine in x.
    # BEGIN SOLUTION
    return dout * gamma / std, (dout * xhat).sum(axis=axis), dout.sum(axis=axis)
    # END SOLUTION


@returns_cache(LayernormCache)
def layernorm_forward(x, gamma, beta, ln_param):
    """Layer normalization: normalize each sample over its features, then scale and shift.

    The same computation in training and at test time; no running statistics.

    Args:
        x: input.
        gamma, beta: per-feature scale and shift.
        ln_param: dict with optional "eps" (1e-5) and optional "mode" ("train" or "test"),
            accepted as the course passes it and ignored.

    Returns:
        out: the normalized, scaled and shifted input.
        cache: (xhat, std, gamma).

    Shape:
        x, out: (N, D)
        gamma, beta: (D,)
    """
    fn = "layernorm_forward"
    x = float_array(fn, "x", x, ndim=2, batch=True)
    gamma, beta = gamma_beta(fn, x, gamma, beta, (x.shape[1],), f", one value per feature of x {x.shape}")
    eps = _check_param(fn, "ln_param", ln_param, LN_KEYS, x.dtype)
    ignored_mode(fn, "ln_param", ln_param)
    if x.shape[1] < 2:
        raise ValueError(f"{fn}: needs at least 2 features per sample to estimate a variance, got x of shape {x.shape}.")
    # BEGIN SOLUTION
    # one buffer becomes x - mean, then (in place) xhat: unlike _normalize, no x - mean is kept
    D = x.shape[1]
    xhat = x - mean(x, 1)                                     # (N, D)
    std = np.sqrt(sum_product(xhat, xhat, 1) / D + eps)       # (N, 1)
    xhat *= 1 / std
    out = xhat * gamma
    out += beta
    return out, (xhat, std, gamma)
    # END SOLUTION


def layernorm_backward(dout, cache):
    """Backward pass of layernorm: the batchnorm closed form along the feature axis.

    Args:
        dout: upstream gradient.
        cache: from layernorm_forward.

    Returns:
        (dx, dgamma, dbeta).

    Shape:
        dout, dx: (N, D); dgamma, dbeta: (D,)
    """
    xhat, std, gamma = check_cache("layernorm_backward", cache, LayernormCache)
    dout = upstream("layernorm_backward", dout, xhat.shape, xhat.dtype)
    # BEGIN SOLUTION
    prod = dout * xhat                                             # (N, D)
    dgamma = prod.sum(axis=0)
    dbeta = dout.sum(axis=0)
    sums = sum_product(dout, gamma, 1), sum_product(prod, gamma, 1)  # row sums of dxhat, dxhat * xhat
    dx = normalized_input_grad(dout * gamma, xhat, std, 1, sums=sums)
    # END SOLUTION
    return dx, dgamma, dbeta


# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests and the benchmarks run for this family (layers/cases.py).
_SIZES = {"check": (6, 4), "course": (100, 100), "training": (256, 1024)}  # (N, D)


def _make_norm(param, shape=None):
    def make(rng, size, dtype):
        N, D = shape if shape and size == "check" else _SIZES[size]
        return ({"x": normal(rng, (N, D), dtype, scale=2.0, shift=1.0), "gamma": normal(rng, (D,), dtype, scale=0.1,
                 shift=1.0), "beta": normal(rng, (D,), dtype)}, {param: {"mode": "train"} if param == "bn_param" else {}})
    return make


def _torch_bn(torch, t, params):
    return torch.nn.functional.batch_norm(t["x"], None, None, t["gamma"], t["beta"], training=True, eps=1e-5)


CASES = (
    LayerCase("batchnorm_forward", batchnorm_forward, batchnorm_backward, _make_norm("bn_param"), graded=False,
              bench=False, torch=_torch_bn),
    LayerCase("batchnorm_forward (alt backward)", batchnorm_forward, batchnorm_backward_alt, _make_norm("bn_param"),
              graded=False, torch=_torch_bn, target=1.3),
    LayerCase("layernorm_forward", layernorm_forward, layernorm_backward, _make_norm("ln_param", (4, 6)), graded=False,
              target=1.3, torch=lambda torch, t, p: torch.nn.functional.layer_norm(
                  t["x"], t["x"].shape[1:], t["gamma"], t["beta"], eps=1e-5)),
)
