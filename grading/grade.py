"""Grade a submission: graded tests in this trusted process, the student's code in a sandboxed worker.

    python -m grading grade SUBMISSION [--results results.json] [--timeout S] [--memory-mb MB]

The trust boundary (see grading.sandbox for what each isolation level holds):
- This process runs pytest over the graded tests with grading.plugin; it never imports student
  code. Tests reach the submission only through the ``student`` fixture (grading.student),
  which calls functions in a worker process over a channel carrying plain data (no pickle).
- Each test file gets a fresh worker (forked by a sandboxed zygote that holds numpy and
  scipy, grading.pool) over a fresh scratch copy of the student tree: the student
  version of the library with the submission's files in it (grading.submission takes them,
  refusing links, FIFOs, oversized files and unsafe zip members). Reference data, hidden test
  source and the solution are never in a folder the worker can read (at the root and userns
  levels), and are read into memory before any worker starts.
- Every verdict and message is computed here; the worker's answers are only values. A call
  that hangs, crashes or sends garbage fails that test and kills the worker (and everything it
  started). Every collected test appears in the Grade, failed with a reason when it did not pass.
"""

from __future__ import annotations

import ast
import json
import os
import pathlib
import shutil
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from data.files import project_root
from grading import manifest, sandbox
from grading.markers import HIDDEN, find_regions
from grading.plugin import GraderPlugin, run
from grading.reference import split_file, verify
from grading.model_grade import take_model
from grading.submission import SubmissionError, gather

AUTOGRADER_MARKER = ".chainrule-autograder"
# The folders of the student version the worker needs (tests, notebooks and the rest stay out).
WORKER_FOLDERS = ("layers", "solver", "gradcheck", "data")
# The grader's layers that net tests may put in place of the student's (grading.student).
STANDIN_NAMES = ("affine_forward", "affine_backward", "relu_forward", "relu_backward", "softmax_loss")
PYTEST_INI = """[pytest]
pythonpath = {graded}
addopts = -p no:cacheprovider
"""


class GradingError(RuntimeError):
    """The grader cannot grade (bad arguments, broken reference data, bad graded tests)."""


@dataclass
class GradedTest:
    """One graded test function (its parametrized cases share its points)."""

    name: str
    file: str
    points: float
    hidden: bool
    cases: dict[str, str] = field(default_factory=dict)  # nodeid -> "passed" or a failure message
    printed: dict[str, str] = field(default_factory=dict)  # nodeid -> what the submission printed
    earned: float | None = None  # points set by the grader itself (a model's accuracy), not by cases
    note: str = ""  # shown first in the output (a model's accuracy when it earned every point)

    @property
    def passed_cases(self) -> int:
        return sum(message == "passed" for message in self.cases.values())

    @property
    def score(self) -> float:
        if self.earned is not None:
            return self.earned
        return self.points * self.passed_cases / len(self.cases) if self.cases else 0.0

    @property
    def status(self) -> str:
        return "passed" if self.cases and self.passed_cases == len(self.cases) else "failed"

    def output(self) -> str:
        """What results.json shows: one line per failed case, then the submission's own output."""
        lines = [self.note] if self.note else []
        for nodeid, message in self.cases.items():
            if message != "passed":
                case = nodeid.split("::", 1)[-1]
                lines.append(f"{case}: {message}")
        if len(self.cases) > 1:
            lines.insert(0, f"{self.passed_cases} of {len(self.cases)} cases passed.")
        for nodeid, text in self.printed.items():
            lines.append(f"[the submission's own output during {nodeid.split('::', 1)[-1]}, truncated]\n{text}")
        return "\n".join(lines) if lines else "passed"


@dataclass
class Grade:
    """The graded tests in order, plus notes on the submission."""

    tests: list[GradedTest]
    notes: list[str]
    seconds: float
    isolation: str = sandbox.PROCESS_LEVEL
    assignment: str | None = None
    # Gradescope's leaderboard entries ({"name", "value", optional "order"}), from a graded model file.
    leaderboard: list = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.points for t in self.tests)


def hidden_test_names(path: pathlib.Path) -> set[str]:
    """Names of the top-level tests of a graded test file that sit in HIDDEN TESTS regions."""
    text = path.read_text("utf-8")
    regions = [r for r in find_regions(text.split("\n"), str(path)) if r.kind == HIDDEN]
    names = set()
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            line = node.lineno - 1
            if any(r.begin < line < r.end for r in regions):
                names.add(node.name)
    return names


