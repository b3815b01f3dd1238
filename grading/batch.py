"""Grade a whole class: every submission in a folder, in parallel, into one gradebook.

    python -m grading grade-all SUBMISSIONS --out DIR [--jobs N] [--executor local|dask] [--scheduler ADDR]
                                [--regrade] [--assignment NAME] [--timeout S] [--memory-mb MB]

SUBMISSIONS holds one folder or .zip per student (the student is the entry's name without .zip;
hidden entries are ignored, links refused with a note), or is a Gradescope export (its
``submission_metadata.yml`` names the students of each ``submission_<id>/``, see
grading.gradescope_export). Each submission is graded by its own ``python -m grading grade``
subprocess (BLAS on one thread, solver.executor.run_command) in a task of a
``concurrent.futures.Executor`` (solver.executor.open_executor: a local process pool, or a
dask.distributed cluster), so a submission that crashes, hangs or floods ends only its own
grading: the grader's limits per test, then a whole-submission wall-clock limit.

Writes DIR/<student>/results.json (Gradescope's format, by the grade command), DIR/<student>/grade.log
(the command's output, its tail) and DIR/gradebook.csv (one row per submission, sorted by student).
A re-run skips each student whose results.json is complete unless regrade; a grading that failed
is a row with status "error" and its reason, and is tried again by the next run.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
import sys
import time
from concurrent.futures import as_completed
from dataclasses import dataclass, field

from data.files import project_root, write_atomically
from grading import manifest
from grading.batch_files import (BOOK_NAME, BatchError, Entry, complete_results, find_submissions, path_argument,
                                 write_gradebook)

# solver.executor is imported where it is used: importing solver loads numpy, and python -m grading
# builds this module's parser for every command.

__all__ = ["MARKER_NAME", "BatchSummary", "BatchError", "default_submission_timeout", "grade_all", "add_parser", "run"]

# Written at DIR's top: marks DIR as grade-all's, and remembers the assignment its results are for.
MARKER_NAME = ".chainrule-batch.json"
# The whole-submission limit: this, plus 1.5 x the per-test timeout for each graded test case.
STARTUP_ALLOWANCE_S = 120.0
# Graded test cases assumed when they cannot be counted.
FALLBACK_CASES = 200
# Characters kept of a failure's reason (one line in the gradebook).
REASON_CHARS = 300
BAR_WIDTH = 24


@dataclass
class BatchSummary:
    """What grade_all did: the gradebook's rows, who was graded, skipped or failed, and the time taken."""

    out: pathlib.Path
    gradebook: pathlib.Path
    rows: list[dict]
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # student -> one-line reason
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    executor: str = "local"


def default_submission_timeout(timeout: float, root=None) -> float:
    """The whole-submission limit: STARTUP_ALLOWANCE_S + 1.5 x timeout per graded test case.

    Args:
        timeout: the per-test timeout in seconds.
        root: the grader's source root (default: this project); its graded tests are counted by
            pytest's collection in a subprocess (FALLBACK_CASES if that fails).

    Returns:
        seconds (float).
    """
    from solver.executor import run_command

    timeout = _positive("default_submission_timeout", "timeout", timeout)
    root = project_root() if root is None else path_argument("default_submission_timeout", "root", root)
    done = run_command(["-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-c", os.devnull,
                        "--rootdir", str(root / "grading"), str(root / manifest.GRADED_TESTS_DIR)],
                       timeout=120, cwd=str(root))
    found = re.search(r"(\d+) tests? collected", done.stdout)
    cases = int(found.group(1)) if found else FALLBACK_CASES
    return STARTUP_ALLOWANCE_S + 1.5 * timeout * cases


def _positive(fn: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{fn}: {name} must be a positive number of seconds, got {value!r}.")
    return float(value)


def _grade_task(task: dict) -> dict:
    """Run one ``python -m grading grade`` in an executor's worker; plain data in, plain data out."""
    from solver.executor import run_command

    root = task["root"] or str(project_root())
    done = run_command(task["args"], timeout=task["limit"], cwd=root)
    return {"student": task["student"], "returncode": done.returncode, "seconds": done.seconds,
            "stdout": done.stdout, "stderr": done.stderr}


def _reason(outcome: dict, limit: float, results: pathlib.Path) -> str | None:
    """None when the grading succeeded, else one line saying why not."""
    code = outcome["returncode"]
    if code is None:
        reason = f"stopped after {limit:g} s, the whole-submission time limit"
    elif code != 0:
        lines = [line.strip() for line in outcome["stderr"].splitlines() if line.strip()]
        said = lines[-1].removeprefix("python -m grading grade: ") if lines else ""
        reason = said or (f"the grade command was killed by signal {-code}" if code < 0
                          else f"the grade command exited with code {code}")
    elif complete_results(results) is None:
        reason = "the grade command exited 0 but wrote no complete results.json"
    else:
        return None
    reason = " ".join(reason.split())
    return reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS - 3] + "..."


