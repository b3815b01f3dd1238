"""Attention: softmax as a layer, scaled dot-product attention, and the two tables a transformer
needs beside them, the causal mask and the sinusoidal positional encoding. Multi-head attention
and the pre-LN transformer block, built from these, are in layers/transformer.py.

Scaled dot-product attention (Vaswani et al., 2017, section 3.2.1) of queries q, keys k, values v:

    s = q k^T / sqrt(d)            the scores, one per (query, key) pair
    w = softmax(s) along the keys  the attention weights: each row sums to 1
    out = w v

A mask says which keys each query may attend to (True or 1: may attend). A masked score becomes
-inf before the softmax, so its weight is exactly 0. A query whose keys are all masked (a padded
position) has no softmax at all: its weights are defined to be 0, so its output row and every
gradient through it are 0, with no NaN and no warning.

Backward, upstream gradient times local gradient, never forming the softmax's Jacobian:

    dv = w^T dout,   dw = dout v^T,   ds = w * (dw - sum(dw * w) along the keys)
    dq = ds k / sqrt(d),   dk = ds^T q / sqrt(d)

Every product is one np.matmul over the stacked leading axes (batch, heads): no Python loop.

Shape letters: Tq queries, Tk keys (Tq = Tk = T in self-attention), d the query and key width,
dv the value width, "..." any leading axes (N batch, nh heads in multi-head attention); S any
shape (softmax); D the positional encoding's width.
"""

from __future__ import annotations

import math

import numpy as np

from layers.cases import LayerCase, normal
from layers.validate import cache_type, check_cache, float_array, integer, returns_cache, upstream

__all__ = ["softmax_forward", "softmax_backward", "scaled_dot_product_attention_forward",
           "scaled_dot_product_attention_backward", "causal_mask", "positional_encoding"]

SoftmaxCache = cache_type("softmax_forward", "y axis")
ScaledDotProductAttentionCache = cache_type("scaled_dot_product_attention_forward", "q k v weights scale")


@returns_cache(SoftmaxCache)
def softmax_forward(x, axis=-1):
    """Softmax along one axis: y = exp(x) / sum(exp(x)), every slice along axis summing to 1.

    Args:
        x: scores, at least 1-D, its leading axis the batch.
        axis: the axis softmax normalizes over, an int in [-x.ndim, x.ndim) (the last by default).

    Returns:
        y: the probabilities, in (0, 1].
        cache: (y, axis), y a copy of the output (backward reads y; out may be edited in place).

    Shape:
        x, y: any shape S with at least one axis, S[axis] >= 1
    """
    fn = "softmax_forward"
    x = float_array(fn, "x", x, min_ndim=1, batch=True)
    axis = integer(fn, "axis", axis, low=-x.ndim, high=x.ndim - 1, hint=f"x has shape {x.shape}")
    if x.shape[axis] == 0:
        raise ValueError(f"{fn}: x has no values along axis {axis} (shape {x.shape}) to normalize over.")
    # BEGIN SOLUTION
    # softmax(x - c) = softmax(x) for any c; c = the max keeps exp() from overflowing (its largest term is 1)
    y = x - x.max(axis=axis, keepdims=True)
    np.exp(y, out=y)
    y /= y.sum(axis=axis, keepdims=True)
    # END SOLUTION
    return y, (y.copy(), axis)


def softmax_backward(dout, cache):
    """Backward pass of softmax: dx = y * (dout - sum(dout * y) along axis).

    This is the Jacobian diag(y) - y y^T of each slice applied to dout, without forming it.

    Args:
        dout: upstream gradient; cache: from softmax_forward.

    Returns:
        dx.

    Shape:
        dout, dx: S
    """
    y, axis = check_cache("softmax_backward", cache, SoftmaxCache)
    dout = upstream("softmax_backward", dout, y.shape, y.dtype)
    # BEGIN SOLUTION
    dx = dout * y                                   # S
    dx -= y * dx.sum(axis=axis, keepdims=True)      # S minus S * (S with axis of length 1)
    # END SOLUTION
    return dx


