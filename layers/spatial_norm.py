"""Normalization for convolutional feature maps: spatial batchnorm and spatial groupnorm.

Spatial batchnorm normalizes each channel over the batch and all positions (N * H * W values
per channel), which is batchnorm on the (N * H * W, C) matrix of pixels. Group normalization
(Wu and He, 2018) splits the C channels of each sample into G groups of C / G channels and
normalizes each group over its channels and positions; like layernorm it does not depend on
the batch, so it behaves the same in training and at test time.

Shape letters: N batch, C channels, H W image, G groups.
"""

from __future__ import annotations

import numbers

import numpy as np

from layers._validate import float_array, real_number, upstream
from layers.normalization import batchnorm_backward_alt, batchnorm_forward, normalized_input_grad

__all__ = ["spatial_batchnorm_forward", "spatial_batchnorm_backward", "spatial_groupnorm_forward",
           "spatial_groupnorm_backward"]


def _as_pixels(x):
    """(N, C, H, W) -> (N * H * W, C): one row per pixel."""
    N, C, H, W = x.shape
    return x.transpose(0, 2, 3, 1).reshape(N * H * W, C)


def _as_maps(rows, shape):
    """(N * H * W, C) -> (N, C, H, W), C-contiguous."""
    N, C, H, W = shape
    return np.ascontiguousarray(rows.reshape(N, H, W, C).transpose(0, 3, 1, 2))


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalization of each channel over the batch and all positions.

    Args:
        x: feature maps.
        gamma, beta: per-channel scale and shift.
        bn_param: as for batchnorm_forward ("mode" required; running averages per channel).

    Returns:
        out: normalized, scaled and shifted maps.
        cache: (x_shape, batchnorm cache).

    Shape:
        x, out: (N, C, H, W); gamma, beta, running_mean, running_var: (C,)
    """
    fn = "spatial_batchnorm_forward"
    x = float_array(fn, "x", x, ndim=4)
    for name, value in (("gamma", gamma), ("beta", beta)):
        if not isinstance(value, np.ndarray) or value.shape != (x.shape[1],):
            got = value.shape if isinstance(value, np.ndarray) else type(value).__name__
            raise ValueError(f"{fn}: {name} must have shape ({x.shape[1]},), one value per channel of x {x.shape}, "
                             f"got {got}.")
    # BEGIN SOLUTION
    out_rows, cache = batchnorm_forward(_as_pixels(x), gamma, beta, bn_param)
    return _as_maps(out_rows, x.shape), (x.shape, cache)
    # END SOLUTION


def spatial_batchnorm_backward(dout, cache):
    """Backward pass of spatial batchnorm: batchnorm's closed form on the pixel matrix.

    Args:
        dout: upstream gradient.
        cache: from spatial_batchnorm_forward.

    Returns:
        (dx, dgamma, dbeta).

    Shape:
        dout, dx: (N, C, H, W); dgamma, dbeta: (C,)
    """
    shape, bn_cache = cache
    dout = upstream("spatial_batchnorm_backward", dout, shape, bn_cache[1].dtype)
    # BEGIN SOLUTION
    dx_rows, dgamma, dbeta = batchnorm_backward_alt(_as_pixels(dout), bn_cache)
    return _as_maps(dx_rows, shape), dgamma, dbeta
    # END SOLUTION


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """Group normalization: normalize each group of C / G channels of each sample.

    Args:
        x: feature maps.
        gamma, beta: per-channel scale and shift, shaped to broadcast over (N, C, H, W).
        G: the number of groups; must divide C.
        gn_param: dict with optional "eps" (1e-5).

    Returns:
        out: normalized, scaled and shifted maps.
        cache: (G, xhat, std, gamma).

    Shape:
        x, out, xhat: (N, C, H, W); gamma, beta: (1, C, 1, 1); std: (N, G, 1)
    """
    fn = "spatial_groupnorm_forward"
    x = float_array(fn, "x", x, ndim=4)
    N, C, H, W = x.shape
    for name, value in (("gamma", gamma), ("beta", beta)):
        float_array(fn, name, value, dtype=x.dtype)
        if value.shape != (1, C, 1, 1):
            raise ValueError(f"{fn}: {name} must have shape (1, {C}, 1, 1) for x {x.shape}, got {value.shape}.")
    if isinstance(G, bool) or not isinstance(G, numbers.Integral) or G < 1:
        raise ValueError(f"{fn}: G must be a positive int, got {G!r}.")
    if C % G:
        raise ValueError(f"{fn}: G = {G} groups must divide the C = {C} channels of x {x.shape}; "
                         f"{C} / {G} = {C / G:g}.")
    if not isinstance(gn_param, dict) or set(gn_param) - {"eps"}:
        raise ValueError(f"{fn}: gn_param must be a dict with at most the key 'eps', got {gn_param!r}.")
    eps = real_number(fn, "gn_param['eps']", gn_param.get("eps", 1e-5), low=0.0)
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
    G, xhat, std, gamma = cache
    dout = upstream("spatial_groupnorm_backward", dout, xhat.shape, xhat.dtype)
    N, C, H, W = xhat.shape
    # BEGIN SOLUTION
    dgamma = (dout * xhat).sum(axis=(0, 2, 3), keepdims=True)
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)
    dxhat = (dout * gamma).reshape(N, G, -1)
    dx = normalized_input_grad(dxhat, xhat.reshape(N, G, -1), std, axis=2)
    return dx.reshape(N, C, H, W), dgamma, dbeta
    # END SOLUTION