def _check_out(out: pathlib.Path, submissions: pathlib.Path, entries, assignment, regrade: bool) -> None:
    real_out, real_in = out.resolve(), submissions.resolve()
    if real_out == real_in or real_in in real_out.parents:
        raise ValueError(f"grade_all: out ({out}) must not be inside the submissions folder {submissions}.")
    for entry in entries:
        real = (out / entry.student).resolve()
        if real == real_in or real in real_in.parents:
            raise ValueError(f"grade_all: the results of {entry.student} would go to {real}, which holds the "
                             "submissions; choose another out.")
    marker = out / MARKER_NAME
    if out.exists() and (not out.is_dir() or any(out.iterdir()) and not marker.is_file()):
        raise BatchError(f"grade_all: out {out} exists and was not written by grade-all; "
                         "give a new or empty folder.")
    graded = any((out / entry.student / "results.json").exists() for entry in entries)
    if marker.is_file() and graded and not regrade:
        try:
            before = json.loads(marker.read_text("utf-8")).get("assignment")
        except (OSError, ValueError, AttributeError):
            before = None
        if before != assignment:
            raise BatchError(f"grade_all: {out} holds results for assignment {before!r}, not {assignment!r}: "
                             "use another out, or regrade.")


class _Progress:
    """On a terminal, a bar of submissions done with an ETA; otherwise one line per finished submission."""

    def __init__(self, total: int, stream, enabled: bool):
        self.total, self.stream, self.enabled, self.done = total, stream, enabled and total > 0, 0
        self.bar = self.enabled and getattr(stream, "isatty", lambda: False)()
        self.start = time.monotonic()
        if self.bar:
            self._draw("")

    def _draw(self, last: str) -> None:
        elapsed = time.monotonic() - self.start
        eta = (self.total - self.done) * elapsed / self.done if self.done else None
        eta_text = "--:--" if eta is None else f"{int(eta) // 60:02d}:{int(eta) % 60:02d}"
        filled = BAR_WIDTH * self.done // self.total
        self.stream.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.done}/{self.total} submissions "
                          f"ETA {eta_text}{'  ' + last if last else ''}\x1b[K")
        self.stream.flush()

    def finished(self, student: str, text: str) -> None:
        self.done += 1
        if self.bar:
            self._draw(f"{student}: {text}"[:60])
            if self.done == self.total:
                self.stream.write("\n")
                self.stream.flush()
        elif self.enabled:
            print(f"[{self.done}/{self.total}] {student}: {text}", file=self.stream, flush=True)


def _check_options(fn: str, jobs, executor, scheduler, client, regrade, progress, assignment, memory_mb) -> None:
    from solver.executor import DASK_MISSING, KINDS, check_jobs, dask_available

    if jobs is not None:
        check_jobs(fn, jobs)
    if executor not in KINDS:
        raise ValueError(f"{fn}: executor must be one of {KINDS}, got {executor!r}.")
    if executor == "local" and (scheduler is not None or client is not None):
        raise ValueError(f"{fn}: scheduler and client are for executor='dask'; executor is 'local'.")
    if scheduler is not None and client is not None:
        raise ValueError(f"{fn}: give a scheduler address or a client, not both.")
    if scheduler is not None and not (isinstance(scheduler, str) and re.fullmatch(r"[a-z]+://\S+", scheduler)):
        raise ValueError(f"{fn}: scheduler must be an address like 'tcp://HOST:PORT', got {scheduler!r}.")
    for name, value in (("regrade", regrade), ("progress", progress)):
        if not isinstance(value, bool):
            raise TypeError(f"{fn}: {name} must be True or False, got {type(value).__name__} {value!r}.")
    if assignment is not None and not (isinstance(assignment, str) and assignment.strip()
                                       and assignment == assignment.strip() and not assignment.startswith("-")):
        raise ValueError(f"{fn}: assignment must be an assignment's name (a non-empty str), got {assignment!r}.")
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or memory_mb < 0:
        raise ValueError(f"{fn}: memory_mb must be a non-negative int (MiB, 0 for none), got {memory_mb!r}.")
    if executor == "dask" and client is None and not dask_available():
        raise RuntimeError(f"{fn}: {DASK_MISSING}.")