def attention_mask(fn, mask, shape):
    """Check an attention mask (True or 1: may attend) against the scores' shape; None stays None.

    Args:
        fn: the calling function, for messages.
        mask: None, or a numpy array of booleans, or of integers or floats that are all 0 or 1.
        shape: the scores' shape (..., Tq, Tk), which mask must broadcast to (numpy's rule: the
            trailing axes equal or 1).

    Returns:
        the mask as a boolean array (mask itself when it is one), or None.

    Raises:
        TypeError: mask is neither None nor a numpy array.
        ValueError: its dtype, values or shape are wrong.

    Shape:
        mask: broadcastable to shape
    """
    if mask is None:
        return None
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{fn}: mask must be None or a numpy array of booleans (True: may attend), "
                        f"got {type(mask).__name__}; wrap it with np.asarray(mask, dtype=bool).")
    if mask.dtype.kind not in "biuf":
        raise ValueError(f"{fn}: mask must hold booleans (or the numbers 0 and 1), got dtype {mask.dtype}.")
    try:
        fits = mask.ndim <= len(shape) and np.broadcast_shapes(mask.shape, shape) == tuple(shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{fn}: mask has shape {mask.shape}, which does not broadcast to the scores' shape "
                         f"{tuple(shape)} (..., Tq, Tk); each of its axes must equal the scores' or be 1.")
    if mask.dtype.kind == "b":
        return mask
    keep = mask == 1
    wrong = ~keep & (mask != 0)
    if wrong.any():
        raise ValueError(f"{fn}: mask must hold only 0 and 1 (or True and False), got {mask[wrong][0].item()!r}.")
    return keep


def causal_mask(T):
    """The causal (look-ahead) mask of a sequence of T positions: query i may attend keys 0 to i.

    Args:
        T: the number of positions, an int >= 1.

    Returns:
        a boolean array, True on and below the diagonal.

    Shape:
        mask: (T, T)
    """
    T = integer("causal_mask", "T", T, low=1)
    return np.tri(T, dtype=bool)


def _attention_inputs(fn, q, k, v):
    """q, k and v checked: float arrays of one dtype, the same leading axes, Tq, Tk, d, dv >= 1."""
    q = float_array(fn, "q", q, min_ndim=2, batch=True)
    k = float_array(fn, "k", k, min_ndim=2, dtype=q.dtype)
    v = float_array(fn, "v", v, min_ndim=2, dtype=q.dtype)
    lead, d = q.shape[:-2], q.shape[-1]
    if k.shape[:-2] != lead or k.shape[-1] != d:
        raise ValueError(f"{fn}: k has shape {k.shape} but q has shape {q.shape}; k must be (*{lead}, Tk, {d}): "
                         f"q's leading axes and its width d = {d}.")
    if v.shape[:-1] != k.shape[:-1]:
        raise ValueError(f"{fn}: v has shape {v.shape} but k has shape {k.shape}; v must be (*{k.shape[:-1]}, dv): "
                         f"one value per key.")
    if 0 in (q.shape[-2], d, k.shape[-2], v.shape[-1]):
        raise ValueError(f"{fn}: q {q.shape}, k {k.shape} and v {v.shape} need at least one query, one key and "
                         f"one feature each (Tq, Tk, d, dv >= 1).")
    return q, k, v


@returns_cache(ScaledDotProductAttentionCache)
def scaled_dot_product_attention_forward(q, k, v, mask=None):
    """Scaled dot-product attention, softmax(q k^T / sqrt(d)) v (the equations are in the module docstring).

    Args:
        q: queries; k: keys; v: values, one per key; the leading axes (batch, heads) are shared.
        mask: None (every key), or booleans or 0/1 numbers broadcastable to (..., Tq, Tk), True / 1
            where a query may attend a key; a query with no key allowed gets an output of 0.

    Returns:
        out: each query's weighted average of the values.
        cache: (q, k, v, weights, scale); cache.weights are the attention weights, scale = 1 / sqrt(d).

    Shape:
        q: (..., Tq, d); k: (..., Tk, d); v: (..., Tk, dv); mask: broadcastable to (..., Tq, Tk)
        out: (..., Tq, dv); weights: (..., Tq, Tk)
    """
    fn = "scaled_dot_product_attention_forward"
    q, k, v = _attention_inputs(fn, q, k, v)
    mask = attention_mask(fn, mask, (*q.shape[:-1], k.shape[-2]))
    scale = q.dtype.type(1 / math.sqrt(q.shape[-1]))
    # BEGIN SOLUTION
    scores = q @ k.swapaxes(-1, -2)                     # (..., Tq, d) @ (..., d, Tk) -> (..., Tq, Tk)
    scores *= scale                                     # dividing by sqrt(d) keeps the scores of order 1
    if mask is not None:
        np.copyto(scores, -np.inf, where=~mask)         # exp(-inf) = 0: a masked key gets no weight
    shift = scores.max(axis=-1, keepdims=True)          # (..., Tq, 1), the max shift of a stable softmax
    if mask is not None:
        shift[shift == -np.inf] = 0                     # a fully masked row: -inf - (-inf) would be NaN
    scores -= shift
    weights = np.exp(scores, out=scores)
    total = weights.sum(axis=-1, keepdims=True)         # (..., Tq, 1), >= 1 unless the row is fully masked
    if mask is not None:
        total[total == 0] = 1                           # a fully masked row: weights 0 / 1 = 0
    weights /= total
    out = weights @ v                                   # (..., Tq, Tk) @ (..., Tk, dv) -> (..., Tq, dv)
    # END SOLUTION
    return out, (q, k, v, weights, scale)


