"""Batch grading's speedup: N submissions graded with one job, then with two, on the local process pool.

    python -m benchmarks.batch_grading [--submissions N] [--jobs 1 2] [--quick]

Each submission is the reference solution's student files (so every grading does the full work
and ends with full marks), graded by grading.batch.grade_all into a fresh results folder. Reports
the wall time of each run, the seconds per submission, the speedup over one job next to the ideal
(the number of jobs), and the CPU seconds one grading costs (its grader, its workers): a grading
that keeps more than one core busy on its own leaves less for a second job, which caps the
speedup below the ideal. The issue's target: at least TARGET_SPEEDUP with two jobs on 2 cores.
Exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import pathlib
import resource
import shutil
import sys
import tempfile
import time

from benchmarks.grading import reference_submission
from grading import manifest
from grading.batch import grade_all
from solver.executor import default_jobs

TARGET_SPEEDUP = 1.7
# Whole-submission limit for the benchmark: generous, and not computed (that is a second of pytest per run).
LIMIT_S = 3600.0


def make_class(folder: pathlib.Path, count: int) -> pathlib.Path:
    """count submissions student_00, student_01, ...: the reference solution's student files each.

    Args:
        folder: where the class folder is created.
        count: submissions (>= 1).

    Returns:
        The class folder.
    """
    reference = reference_submission(folder)
    klass = folder / "class"
    for i in range(count):
        student = klass / f"student_{i:02d}"
        for rel in manifest.STUDENT_FILES:
            (student / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(reference / rel, student / rel)
    return klass


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_batch(klass: pathlib.Path, out: pathlib.Path, jobs: int) -> dict:
    """Grade the class with jobs gradings at once; wall seconds, CPU seconds of the gradings, scores.

    Args:
        klass: the class folder.
        out: a results folder that does not exist yet.
        jobs: gradings at once.

    Returns:
        dict with "seconds", "cpu" (the CPU seconds of every process the run started and reaped)
        and "scores" (student -> total).
    """
    cpu = _children_cpu()
    started = time.perf_counter()
    summary = grade_all(klass, out, jobs=jobs, submission_timeout=LIMIT_S, progress=False)
    seconds = time.perf_counter() - started
    if summary.errors:
        raise RuntimeError(f"batch grading failed: {summary.errors}")
    return {"seconds": seconds, "cpu": _children_cpu() - cpu,
            "scores": {row["student"]: row["total"] for row in summary.rows}}


def main(argv=None) -> int:
    """Measure and print a Markdown table; returns 0."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.batch_grading", description=__doc__.split("\n\n")[0])
    p.add_argument("--submissions", type=int, default=40, help="submissions in the class (default 40)")
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="the job counts to compare (default 1 2)")
    p.add_argument("--quick", action="store_true", help="1 submission, for the smoke test (measures nothing)")
    args = p.parse_args(argv)
    count = 1 if args.quick else args.submissions
    if count < 1 or any(j < 1 for j in args.jobs):
        p.error("--submissions and --jobs must be >= 1")
    with tempfile.TemporaryDirectory(prefix="chainrule-bench-batch-") as tmp:
        klass = make_class(pathlib.Path(tmp), count)
        runs = {jobs: run_batch(klass, pathlib.Path(tmp) / f"results-{jobs}", jobs) for jobs in args.jobs}
    base = runs[args.jobs[0]]["seconds"] * args.jobs[0]
    print(f"Batch grading {count} copies of the reference solution on the local process pool; "
          f"{default_jobs()} cores available here.\n")
    print("| jobs | seconds | s per submission | speedup over 1 job | ideal | CPU s per grading | cores busy |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for jobs, run in runs.items():
        print(f"| {jobs} | {run['seconds']:.1f} | {run['seconds'] / count:.2f} | {base / run['seconds']:.2f} | "
              f"{float(jobs):.1f} | {run['cpu'] / count:.2f} | {run['cpu'] / run['seconds']:.2f} |")
    totals = sorted({total for run in runs.values() for total in run["scores"].values()})
    print(f"\nEvery submission scored {' or '.join(totals)}. Target: a speedup of at least {TARGET_SPEEDUP:g} "
          "with 2 jobs on 2 cores; one grading that keeps more than one core busy caps it below the ideal.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
