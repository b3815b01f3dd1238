"""Hyperparameter search throughput: trials per minute on the local process pool and on dask.

    python -m benchmarks.search [--trials N] [--quick]

Runs the same search (same space, same seed, so the same trials) with solver.search on the local
pool with 1 and with 2 jobs, and on a dask.distributed LocalCluster of 2 workers on 127.0.0.1 (when
the cluster extra is installed). Each run starts from an empty folder; the local figures include
starting the pool, the dask figure does not include starting the cluster (reported beside it, as a
cluster is usually started once for many searches). The floor: one trial's ``python -m solver``
run directly, without an executor (60 / its seconds is the most trials per minute one core gives).
Checks that every executor found the same configurations and accuracies. Exits 0 whatever the
figures; a --quick run (1 one-epoch trial per executor) checks that the code runs and measures nothing.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

from solver import search
from solver.executor import dask_available, run_command

# The trials: small fully connected nets on the shipped digits, a few epochs each (the quick run:
# the spiral set, one epoch).
SPACE = {"learning_rate": (1e-4, 1e-2), "reg": [0.0, (1e-5, 1e-2)], "hidden_dims": [[32], [64], [64, 32]]}
FIXED = {"epochs": 5}
SEED = 0
WORKERS = 2


def _search(out, trials, quick, **executor):
    fixed = {"epochs": 1} if quick else FIXED
    space = {**SPACE, "hidden_dims": [[8]]} if quick else SPACE
    started = time.perf_counter()
    result = search(space, trials=trials, dataset="spiral" if quick else "digits", out=out, seed=SEED, fixed=fixed,
                    **executor)
    return time.perf_counter() - started, result


def _signature(result):
    return sorted((t.index, t.seed, repr(t.config), t.status, t.val_acc) for t in result.trials)


def main(argv=None):
    """Measure and print a Markdown table; returns 0."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.search", description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=8, help="trials per search")
    p.add_argument("--quick", action="store_true", help="1 one-epoch trial per executor, for the smoke test")
    args = p.parse_args(argv)
    if args.trials < 1:
        p.error("--trials must be >= 1")
    trials = 1 if args.quick else args.trials
    rows, signatures = [], {}
    with tempfile.TemporaryDirectory(prefix="chainrule-bench-search-") as tmp:
        tmp = pathlib.Path(tmp)
        for jobs in (1, WORKERS):
            seconds, result = _search(tmp / f"local-{jobs}", trials, args.quick, jobs=jobs)
            rows.append(("local pool", jobs, seconds, "-"))
            signatures[f"local {jobs}"] = _signature(result)
        if dask_available():
            from distributed import Client, LocalCluster

            started = time.perf_counter()
            with LocalCluster(n_workers=WORKERS, threads_per_worker=1, host="127.0.0.1",
                              dashboard_address=None) as cluster, Client(cluster) as client:
                start_up = time.perf_counter() - started
                seconds, result = _search(tmp / "dask", trials, args.quick, executor="dask", client=client)
            rows.append(("dask LocalCluster", WORKERS, seconds, f"{start_up:.1f}"))
            signatures["dask"] = _signature(result)
        first = result.trials[0]
        floor = run_command(["-m", "solver", *first.command, "--out", str(tmp / "floor"), "--quiet"])
    command = " ".join(["python", "-m", "solver", *first.command])
    print(f"Search throughput: {trials} trials of a search (seed {SEED}), each trial a run like `{command}`.\n")
    print("| executor | workers | trials | seconds | trials / minute | cluster start-up (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, workers, seconds, start_up in rows:
        print(f"| {name} | {workers} | {trials} | {seconds:.1f} | {60 * trials / seconds:.1f} | {start_up} |")
    if not dask_available():
        print("| dask LocalCluster | - | - | - | not installed (pip install 'chainrule[cluster]') | - |")
    same = len({repr(s) for s in signatures.values()}) == 1
    print(f"\nSame configurations, seeds and validation accuracies on every executor: {'yes' if same else 'NO'}.")
    print(f"Floor: one trial run directly (no executor) takes {floor.seconds:.1f} s, "
          f"at most {60 / floor.seconds:.1f} trials per minute per core.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
