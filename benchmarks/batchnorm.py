"""batchnorm_backward (the graph, node by node) against batchnorm_backward_alt (closed form).

    python -m benchmarks.batchnorm [--repeats R] [--threads T] [--quick]

Both run on the same float32 cache; PyTorch's own batch-norm backward kernel
(aten.native_batch_norm_backward, the op autograd calls) runs on the same data when torch is
installed. Medians of R interleaved runs after a warm-up; prints a Markdown table. Exits 0
whatever the figures.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from benchmarks.common import QUICK_TIMING, SETTLE_SECONDS, configure, load_torch, median_interleaved

SIZES = [(100, 500), (1024, 4096)]
QUICK_SIZES = [(8, 16)]


def _torch_backward(torch, x, gamma, dout):
    xt, gt, dt = torch.from_numpy(x), torch.from_numpy(gamma), torch.from_numpy(dout)
    _, save_mean, save_invstd = torch.ops.aten.native_batch_norm(xt, gt, None, None, None, True, 0.1, 1e-5)

    def run():
        torch.ops.aten.native_batch_norm_backward(dt, xt, gt, None, None, save_mean, save_invstd, True, 1e-5,
                                                  [True, True, True])
    return run


def bench(N, D, repeats, torch, settle_s=SETTLE_SECONDS):
    """Median seconds of the three backward passes at one size (None for torch when absent).

    settle_s: the pause before each timed run, as in median_interleaved (0 in a --quick run).
    """
    from layers import batchnorm_backward, batchnorm_backward_alt, batchnorm_forward

    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D)).astype(np.float32)
    gamma = rng.standard_normal(D).astype(np.float32)
    beta = np.zeros(D, np.float32)
    dout = rng.standard_normal((N, D)).astype(np.float32)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    runs = {"graph": lambda: batchnorm_backward(dout, cache), "alt": lambda: batchnorm_backward_alt(dout, cache)}
    if torch is not None:
        runs["torch"] = _torch_backward(torch, x, gamma, dout)
    return median_interleaved(runs, repeats, settle_s)


def main(argv=None):
    """Run the benchmark and print a Markdown table; returns 0."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.batchnorm", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=20, help="timed runs of each backward pass per size")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for BLAS and torch")
    p.add_argument("--quick", action="store_true", help="one tiny size, for the smoke test")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        p.error("--repeats and --threads must be >= 1")
    torch = load_torch()
    threads = configure(args.threads, torch)
    print(f"batchnorm backward, float32, median of {args.repeats}; "
          f"threads: numpy BLAS {threads['blas'] or 'unknown'}, PyTorch {threads['torch'] or '-'}; allocator {threads['allocator']}.\n")
    print("| N x D | graph (ms) | alt (ms) | graph / alt | PyTorch (ms) | alt / PyTorch |")
    print("| --- | --- | --- | --- | --- | --- |")
    for N, D in (QUICK_SIZES if args.quick else SIZES):
        t = bench(N, D, args.repeats, torch, QUICK_TIMING["settle_s"] if args.quick else SETTLE_SECONDS)
        torch_ms = f"{1e3 * t['torch']:.3f}" if "torch" in t else "not installed"
        versus = f"{t['alt'] / t['torch']:.2f}x" if "torch" in t else "-"
        print(f"| {N} x {D} | {1e3 * t['graph']:.3f} | {1e3 * t['alt']:.3f} | {t['graph'] / t['alt']:.2f}x | "
              f"{torch_ms} | {versus} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