def _task(entry: Entry, out: pathlib.Path, assignment, timeout: float, memory_mb: int, limit: float, root) -> dict:
    args = ["-m", "grading", "grade", entry.path, "--results", str(out / entry.student / "results.json"),
            "--timeout", repr(timeout), "--memory-mb", str(memory_mb)]
    if assignment is not None:
        args += ["--assignment", assignment]
    return {"student": entry.student, "args": args, "limit": limit, "root": None if root is None else str(root)}


def _write_log(folder: pathlib.Path, task: dict, outcome: dict) -> None:
    text = (f"$ python {' '.join(task['args'])}\nexit code: {outcome['returncode']} ({outcome['seconds']:.1f} s)\n"
            f"\n== stdout (its end)\n{outcome['stdout']}\n== stderr (its end)\n{outcome['stderr']}\n")
    write_atomically(folder / "grade.log", text, parents=True)


def grade_all(submissions, out, *, jobs=None, executor="local", scheduler=None, client=None, regrade=False,
              assignment=None, timeout=manifest.TEST_TIMEOUT_S, memory_mb=manifest.MEMORY_LIMIT_MB,
              submission_timeout=None, root=None, progress=True, stream=None) -> BatchSummary:
    """Grade every submission of a folder or Gradescope export in parallel; write results and the gradebook.

    Args:
        submissions: the folder of per-student folders and zips, or a Gradescope export.
        out: the results folder (created; must not lie inside submissions; an existing one must
            be empty or written by grade_all).
        jobs: gradings at once (default: the cores available); for the dask executor, the workers
            of the LocalCluster started when neither scheduler nor client is given.
        executor: "local" (a process pool) or "dask" (pip install 'chainrule[cluster]').
        scheduler: executor "dask": the address of a running scheduler, like "tcp://10.0.0.5:8786".
        client: executor "dask": a connected dask.distributed.Client (not closed here).
        regrade: grade again the students whose results.json is already complete.
        assignment: passed to ``grade --assignment`` (None: the whole library).
        timeout: seconds per graded test, as ``grade --timeout``.
        memory_mb: each worker's address-space limit in MiB (0: none), as ``grade --memory-mb``.
        submission_timeout: wall-clock seconds one whole grading may take before it is killed
            (default: default_submission_timeout(timeout, root)).
        root: the grader's source root the gradings run from (default: this project; on a
            cluster, the same path on every worker, like submissions and out).
        progress: show the progress (a bar on a terminal, else one line per submission).
        stream: where progress goes (default sys.stderr).

    Returns:
        The BatchSummary.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: a bad option, or out inside submissions.
        BatchError: unreadable submissions, a malformed export, clashing student names, a foreign out.
        RuntimeError: executor "dask" without the cluster extra.
    """
    from solver.executor import default_jobs, executor_kind, open_executor

    fn = "grade_all"
    submissions, out = path_argument(fn, "submissions", submissions), path_argument(fn, "out", out)
    _check_options(fn, jobs, executor, scheduler, client, regrade, progress, assignment, memory_mb)
    timeout = _positive(fn, "timeout", timeout)
    if submission_timeout is not None:
        submission_timeout = _positive(fn, "submission_timeout", submission_timeout)
    root = None if root is None else path_argument(fn, "root", root)
    stream = sys.stderr if stream is None else stream
    begin = time.monotonic()
    entries, notes = find_submissions(submissions)
    _check_out(out, submissions, entries, assignment, regrade)
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / MARKER_NAME, json.dumps({"written_by": "python -m grading grade-all",
                                                    "assignment": assignment}) + "\n")
    summary = BatchSummary(out=out, gradebook=out / BOOK_NAME, rows=[], notes=notes, executor=executor)
    summary.errors = {e.student: e.problem for e in entries if e.problem}
    todo = []
    for entry in entries:
        if entry.problem:
            continue
        if not regrade and complete_results(out / entry.student / "results.json") is not None:
            summary.skipped.append(entry.student)
        else:
            todo.append(entry)
    if summary.skipped:
        notes.append(f"skipped {len(summary.skipped)} already graded (regrade grades them again).")
    if progress:
        for note in notes:
            print(f"note: {note}", file=stream, flush=True)
    limit = submission_timeout or (default_submission_timeout(timeout, root) if todo else 0.0)
    bar = _Progress(len(todo), stream, progress)
    if todo:
        # A pool or LocalCluster started here needs no more workers than submissions.
        workers = min(jobs or default_jobs(), len(todo)) if scheduler is None and client is None else None
        with open_executor(workers, executor, scheduler, client) as pool:
            summary.executor = executor_kind(pool)
            tasks = {entry.student: _task(entry, out, assignment, timeout, memory_mb, limit, root) for entry in todo}
            futures = {pool.submit(_grade_task, tasks[entry.student]): entry for entry in todo}
            for future in as_completed(futures):
                entry = futures[future]
                results = out / entry.student / "results.json"
                try:
                    outcome = future.result()
                except Exception as error:  # the executor lost the task: a worker died, the cluster went away
                    reason = " ".join(f"the executor lost this grading ({type(error).__name__}: {error})".split())
                else:
                    _write_log(out / entry.student, tasks[entry.student], outcome)
                    reason = _reason(outcome, limit, results)
                if reason:
                    summary.errors[entry.student] = reason
                    bar.finished(entry.student, f"error: {reason}")
                else:
                    summary.graded.append(entry.student)
                    document = complete_results(results)
                    total = sum(t["max_score"] for t in document["tests"])
                    bar.finished(entry.student, f"{document['score']:g}/{total:g}")
    summary.graded.sort()
    summary.rows = write_gradebook(summary.gradebook, entries, summary.errors)
    summary.seconds = time.monotonic() - begin
    return summary


