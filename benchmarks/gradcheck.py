"""check_layer's cost and power: full vs fast on a 256 x 1024 affine layer, and how often fast
mode catches one wrong element of a 1000 x 1000 weight gradient.

    python -m benchmarks.gradcheck [--batch N] [--seeds S] [--quick]

Part 1 runs check_layer(affine_forward, affine_backward) in "full" and "fast" mode on x (N, 256),
w (256, 1024), b (1024,) and reports forward evaluations and time (target: fast at least 50x
fewer evaluations). Part 2 adds delta to one element of dw (1000 x 1000, delta a fraction of the
root-mean-square entry) and counts, over S seeds, how often fast mode fails the check and how
often its bisection search names exactly that element. Exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from gradcheck import check_layer
from layers import affine_backward, affine_forward

TARGET_EVALUATION_RATIO = 50
# Size of the wrong element, as a fraction of the root-mean-square dw entry.
DELTAS = (1.0, 1e-2, 1e-4, 1e-5)
WRONG = (123, 456)


def _inputs(N, D, M, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((N, D)), "w": rng.standard_normal((D, M)) / np.sqrt(D),
            "b": rng.standard_normal(M)}


def cost(N, D, M):
    """(mode, verdict, forward evaluations, seconds) for full and fast."""
    rows = []
    inputs = _inputs(N, D, M)
    for mode in ("full", "fast"):
        start = time.perf_counter()
        report = check_layer(affine_forward, affine_backward, inputs, mode=mode)
        rows.append((mode, bool(report), report.forward_evaluations, time.perf_counter() - start))
    return rows


def detection(D, seeds, deltas):
    """{fraction: (caught, named, seconds per check)} over seeds for one wrong element of dw."""
    inputs = _inputs(4, D, D)
    out, cache = affine_forward(*inputs.values())
    dw = affine_backward(np.random.default_rng(1).standard_normal(out.shape), cache)[1]
    rms = float(np.sqrt(np.mean(dw ** 2)))
    i, j = WRONG[0] % D, WRONG[1] % D
    results = {}
    for fraction in deltas:
        def backward(dout, cache, delta=fraction * rms):
            dx, dw, db = affine_backward(dout, cache)
            dw = dw.copy()
            dw[i, j] += delta
            return dx, dw, db

        caught = named = 0
        start = time.perf_counter()
        for seed in range(seeds):
            w = check_layer(affine_forward, backward, inputs, mode="fast", seed=seed)["w"]
            caught += not w.passed
            named += w.worst is not None and tuple(int(k) for k in w.worst) == (i, j)
        results[fraction] = (caught, named, (time.perf_counter() - start) / seeds)
    return results


def main(argv=None):
    """Run both parts and print Markdown tables; returns 0."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.gradcheck", description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=8, help="N, the rows of x in part 1")
    p.add_argument("--seeds", type=int, default=10, help="seeds per delta in part 2")
    p.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    args = p.parse_args(argv)
    if args.batch < 1 or args.seeds < 1:
        p.error("--batch and --seeds must be >= 1")
    D, M, big = (8, 16, 40) if args.quick else (256, 1024, 1000)
    print(f"check_layer on affine x ({args.batch}, {D}), w ({D}, {M}), b ({M},), float64.\n")
    print("| mode | verdict | forward evaluations | time (s) |")
    print("| --- | --- | --- | --- |")
    rows = cost(args.batch, D, M)
    for mode, ok, evals, seconds in rows:
        print(f"| {mode} | {'passed' if ok else 'FAILED'} | {evals:,} | {seconds:.2f} |")
    ratio = rows[0][2] / rows[1][2]
    print(f"\nfast is {ratio:,.0f}x cheaper in forward evaluations (target: at least {TARGET_EVALUATION_RATIO}x).\n")
    print(f"One wrong element of dw ({big} x {big}), fast mode, {args.seeds} seeds per row.\n")
    print("| delta / rms(dw) | caught | element named | time per check (s) |")
    print("| --- | --- | --- | --- |")
    for fraction, (caught, named, seconds) in detection(big, args.seeds, DELTAS).items():
        print(f"| {fraction:g} | {caught}/{args.seeds} | {named}/{args.seeds} | {seconds:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