def scaled_dot_product_attention_backward(dout, cache):
    """Backward pass of scaled dot-product attention (the equations are in the module docstring).

    Args:
        dout: upstream gradient; cache: from scaled_dot_product_attention_forward.

    Returns:
        dq, dk, dv: the gradients of forward's inputs, in its order (masked pairs pass no gradient).

    Shape:
        dout: (..., Tq, dv); dq: (..., Tq, d); dk: (..., Tk, d); dv: (..., Tk, dv)
    """
    fn = "scaled_dot_product_attention_backward"
    q, k, v, weights, scale = check_cache(fn, cache, ScaledDotProductAttentionCache)
    dout = upstream(fn, dout, (*weights.shape[:-1], v.shape[-1]), q.dtype)
    # BEGIN SOLUTION
    dv = weights.swapaxes(-1, -2) @ dout                # (..., Tk, Tq) @ (..., Tq, dv) -> (..., Tk, dv)
    dweights = dout @ v.swapaxes(-1, -2)                # (..., Tq, dv) @ (..., dv, Tk) -> (..., Tq, Tk)
    # softmax's backward along the keys, in place: ds = w * (dw - sum(dw * w)); a weight of 0 passes nothing
    dscores = dweights
    dscores -= (dweights * weights).sum(axis=-1, keepdims=True)   # minus (..., Tq, 1)
    dscores *= weights
    dscores *= scale                                    # through s = (q k^T) scale
    dq = dscores @ k                                    # (..., Tq, Tk) @ (..., Tk, d) -> (..., Tq, d)
    dk = dscores.swapaxes(-1, -2) @ q                   # (..., Tk, Tq) @ (..., Tq, d) -> (..., Tk, d)
    # END SOLUTION
    return dq, dk, dv


