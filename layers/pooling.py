"""Max pooling: a naive version to read, and fast ones in pure numpy.

Each output is the maximum of a pool_height x pool_width window of one channel, windows
starting every `stride` pixels:

    out[n, c, i, j] = max over (di, dj) of x[n, c, i*stride + di, j*stride + dj]
    H' = 1 + (H - pool_height) / stride,   W' = 1 + (W - pool_width) / stride

Backward routes each upstream gradient to the input that was the maximum of its window (the
max gate's rule). Ties: when several inputs of one window share the maximum, the whole
gradient goes to the first of them in row-major order (smallest di, then smallest dj), so the
gradients of a window always add up to its upstream gradient. NaN counts as the largest value,
as in numpy's max and argmax: a window holding NaN outputs NaN and routes its gradient to its
first NaN. Every version here follows these rules, so naive and fast agree exactly, ties and
NaN included.

The fast forward takes a reshape path when the windows tile the input (stride equal to the
window and the window dividing H and W, the common 2x2 stride-2 case): x.reshape(-1, pw) lines
up each window row as one row of a matrix, so the maximum is taken first along window rows,
then across them, in long contiguous passes. Otherwise (overlapping or gapped windows) a
strided general path keeps a running maximum over the window offsets. Both backward passes
scatter with one whole-array operation per window offset.

Shape letters: N batch, C channels, H W image, H' W' output size.
"""

from __future__ import annotations

import numpy as np

from layers.cases import LayerCase, normal
from layers.validate import cache_type, check_cache, float_array, integer, returns_cache, upstream
from layers.conv import conv_output_size

__all__ = ["max_pool_forward_naive", "max_pool_backward_naive", "max_pool_forward_fast", "max_pool_backward_fast"]

POOL_KEYS = ("pool_height", "pool_width", "stride")

MaxPoolNaiveCache = cache_type("max_pool_forward_naive", "x pool_param")
MaxPoolFastCache = cache_type("max_pool_forward_fast", "x_shape dtype ph pw stride winner")


def _check(fn, x, pool_param):
    x = float_array(fn, "x", x, ndim=4, batch=True)
    if not isinstance(pool_param, dict):
        raise TypeError(f"{fn}: pool_param must be a dict with {list(POOL_KEYS)}, got {type(pool_param).__name__}.")
    unknown = sorted(set(pool_param) - set(POOL_KEYS))
    if unknown:
        raise ValueError(f"{fn}: pool_param has unknown key(s) {unknown}; valid keys are {list(POOL_KEYS)}.")
    ph, pw, stride = (integer(fn, f"pool_param[{key!r}]", pool_param.get(key, 2), low=1) for key in POOL_KEYS)
    Ho = conv_output_size(fn, x.shape[2], ph, stride, 0, "H", what="window", filter_arg="pool_param['pool_height']",
                          stride_arg="pool_param['stride']", pad_arg=None)
    Wo = conv_output_size(fn, x.shape[3], pw, stride, 0, "W", what="window", filter_arg="pool_param['pool_width']",
                          stride_arg="pool_param['stride']", pad_arg=None)
    return x, ph, pw, stride, Ho, Wo


@returns_cache(MaxPoolNaiveCache)
def max_pool_forward_naive(x, pool_param):
    """Max pooling as plain loops.

    Args:
        x: input.
        pool_param: dict with "pool_height", "pool_width" and "stride" (each default 2).

    Returns:
        out: the pooled maps.
        cache: (x, pool_param).

    Shape:
        x: (N, C, H, W); out: (N, C, H', W')
    """
    x, ph, pw, stride, Ho, Wo = _check("max_pool_forward_naive", x, pool_param)
    N, C = x.shape[:2]
    # BEGIN SOLUTION
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    out[n, c, i, j] = x[n, c, i * stride:i * stride + ph, j * stride:j * stride + pw].max()
    # END SOLUTION
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    """Backward pass of naive max pooling: each gradient goes to its window's (first) maximum.

    Args:
        dout: upstream gradient.
        cache: from max_pool_forward_naive.

    Returns:
        dx.

    Shape:
        dout: (N, C, H', W'); dx: (N, C, H, W)
    """
    x, pool_param = check_cache("max_pool_backward_naive", cache, MaxPoolNaiveCache)
    _, ph, pw, stride, Ho, Wo = _check("max_pool_backward_naive", x, pool_param)
    N, C = x.shape[:2]
    dout = upstream("max_pool_backward_naive", dout, (N, C, Ho, Wo), x.dtype)
    # BEGIN SOLUTION
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    window = x[n, c, i * stride:i * stride + ph, j * stride:j * stride + pw]
                    di, dj = np.unravel_index(np.argmax(window), window.shape)  # argmax: first maximum
                    dx[n, c, i * stride + di, j * stride + dj] += dout[n, c, i, j]
    return dx
    # END SOLUTION


