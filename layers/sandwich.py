"""Composite ("sandwich") layers: common chains of layers as one forward/backward pair.

A sandwich's backward pass is the chain rule applied to its parts in reverse order; its cache
is the tuple of its parts' caches, tagged like every cache (layers.validate.cache_type).

Shape letters: N batch, D features in, M features out; for the convolutional ones C channels,
H W image, F filters, H' W' after the convolution, H'' W'' after the pooling.
"""

from __future__ import annotations

from layers.cases import LayerCase, normal
from layers.validate import cache_type, check_cache, returns_cache
from layers.activations import relu_backward, relu_forward
from layers.affine import affine_backward, affine_forward
from layers.conv import conv_backward_fast, conv_forward_fast
from layers.pooling import max_pool_backward_fast, max_pool_forward_fast
from layers.spatial_norm import spatial_batchnorm_backward, spatial_batchnorm_forward
from layers.normalization import (
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
)

__all__ = ["affine_relu_forward", "affine_relu_backward", "affine_norm_relu_forward", "affine_norm_relu_backward",
           "conv_relu_forward", "conv_relu_backward", "conv_relu_pool_forward", "conv_relu_pool_backward",
           "conv_bn_relu_forward", "conv_bn_relu_backward"]

NORMALIZATIONS = ("batchnorm", "layernorm")

AffineReluCache = cache_type("affine_relu_forward", "fc_cache relu_cache")
AffineNormReluCache = cache_type("affine_norm_relu_forward", "normalization fc_cache norm_cache relu_cache")
ConvReluCache = cache_type("conv_relu_forward", "conv_cache relu_cache")
ConvReluPoolCache = cache_type("conv_relu_pool_forward", "conv_cache relu_cache pool_cache")
ConvBnReluCache = cache_type("conv_bn_relu_forward", "conv_cache bn_cache relu_cache")


@returns_cache(AffineReluCache)
def affine_relu_forward(x, w, b):
    """An affine layer followed by a relu.

    Args:
        x, w, b: as for affine_forward.

    Returns:
        out: relu(x w + b).
        cache: (affine_cache, relu_cache).

    Shape:
        x: (N, d_1, ..., d_k), flattened to (N, D)
        w: (D, M)
        b: (M,)
        out: (N, M)
    """
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout, cache, need_dx=True):
    """Backward pass of affine_relu: relu's backward, then affine's.

    Args:
        dout: upstream gradient.
        cache: from affine_relu_forward.
        need_dx: False skips the gradient of x (returned as None), as for a net's data.

    Returns:
        (dx, dw, db), shaped like x, w and b.

    Shape:
        dout: (N, M)
        dx: (N, d_1, ..., d_k)
        dw: (D, M)
        db: (M,)
    """
    fc_cache, relu_cache = check_cache("affine_relu_backward", cache, AffineReluCache)
    da = relu_backward(dout, relu_cache)
    return affine_backward(da, fc_cache, need_dx=need_dx)


@returns_cache(AffineNormReluCache)
def affine_norm_relu_forward(x, w, b, gamma, beta, norm_param, normalization="batchnorm"):
    """An affine layer, then batch or layer normalization, then a relu.

    Args:
        x, w, b: as for affine_forward.
        gamma, beta: the normalization's scale and shift.
        norm_param: bn_param for batchnorm (its running averages are updated), ln_param for
            layernorm.
        normalization: "batchnorm" or "layernorm".

    Returns:
        out: relu(norm(x w + b)).
        cache: (normalization, affine_cache, norm_cache, relu_cache).

    Shape:
        x: (N, d_1, ..., d_k), flattened to (N, D)
        w: (D, M); b, gamma, beta: (M,)
        out: (N, M)
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"affine_norm_relu_forward: normalization must be one of {NORMALIZATIONS}, "
                         f"got {normalization!r}.")
    a, fc_cache = affine_forward(x, w, b)
    norm = batchnorm_forward if normalization == "batchnorm" else layernorm_forward
    z, norm_cache = norm(a, gamma, beta, norm_param)
    out, relu_cache = relu_forward(z)
    return out, (normalization, fc_cache, norm_cache, relu_cache)


def affine_norm_relu_backward(dout, cache, need_dx=True):
    """Backward pass of affine_norm_relu: relu, then the normalization (closed form), then affine.

    Args:
        dout: upstream gradient.
        cache: from affine_norm_relu_forward.
        need_dx: False skips the gradient of x (returned as None), as for a net's data.

    Returns:
        (dx, dw, db, dgamma, dbeta).

    Shape:
        dout: (N, M)
        dx: (N, d_1, ..., d_k); dw: (D, M); db, dgamma, dbeta: (M,)
    """
    normalization, fc_cache, norm_cache, relu_cache = check_cache("affine_norm_relu_backward", cache,
                                                                  AffineNormReluCache)
    dz = relu_backward(dout, relu_cache)
    norm_backward = batchnorm_backward_alt if normalization == "batchnorm" else layernorm_backward
    da, dgamma, dbeta = norm_backward(dz, norm_cache)
    dx, dw, db = affine_backward(da, fc_cache, need_dx=need_dx)
    return dx, dw, db, dgamma, dbeta


@returns_cache(ConvReluCache)
def conv_relu_forward(x, w, b, conv_param):
    """A (fast) convolution followed by a relu.

    Args:
        x, w, b, conv_param: as for conv_forward_fast.

    Returns:
        out: relu(conv(x)).
        cache: (conv_cache, relu_cache).

    Shape:
        x: (N, C, H, W); w: (F, C, HH, WW); b: (F,); out: (N, F, H', W')
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout, cache, need_dx=True):
    """Backward pass of conv_relu.

    Args:
        dout: upstream gradient.
        cache: from conv_relu_forward.
        need_dx: False skips dx (returned as None).

    Returns:
        (dx, dw, db).

    Shape:
        dout: (N, F, H', W'); dx: (N, C, H, W); dw: (F, C, HH, WW); db: (F,)
    """
    conv_cache, relu_cache = check_cache("conv_relu_backward", cache, ConvReluCache)
    return conv_backward_fast(relu_backward(dout, relu_cache), conv_cache, need_dx=need_dx)


