"""Composite ("sandwich") layers: common chains of layers as one forward/backward pair.

A sandwich's backward pass is the chain rule applied to its parts in reverse order; its cache
is the tuple of its parts' caches.

Shape letters: N batch, D features in, M features out.
"""

from __future__ import annotations

from layers.activations import relu_backward, relu_forward
from layers.affine import affine_backward, affine_forward


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
