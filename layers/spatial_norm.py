"""Normalization for convolutional feature maps: spatial batchnorm and spatial groupnorm.

Spatial batchnorm normalizes each channel over the batch and all positions (N * H * W values
per channel): batchnorm on the (N * H * W, C) matrix of pixels, computed in place on the maps. Group normalization
(Wu and He, 2018) splits the C channels of each sample into G groups of C / G channels and
normalizes each group over its channels and positions; like layernorm it does not depend on
the batch, so it behaves the same in training and at test time.

Shape letters: N batch, C channels, H W image, G groups.
"""

from __future__ import annotations


import numpy as np

from layers.cases import LayerCase, normal
from layers.reductions import sum_product
from layers.validate import cache_type, check_cache, float_array, integer, returns_cache, upstream
from layers.normalization import (_closed_form_test, _normalize, bn_settings, gamma_beta, ignored_mode,
                                  normalized_input_grad, positive_eps)

__all__ = ["spatial_batchnorm_forward", "spatial_batchnorm_backward", "spatial_groupnorm_forward",
           "spatial_groupnorm_backward"]

SpatialBatchnormCache = cache_type("spatial_batchnorm_forward", "mode xhat std gamma4")
SpatialGroupnormCache = cache_type("spatial_groupnorm_forward", "G xhat std gamma")