def _window(x, di, dj, stride, Ho, Wo):
    """The (di, dj) element of every window: a strided view of shape (N, C, H', W')."""
    return x[:, :, di:di + stride * (Ho - 1) + 1:stride, dj:dj + stride * (Wo - 1) + 1:stride]


def _tiles(shape, ph, pw, stride, Ho, Wo):
    """Whether the windows tile an input of this shape exactly (stride = window, window divides H and W):
    the one test of the reshape path, in forward and backward alike."""
    return stride == ph and stride == pw and shape[2] == Ho * ph and shape[3] == Wo * pw


def _offset_views(x, ph, pw, stride, Ho, Wo):
    """The views of each window offset, in row-major order: (N, C, H', W') each."""
    if _tiles(x.shape, ph, pw, stride, Ho, Wo):
        # Reshape path: the windows are the blocks of x.reshape(N, C, H', ph, W', pw).
        blocks = x.reshape(x.shape[0], x.shape[1], Ho, ph, Wo, pw)
        return [blocks[:, :, :, di, :, dj] for di in range(ph) for dj in range(pw)]
    return [_window(x, di, dj, stride, Ho, Wo) for di in range(ph) for dj in range(pw)]


@returns_cache(MaxPoolFastCache)
def max_pool_forward_fast(x, pool_param):
    """Max pooling without Python loops over elements (same results as the naive version).

    A running elementwise maximum over the window offsets (ph * pw whole-array steps) gives
    the output and, for each window, the offset of its first maximum. Comparisons never see
    NaN as larger, so windows whose output is NaN (one isnan pass over the output finds them)
    get the offset of their first NaN afterwards.

    Args:
        x: input.
        pool_param: dict with "pool_height", "pool_width" and "stride" (each default 2).

    Returns:
        out: the pooled maps.
        cache: (x_shape, dtype, ph, pw, stride, winner), winner[n, c, i, j] being the
            row-major offset di * pool_width + dj of the window's first maximum.

    Shape:
        x: (N, C, H, W); out, winner: (N, C, H', W')
    """
    x, ph, pw, stride, Ho, Wo = _check("max_pool_forward_fast", x, pool_param)
    index_type = np.uint8 if ph * pw <= 256 else np.int32
    if _tiles(x.shape, ph, pw, stride, Ho, Wo):
        out, winner = _tiled_max(x, ph, pw, Ho, Wo, index_type)
    else:
        out, winner = _running_max(_offset_views(x, ph, pw, stride, Ho, Wo), index_type)
    nan_windows = np.isnan(out)
    if nan_windows.any():
        _route_to_first_nan(_offset_views(x, ph, pw, stride, Ho, Wo), nan_windows, winner)
    return out, (x.shape, x.dtype, ph, pw, stride, winner)


def _route_to_first_nan(views, nan_windows, winner):
    """Set winner, where nan_windows is True, to the first offset whose view holds NaN there."""
    pending = nan_windows.copy()
    for k, view in enumerate(views):
        hit = pending & np.isnan(view)
        winner[hit] = k
        pending &= ~hit


def _running_max(views, index_type):
    """Elementwise max over same-shaped views, and the index of the first view attaining it."""
    out = views[0].copy()
    winner = np.zeros(out.shape, dtype=index_type)
    for k, candidate in enumerate(views[1:], start=1):
        better = candidate > out  # strictly greater: the earlier view keeps ties
        np.maximum(out, candidate, out=out)
        # k grows, so the last strictly better view is also the largest k seen: a max records it
        # (and is much faster than np.where).
        np.maximum(winner, better * index_type(k), out=winner)
    return out, winner


