"""Convolution: a naive version to read, and a fast one in pure numpy.

Each of the F filters slides over the zero-padded input with the given stride; each output is
the dot product of a filter with the C x HH x WW patch under it, plus the filter's bias:

    out[n, f, i, j] = b[f] + sum_{c, di, dj} w[f, c, di, dj] * xpad[n, c, i*stride + di, j*stride + dj]
    H' = 1 + (H + 2 pad - HH) / stride,   W' = 1 + (W + 2 pad - WW) / stride

The fast version unfolds the patches of a chunk of n images into a (C * HH * WW, n * H' * W')
matrix ("im2col", one slice copy per filter offset), the images side by side. Forward is then
the (F, C * HH * WW) filter matrix times it; backward is a matrix product for dw and one for
every patch's gradient, which goes back onto the input's gradient with one slice-add per
filter offset (HH * WW whole-array additions instead of per-element np.add.at). With long
filters (C * HH * WW >= STACKED_MIN_K) each of the three is one large matrix product over the
chunk; with short ones (the course's 3 x 3 x 3) numpy's BLAS does better with one product
per image on views of the same matrix, so those run image by image.

Memory: the batch goes through in chunks of at most CHUNK_BYTES of unfolded patches (small
enough that the allocator reuses them rather than mapping fresh pages each call). The chunks
are kept for backward while they total at most CACHE_BYTES; beyond that, backward unfolds each
chunk again, so a large batch never holds more than one chunk of patches.

Shape letters: N batch, C channels, H W image, F filters, HH WW filter size, H' W' output size.
"""

from __future__ import annotations

import numpy as np

from layers.cases import LayerCase, normal
from layers.validate import cache_type, check_cache, float_array, integer, param_array, returns_cache, upstream

__all__ = ["conv_forward_naive", "conv_backward_naive", "conv_forward_fast", "conv_backward_fast",
           "conv_output_size", "CHUNK_BYTES", "CACHE_BYTES", "STACKED_MIN_K"]

# Unfolded patches built at once (bytes); glibc serves blocks under 32 MiB from reusable heap.
CHUNK_BYTES = 16 * 2**20
# Unfolded patches kept in the cache for backward; above this backward unfolds them again.
CACHE_BYTES = 512 * 2**20
# Filter length C * HH * WW from which a chunk's products are single large ones rather than one
# per image. Measured product by product (2 cores, OpenBLAS): at K = 27 (the course shape) one per
# image is 1.2-2.0x faster; at K = 147 and 288 single products are 14-42% faster, except the
# K = 288 forward (5% slower); the whole layer is 11-19% faster.
STACKED_MIN_K = 64

ConvNaiveCache = cache_type("conv_forward_naive", "x w b conv_param")
ConvFastCache = cache_type("conv_forward_fast", "x w stride pad cols")


def conv_output_size(fn, size, filter_size, stride, pad, axis="H", what="filter", *,
                     filter_arg=None, stride_arg="conv_param['stride']", pad_arg="conv_param['pad']"):
    """The output length along one axis of a convolution or a pooling, checking that the filter
    (or window) fits the padded input exactly: the one place that computes H' and W'.

    Refused, naming fn, the axis and every number: a filter larger than the padded input, and a
    stride that does not divide size + 2 pad - filter_size (the last windows would hang over
    the edge, or a strip of input would be skipped).

    Args:
        fn: the caller, for the message.
        size, filter_size, stride, pad: the input length, the filter (or window) length, the step
            and the zero padding on each side: ints, stride >= 1, the others >= 0.
        axis: "H" or "W", for the message.
        what: "filter" or "window", for the message.
        filter_arg, stride_arg, pad_arg: the caller's arguments that set filter_size, stride and
            pad, which the message says to change (pad_arg None: the caller has no padding).
            filter_arg defaults to "the {what}'s size".

    Returns:
        1 + (size + 2 pad - filter_size) / stride, an int.
    """
    size = integer(fn, f"the input size along {axis}", size, low=0)
    filter_size = integer(fn, f"the {what} size along {axis}", filter_size, low=0)
    stride = integer(fn, stride_arg or "stride", stride, low=1)
    pad = integer(fn, pad_arg or "pad", pad, low=0)
    filter_arg = filter_arg or f"the {what}'s size"
    span = size + 2 * pad - filter_size
    if span < 0:
        larger_pad = f", or {pad_arg} at least {-(-(filter_size - size) // 2)}" if pad_arg else ""
        raise ValueError(f"{fn}: the {what} ({filter_size} along {axis}) is larger than the padded input "
                         f"({axis} = {size} + 2 * pad {pad} = {size + 2 * pad}); {filter_arg} must be at most "
                         f"{size + 2 * pad}{larger_pad}.")
    if span % stride:
        knobs = [arg for arg in (pad_arg, stride_arg, filter_arg) if arg]
        raise ValueError(f"{fn}: the {what} does not fit along {axis}: ({axis} + 2 * pad - {what}) / stride = "
                         f"({size} + 2 * {pad} - {filter_size}) / {stride} = {span}/{stride} is not a whole number; "
                         f"change {', '.join(knobs[:-1])} or {knobs[-1]} so that the stride divides "
                         f"{axis} + 2 * pad - {what}.")
    return 1 + span // stride


