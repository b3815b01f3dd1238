"""Grade a submission: copy the student's files into a fresh workspace, run the graded tests in a
child process under a time and memory limit, and score what the child reports.

    python -m grading grade SUBMISSION_DIR [--results results.json] [--timeout S] [--memory-mb MB]

Safety, by construction:
- Only ``grading.manifest.STUDENT_FILES`` are taken from the submission (regular files, not
  links); a conftest.py, edited tests or anything else the student sent is never copied.
- The list of graded tests and their points is collected from the workspace *before* the
  student's files arrive, so a crash, a timeout, an import or collection error shows up as
  failed tests with their points, never as missing ones.
- The child reports over a private pipe; the parent writes results.json (atomically) after the
  child is gone, so whatever the child writes to disk is ignored. A test that outlives its
  limit is interrupted inside the child, and the child is killed if that does not work; the
  remaining tests then run in a new child.
Student code still runs with the grader's user rights inside the child; run the grader in a
container (as Gradescope does) when submissions are untrusted.
"""

from __future__ import annotations

import ast
import json
import os
import pathlib
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from grading import manifest
from grading.markers import HIDDEN, find_regions
from grading.reference import verify

PLUGIN_MODULE = "_chainrule_grader_plugin"
# Seconds the parent waits past a test's limit before it kills the child.
KILL_GRACE_S = 5.0
# A submitted file larger than this is not copied (the test fails instead).
MAX_FILE_BYTES = 2_000_000
AUTOGRADER_MARKER = ".chainrule-autograder"
PYTEST_INI = """[pytest]
testpaths = graded_tests
pythonpath = graded_tests
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

    @property
    def passed_cases(self) -> int:
        return sum(message == "passed" for message in self.cases.values())

    @property
    def score(self) -> float:
        return self.points * self.passed_cases / len(self.cases) if self.cases else 0.0

    @property
    def status(self) -> str:
        return "passed" if self.cases and self.passed_cases == len(self.cases) else "failed"

    def output(self) -> str:
        lines = []
        for nodeid, message in self.cases.items():
            if message != "passed":
                case = nodeid.split("::", 1)[-1]
                lines.append(f"{case}: {message}")
        if len(self.cases) > 1:
            lines.insert(0, f"{self.passed_cases} of {len(self.cases)} cases passed.")
        return "\n".join(lines) if lines else "passed"


@dataclass
class Grade:
    """The graded tests in order, plus notes on the submission."""

    tests: list[GradedTest]
    notes: list[str]
    seconds: float

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.points for t in self.tests)


def source_root() -> pathlib.Path:
    """The folder holding the grading package (the project, or an unpacked autograder)."""
    return pathlib.Path(__file__).resolve().parent.parent


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


def prepare_workspace(workspace: pathlib.Path, root: pathlib.Path) -> None:
    """Fill workspace with the student version's library, the full graded tests and the reference data."""
    reference = root / manifest.REFERENCE_DIR
    verify(reference)
    if (root / AUTOGRADER_MARKER).is_file():
        shutil.copytree(root / "base", workspace, dirs_exist_ok=True)
    else:
        from grading.release import build

        build(root, workspace)
    shutil.rmtree(workspace / manifest.STUDENT_TESTS_DIR, ignore_errors=True)
    shutil.copytree(root / manifest.GRADED_TESTS_DIR, workspace / "graded_tests",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(reference, workspace / "reference")
    shutil.copy2(pathlib.Path(__file__).with_name("plugin.py"), workspace / f"{PLUGIN_MODULE}.py")
    (workspace / "pytest.ini").write_text(PYTEST_INI)


def copy_submission(submission: pathlib.Path, workspace: pathlib.Path) -> list[str]:
    """Copy the student files from submission into workspace; returns notes on what was not used."""
    notes = []
    for rel in manifest.STUDENT_FILES:
        source = submission / rel
        if not source.exists() and (submission / pathlib.PurePosixPath(rel).name).is_file():
            source = submission / pathlib.PurePosixPath(rel).name  # a flat upload of the files
        if source.is_symlink() or (source.exists() and not source.is_file()):
            notes.append(f"{rel}: not a regular file; the unimplemented version was graded.")
        elif not source.exists():
            notes.append(f"{rel}: not in the submission; the unimplemented version was graded.")
        elif source.stat().st_size > MAX_FILE_BYTES:
            notes.append(f"{rel}: larger than {MAX_FILE_BYTES} bytes; the unimplemented version was graded.")
        else:
            shutil.copyfile(source, workspace / rel)
    return notes


def _limit_memory(megabytes: int):
    def apply():
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


class _Child:
    """One pytest process and the records it sends."""

    def __init__(self, workspace, args, timeout, memory_mb, log):
        read_fd, write_fd = os.pipe()
        env = dict(os.environ)
        env.update({
            "PYTHONPATH": str(workspace),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            "MPLBACKEND": "Agg",
            "CHAINRULE_REFERENCE_DIR": str(workspace / "reference"),
            "CHAINRULE_GRADER_FD": str(write_fd),
            "CHAINRULE_GRADER_TIMEOUT": str(timeout),
            "CHAINRULE_GRADER_STUDENT_FILES": ":".join(manifest.STUDENT_FILES),
        })
        command = [sys.executable, "-m", "pytest", "-p", PLUGIN_MODULE, "-c", str(workspace / "pytest.ini"),
                   "--rootdir", str(workspace), "--assert=plain", "--tb=no", "-q",
                   "--continue-on-collection-errors", *args]
        self.process = subprocess.Popen(
            command, cwd=workspace, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            pass_fds=(write_fd,), start_new_session=True,
            preexec_fn=_limit_memory(memory_mb) if memory_mb else None,
        )
        os.close(write_fd)
        self.fd = read_fd
        self.buffer = b""

    def records(self, poll_s: float):
        """Records that arrived within poll_s; None once the child closed the pipe."""
        ready, _, _ = select.select([self.fd], [], [], poll_s)
        if not ready:
            return []
        chunk = os.read(self.fd, 65536)
        if not chunk:
            return None
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        out = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def kill(self):
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def close(self):
        self.process.wait()
        os.close(self.fd)


def collect(workspace: pathlib.Path, log) -> list[dict]:
    """The graded items (nodeid, points, function) of the workspace, collected before student code arrives."""
    child = _Child(workspace, ["--collect-only"], 0, 0, log)
    items, errors = [], []
    while (batch := child.records(60.0)) is not None:
        for record in batch:
            if record.get("event") == "item":
                items.append(record)
            elif record.get("event") == "collect_error":
                errors.append(f"{record['nodeid']}: {record['message']}")
    child.close()
    if errors or child.process.returncode != 0:
        raise GradingError("grade: the graded tests do not collect on the reference workspace:\n" + "\n".join(errors))
    unpointed = [i["nodeid"] for i in items if not isinstance(i.get("points"), (int, float)) or i["points"] <= 0]
    if unpointed:
        raise GradingError(f"grade: graded tests without a positive @pytest.mark.points(n): {unpointed}")
    return items


def run_tests(workspace, nodeids, timeout, memory_mb, log, kill_grace_s: float = KILL_GRACE_S) -> dict[str, str]:
    """nodeid -> "passed" or a failure message, for every nodeid, rerunning after a kill or crash."""
    outcome: dict[str, str] = {}
    remaining = list(nodeids)
    while remaining:
        child = _Child(workspace, remaining, timeout, memory_mb, log)
        current, started, broken = None, 0.0, {}
        progress = False
        while True:
            batch = child.records(0.2)
            if batch is None:
                break
            for record in batch:
                event, nodeid = record.get("event"), record.get("nodeid")
                if event == "start" and nodeid in remaining:
                    current, started = nodeid, time.monotonic()
                elif event == "result" and nodeid in remaining and nodeid not in outcome:
                    message = str(record.get("message") or "failed")
                    outcome[nodeid] = "passed" if record.get("outcome") == "passed" else message
                    current, progress = None, True
                elif event == "collect_error" and isinstance(nodeid, str):
                    broken[nodeid] = str(record.get("message", ""))
            if current is not None and time.monotonic() - started > timeout + kill_grace_s:
                child.kill()
                outcome[current] = (f"timed out: still running {timeout + kill_grace_s:g} s after it started "
                                    f"(limit {timeout:g} s); the test process was stopped")
                progress = True
                current = None
        child.close()
        code = child.process.returncode
        if current is not None and current not in outcome:
            outcome[current] = f"the test process ended during this test (exit code {code})"
            progress = True
        for nodeid in remaining:
            module = nodeid.split("::", 1)[0]
            if nodeid not in outcome and module in broken:
                outcome[nodeid] = f"could not be collected: {broken[module]}"
                progress = True
        remaining = [n for n in remaining if n not in outcome]
        if remaining and not progress:
            for nodeid in remaining:
                outcome[nodeid] = f"the test process ended (exit code {code}) before running this test"
            remaining = []
    return outcome


def grade(submission, *, timeout: float = manifest.TEST_TIMEOUT_S, memory_mb: int = manifest.MEMORY_LIMIT_MB,
          root=None, log_path=None, kill_grace_s: float = KILL_GRACE_S) -> Grade:
    """Grade one submission.

    Args:
        submission: the folder the student handed in (the project layout, or the student
            files side by side).
        timeout: seconds each test may run.
        memory_mb: address-space limit of the test process, in MiB (0: none).
        root: the grader's source root (default: where this package lives).
        log_path: where the test process's own output goes (default: discarded).
        kill_grace_s: seconds past a test's limit before the child is killed.

    Returns:
        The Grade.

    Raises:
        GradingError: bad arguments, graded tests that do not collect, tests without points.
        grading.reference.ReferenceError: reference data missing or altered.
    """
    submission = pathlib.Path(submission)
    if not submission.is_dir():
        raise GradingError(f"grade: SUBMISSION_DIR {submission} is not a folder.")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise GradingError(f"grade: timeout must be a positive number of seconds, got {timeout!r}.")
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or memory_mb < 0:
        raise GradingError(f"grade: memory_mb must be a non-negative int, got {memory_mb!r}.")
    root = pathlib.Path(root) if root is not None else source_root()
    begin = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chainrule-grade-") as tmp:
        workspace = pathlib.Path(tmp) / "workspace"
        workspace.mkdir()
        prepare_workspace(workspace, root)
        with open(log_path or os.devnull, "wb") as log:
            items = collect(workspace, log)
            notes = copy_submission(submission, workspace)
            outcome = run_tests(workspace, [i["nodeid"] for i in items], timeout, memory_mb, log, kill_grace_s)
        hidden = {}
        tests: dict[str, GradedTest] = {}
        for item in items:
            file, _, rest = item["nodeid"].partition("::")
            if file not in hidden:
                hidden[file] = hidden_test_names(workspace / file)
            key = f"{file}::{item['function']}"
            if key not in tests:
                tests[key] = GradedTest(name=key.removeprefix("graded_tests/"), file=file,
                                        points=float(item["points"]), hidden=item["function"] in hidden[file])
            tests[key].cases[item["nodeid"]] = outcome[item["nodeid"]]
    return Grade(tests=list(tests.values()), notes=notes, seconds=time.monotonic() - begin)