def _tiled_max(x, ph, pw, Ho, Wo, index_type):
    """Reshape path: max along each window row, then across the rows of each window."""
    N, C = x.shape[:2]
    segments = x.reshape(-1, pw)  # (N * C * H * W', pw): one window row per row
    row_max, col = _running_max([segments[:, j] for j in range(pw)], index_type)
    row_max = row_max.reshape(N * C * Ho, ph, Wo)
    col = col.reshape(N * C * Ho, ph, Wo)
    out, row = _running_max([row_max[:, i] for i in range(ph)], index_type)
    # The first row reaching the window's maximum, and in it the first column reaching it.
    first_col = np.zeros(out.shape, dtype=index_type)
    for i in range(ph):
        first_col += (row == i) * col[:, i]
    winner = row * index_type(pw) + first_col
    return out.reshape(N, C, Ho, Wo), winner.reshape(N, C, Ho, Wo)


def max_pool_backward_fast(dout, cache):
    """Backward pass of the fast max pooling: one whole-array step per window offset.

    When the windows tile the input every input belongs to exactly one window, so each
    offset's gradients are stored straight into their places; otherwise dx starts at zero
    and they are added (overlapping windows can route several gradients to one input).

    Args:
        dout: upstream gradient.
        cache: from max_pool_forward_fast.

    Returns:
        dx.

    Shape:
        dout: (N, C, H', W'); dx: (N, C, H, W)
    """
    shape, dtype, ph, pw, stride, winner = check_cache("max_pool_backward_fast", cache, MaxPoolFastCache)
    dout = upstream("max_pool_backward_fast", dout, winner.shape, dtype)
    Ho, Wo = winner.shape[2:]
    tiles = _tiles(shape, ph, pw, stride, Ho, Wo)
    dx = np.empty(shape, dtype=dtype) if tiles else np.zeros(shape, dtype=dtype)
    for k, target in enumerate(_offset_views(dx, ph, pw, stride, Ho, Wo)):
        if tiles:
            np.multiply(dout, winner == k, out=target)
        else:
            target += dout * (winner == k)
    return dx


# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests, the grader and the benchmarks run for this family (layers/cases.py).

def max_pool_kink_distance(x, pool_param):
    """Distance to a tie in a max-pool window: the smallest gap between a window's two largest values.

    Args:
        x: the pooling input.
        pool_param: dict with "pool_height", "pool_width", "stride".

    Returns:
        float (inf when every window has one element).

    Shape:
        x: (N, C, H, W)
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"max_pool_kink_distance: x must be (N, C, H, W), got shape {x.shape}.")
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param.get("stride", 1)
    windows = np.lib.stride_tricks.sliding_window_view(x, (ph, pw), axis=(2, 3))[:, :, ::s, ::s]
    flat = windows.reshape(*windows.shape[:4], ph * pw)  # (N, C, H', W', ph * pw)
    if flat.shape[-1] < 2:
        return float("inf")
    top2 = np.sort(flat, axis=-1)[..., -2:]
    return float((top2[..., 1] - top2[..., 0]).min())


_SQUARE = {"pool_height": 2, "pool_width": 2, "stride": 2}
# x's shape at each size (2x2 windows, stride 2).
_SIZES = {"check": (2, 3, 6, 6), "course": (100, 25, 16, 16), "training": (64, 64, 28, 28)}


def _make_pool(pool_param=None, check_shape=None):
    def make(rng, size, dtype):
        shape = check_shape if check_shape and size == "check" else _SIZES[size]
        return {"x": normal(rng, shape, dtype)}, {"pool_param": dict(pool_param or _SQUARE)}
    return make


def _pool_kinks(inputs, params):
    return max_pool_kink_distance(inputs["x"], params["pool_param"])


def _torch_pool(torch, t, params):
    p = params["pool_param"]
    return torch.nn.functional.max_pool2d(t["x"], (p["pool_height"], p["pool_width"]), p["stride"])


CASES = (
    LayerCase("max_pool_forward_naive", max_pool_forward_naive, max_pool_backward_naive, _make_pool(),
              kinks=_pool_kinks, graded=False, bench=False, torch=_torch_pool),
    LayerCase("max_pool_forward_fast", max_pool_forward_fast, max_pool_backward_fast, _make_pool(),
              kinks=_pool_kinks, graded=False, torch=_torch_pool, target=1.5),
    LayerCase("max_pool_forward_fast (overlapping 3x3/2)", max_pool_forward_fast, max_pool_backward_fast,
              _make_pool({"pool_height": 3, "pool_width": 3, "stride": 2}, (2, 2, 7, 7)),
              kinks=_pool_kinks, graded=False, bench=False, torch=_torch_pool),
)