def positional_encoding(T, D, dtype=np.float64):
    """The sinusoidal positional encoding of Vaswani et al. (2017, section 3.5), added to the inputs
    of a transformer so that attention can tell positions apart.

    P[pos, 2i] = sin(pos / 10000^(2i / D)) and P[pos, 2i + 1] = cos(pos / 10000^(2i / D)): sin in the
    even columns, cos in the odd ones, each pair sharing one frequency. An odd D is allowed: its last
    column is a sin without its cos. Computed in float64, then cast.

    Args:
        T: positions, an int >= 1; D: the model width, an int >= 1.
        dtype: float64 (the default) or float32.

    Returns:
        the table P, row 0 being [0, 1, 0, 1, ...].

    Shape:
        P: (T, D)
    """
    fn = "positional_encoding"
    T, D = integer(fn, "T", T, low=1), integer(fn, "D", D, low=1)
    try:
        table_dtype = np.dtype(dtype)
    except TypeError:
        table_dtype = None
    if table_dtype is None or table_dtype.char not in "fd":
        raise TypeError(f"{fn}: dtype must be np.float64 or np.float32, got {dtype!r}.")
    # BEGIN SOLUTION
    positions = np.arange(T, dtype=np.float64)[:, None]         # (T, 1)
    rates = 10000.0 ** (-np.arange(0, D, 2) / D)                # (ceil(D/2),): 1 / 10000^(2i/D)
    angles = positions * rates                                  # (T, ceil(D/2))
    P = np.empty((T, D))
    P[:, 0::2] = np.sin(angles)
    P[:, 1::2] = np.cos(angles[:, :D // 2])                     # an odd D has one sin column more
    # END SOLUTION
    return P.astype(table_dtype, copy=False)


# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests, the grader and the benchmarks run for this family (layers/cases.py).

# x's shape of the softmax case at each size: the attention scores (N, nh, T, T) beyond the check size.
_SOFTMAX = {"check": (3, 4, 5), "course": (10, 4, 20, 20), "training": (32, 8, 64, 64)}
# (N, nh, Tq, Tk, d, dv) of scaled dot-product attention at each size.
_SDPA = {"check": (2, 2, 3, 4, 3, 2), "course": (10, 4, 20, 20, 16, 16), "training": (32, 8, 64, 64, 32, 32)}


def _make_softmax(axis):
    def make(rng, size, dtype):
        return {"x": normal(rng, _SOFTMAX[size], dtype, scale=3.0)}, {"axis": axis}
    return make


def padding_mask(rng, N, Tq, Tk):
    """A padding mask of N sequences: sample n attends its first lengths[n] keys (all of them for n = 0),
    and the last query of the last sample is a padded position, fully masked.

    Returns:
        a boolean array, True: may attend.

    Shape:
        mask: (N, 1, Tq, Tk), the same for every head
    """
    lengths = rng.integers(1, Tk + 1, N)
    lengths[0] = Tk
    mask = np.repeat((np.arange(Tk) < lengths[:, None])[:, None, None, :], Tq, axis=2)  # (N, 1, Tq, Tk)
    mask[-1, :, -1] = False
    return mask


def _make_sdpa(mask=None):
    def make(rng, size, dtype):
        N, nh, Tq, Tk, d, dv = _SDPA[size]
        Tk = Tq if mask == "causal" else Tk
        inputs = {"q": normal(rng, (N, nh, Tq, d), dtype), "k": normal(rng, (N, nh, Tk, d), dtype),
                  "v": normal(rng, (N, nh, Tk, dv), dtype)}
        masks = {None: None, "causal": causal_mask(Tq) if mask == "causal" else None,
                 "padding": padding_mask(rng, N, Tq, Tk) if mask == "padding" else None}
        return inputs, ({} if mask is None else {"mask": masks[mask]})
    return make


def torch_attention(torch, q, k, v, mask=None):
    """Scaled dot-product attention in plain PyTorch ops, for autograd, ours being the reference:
    a masked score becomes the dtype's lowest number rather than -inf, so a fully masked row
    softmaxes to finite weights, which multiplying by the mask then makes 0, as ours defines them.

    Shape:
        q: (..., Tq, d); k: (..., Tk, d); v: (..., Tk, dv); mask: broadcastable to (..., Tq, Tk)
    """
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is None:
        return torch.softmax(scores, dim=-1) @ v
    keep = torch.from_numpy(np.asarray(mask, dtype=bool))
    weights = torch.softmax(scores.masked_fill(~keep, torch.finfo(scores.dtype).min), dim=-1) * keep
    return weights @ v


CASES = (
    LayerCase("softmax_forward", softmax_forward, softmax_backward, _make_softmax(-1),
              torch=lambda torch, t, p: torch.softmax(t["x"], dim=p["axis"])),
    LayerCase("softmax_forward (axis 1)", softmax_forward, softmax_backward, _make_softmax(1), graded=False,
              bench=False, torch=lambda torch, t, p: torch.softmax(t["x"], dim=p["axis"])),
    LayerCase("scaled_dot_product_attention_forward", scaled_dot_product_attention_forward,
              scaled_dot_product_attention_backward, _make_sdpa(), bench=False,
              torch=lambda torch, t, p: torch_attention(torch, t["q"], t["k"], t["v"])),
    LayerCase("scaled_dot_product_attention_forward (padding mask)", scaled_dot_product_attention_forward,
              scaled_dot_product_attention_backward, _make_sdpa("padding"), bench=False,
              torch=lambda torch, t, p: torch_attention(torch, t["q"], t["k"], t["v"], p["mask"])),
    LayerCase("scaled_dot_product_attention_forward (causal)", scaled_dot_product_attention_forward,
              scaled_dot_product_attention_backward, _make_sdpa("causal"), graded=False, bench=False,
              torch=lambda torch, t, p: torch_attention(torch, t["q"], t["k"], t["v"], p["mask"])),
)
