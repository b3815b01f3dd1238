"""Every layer family against PyTorch CPU: forward and forward+backward, course and training sizes.

Shapes and targets are in CASES below; all in float32. Each row times our fast layer and
torch.nn.functional's equivalent with the same thread count, interleaved (median of repeats
after a warm-up). "fwd" for PyTorch runs under no_grad; "fwd+bwd" runs the forward pass with
autograd and ``backward(dout)``. softmax_loss returns the loss and its gradient in one call, so
its "fwd" column already includes the gradient.

Shape letters: N batch, D features in, M features out, C channels or classes, H W image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import layers as L
from benchmarks.common import median_per_call


@dataclass(frozen=True)
class LayerCase:
    """One layer family at one size."""

    family: str
    size: str            # "course" or "training"
    shapes: str          # shown in the table
    make: object         # rng -> dict of float32 arrays (the inputs)
    ours: object         # inputs -> (out, cache)
    ours_backward: object  # (dout, cache) -> gradients
    theirs: object       # (torch, tensors) -> output tensor
    target: float | None  # largest acceptable ours / PyTorch ratio of fwd+bwd
    flops: int = 0       # forward floating-point operations of the matrix products (0: not a GEMM layer)
    products: object = None  # rng -> callable doing only the layer's forward and backward matrix products


def _f32(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def _three_products(rng, rows, inner, cols):
    """The matrix products of a layer computing a (rows, inner) @ (inner, cols) forward product:
    that product, then backward's two, (rows, cols) @ (cols, inner) and (inner, rows) @ (rows, cols).
    What no implementation on numpy's BLAS can go below (the "matmuls alone" column)."""
    a, b, d = _f32(rng, rows, inner), _f32(rng, inner, cols), _f32(rng, rows, cols)

    def run():
        a @ b
        d @ b.T
        a.T @ d
    return run


def _affine(size, N, D, M):
    return LayerCase(
        "affine", size, f"x ({N}, {D}), w ({D}, {M})",
        lambda rng: {"x": _f32(rng, N, D), "w": _f32(rng, D, M) * 0.05, "b": _f32(rng, M)},
        lambda a: L.affine_forward(a["x"], a["w"], a["b"]), L.affine_backward,
        lambda torch, t: torch.nn.functional.linear(t["x"], t["w"].T, t["b"]), 1.0, 2 * N * D * M,
        lambda rng: _three_products(rng, N, D, M))


def _relu(size, N, D):
    return LayerCase("relu", size, f"x ({N}, {D})", lambda rng: {"x": _f32(rng, N, D)},
                     lambda a: L.relu_forward(a["x"]), L.relu_backward,
                     lambda torch, t: torch.nn.functional.relu(t["x"]), 1.3)


def _softmax(size, N, C):
    def make(rng):
        return {"x": _f32(rng, N, C), "y": rng.integers(0, C, N)}

    return LayerCase("softmax loss", size, f"scores ({N}, {C})", make,
                     lambda a: (L.softmax_loss(a["x"], a["y"]), None), None,
                     lambda torch, t: torch.nn.functional.cross_entropy(t["x"], t["y"]), 1.3)


def _batchnorm(size, N, D):
    def make(rng):
        return {"x": _f32(rng, N, D), "gamma": np.ones(D, np.float32), "beta": np.zeros(D, np.float32)}

    return LayerCase("batchnorm", size, f"x ({N}, {D})", make,
                     lambda a: L.batchnorm_forward(a["x"], a["gamma"], a["beta"], {"mode": "train"}),
                     L.batchnorm_backward_alt,
                     lambda torch, t: torch.nn.functional.batch_norm(t["x"], None, None, t["gamma"], t["beta"],
                                                                     training=True), 1.3)


def _layernorm(size, N, D):
    def make(rng):
        return {"x": _f32(rng, N, D), "gamma": np.ones(D, np.float32), "beta": np.zeros(D, np.float32)}

    return LayerCase("layernorm", size, f"x ({N}, {D})", make,
                     lambda a: L.layernorm_forward(a["x"], a["gamma"], a["beta"], {}), L.layernorm_backward,
                     lambda torch, t: torch.nn.functional.layer_norm(t["x"], (D,), t["gamma"], t["beta"]), 1.3)


def _dropout(size, N, D):
    return LayerCase("dropout", size, f"x ({N}, {D}), keep 0.5", lambda rng: {"x": _f32(rng, N, D)},
                     lambda a: L.dropout_forward(a["x"], {"p": 0.5, "mode": "train", "seed": 0}),
                     L.dropout_backward,
                     lambda torch, t: torch.nn.functional.dropout(t["x"], 0.5, training=True), 1.3)


