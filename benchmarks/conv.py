"""Convolution and max pooling: fast vs naive, and fast vs PyTorch CPU.

    python -m benchmarks.conv [--repeats R] [--threads T] [--quick]

Shapes (float32): the course's (x (100, 3, 31, 31), w (25, 3, 3, 3), stride 2, pad 1) and a
training-sized layer (x (64, 32, 28, 28), w (64, 32, 3, 3), stride 1, pad 1); max pooling 2x2
stride 2 on (100, 3, 32, 32) and (64, 64, 28, 28). Each time is forward + backward, the median
of R interleaved runs after a warm-up. The naive convolution is timed on a few images and
scaled by N (it is linear in N). Peak traced memory of the fast forward pass is reported too.
Targets (printed): fast >= 100x naive; conv <= 0.9x PyTorch at the course shape and <= 1.2x at
the training size; pooling <= 1.5x PyTorch. Exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc

import numpy as np

from benchmarks.common import QUICK_TIMING, SETTLE_SECONDS, configure, load_torch, median_interleaved

CONV_SHAPES = {"course": ((100, 3, 31, 31), (25, 3, 3, 3), 2, 1), "training": ((64, 32, 28, 28), (64, 32, 3, 3), 1, 1)}
POOL_SHAPES = {"course": (100, 3, 32, 32), "training": (64, 64, 28, 28)}
QUICK_CONV = {"quick": ((2, 2, 7, 7), (3, 2, 3, 3), 1, 1)}
QUICK_POOL = {"quick": (2, 2, 8, 8)}
NAIVE_IMAGES = 4
TARGETS = {("conv", "course"): 0.9, ("conv", "training"): 1.2, ("pool", "course"): 1.5, ("pool", "training"): 1.5}


def conv_case(x_shape, w_shape, stride, pad, repeats, torch, settle_s=SETTLE_SECONDS):
    from layers import conv_backward_fast, conv_backward_naive, conv_forward_fast, conv_forward_naive

    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    param = {"stride": stride, "pad": pad}
    out, _ = conv_forward_fast(x, w, b, param)
    dout = rng.standard_normal(out.shape).astype(np.float32)

    def ours():
        _, cache = conv_forward_fast(x, w, b, param)
        conv_backward_fast(dout, cache)

    fns = {"fast": ours}
    if torch is not None:
        xt = torch.from_numpy(x).requires_grad_()
        wt = torch.from_numpy(w).requires_grad_()
        bt = torch.from_numpy(b).requires_grad_()
        dt = torch.from_numpy(dout)

        def theirs():
            torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=pad).backward(dt)
            xt.grad = wt.grad = bt.grad = None

        fns["torch"] = theirs
    times = median_interleaved(fns, repeats, settle_s)
    k = min(NAIVE_IMAGES, x.shape[0])
    t0 = time.perf_counter()
    _, cache = conv_forward_naive(x[:k], w, b, param)
    conv_backward_naive(dout[:k], cache)
    times["naive"] = (time.perf_counter() - t0) * x.shape[0] / k
    tracemalloc.start()
    conv_forward_fast(x, w, b, param)
    times["peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return times


def pool_case(x_shape, repeats, torch, settle_s=SETTLE_SECONDS):
    from layers import max_pool_backward_fast, max_pool_forward_fast

    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(np.float32)
    param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    dout = rng.standard_normal((x_shape[0], x_shape[1], x_shape[2] // 2, x_shape[3] // 2)).astype(np.float32)

    def ours():
        _, cache = max_pool_forward_fast(x, param)
        max_pool_backward_fast(dout, cache)

    fns = {"fast": ours}
    if torch is not None:
        xt = torch.from_numpy(x).requires_grad_()
        dt = torch.from_numpy(dout)

        def theirs():
            torch.nn.functional.max_pool2d(xt, 2, 2).backward(dt)
            xt.grad = None

        fns["torch"] = theirs
    return median_interleaved(fns, repeats, settle_s)


def main(argv=None):
    """Run the benchmark and print Markdown tables; returns 0."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.conv", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=7, help="timed runs per case (after one warm-up)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for BLAS and torch")
    p.add_argument("--quick", action="store_true", help="tiny shapes, for the smoke test")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        p.error("--repeats and --threads must be >= 1")
    torch = load_torch()
    threads = configure(args.threads, torch)
    print(f"Convolution and max pooling, float32, forward + backward, median of {args.repeats}; "
          f"threads: numpy BLAS {threads['blas'] or 'unknown'}, PyTorch {threads['torch'] or '-'}; allocator {threads['allocator']}.\n")
    print("| conv | x, w, stride, pad | fast (ms) | naive (ms, scaled) | naive / fast | PyTorch (ms) | fast / PyTorch "
          "| target | fast forward peak (MB) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    settle_s = QUICK_TIMING["settle_s"] if args.quick else SETTLE_SECONDS
    for name, (xs, ws, stride, pad) in (QUICK_CONV if args.quick else CONV_SHAPES).items():
        t = conv_case(xs, ws, stride, pad, args.repeats, torch, settle_s)
        torch_ms = f"{1e3 * t['torch']:.1f}" if "torch" in t else "not installed"
        ratio = f"{t['fast'] / t['torch']:.2f}x" if "torch" in t else "-"
        print(f"| {name} | {xs}, {ws}, {stride}, {pad} | {1e3 * t['fast']:.1f} | {1e3 * t['naive']:.0f} | "
              f"{t['naive'] / t['fast']:.0f}x | {torch_ms} | {ratio} | <= {TARGETS.get(('conv', name), '-')}x "
              f"(naive >= 100x) | {t['peak_mb']:.1f} |")
    print("\n| max pool 2x2/2 | x | fast (ms) | PyTorch (ms) | fast / PyTorch | target |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, xs in (QUICK_POOL if args.quick else POOL_SHAPES).items():
        t = pool_case(xs, args.repeats, torch, settle_s)
        torch_ms = f"{1e3 * t['torch']:.2f}" if "torch" in t else "not installed"
        ratio = f"{t['fast'] / t['torch']:.2f}x" if "torch" in t else "-"
        print(f"| {name} | {xs} | {1e3 * t['fast']:.2f} | {torch_ms} | {ratio} | <= {TARGETS.get(('pool', name), '-')}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
