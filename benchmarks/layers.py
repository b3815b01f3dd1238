"""Every declared layer case against PyTorch CPU: forward and forward+backward, course and training sizes.

The rows come from the families' declarations (layers.CASES, see layers/cases.py): every case
declared ``bench=True``, at its "course" and "training" sizes, in float32, with its declared
target and PyTorch equivalent. Each row times our layer and PyTorch's with the same thread
count, interleaved (median of repeats after a warm-up). "fwd" for PyTorch runs under no_grad;
"fwd+bwd" runs the forward pass with autograd and ``backward(dout)``. A loss returns the loss
and its gradient in one call, so its "fwd" column already includes the gradient. A case that
declares its matrix product (``gemm``) also gets the time of that product and backward's two
alone: the floor of any implementation on numpy's BLAS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import layers
from benchmarks.common import median_per_call
from layers.cases import LayerCase as Declared


@dataclass(frozen=True)
class LayerCase:
    """One declared case at one size: a row of the table."""

    declared: Declared
    build_size: str      # "course", "training" or "check" (the quick run)

    @property
    def family(self) -> str:
        return self.declared.label

    @property
    def size(self) -> str:
        """The size as the table shows it ("quick" for the check size of a --quick run)."""
        return "quick" if self.build_size == "check" else self.build_size

    @property
    def target(self) -> float | None:
        return self.declared.target_at(self.build_size)

    def build(self):
        """(inputs, params) in float32 at this size."""
        return self.declared.build(self.build_size, np.float32, seed=0)

    @property
    def shapes(self) -> str:
        inputs, _ = self.build()
        return ", ".join(f"{name} {value.shape}" for name, value in inputs.items())

    @property
    def flops(self) -> int:
        """Forward floating-point operations of the declared matrix product (0: not a GEMM layer)."""
        if self.declared.gemm is None:
            return 0
        rows, inner, cols = self.declared.gemm(*self.build())
        return 2 * rows * inner * cols


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


BENCHED = [declared for declared in layers.CASES if declared.bench]
CASES = [LayerCase(declared, size) for declared in BENCHED for size in ("course", "training")]
QUICK_CASES = [LayerCase(declared, "check") for declared in BENCHED]


def time_case(case: LayerCase, repeats: int, torch=None, timing=None) -> dict:
    """Median seconds of fwd and fwd+bwd for ours and (when torch is given) PyTorch.

    timing: keyword arguments for median_per_call (common.QUICK_TIMING in a --quick run), or None.

    Returns:
        dict with keys ours_fwd, ours_fb, torch_fwd, torch_fb (None without torch) and products
        (the layer's matrix products alone; None for a layer without them).
    """
    rng = np.random.default_rng(0)
    declared = case.declared
    inputs, params = case.build()
    arrays = list(inputs.values())
    forward, backward = declared.forward, declared.backward
    out, cache = forward(*arrays, **params)
    dout = None if backward is None else _f32(rng, *out.shape)

    def ours_fwd():
        forward(*arrays, **params)

    def ours_fb():
        result, c = forward(*arrays, **params)
        if backward is not None:
            backward(dout, c)

    fns = {"ours_fwd": ours_fwd, "ours_fb": ours_fb}
    if declared.gemm is not None:
        fns["products"] = _three_products(rng, *declared.gemm(inputs, params))
    if torch is not None and declared.torch is not None:
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v)).requires_grad_(True) for k, v in inputs.items()}
        dout_t = None if dout is None else torch.from_numpy(dout)

        def torch_fwd():
            with torch.no_grad():
                declared.torch(torch, tensors, params)

        def torch_fb():
            for v in tensors.values():
                v.grad = None
            result = declared.torch(torch, tensors, params)
            result.backward(dout_t) if dout_t is not None else result.backward()

        fns.update(torch_fwd=torch_fwd, torch_fb=torch_fb)
    times = median_per_call(fns, repeats, **(timing or {}))
    for key in ("torch_fwd", "torch_fb", "products"):
        times.setdefault(key, None)
    return times


def matmul_peak_gflops(n: int, repeats: int, timing=None) -> float:
    """numpy's own float32 n x n matmul speed in GFLOP/s: the machine's practical GEMM peak (timing: as time_case's)."""
    rng = np.random.default_rng(0)
    a, b = _f32(rng, n, n), _f32(rng, n, n)
    seconds = median_per_call({"matmul": lambda: a @ b}, repeats, **(timing or {}))["matmul"]
    return 2 * n**3 / seconds / 1e9
