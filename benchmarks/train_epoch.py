"""One training epoch of a FullyConnectedNet here and in an equivalent PyTorch CPU loop.

    python -m benchmarks.train_epoch [--config course|training|all] [--repeats R] [--threads T] [--quick]

Both sides train the same architecture (affine - relu - ... - affine - softmax, Adam), in
float32, on the same data, with the same number of threads. Our side is a real
``Solver.train()`` of one epoch (its shuffling, finite checks and bookkeeping included; its
accuracy checks are given a single sample, since the PyTorch loop has none).
Each figure is the median of R timed epochs after one warm-up epoch, and the two sides
alternate epoch by epoch so machine noise hits both alike. Prints a Markdown table with
the ratio ours / PyTorch (target: at most 1.0x). Exits 0 whatever the figures; only an
error exits non-zero. torch is optional: without it only our times are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from benchmarks.common import configure, load_torch, torch_mlp

# name: (input_dim, hidden_dims, num_classes, batch_size, num_samples)
CONFIGS = {
    "course": (64, [128, 64], 10, 50, 1257),  # `make train` on the digits
    "training": (3 * 32 * 32, [100, 100], 10, 100, 10_000),  # a CIFAR-10-sized fully connected net
}
QUICK = {"quick": (20, [16], 4, 8, 40)}
TARGET_RATIO = 1.0


def _solver_epoch(model, data, batch_size, seed):
    from solver import Solver

    Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3}, batch_size=batch_size,
           num_epochs=1, num_train_samples=1, verbose=False, seed=seed).train()


def _torch_setup(torch, input_dim, hidden_dims, num_classes):
    if torch is None:
        return None
    net = torch_mlp(torch, input_dim, hidden_dims, num_classes)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    return torch, net, opt


def torch_epoch(torch_parts, X, y, order, batch_size):
    """One epoch of (torch, net, optimizer) over X[order] in batches, cross-entropy loss."""
    torch, net, opt = torch_parts
    loss_fn = torch.nn.functional.cross_entropy
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(X[idx]), y[idx])
        loss.backward()
        opt.step()


def bench_config(name, spec, repeats, torch):
    """Median seconds per epoch for ours and for PyTorch (None without torch)."""
    from solver import FullyConnectedNet

    input_dim, hidden_dims, num_classes, batch_size, n = spec
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, input_dim)).astype(np.float32)
    y = rng.integers(0, num_classes, n)
    model = FullyConnectedNet(hidden_dims, input_dim=input_dim, num_classes=num_classes, weight_scale="he", seed=0)
    data = {"X_train": X, "y_train": y, "X_val": X[:1], "y_val": y[:1]}
    torch_parts = _torch_setup(torch, input_dim, hidden_dims, num_classes)
    if torch_parts is not None:
        X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)

    ours, theirs = [], []
    for r in range(repeats + 1):  # round 0 is the warm-up
        t0 = time.perf_counter()
        _solver_epoch(model, data, batch_size, seed=r)
        t1 = time.perf_counter()
        if r:
            ours.append(t1 - t0)
        if torch_parts is not None:
            order_t = torch.from_numpy(rng.permutation(n))
            t0 = time.perf_counter()
            torch_epoch(torch_parts, X_t, y_t, order_t, batch_size)
            t1 = time.perf_counter()
            if r:
                theirs.append(t1 - t0)
    return statistics.median(ours), (statistics.median(theirs) if theirs else None), n


def main(argv=None):
    """Run the benchmark and print a Markdown table; returns 0."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_epoch", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=[*CONFIGS, "all"], default="all", help="which net and data size")
    p.add_argument("--repeats", type=int, default=5, help="timed epochs per side (after one warm-up)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for BLAS and torch")
    p.add_argument("--quick", action="store_true", help="a tiny configuration, for the smoke test")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        p.error("--repeats and --threads must be >= 1")
    torch = load_torch()
    threads = configure(args.threads, torch)
    configs = QUICK if args.quick else (CONFIGS if args.config == "all" else {args.config: CONFIGS[args.config]})

    print(f"One training epoch, float32, Adam, median of {args.repeats}; "
          f"threads: numpy BLAS {threads['blas'] or 'unknown'}, PyTorch {threads['torch'] or '-'}; allocator {threads['allocator']}.")
    print(f"Target: ours / PyTorch <= {TARGET_RATIO:.1f}x\n")
    print("| config | net | samples | batch | ours (ms) | PyTorch (ms) | ratio | samples/s (ours) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, spec in configs.items():
        ours, theirs, n = bench_config(name, spec, args.repeats, torch)
        input_dim, hidden_dims, num_classes, batch_size, _ = spec
        net = "-".join(str(d) for d in (input_dim, *hidden_dims, num_classes))
        torch_cell = f"{1e3 * theirs:.1f}" if theirs else "not installed"
        ratio = f"{ours / theirs:.2f}x" if theirs else "-"
        print(f"| {name} | {net} | {n} | {batch_size} | {1e3 * ours:.1f} | {torch_cell} | {ratio} | {n / ours:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
