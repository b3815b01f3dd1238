"""What the grader's isolation costs: seconds to grade one submission, next to its floors.

    python -m benchmarks.grading [--repeats R] [--quick]

Grades the reference solution (filled into a fresh student release) R times at each isolation
level that starts here, and reports the median wall time and the score (which must be full
marks). Floors, measured on the same machine in the same run:
- the graded tests run in this process against the reference library, with no worker at all
  (what the tests' own arithmetic costs);
- one worker's start (Python, numpy and scipy.special imported, ready to answer), per level;
- one worker forked by the zygote the grader keeps (a fresh copy of the tree, the fork, ready
  to answer), per level: what each test file's worker costs in a grading;
- one round trip over the channel (a call that does nothing).
Exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from grading import manifest, sandbox
from data.files import project_root
from grading.grade import grade, load_reference
from grading.student import RemoteStudent

# The target: grading one submission stays near the 6 s the unisolated grader took.
TARGET_S = 6.0


def reference_submission(folder: pathlib.Path) -> pathlib.Path:
    """A student release with the reference solution's files put back."""
    out = folder / "submission"
    done = subprocess.run([sys.executable, "-m", "grading", "release", str(out)], capture_output=True, text=True,
                          cwd=project_root())
    if done.returncode != 0:
        raise RuntimeError(f"release failed: {done.stderr.strip()}")
    for rel in manifest.STUDENT_FILES:
        shutil.copyfile(project_root() / rel, out / rel)
    return out


class _InProcess:
    """Stands where the grader plugin stands, but hands out the library itself: the no-isolation floor."""

    def __init__(self, reference):
        sys.path.insert(0, str(project_root() / manifest.GRADED_TESTS_DIR))
        from grading_checks import LocalStudent

        self.student, self.reference, self.failed, self.passed = LocalStudent(), reference, 0, 0

    def pytest_configure(self, config):
        config.chainrule_grader = self

    def pytest_runtest_logreport(self, report):
        self.failed += report.failed
        self.passed += report.passed and report.when == "call"

    def new_student(self, nodeid):
        return self.student

    def finish_student(self, nodeid):
        pass

    def reference_case(self, name):
        return {k: v.copy() for k, v in self.reference[name].items()}


def in_process_seconds() -> tuple[float, int, int]:
    """(seconds, passed, failed) for every graded test run here against the reference library."""
    import pytest

    plugin = _InProcess(load_reference(project_root() / manifest.REFERENCE_DIR))
    with tempfile.TemporaryDirectory() as tmp:
        ini = pathlib.Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")
        started = time.perf_counter()
        pytest.main([str(project_root() / manifest.GRADED_TESTS_DIR), "-c", str(ini), "-p", "no:terminal",
                     "-p", "no:cacheprovider", "--import-mode=importlib"], plugins=[plugin])
        return time.perf_counter() - started, plugin.passed, plugin.failed


def startup_seconds(tree: pathlib.Path, level: str, repeats: int) -> float:
    """Median seconds from starting a worker to its answer to init."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        worker = sandbox.start_worker(tree, level, sandbox.Limits())
        worker.wait_ready()
        times.append(time.perf_counter() - started)
        worker.kill()
    return statistics.median(times)


def fork_seconds(tree: pathlib.Path, level: str, repeats: int) -> float:
    """Median seconds from asking the Pool's zygote for a worker to its answer to init."""
    pool = sandbox.Pool(tree, level, sandbox.Limits())
    try:
        pool.zygote.wait_ready()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            worker = pool.take()
            worker.wait_ready()
            times.append(time.perf_counter() - started)
            worker.kill()
    finally:
        pool.close()
    return statistics.median(times)


def round_trip_seconds(tree: pathlib.Path, level: str, calls: int) -> float:
    """Median seconds of a call that does nothing (math.copysign) over the channel."""
    pool = sandbox.Pool(tree, level, sandbox.Limits())
    student = RemoteStudent(pool, timeout=600)
    student.call("math.copysign", 1.0, -1.0)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        student.call("math.copysign", 1.0, -1.0)
        times.append(time.perf_counter() - started)
    student.close()
    pool.close()
    return statistics.median(times)


def main(argv=None) -> int:
    """Measure and print a Markdown table; returns 0."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.grading", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="gradings per isolation level (median reported)")
    p.add_argument("--quick", action="store_true", help="one grading at the strongest level only, for the smoke test")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    best = sandbox.isolation()
    levels = [best] if args.quick else [best] + ([sandbox.PROCESS_LEVEL] if best != sandbox.PROCESS_LEVEL else [])
    repeats = 1 if args.quick else args.repeats
    floor, passed, failures = in_process_seconds()
    with tempfile.TemporaryDirectory(prefix="chainrule-bench-grading-") as tmp:
        submission = reference_submission(pathlib.Path(tmp))
        tree = pathlib.Path(tmp) / "tree"
        for folder in ("layers", "solver"):
            shutil.copytree(submission / folder, tree / folder)
        print(f"Grading the reference solution ({len(manifest.STUDENT_FILES)} student files) "
              f"on this machine; median of {repeats}.\n")
        print("| isolation | grade (s) | score | worker start (s) | forked worker (s) | round trip (ms) |")
        print("| --- | --- | --- | --- | --- | --- |")
        for level in levels:
            seconds, scores = [], []
            for _ in range(repeats):
                started = time.perf_counter()
                result = grade(submission, isolation=level)
                seconds.append(time.perf_counter() - started)
                scores.append(result.score)
            start = startup_seconds(tree, level, 1 if args.quick else 5)
            forked = fork_seconds(tree, level, 1 if args.quick else 9)
            trip = round_trip_seconds(tree, level, 50 if args.quick else 500)
            score = f"{min(scores):g}/{result.max_score:g}" if min(scores) == max(scores) else f"{scores}"
            print(f"| {level} | {statistics.median(seconds):.2f} | {score} | {start:.3f} | {forked:.3f} | {trip * 1e3:.3f} |")
            tests = len(result.tests)
    print(f"\n{tests} graded tests. Floor: the same tests in this process against the reference library, no worker: {floor:.2f} s "
          f"({passed} cases passed, {failures} failed). Target: near {TARGET_S:g} s per submission.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
