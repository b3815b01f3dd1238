"""Normalization for convolutional feature maps: spatial batchnorm and spatial groupnorm.

Spatial batchnorm normalizes each channel over the batch and all positions (N * H * W values
per channel): batchnorm on the (N * H * W, C) matrix of pixels, computed in place on the maps. Group normalization
(Wu and He, 2018) splits the C channels of each sample into G groups of C / G channels and
normalizes each group over its channels and positions; like layernorm it does not depend on
the batch, so it behaves the same in training and at test time.

Shape letters: N batch, C channels, H W image, G groups.
"""

from __future__ import annotations

import numbers

import numpy as np

from layers.validate import cache_type, check_cache, float_array, param_array, returns_cache, upstream
from layers.normalization import _normalize, bn_settings, ignored_mode, normalized_input_grad, positive_eps

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
    params = []
    for name, value in (("gamma", gamma), ("beta", beta)):
        value = param_array(fn, name, value, x.dtype)
        if value.shape != (C,):
            raise ValueError(f"{fn}: {name} must have shape ({C},) and dtype {x.dtype}, one value per channel of "
                             f"x {x.shape}, got {value.shape} {value.dtype}.")
        params.append(value)
    gamma, beta = params
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
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = np.einsum("nchw,nchw->c", dout, xhat)
    if mode == "test":  # the statistics are constants: the layer is affine in x
        return dout * (gamma4 / std), dgamma, dbeta
    M = dout.size // C  # values per channel, N * H * W
    # dx = gamma / std * (dout - dbeta / M - xhat dgamma / M), built in one buffer
    dx = xhat * (dgamma / M).reshape(1, C, 1, 1)
    np.subtract(dout, dx, out=dx)
    dx -= (dbeta / M).reshape(1, C, 1, 1)
    dx *= gamma4 / std
    # END SOLUTION
    return dx, dgamma, dbeta


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
    params = []
    for name, value in (("gamma", gamma), ("beta", beta)):
        value = param_array(fn, name, value, x.dtype)
        if value.shape != (1, C, 1, 1):
            raise ValueError(f"{fn}: {name} must have shape (1, {C}, 1, 1) for x {x.shape}, got {value.shape}.")
        params.append(value)
    gamma, beta = params
    if isinstance(G, bool) or not isinstance(G, numbers.Integral) or G < 1:
        raise ValueError(f"{fn}: G must be a positive int, got {G!r}.")
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
    mu = grouped.mean(axis=2, keepdims=True)
    xc = grouped - mu
    std = np.sqrt((xc * xc).mean(axis=2, keepdims=True) + eps)  # (N, G, 1)
    xhat = (xc / std).reshape(N, C, H, W)
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