@returns_cache(ConvReluPoolCache)
def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    """A convolution, a relu, then max pooling.

    Args:
        x, w, b, conv_param: as for conv_forward_fast.
        pool_param: as for max_pool_forward_fast.

    Returns:
        out: pool(relu(conv(x))).
        cache: (conv_cache, relu_cache, pool_cache).

    Shape:
        x: (N, C, H, W); w: (F, C, HH, WW); b: (F,); out: (N, F, H'', W'')
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    r, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward_fast(r, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout, cache, need_dx=True):
    """Backward pass of conv_relu_pool.

    Args:
        dout: upstream gradient.
        cache: from conv_relu_pool_forward.
        need_dx: False skips dx (returned as None).

    Returns:
        (dx, dw, db).

    Shape:
        dout: (N, F, H'', W''); dx: (N, C, H, W); dw: (F, C, HH, WW); db: (F,)
    """
    conv_cache, relu_cache, pool_cache = check_cache("conv_relu_pool_backward", cache, ConvReluPoolCache)
    dr = max_pool_backward_fast(dout, pool_cache)
    return conv_backward_fast(relu_backward(dr, relu_cache), conv_cache, need_dx=need_dx)


@returns_cache(ConvBnReluCache)
def conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param):
    """A convolution, spatial batch normalization, then a relu.

    Args:
        x, w, b, conv_param: as for conv_forward_fast.
        gamma, beta, bn_param: as for spatial_batchnorm_forward.

    Returns:
        out: relu(spatial_batchnorm(conv(x))).
        cache: (conv_cache, bn_cache, relu_cache).

    Shape:
        x: (N, C, H, W); w: (F, C, HH, WW); b, gamma, beta: (F,); out: (N, F, H', W')
    """
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    z, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(z)
    return out, (conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(dout, cache, need_dx=True):
    """Backward pass of conv_bn_relu.

    Args:
        dout: upstream gradient.
        cache: from conv_bn_relu_forward.
        need_dx: False skips dx (returned as None).

    Returns:
        (dx, dw, db, dgamma, dbeta).

    Shape:
        dout: (N, F, H', W'); dx: (N, C, H, W); dw: (F, C, HH, WW); db, dgamma, dbeta: (F,)
    """
    conv_cache, bn_cache, relu_cache = check_cache("conv_bn_relu_backward", cache, ConvBnReluCache)
    dz = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = spatial_batchnorm_backward(dz, bn_cache)
    dx, dw, db = conv_backward_fast(da, conv_cache, need_dx=need_dx)
    return dx, dw, db, dgamma, dbeta


# ----------------------------------------------------------------------------- declarations
# What gradcheck and the tests run for this family (layers/cases.py); the parts are graded
# and benchmarked on their own.

def _affine_norm(N, D, M, normalization=None):
    def make(rng, size, dtype):
        inputs = {"x": normal(rng, (N, D), dtype), "w": normal(rng, (D, M), dtype), "b": normal(rng, (M,), dtype)}
        if normalization is None:
            return inputs, {}
        inputs.update(gamma=normal(rng, (M,), dtype, scale=0.1, shift=1.0), beta=normal(rng, (M,), dtype))
        norm_param = {"mode": "train"} if normalization == "batchnorm" else {}
        return inputs, {"norm_param": norm_param, "normalization": normalization}
    return make


def _conv_sandwich(x_shape, F, bn=False, pool=False):
    def make(rng, size, dtype):
        C = x_shape[1]
        inputs = {"x": normal(rng, x_shape, dtype), "w": normal(rng, (F, C, 3, 3), dtype), "b": normal(rng, (F,), dtype)}
        params = {"conv_param": {"stride": 1, "pad": 1}}
        if bn:
            inputs.update(gamma=normal(rng, (F,), dtype, scale=0.1, shift=1.0), beta=normal(rng, (F,), dtype))
            params["bn_param"] = {"mode": "train"}
        if pool:
            params["pool_param"] = {"pool_height": 2, "pool_width": 2, "stride": 2}
        return inputs, params
    return make


CASES = tuple(LayerCase(name, forward, backward, make, graded=False, bench=False) for name, forward, backward, make in (
    ("affine_relu_forward", affine_relu_forward, affine_relu_backward, _affine_norm(4, 6, 5)),
    ("affine_norm_relu_forward (batchnorm)", affine_norm_relu_forward, affine_norm_relu_backward,
     _affine_norm(6, 5, 4, "batchnorm")),
    ("affine_norm_relu_forward (layernorm)", affine_norm_relu_forward, affine_norm_relu_backward,
     _affine_norm(3, 5, 6, "layernorm")),
    ("conv_relu_forward", conv_relu_forward, conv_relu_backward, _conv_sandwich((2, 3, 5, 5), 4)),
    ("conv_relu_pool_forward", conv_relu_pool_forward, conv_relu_pool_backward,
     _conv_sandwich((2, 3, 4, 4), 3, pool=True)),
    ("conv_bn_relu_forward", conv_bn_relu_forward, conv_bn_relu_backward, _conv_sandwich((2, 3, 4, 4), 3, bn=True)),
))