def _conv(size, x_shape, w_shape, stride, pad, target):
    N, C, H, W = x_shape
    F, _, HH, WW = w_shape
    Ho, Wo = (H + 2 * pad - HH) // stride + 1, (W + 2 * pad - WW) // stride + 1
    param = {"stride": stride, "pad": pad}
    return LayerCase(
        "conv fast", size, f"x {x_shape}, w {w_shape}, stride {stride}, pad {pad}",
        lambda rng: {"x": _f32(rng, *x_shape), "w": _f32(rng, *w_shape) * 0.1, "b": _f32(rng, F)},
        lambda a: L.conv_forward_fast(a["x"], a["w"], a["b"], param), L.conv_backward_fast,
        lambda torch, t: torch.nn.functional.conv2d(t["x"], t["w"], t["b"], stride=stride, padding=pad),
        target, 2 * N * F * Ho * Wo * C * HH * WW,
        # im2col: (F, C HH WW) filters times (C HH WW, N H' W') patches, as single products.
        lambda rng: _three_products(rng, F, C * HH * WW, N * Ho * Wo))


def _pool(size, x_shape):
    param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    return LayerCase("max pool fast", size, f"x {x_shape}, 2x2 stride 2", lambda rng: {"x": _f32(rng, *x_shape)},
                     lambda a: L.max_pool_forward_fast(a["x"], param), L.max_pool_backward_fast,
                     lambda torch, t: torch.nn.functional.max_pool2d(t["x"], 2, 2), 1.5)


def _spatial_bn(size, x_shape):
    C = x_shape[1]

    def make(rng):
        return {"x": _f32(rng, *x_shape), "gamma": np.ones(C, np.float32), "beta": np.zeros(C, np.float32)}

    return LayerCase("spatial batchnorm", size, f"x {x_shape}", make,
                     lambda a: L.spatial_batchnorm_forward(a["x"], a["gamma"], a["beta"], {"mode": "train"}),
                     L.spatial_batchnorm_backward,
                     lambda torch, t: torch.nn.functional.batch_norm(t["x"], None, None, t["gamma"], t["beta"],
                                                                     training=True), 1.3)


CASES = [
    _affine("course", 100, 3072, 100), _affine("training", 256, 1024, 1024),
    _relu("course", 100, 100), _relu("training", 256, 4096),
    _softmax("course", 100, 10), _softmax("training", 1024, 1000),
    _batchnorm("course", 100, 100), _batchnorm("training", 256, 1024),
    _layernorm("course", 100, 100), _layernorm("training", 256, 1024),
    _dropout("course", 100, 100), _dropout("training", 256, 4096),
    _conv("course", (100, 3, 31, 31), (25, 3, 3, 3), 2, 1, 0.9),
    _conv("training", (64, 32, 28, 28), (64, 32, 3, 3), 1, 1, 1.2),
    _pool("course", (100, 25, 16, 16)), _pool("training", (64, 64, 28, 28)),
    _spatial_bn("course", (50, 16, 16, 16)), _spatial_bn("training", (64, 64, 28, 28)),
]

QUICK_CASES = [
    _affine("quick", 4, 6, 5), _relu("quick", 4, 6), _softmax("quick", 4, 3), _batchnorm("quick", 4, 6),
    _layernorm("quick", 4, 6), _dropout("quick", 4, 6), _conv("quick", (2, 2, 6, 6), (3, 2, 3, 3), 1, 1, 1.2),
    _pool("quick", (2, 2, 6, 6)), _spatial_bn("quick", (2, 3, 4, 4)),
]


def time_case(case: LayerCase, repeats: int, torch=None) -> dict:
    """Median seconds of fwd and fwd+bwd for ours and (when torch is given) PyTorch.

    Returns:
        dict with keys ours_fwd, ours_fb, torch_fwd, torch_fb (None without torch) and products
        (the layer's matrix products alone; None for a layer without them).
    """
    rng = np.random.default_rng(0)
    inputs = case.make(rng)
    out, cache = case.ours(inputs)
    dout = None if case.ours_backward is None else _f32(rng, *out.shape)

    def ours_fwd():
        case.ours(inputs)

    def ours_fb():
        result, c = case.ours(inputs)
        if case.ours_backward is not None:
            case.ours_backward(dout, c)

    fns = {"ours_fwd": ours_fwd, "ours_fb": ours_fb}
    if case.products is not None:
        fns["products"] = case.products(rng)
    if torch is not None:
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()}
        for k, v in tensors.items():
            if v.is_floating_point():
                v.requires_grad_(True)
        dout_t = None if dout is None else torch.from_numpy(dout)

        def torch_fwd():
            with torch.no_grad():
                case.theirs(torch, tensors)

        def torch_fb():
            for v in tensors.values():
                v.grad = None
            result = case.theirs(torch, tensors)
            result.backward(dout_t) if dout_t is not None else result.backward()

        fns.update(torch_fwd=torch_fwd, torch_fb=torch_fb)
    times = median_per_call(fns, repeats)
    for key in ("torch_fwd", "torch_fb", "products"):
        times.setdefault(key, None)
    return times


def matmul_peak_gflops(n: int, repeats: int) -> float:
    """numpy's own float32 n x n matmul speed in GFLOP/s: the machine's practical GEMM peak."""
    rng = np.random.default_rng(0)
    a, b = _f32(rng, n, n), _f32(rng, n, n)
    seconds = median_per_call({"matmul": lambda: a @ b}, repeats)["matmul"]
    return 2 * n**3 / seconds / 1e9
