"""python -m grading {release,grade,grade-all,autograder-zip,make-reference}: see --help of each."""

from __future__ import annotations

import argparse
import os
import sys

# The grader's side and its worker take turns on small products, so each gets one BLAS thread: a
# second thread of the grader's would only spin against the worker (grading the library took 9.3 s
# with two, 7.8 s with one). Set before anything loads numpy; a caller's own setting wins.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

from grading import manifest  # noqa: E402
from grading.sandbox import LEVELS  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m grading", description=__doc__.split(":")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    release = commands.add_parser("release", help="write the student version (solutions stubbed)")
    release.add_argument("out_dir", metavar="OUT_DIR", help="folder to create")
    release.add_argument("--force", action="store_true",
                         help="replace OUT_DIR if it holds an earlier release, unchanged (never any other folder)")
    release.add_argument("--assignment", metavar="NAME",
                         help="one assignment of grading/course.json (default: the whole library, every solution stubbed)")
    grade = commands.add_parser("grade", help="grade a submission with the graded tests")
    grade.add_argument("submission", metavar="SUBMISSION", help="the folder or .zip the student handed in")
    grade.add_argument("--results", metavar="PATH", help="write Gradescope's results.json here")
    grade.add_argument("--assignment", metavar="NAME",
                       help="grade one assignment of grading/course.json (default: the whole library)")
    grade.add_argument("--timeout", type=float, default=manifest.TEST_TIMEOUT_S, metavar="S",
                       help=f"seconds each test may run (default {manifest.TEST_TIMEOUT_S:g})")
    grade.add_argument("--memory-mb", type=int, default=manifest.MEMORY_LIMIT_MB, metavar="MB",
                       help=f"memory limit of the test process in MiB, 0 for none (default {manifest.MEMORY_LIMIT_MB})")
    grade.add_argument("--log", metavar="PATH", help="keep what the submission printed (bounded) in this file")
    grade.add_argument("--isolation", choices=LEVELS, help="force an isolation level (default: the strongest available)")
    from grading.batch import add_parser as add_grade_all

    add_grade_all(commands)
    package = commands.add_parser("autograder-zip", help="package the autograder for Gradescope")
    package.add_argument("out_zip", metavar="OUT.zip")
    package.add_argument("--assignment", metavar="NAME",
                         help="the autograder of one assignment of grading/course.json (default: the whole library)")
    commands.add_parser("make-reference", help="regenerate grading/reference from the reference solution")
    return parser


def main(argv=None) -> int:
    """Run one command; returns the exit code (0 done, 2 refused with a message)."""
    args = _parser().parse_args(argv)
    from grading.markers import MarkerError
    from grading.reference import ReferenceError

    if args.command == "grade-all":  # its own exit codes: 1 for a failure, 2 for a usage error
        from grading.batch import run as grade_all

        return grade_all(args)
    try:
        if args.command == "release":
            from grading.release import release

            result = release(args.out_dir, force=args.force, assignment=args.assignment)
            stubbed = sum(len(v) for v in result.stubbed.values())
            print(f"wrote the student version to {result.out_dir}: {len(result.files)} files, "
                  f"{stubbed} solution regions stubbed in {len(result.stubbed)} files, "
                  f"{result.hidden_regions} hidden test regions left out")
        elif args.command == "grade":
            from grading.grade import grade
            from grading.results import table, write_results

            outcome = grade(args.submission, timeout=args.timeout, memory_mb=args.memory_mb, isolation=args.isolation,
                            assignment=args.assignment)
            print(table(outcome))
            if args.log:
                from grading.results import write_log

                print(f"log: {write_log(outcome, args.log)}")
            if args.results:
                print(f"results: {write_results(outcome, args.results)}")
        elif args.command == "autograder-zip":
            from grading.autograder import autograder_zip

            names = autograder_zip(args.out_zip, assignment=args.assignment)
            print(f"wrote {args.out_zip} ({len(names)} files); upload it as the Gradescope autograder")
        else:
            from data.files import project_root
            from grading.reference import write_reference

            hashes = write_reference(project_root() / manifest.REFERENCE_DIR)
            print(f"wrote {len(hashes)} reference files and {manifest.REFERENCE_HASHES}")
    except (MarkerError, ReferenceError, ValueError, RuntimeError, OSError) as exc:
        message = str(exc).removeprefix(f"{args.command}: ")
        print(f"python -m grading {args.command}: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