@returns_cache(SpatialBatchnormCache)
def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalization of each channel over the batch and all positions.

    Works on (N, C, H, W) directly, reducing over axes (0, 2, 3): no transposed copies.

    Args:
        x: feature maps.
        gamma, beta: per-channel scale and shift.
        bn_param: as for batchnorm_forward ("mode" required; running averages per channel).

    Returns:
        out: normalized, scaled and shifted maps.
        cache: (mode, xhat, std, gamma), std and gamma shaped (1, C, 1, 1).

    Shape:
        x, out: (N, C, H, W); gamma, beta, running_mean, running_var: (C,)
    """
    fn = "spatial_batchnorm_forward"
    x = float_array(fn, "x", x, ndim=4, batch=True)
    N, C, H, W = x.shape
    gamma, beta = gamma_beta(fn, x, gamma, beta, (C,), f" and dtype {x.dtype}, one value per channel of x {x.shape}")
    mode, eps, momentum, running = bn_settings(fn, bn_param, C, x.dtype)
    if mode == "train" and N * H * W < 2:
        raise ValueError(f"{fn}: train mode needs at least 2 values per channel to estimate a variance, "
                         f"got x of shape {x.shape}.")
    gamma4, beta4 = gamma.reshape(1, C, 1, 1), beta.reshape(1, C, 1, 1)
    # BEGIN SOLUTION
    if mode == "train":
        xhat, _, mu, var, std = _normalize(x, (0, 2, 3), eps)  # xhat: (N, C, H, W); mu, var, std: (1, C, 1, 1)
        bn_param["running_mean"] = momentum * running["running_mean"] + (1 - momentum) * mu.reshape(C)
        bn_param["running_var"] = momentum * running["running_var"] + (1 - momentum) * var.reshape(C)
    else:
        std = np.sqrt(running["running_var"] + eps).reshape(1, C, 1, 1)
        xhat = (x - running["running_mean"].reshape(1, C, 1, 1)) / std
    out = xhat * gamma4
    out += beta4
    # END SOLUTION
    bn_param.setdefault("running_mean", running["running_mean"])
    bn_param.setdefault("running_var", running["running_var"])
    return out, (mode, xhat, std, gamma4)


def spatial_batchnorm_backward(dout, cache):
    """Backward pass of spatial batchnorm: batchnorm's closed form over axes (0, 2, 3).

    Args:
        dout: upstream gradient.
        cache: from spatial_batchnorm_forward.

    Returns:
        (dx, dgamma, dbeta).

    Shape:
        dout, dx: (N, C, H, W); dgamma, dbeta: (C,)
    """
    mode, xhat, std, gamma4 = check_cache("spatial_batchnorm_backward", cache, SpatialBatchnormCache)
    dout = upstream("spatial_batchnorm_backward", dout, xhat.shape, xhat.dtype)
    C = xhat.shape[1]
    # BEGIN SOLUTION
    if mode == "test":
        return _closed_form_test(dout, xhat, std, gamma4, axis=(0, 2, 3))
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)  # (1, C, 1, 1)
    dgamma = sum_product(dout, xhat, (0, 2, 3))     # (1, C, 1, 1): sum(dout * xhat) per channel
    # as in batchnorm_backward_alt: gamma is the same over each channel's values, so it factors out
    dx = normalized_input_grad(dout, xhat, std, (0, 2, 3), sums=(dbeta, dgamma), gamma=gamma4)
    # END SOLUTION
    return dx, dgamma.reshape(C), dbeta.reshape(C)


@returns_cache(SpatialGroupnormCache)
def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """Group normalization: normalize each group of C / G channels of each sample.

    Args:
        x: feature maps.
        gamma, beta: per-channel scale and shift, shaped to broadcast over (N, C, H, W).
        G: the number of groups; must divide C.
        gn_param: dict with optional "eps" (1e-5) and optional "mode" ("train" or "test"),
            accepted as the course passes it and ignored.

    Returns:
        out: normalized, scaled and shifted maps.
        cache: (G, xhat, std, gamma).

    Shape:
        x, out, xhat: (N, C, H, W); gamma, beta: (1, C, 1, 1); std: (N, G, 1)
    """
    fn = "spatial_groupnorm_forward"
    x = float_array(fn, "x", x, ndim=4, batch=True)
    N, C, H, W = x.shape
    gamma, beta = gamma_beta(fn, x, gamma, beta, (1, C, 1, 1), f" for x {x.shape}")
    G = integer(fn, "G", G, low=1)
    if C % G:
        raise ValueError(f"{fn}: G = {G} groups must divide the C = {C} channels of x {x.shape}; "
                         f"{C} / {G} = {C / G:g}.")
    # "mode" is accepted and ignored, as the course passes it: groupnorm is the same in both modes.
    if not isinstance(gn_param, dict) or set(gn_param) - {"eps", "mode"}:
        raise ValueError(f"{fn}: gn_param must be a dict with at most the keys 'eps' and 'mode', got {gn_param!r}.")
    ignored_mode(fn, "gn_param", gn_param)
    eps = positive_eps(fn, "gn_param", gn_param, x.dtype)
    # BEGIN SOLUTION
    grouped = x.reshape(N, G, (C // G) * H * W)  # (N, G, C/G * H * W)
    xhat, _, _, _, std = _normalize(grouped, 2, eps)  # std: (N, G, 1)
    xhat = xhat.reshape(N, C, H, W)
    return gamma * xhat + beta, (G, xhat, std, gamma)
    # END SOLUTION


def spatial_groupnorm_backward(dout, cache):
    """Backward pass of group normalization: the closed form within each group.

    Args:
        dout: upstream gradient.
        cache: from spatial_groupnorm_forward.

    Returns:
        (dx, dgamma, dbeta), dgamma and dbeta shaped like gamma and beta.

    Shape:
        dout, dx: (N, C, H, W); dgamma, dbeta: (1, C, 1, 1)
    """
    G, xhat, std, gamma = check_cache("spatial_groupnorm_backward", cache, SpatialGroupnormCache)
    dout = upstream("spatial_groupnorm_backward", dout, xhat.shape, xhat.dtype)
    N, C, H, W = xhat.shape
    # BEGIN SOLUTION
    dgamma = (dout * xhat).sum(axis=(0, 2, 3), keepdims=True)
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)
    dxhat = (dout * gamma).reshape(N, G, -1)
    dx = normalized_input_grad(dxhat, xhat.reshape(N, G, -1), std, axis=2)
    return dx.reshape(N, C, H, W), dgamma, dbeta
    # END SOLUTION


# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests and the benchmarks run for this family (layers/cases.py).

# x's shape at each size, and the groups of the group norm case.
_SIZES = {"check": (3, 4, 3, 3), "course": (50, 16, 16, 16), "training": (64, 64, 28, 28)}
_GROUPS = {"check": 3, "course": 4, "training": 8}


def _make_spatial_bn(rng, size, dtype):
    shape = _SIZES[size]
    C = shape[1]
    return ({"x": normal(rng, shape, dtype, scale=2.0, shift=1.0), "gamma": normal(rng, (C,), dtype, scale=0.1, shift=1.0),
             "beta": normal(rng, (C,), dtype)}, {"bn_param": {"mode": "train"}})


def _make_groupnorm(rng, size, dtype):
    shape = (2, 6, 3, 3) if size == "check" else _SIZES[size]
    C = shape[1]
    return ({"x": normal(rng, shape, dtype, scale=2.0, shift=1.0),
             "gamma": normal(rng, (1, C, 1, 1), dtype, scale=0.1, shift=1.0), "beta": normal(rng, (1, C, 1, 1), dtype)},
            {"G": _GROUPS[size], "gn_param": {}})


CASES = (
    LayerCase("spatial_batchnorm_forward", spatial_batchnorm_forward, spatial_batchnorm_backward, _make_spatial_bn,
              graded=False, target=1.3, torch=lambda torch, t, p: torch.nn.functional.batch_norm(
                  t["x"], None, None, t["gamma"], t["beta"], training=True, eps=1e-5)),
    LayerCase("spatial_groupnorm_forward", spatial_groupnorm_forward, spatial_groupnorm_backward, _make_groupnorm,
              graded=False, torch=lambda torch, t, p: torch.nn.functional.group_norm(
                  t["x"], p["G"], t["gamma"].reshape(-1), t["beta"].reshape(-1), eps=1e-5)),
)