def add_parser(commands) -> None:
    """Register the grade-all subcommand on python -m grading's subparsers.

    Args:
        commands: the object argparse's add_subparsers returned.

    Returns:
        None.
    """
    batch = commands.add_parser("grade-all", help="grade every submission of a folder or Gradescope export")
    batch.add_argument("submissions", metavar="SUBMISSIONS",
                       help="a folder of one folder or .zip per student, or a Gradescope export")
    batch.add_argument("--out", required=True, metavar="DIR", help="where results and gradebook.csv go")
    batch.add_argument("--jobs", type=int, metavar="N", help="gradings at once (default: the cores available)")
    batch.add_argument("--executor", default="local", metavar="KIND",
                       help="local (a process pool, the default) or dask (a dask.distributed cluster, an extra)")
    batch.add_argument("--scheduler", metavar="ADDR", help="--executor dask: a running scheduler, tcp://HOST:PORT")
    batch.add_argument("--regrade", action="store_true", help="grade again the students already graded in DIR")
    batch.add_argument("--assignment", metavar="NAME", help="grade this assignment only (passed to grade)")
    batch.add_argument("--timeout", type=float, default=manifest.TEST_TIMEOUT_S, metavar="S",
                       help=f"seconds each test may run (default {manifest.TEST_TIMEOUT_S:g})")
    batch.add_argument("--memory-mb", type=int, default=manifest.MEMORY_LIMIT_MB, metavar="MB",
                       help=f"memory limit of each test process in MiB, 0: none (default {manifest.MEMORY_LIMIT_MB})")
    batch.add_argument("--submission-timeout", type=float, metavar="S",
                       help="seconds one whole grading may take (default: from --timeout and the number of tests)")


def run(args) -> int:
    """Run grade-all from parsed arguments; print the summary.

    Args:
        args: the argparse namespace of the grade-all subcommand.

    Returns:
        The exit code: 0 all graded, 1 a failure (some submissions not graded, unreadable input,
        no dask), 2 a usage error.
    """
    prog = "python -m grading grade-all"
    try:
        summary = grade_all(args.submissions, args.out, jobs=args.jobs, executor=args.executor,
                            scheduler=args.scheduler, regrade=args.regrade, assignment=args.assignment,
                            timeout=args.timeout, memory_mb=args.memory_mb, submission_timeout=args.submission_timeout)
    except (TypeError, ValueError) as error:
        print(f"{prog}: {str(error).removeprefix('grade_all: ')}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as error:
        message = str(error)
        message = message.split(": ", 1)[1] if message.startswith(("grade_all: ", "find_submissions: ")) else message
        print(f"{prog}: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; a re-run resumes where this one stopped.", file=sys.stderr)
        return 130
    print(f"graded {len(summary.graded)}, skipped {len(summary.skipped)} already graded, "
          f"{len(summary.errors)} not graded, in {summary.seconds:.1f} s ({summary.executor} executor); "
          f"gradebook: {summary.gradebook}")
    for student, reason in sorted(summary.errors.items()):
        print(f"not graded: {student}: {reason}")
    return 1 if summary.errors else 0