def _output_shape(fn, x_shape, w_shape, stride, pad):
    """(H', W') of x_shape (N, C, H, W) convolved with w_shape (F, C, HH, WW), through conv_output_size."""
    (H, W), (HH, WW) = x_shape[2:], w_shape[2:]
    return (conv_output_size(fn, H, HH, stride, pad, "H", filter_arg=f"w's HH (shape {tuple(w_shape)})"),
            conv_output_size(fn, W, WW, stride, pad, "W", filter_arg=f"w's WW (shape {tuple(w_shape)})"))


def _check(fn, x, w, b, conv_param):
    x = float_array(fn, "x", x, ndim=4, batch=True)
    w = param_array(fn, "w", w, x.dtype, ndim=4)
    b = param_array(fn, "b", b, x.dtype)
    N, C, H, W = x.shape
    F, Cw, HH, WW = w.shape
    if Cw != C:
        raise ValueError(f"{fn}: x has {C} channels (shape {x.shape}) but w has {Cw} (shape {w.shape}); "
                         f"w must be (F, {C}, HH, WW).")
    if b.shape != (F,):
        raise ValueError(f"{fn}: b must have shape ({F},), one bias per filter of w {w.shape}, got {b.shape}.")
    if not isinstance(conv_param, dict):
        raise TypeError(f"{fn}: conv_param must be a dict with 'stride' and 'pad', got {type(conv_param).__name__}.")
    unknown = sorted(set(conv_param) - {"stride", "pad"})
    if unknown:
        raise ValueError(f"{fn}: conv_param has unknown key(s) {unknown}; valid keys are ['stride', 'pad'].")
    stride = integer(fn, "conv_param['stride']", conv_param.get("stride", 1), low=1)
    pad = integer(fn, "conv_param['pad']", conv_param.get("pad", 0), low=0)
    Ho, Wo = _output_shape(fn, x.shape, w.shape, stride, pad)
    return x, w, b, stride, pad, Ho, Wo