def load_reference(directory: pathlib.Path) -> dict[str, dict[str, np.ndarray]]:
    """Every reference case, verified against SHA256SUMS and read into memory (no pickle)."""
    verify(directory)
    cases = {}
    for path in sorted(directory.glob("*.npz")):
        with np.load(path, allow_pickle=False) as stored:
            cases.update(split_file(path.stem, {key: stored[key] for key in stored.files}))
    return cases


def student_tree(root: pathlib.Path, dest: pathlib.Path, assignment: str | None = None) -> None:
    """Write the student version's library folders (solutions stubbed) into dest.

    Args:
        root: the grader's source root (the project, or an unpacked autograder).
        dest: the folder to fill.
        assignment: None (the whole library) or the assignment whose release the tree is.
    """
    if (root / AUTOGRADER_MARKER).is_file():
        release = root / "base"
        built_for = _release_assignment(release)
        if built_for != assignment:
            raise GradingError(f"grade: this autograder was built for {_which(built_for)}, "
                               f"not for {_which(assignment)}.")
    else:
        from grading.release import build

        release = dest.parent / "release"
        build(root, release, assignment)
    for folder in WORKER_FOLDERS:
        if (release / folder).is_dir():
            shutil.copytree(release / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))


def _which(assignment: str | None) -> str:
    return "the whole library" if assignment is None else f"assignment {assignment}"


def _release_assignment(release: pathlib.Path) -> str | None:
    """The assignment a release was built for (its tests/assignment.json), None for the whole library."""
    from grading.release import ASSIGNMENT_TESTS

    listing = release / manifest.STUDENT_TESTS_DIR / ASSIGNMENT_TESTS
    return json.loads(listing.read_text("utf-8"))["assignment"] if listing.is_file() else None


def _standins() -> dict:
    import layers

    return {name: getattr(layers, name) for name in STANDIN_NAMES}


