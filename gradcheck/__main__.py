"""``python -m gradcheck``: check every registered layer and net, print a table, exit 1 on failure.

    python -m gradcheck [--mode auto|full|fast] [--seed S] [--only NAME ...] [--list] [--verbose]
"""

from __future__ import annotations

import argparse
import sys
import time


def build_parser():
    """The argument parser of ``python -m gradcheck``.

    Returns:
        argparse.ArgumentParser.
    """
    p = argparse.ArgumentParser(prog="python -m gradcheck",
                                description="Check every layer's backward pass and every net's gradients against "
                                            "centered differences (float64), with the side checks.")
    p.add_argument("--mode", choices=["auto", "full", "fast"], default="auto",
                   help="full: every element; fast: random probes; auto: full for small inputs")
    p.add_argument("--seed", type=int, default=0, help="seeds the inputs, dout and the probes")
    p.add_argument("--only", nargs="+", metavar="NAME", default=None,
                   help="check only the cases whose names contain one of these strings")
    p.add_argument("--list", action="store_true", help="list the case names and exit")
    p.add_argument("--verbose", action="store_true", help="print every report in full, not only failures")
    return p


def main(argv=None):
    """Run the checks; returns 0 when all pass, 1 otherwise, 2 for bad arguments."""
    from gradcheck.registry import LAYER_CASES, MODEL_CASES, run_case

    parser = build_parser()
    args = parser.parse_args(argv)
    cases = LAYER_CASES + MODEL_CASES
    if args.only:
        cases = [c for c in cases if any(s in c.name for s in args.only)]
        if not cases:
            parser.error(f"--only {' '.join(args.only)} matches no case; see --list")
    if args.list:
        print("\n".join(c.name for c in cases))
        return 0
    width = max(len(c.name) for c in cases)
    print(f"{'case':{width}}  {'verdict':7}  {'worst |diff| / allowed':22}  {'kinks':5}  {'evals':6}  {'time':>8}")
    failed = []
    for case in cases:
        start = time.perf_counter()
        report = run_case(case, seed=args.seed, mode=args.mode)
        seconds = time.perf_counter() - start
        worst = max((r.worst_abs_error / r.worst_allowed for r in report.inputs if r.worst_allowed > 0), default=0.0)
        kinks = sum(len(r.kinks) for r in report.inputs)
        print(f"{case.name:{width}}  {'ok' if report else 'FAIL':7}  {worst:22.2g}  {kinks:5d}  "
              f"{report.forward_evaluations:6d}  {1e3 * seconds:6.0f} ms")
        if not report:
            failed.append(report)
        elif args.verbose:
            print(report, end="\n\n")
    for report in failed:
        print(f"\n{report}")
    print(f"\n{len(cases) - len(failed)} of {len(cases)} passed (mode {args.mode}, seed {args.seed}).")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
