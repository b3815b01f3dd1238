"""Composite ("sandwich") layers: common chains of layers as one forward/backward pair.

A sandwich's backward pass is the chain rule applied to its parts in reverse order; its cache
is the tuple of its parts' caches.

Shape letters: N batch, D features in, M features out.
"""

from __future__ import annotations

from layers.activations import relu_backward, relu_forward
from layers.affine import affine_backward, affine_forward
from layers.normalization import (
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
)

NORMALIZATIONS = ("batchnorm", "layernorm")


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
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return affine_backward(da, fc_cache, need_dx=need_dx)


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
    normalization, fc_cache, norm_cache, relu_cache = cache
    dz = relu_backward(dout, relu_cache)
    norm_backward = batchnorm_backward_alt if normalization == "batchnorm" else layernorm_backward
    da, dgamma, dbeta = norm_backward(dz, norm_cache)
    dx, dw, db = affine_backward(da, fc_cache, need_dx=need_dx)
    return dx, dw, db, dgamma, dbeta