@returns_cache(ConvNaiveCache)
def conv_forward_naive(x, w, b, conv_param):
    """Convolution as plain loops, to read alongside the formula in the module docstring.

    Args:
        x: input images.
        w: filters.
        b: biases.
        conv_param: dict with "stride" (default 1) and "pad" (zero padding on every side, default 0).

    Returns:
        out: the feature maps.
        cache: (x, w, b, conv_param).

    Shape:
        x: (N, C, H, W); w: (F, C, HH, WW); b: (F,); out: (N, F, H', W')
    """
    x, w, b, stride, pad, Ho, Wo = _check("conv_forward_naive", x, w, b, conv_param)
    N, F = x.shape[0], w.shape[0]
    HH, WW = w.shape[2:]
    # BEGIN SOLUTION
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    patch = xpad[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                    out[n, f, i, j] = np.sum(patch * w[f]) + b[f]
    # END SOLUTION
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    """Backward pass of the naive convolution, as plain loops.

    Every output out[n, f, i, j] used one patch and one filter, so its upstream gradient flows
    to both: the filter's gradient gains dout * patch, the patch's gradient gains dout * filter.

    Args:
        dout: upstream gradient.
        cache: from conv_forward_naive.

    Returns:
        (dx, dw, db).

    Shape:
        dout: (N, F, H', W'); dx: (N, C, H, W); dw: (F, C, HH, WW); db: (F,)
    """
    x, w, b, conv_param = check_cache("conv_backward_naive", cache, ConvNaiveCache)
    stride, pad = conv_param.get("stride", 1), conv_param.get("pad", 0)
    N, F = x.shape[0], w.shape[0]
    HH, WW = w.shape[2:]
    Ho, Wo = _output_shape("conv_backward_naive", x.shape, w.shape, stride, pad)
    dout = upstream("conv_backward_naive", dout, (N, F, Ho, Wo), x.dtype)
    # BEGIN SOLUTION
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    rows = slice(i * stride, i * stride + HH)
                    cols = slice(j * stride, j * stride + WW)
                    dw[f] += dout[n, f, i, j] * xpad[n, :, rows, cols]
                    dxpad[n, :, rows, cols] += dout[n, f, i, j] * w[f]
    dx = dxpad[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    # END SOLUTION
    return dx.copy(), dw, db


def _unfold(x, HH, WW, stride, pad, Ho, Wo):
    """im2col for a chunk of n images: (C * HH * WW, n, H' * W'), one slice copy per filter offset.

    Row (c, di, dj) holds, for every image and output position, the input value that filter
    weight w[:, c, di, dj] multiplies.
    """
    n, C = x.shape[:2]
    cols = np.empty((C, HH, WW, n, Ho, Wo), dtype=x.dtype)
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
    xpad = xpad.transpose(1, 0, 2, 3)  # (C, n, H + 2 pad, W + 2 pad), a view
    for di in range(HH):
        for dj in range(WW):
            cols[:, di, dj] = xpad[:, :, di:di + stride * (Ho - 1) + 1:stride, dj:dj + stride * (Wo - 1) + 1:stride]
    return cols.reshape(C * HH * WW, n, Ho * Wo)  # (K, n, L)


def _chunks(N, per_image_bytes):
    size = max(1, min(N, CHUNK_BYTES // max(1, per_image_bytes)))
    return [(start, min(N, start + size)) for start in range(0, N, size)]


@returns_cache(ConvFastCache)
def conv_forward_fast(x, w, b, conv_param):
    """Convolution as matrix products over unfolded patches (im2col), in pure numpy.

    Same results as conv_forward_naive (to rounding).

    Args:
        x: input images.
        w: filters.
        b: biases.
        conv_param: dict with "stride" (default 1) and "pad" (default 0).

    Returns:
        out: the feature maps (C-contiguous).
        cache: (x, w, stride, pad, cols), cols being the list of unfolded chunks when they
            total at most CACHE_BYTES, else None (backward then unfolds chunk by chunk).

    Shape:
        x: (N, C, H, W); w: (F, C, HH, WW); b: (F,); out: (N, F, H', W')
        each chunk of cols: (C * HH * WW, n, H' * W') for a chunk of n images
    """
    x, w, b, stride, pad, Ho, Wo = _check("conv_forward_fast", x, w, b, conv_param)
    N, C = x.shape[:2]
    F, _, HH, WW = w.shape
    K, L = C * HH * WW, Ho * Wo
    w_mat = w.reshape(F, K)
    out = np.empty((N, F, L), dtype=x.dtype)
    keep = N * K * L * x.dtype.itemsize <= CACHE_BYTES
    cols = []
    for start, stop in _chunks(N, K * L * x.dtype.itemsize):
        n = stop - start
        part = _unfold(x[start:stop], HH, WW, stride, pad, Ho, Wo)  # (K, n, L)
        if K >= STACKED_MIN_K:
            product = w_mat @ part.reshape(K, n * L)  # one (F, K) @ (K, n L) product
            # (F, n, L) -> (n, F, L) and the bias, in one pass into the output.
            np.add(product.reshape(F, n, L).transpose(1, 0, 2), b[:, None], out=out[start:stop])
        else:
            np.matmul(w_mat, part.transpose(1, 0, 2), out=out[start:stop])  # n products (F, K) @ (K, L)
            out[start:stop] += b[:, None]
        if keep:
            cols.append(part)
    return out.reshape(N, F, Ho, Wo), (x, w, stride, pad, cols if keep else None)


def conv_backward_fast(dout, cache, need_dx=True):
    """Backward pass of conv_forward_fast: matrix products, then one slice-add per filter offset.

    Args:
        dout: upstream gradient.
        cache: from conv_forward_fast.
        need_dx: False skips dx (returned as None), as for a net's first layer, whose x is data.

    Returns:
        (dx, dw, db).

    Shape:
        dout: (N, F, H', W'); dx: (N, C, H, W); dw: (F, C, HH, WW); db: (F,)
    """
    x, w, stride, pad, cols = check_cache("conv_backward_fast", cache, ConvFastCache)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    K = C * HH * WW
    Ho, Wo = _output_shape("conv_backward_fast", x.shape, w.shape, stride, pad)
    L = Ho * Wo
    dout = upstream("conv_backward_fast", dout, (N, F, Ho, Wo), x.dtype)
    d = dout.reshape(N, F, L)
    db = d.sum(axis=(0, 2))
    dw = np.zeros((F, K), dtype=x.dtype)
    dx = np.empty((N, C, H, W), dtype=x.dtype) if need_dx else None
    w_cols = w.reshape(F, K).T  # (K, F)
    for i, (start, stop) in enumerate(_chunks(N, K * L * x.dtype.itemsize)):
        n = stop - start
        part = cols[i] if cols is not None else _unfold(x[start:stop], HH, WW, stride, pad, Ho, Wo)  # (K, n, L)
        if K >= STACKED_MIN_K:
            d_part = np.ascontiguousarray(d[start:stop].transpose(1, 0, 2)).reshape(F, n * L)  # images side by side
            dw += (part.reshape(K, n * L) @ d_part.T).T  # (K, n L) @ (n L, F), transposed to (F, K)
            dcols = (w_cols @ d_part).reshape(K, n, L) if need_dx else None  # every patch's gradient
        else:
            dw += np.matmul(d[start:stop], part.transpose(1, 2, 0)).sum(axis=0)  # sum over images of (F, L) @ (L, K)
            dcols = np.matmul(w_cols, d[start:stop]).transpose(1, 0, 2) if need_dx else None  # (K, n, L) view
        if need_dx:
            dcols = dcols.reshape(C, HH, WW, n, Ho, Wo)
            # Output (i, j) saw input (i*stride + di, j*stride + dj) through offset (di, dj); for one
            # offset those inputs are distinct, so one slice-add per offset scatters exactly.
            dxpad = np.zeros((n, C, H + 2 * pad, W + 2 * pad), dtype=x.dtype).transpose(1, 0, 2, 3)  # (C, n, ...) view
            for di in range(HH):
                for dj in range(WW):
                    dxpad[:, :, di:di + stride * (Ho - 1) + 1:stride, dj:dj + stride * (Wo - 1) + 1:stride] += \
                        dcols[:, di, dj]
            dx[start:stop] = dxpad[:, :, pad:pad + H, pad:pad + W].transpose(1, 0, 2, 3)
    return dx, dw.reshape(w.shape), db


# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests, the grader and the benchmarks run for this family (layers/cases.py).

# x's shape, w's shape, stride and pad at each size.
_SIZES = {"check": ((2, 3, 5, 5), (4, 3, 3, 3), 1, 1),
          "course": ((100, 3, 31, 31), (25, 3, 3, 3), 2, 1),
          "training": ((64, 32, 28, 28), (64, 32, 3, 3), 1, 1)}


def _make_conv(stride=None, pad=None):
    def make(rng, size, dtype):
        x_shape, w_shape, size_stride, size_pad = _SIZES[size]
        scale = 1.0 if size == "check" else 0.1
        conv_param = {"stride": stride or size_stride, "pad": size_pad if pad is None else pad}
        return ({"x": normal(rng, x_shape, dtype), "w": normal(rng, w_shape, dtype, scale=scale),
                 "b": normal(rng, w_shape[:1], dtype)}, {"conv_param": conv_param})
    return make


def _im2col_product(inputs, params):
    """conv as one product: (F, C HH WW) filters times (C HH WW, N H' W') patches."""
    (N, C, _, _), (F, _, HH, WW) = inputs["x"].shape, inputs["w"].shape
    conv_param = params["conv_param"]
    Ho, Wo = _output_shape("conv_forward_fast", inputs["x"].shape, inputs["w"].shape, conv_param["stride"],
                           conv_param["pad"])
    return F, C * HH * WW, N * Ho * Wo


def _torch_conv(torch, t, params):
    conv_param = params["conv_param"]
    return torch.nn.functional.conv2d(t["x"], t["w"], t["b"], stride=conv_param["stride"], padding=conv_param["pad"])


CASES = (
    LayerCase("conv_forward_naive", conv_forward_naive, conv_backward_naive, _make_conv(), graded=False, bench=False,
              torch=_torch_conv),
    LayerCase("conv_forward_fast", conv_forward_fast, conv_backward_fast, _make_conv(), graded=False,
              torch=_torch_conv, target={"course": 0.9, "training": 1.2}, gemm=_im2col_product),
    LayerCase("conv_forward_fast (stride 2)", conv_forward_fast, conv_backward_fast, _make_conv(stride=2, pad=1),
              graded=False, bench=False, torch=_torch_conv),
)
