"""The grader's pytest plugin: runs in the trusted process, which never imports student code.

It records every collected graded test with its points, gives each test a ``RemoteStudent``
(through the ``student`` fixture of the graded tests' conftest) and the reference data (read
and verified before any worker starts, then kept in memory), and records each test's outcome
as a short message built on this side: an assertion's text, or what a SubmissionError says.
Never a traceback, never an expected value.
"""

from __future__ import annotations

import time

import pytest

from grading.sandbox import Pool
from grading.student import RemoteStudent, SubmissionError, SubmissionRaised

PLUGIN_NAME = "chainrule-grader"
MESSAGE_CHARS = 1500
OUTPUT_CHARS = 400


def _short(text: str, limit: int = MESSAGE_CHARS) -> str:
    text, suffix = text.strip(), " ...[truncated]"
    return text if len(text) <= limit else text[: limit - len(suffix)] + suffix


class GraderPlugin:
    """Collects items and outcomes; hands out students and reference data.

    Args:
        pool: the Pool of workers for this submission.
        timeout: seconds each test's calls into the submission may take together.
        reference: name -> dict of arrays.
        standins: name -> trusted layer, for net tests.
    """

    def __init__(self, pool: Pool, timeout: float, reference: dict, standins: dict):
        self.pool, self.timeout, self.reference, self.standins = pool, timeout, reference, standins
        self.items: list[dict] = []
        self.outcomes: dict[str, str] = {}
        self.outputs: dict[str, str] = {}
        self.collect_errors: list[str] = []
        self.import_errors: dict[str, str] = {}
        self._students: dict[str, RemoteStudent] = {}
        self._shared: tuple[str, object] | None = None  # (test file, worker) handed from test to test
        self.broken_imports: dict[str, str] = {}  # student module -> why its import hung or crashed
        self.assignment = None  # a grading.course.Assignment: run only its tests
        self.case_counts: dict[str, int] = {}  # "file::function" -> cases collected, before selection

    # -- what the fixtures call
    def new_student(self, nodeid: str) -> RemoteStudent:
        """The RemoteStudent of one test (its clock starts now).

        The tests of one file share a worker while none of them fails a call or installs
        stand-ins; a new file, a failure or stand-ins start a fresh one.
        """
        file = nodeid.partition("::")[0]
        worker = None
        if self._shared is not None:
            shared_file, worker = self._shared
            self._shared = None
            if shared_file != file:
                worker.kill()
                worker = None
        student = RemoteStudent(self.pool, self.timeout, self.standins, worker=worker,
                                broken_imports=self.broken_imports)
        self._students[nodeid] = student
        return student

    def finish_student(self, nodeid: str) -> None:
        """End a test's use of its worker: hand it on to the next test of the file, or kill it."""
        student = self._students.pop(nodeid, None)
        if student is None:
            return
        worker = student.close(keep=True)
        if worker is not None:
            self._shared = (nodeid.partition("::")[0], worker)
        printed = "\n".join(student.outputs).strip()
        if printed:
            self.outputs[nodeid] = _short(printed, OUTPUT_CHARS)

    def close(self) -> None:
        """Kill the worker still handed on, if any."""
        if self._shared is not None:
            self._shared[1].kill()
            self._shared = None

    def reference_case(self, name: str) -> dict:
        """Copies of the arrays of one reference case."""
        if name not in self.reference:
            raise KeyError(f"reference data {name}.npz is missing from the autograder")
        return {key: value.copy() for key, value in self.reference[name].items()}

    # -- pytest hooks
    def pytest_configure(self, config):
        """Make this plugin findable by the graded tests' conftest (config.chainrule_grader)."""
        config.chainrule_grader = self

    def pytest_collectreport(self, report):
        """Keep a module that failed to collect (a broken graded test: the grader's fault)."""
        if report.failed:
            self.collect_errors.append(f"{report.nodeid}: {_short(str(report.longrepr), 600)}")

    def pytest_collection_modifyitems(self, session, config, items):
        """Count each test function's cases, then keep only the assignment's tests (when grading one)."""
        for item in items:
            key = f"{item.nodeid.partition('::')[0]}::{_function(item)}"
            self.case_counts[key] = self.case_counts.get(key, 0) + 1
        if self.assignment is None:
            return
        chosen = [item for item in items if self.assignment.selection(*_where(item)) is not None]
        dropped = [item for item in items if self.assignment.selection(*_where(item)) is None]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = chosen

    def pytest_collection_finish(self, session):
        """Record every collected test with its points."""
        for item in session.items:
            marker = item.get_closest_marker("points")
            points = marker.args[0] if marker is not None and marker.args else None
            self.items.append({"nodeid": item.nodeid, "points": points, "function": _function(item),
                               "case": _where(item)[2]})

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        """Keep the first failure of a test (setup, call or teardown) as a short message."""
        outcome = yield
        report = outcome.get_result()
        nodeid = item.nodeid
        if report.failed and nodeid not in self.outcomes:
            message = "failed"
            if call.excinfo is not None:
                exc = call.excinfo.value
                if isinstance(exc, SubmissionError):
                    message = str(exc)
                    if isinstance(exc, SubmissionRaised) and exc.is_import_error and exc.where:
                        self.import_errors.setdefault(exc.where.split(":")[0], f"{exc.type} at {exc.where}: "
                                                                               f"{exc.detail}")
                elif isinstance(exc, AssertionError):
                    message = str(exc) or "AssertionError"
                else:
                    message = f"{type(exc).__name__}: {exc}"
            if report.when != "call":
                message = f"error in test {report.when}: {message}"
            self.outcomes[nodeid] = _short(message)
        elif report.skipped and nodeid not in self.outcomes:
            self.outcomes[nodeid] = "skipped: a graded test must run"

    def pytest_runtest_logfinish(self, nodeid, location):
        """A test with no failure passed."""
        self.outcomes.setdefault(nodeid, "passed")
        self.finish_student(nodeid)


def _function(item) -> str:
    return getattr(item, "originalname", None) or item.name


def _where(item) -> tuple[str, str, str | None]:
    """(test file, test function, parametrized case id or None) of a collected item."""
    callspec = getattr(item, "callspec", None)
    return item.nodeid.partition("::")[0], _function(item), callspec.id if callspec is not None else None


def run(plugin: GraderPlugin, args: list[str]) -> int:
    """pytest.main with the plugin; returns pytest's exit code."""
    started = time.monotonic()
    try:
        code = pytest.main(args, plugins=[plugin])
    finally:
        plugin.close()
    plugin.seconds = time.monotonic() - started
    return int(code)
