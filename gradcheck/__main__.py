"""``python -m gradcheck``: check every registered layer and net, print a table, exit 1 on failure.

    python -m gradcheck [--mode auto|full|fast] [--seed S] [--only NAME ...] [--list] [--verbose]

A case whose layer (or a layer it calls) still raises NotImplementedError, as the stubs of the
student version do, gets a "todo" row naming the function instead of stopping the run; it counts
as not passed.
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import sys
import time

# The verdict column of a case whose code raises NotImplementedError.
TODO = "todo"


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an int >= 0, got {value}")
    return value


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
    p.add_argument("--seed", type=_seed, default=0, help="seeds the inputs, dout and the probes (an int >= 0)")
    p.add_argument("--only", nargs="+", metavar="NAME", default=None,
                   help="check only the cases with these names, whole names as --list prints them (quote names "
                        "with spaces); * and ? match any characters, e.g. 'max_pool*'")
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
        try:
            cases = select_cases(cases, args.only)
        except ValueError as exc:
            parser.error(str(exc).removeprefix("select_cases: "))
    if args.list:
        print("\n".join(c.name for c in cases))
        return 0
    width = max(len(c.name) for c in cases)
    print(f"{'case':{width}}  {'verdict':7}  {'worst |diff| / allowed':22}  {'kinks':5}  {'evals':6}  {'time':>8}")
    failed, todo = [], []
    for case in cases:
        start = time.perf_counter()
        try:
            report = run_case(case, seed=args.seed, mode=args.mode)
        except NotImplementedError as exc:
            todo.append(case.name)
            print(f"{case.name:{width}}  {TODO:7}  not implemented yet: {_what_is_missing(exc)}")
            continue
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
    passed = len(cases) - len(failed) - len(todo)
    waiting = f"; {len(todo)} not implemented yet" if todo else ""
    print(f"\n{passed} of {len(cases)} passed{waiting} (mode {args.mode}, seed {args.seed}).")
    return 1 if failed or todo else 0


def select_cases(cases, names):
    """The cases whose whole name equals one of names (or matches it, for names with * or ?).

    Args:
        cases: LayerCase / ModelCase list, in the order to keep.
        names: the names asked for, as ``--list`` prints them.

    Returns:
        The selected cases, in the order of cases.

    Raises:
        ValueError: a name matches no case (each such name listed, with close case names).
        TypeError: names is not a list of strings.
    """
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"select_cases: names must be a list of str, got {names!r}.")
    known = [c.name for c in cases]
    unmatched = [n for n in names if not any(fnmatch.fnmatchcase(k, n) for k in known)]
    if unmatched:
        advice = []
        for n in unmatched:
            close = difflib.get_close_matches(n, known, n=3, cutoff=0.5)
            advice.append(f"{n!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
        verb = "matches" if len(unmatched) == 1 else "match"
        raise ValueError(f"select_cases: --only {', '.join(advice)} {verb} no case name; names are whole "
                         "names as --list prints them, * matches any characters")
    return [c for c in cases if any(fnmatch.fnmatchcase(c.name, n) for n in names)]


def _what_is_missing(exc):
    """'affine_forward (in layers/affine.py)' from a stub's message; other messages as they are."""
    lines = str(exc).strip().splitlines()
    message = lines[0] if lines else "NotImplementedError"
    name, stub, path = message.partition(" is not implemented yet: write it in ")
    return f"{name} (in {path})" if stub else message


if __name__ == "__main__":
    sys.exit(main())