def grade(submission, *, timeout: float = manifest.TEST_TIMEOUT_S, memory_mb: int = manifest.MEMORY_LIMIT_MB,
          root=None, isolation: str | None = None, assignment: str | None = None) -> Grade:
    """Grade one submission.

    Args:
        submission: the folder or .zip the student handed in (the project layout, the project
            one folder down, or the student files side by side).
        timeout: seconds each test's calls into the submission may take together (imports included).
        memory_mb: address-space limit of each worker, in MiB (0: none).
        root: the grader's source root (default: where this package lives).
        isolation: one of grading.sandbox.LEVELS; default the strongest this machine allows.
        assignment: None to grade the whole library, or the name of an assignment of the course
            file (grading.course): its release as the base, its student files taken from the
            submission, its graded tests at its points, and its model file when it asks for one.

    Returns:
        The Grade.

    Raises:
        GradingError: bad arguments, a submission that cannot be read at all, graded tests
            that do not collect, tests without points.
        grading.reference.ReferenceError: reference data missing or altered.
    """
    submission = pathlib.Path(submission)
    if not (submission.is_dir() or submission.is_file()):
        raise GradingError(f"grade: SUBMISSION {submission} is neither a folder nor a .zip file.")
    if isinstance(timeout, bool) or not (isinstance(timeout, (int, float)) and timeout > 0):
        raise GradingError(f"grade: timeout must be a positive number of seconds, got {timeout!r}.")
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or memory_mb < 0:
        raise GradingError(f"grade: memory_mb must be a non-negative int, got {memory_mb!r}.")
    if isolation is not None and isolation not in sandbox.LEVELS:
        raise GradingError(f"grade: isolation must be one of {sandbox.LEVELS}, got {isolation!r}.")
    root = pathlib.Path(root) if root is not None else project_root()
    chosen = None
    if assignment is not None:
        if not isinstance(assignment, str):
            raise GradingError(f"grade: assignment must be a str (an assignment name), got {assignment!r}.")
        from grading.course import CourseError, load_course

        try:
            chosen = load_course(root=root).get(assignment)
        except CourseError as exc:
            raise GradingError(f"grade: {exc}") from None
    student_files = manifest.STUDENT_FILES if chosen is None else chosen.student_files()
    graded_dir = root / manifest.GRADED_TESTS_DIR
    begin = time.monotonic()
    reference = load_reference(root / manifest.REFERENCE_DIR)
    # Read before any worker exists (at the process level a worker could edit these files).
    hidden = {f"graded_tests/{path.name}": hidden_test_names(path) for path in sorted(graded_dir.glob("test_*.py"))}
    limits = sandbox.Limits(memory_mb=memory_mb)
    with tempfile.TemporaryDirectory(prefix="chainrule-grade-") as tmp:
        tmp = pathlib.Path(tmp)
        tree = tmp / "tree"
        tree.mkdir()
        student_tree(root, tree, assignment)
        try:
            intake = gather(submission, tree, student_files)
            model_file = None if chosen is None or chosen.model is None else take_model(submission, tmp, chosen.model)
        except SubmissionError as exc:
            raise GradingError(f"grade: {exc}") from None
        model_result = None
        if model_file is not None:
            # Scored before any worker exists: at the process level a worker could rewrite the copy.
            from grading.model_grade import grade_model

            model_result = grade_model(model_file, chosen.model, root)
        ini = tmp / "pytest.ini"
        ini.write_text(PYTEST_INI.format(graded=graded_dir))
        level, first = (isolation, None) if isolation else sandbox.isolation_with_worker(tree, limits)
        pool = sandbox.Pool(tree, level, limits)
        pool.spare = first
        plugin = GraderPlugin(pool, timeout, reference, _standins())
        plugin.assignment = chosen
        args = [str(graded_dir), "-c", str(ini), "--rootdir", str(graded_dir.parent), "--import-mode=importlib",
                "-p", "no:terminal", "-p", "no:cacheprovider", "--assert=plain", "--continue-on-collection-errors"]
        saved = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        try:
            code = run(plugin, args)
        finally:
            pool.close()
            sandbox.kill_all()
            if saved is None:
                os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
            else:
                os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = saved
    if plugin.collect_errors:
        raise GradingError("grade: the graded tests do not collect:\n" + "\n".join(plugin.collect_errors))
    if not plugin.items:
        raise GradingError(f"grade: no graded tests were collected from {graded_dir} (pytest exit code {code}).")
    unpointed = [i["nodeid"] for i in plugin.items
                 if isinstance(i["points"], bool) or not isinstance(i["points"], (int, float)) or i["points"] <= 0]
    if unpointed:
        raise GradingError(f"grade: graded tests without a positive @pytest.mark.points(n): {unpointed}")
    tests: dict[str, GradedTest] = {}
    for item in plugin.items:
        file = item["nodeid"].partition("::")[0]
        key = f"{file}::{item['function']}"
        if key not in tests:
            tests[key] = GradedTest(name=key.removeprefix("graded_tests/"), file=file,
                                    points=float(item["points"]), hidden=item["function"] in hidden.get(file, set()))
        nodeid = item["nodeid"]
        tests[key].cases[nodeid] = plugin.outcomes.get(nodeid, "not run: the grader stopped before this test")
        if nodeid in plugin.outputs:
            tests[key].printed[nodeid] = plugin.outputs[nodeid]
    leaderboard = []
    if chosen is not None:
        _assignment_points(chosen, tests, plugin)
        if model_result is not None:
            model_test, leaderboard = model_result
            tests[model_test.name] = model_test
    notes = list(intake.notes)
    for file, problem in sorted(plugin.import_errors.items()):
        notes.append(f"{file} could not be imported ({problem}); the tests that need it failed.")
    notes.append(sandbox.describe(level))
    return Grade(tests=list(tests.values()), notes=notes, seconds=time.monotonic() - begin, isolation=level,
                 assignment=assignment, leaderboard=leaderboard)


def _assignment_points(assignment, tests: dict, plugin: GraderPlugin) -> None:
    """Give each selected test its worth in the assignment; refuse a course entry that selects nothing."""
    where = {i["nodeid"]: (i["nodeid"].partition("::")[0], i["function"], i["case"]) for i in plugin.items}
    for entry in assignment.tests:
        if not any(entry.selects(*spot) for spot in where.values()):
            raise GradingError(f"grade: assignment {assignment.name}'s tests entry for {entry.file} "
                               f"(functions {entry.functions}, cases {entry.cases}) selects no graded test.")
    for key, test in tests.items():
        entry = assignment.selection(*where[next(iter(test.cases))])
        test.points = entry.worth(test.points, len(test.cases), plugin.case_counts[key])
