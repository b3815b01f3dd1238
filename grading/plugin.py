"""The autograder's pytest plugin, loaded into the test process (never imported by the grader).

It reports over a pipe the parent process opened (file descriptor in $CHAINRULE_GRADER_FD), one
JSON object per line: the collected items with their points, each test's start, each test's
outcome with a short message, and collection errors. It also stops a test that runs longer
than $CHAINRULE_GRADER_TIMEOUT seconds (SIGALRM); the parent kills the process if even that
does not help. The parent decides the score from these records alone; it never reads a file
the tests could write.

Standalone on purpose: the grader copies this file into the workspace, where the grading
package is absent.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

MESSAGE_CHARS = 1500

_fd = None
_timeout = 0.0
_student_files: tuple[str, ...] = ()
_outcomes: dict[str, dict] = {}


class GradingTimeout(Exception):
    """Raised inside a test that ran past its time limit."""


def _send(record: dict) -> None:
    if _fd is None:
        return
    data = (json.dumps(record) + "\n").encode()
    while data:
        written = os.write(_fd, data)
        data = data[written:]


def pytest_configure(config):
    """Take the pipe, the time limit and the student file list from the environment, then hide them."""
    global _fd, _timeout, _student_files
    fd = os.environ.get("CHAINRULE_GRADER_FD")
    _fd = int(fd) if fd else None
    _timeout = float(os.environ.get("CHAINRULE_GRADER_TIMEOUT", "0"))
    _student_files = tuple(filter(None, os.environ.get("CHAINRULE_GRADER_STUDENT_FILES", "").split(":")))
    for name in ("CHAINRULE_GRADER_FD", "CHAINRULE_GRADER_TIMEOUT", "CHAINRULE_GRADER_STUDENT_FILES"):
        os.environ.pop(name, None)


def pytest_collectreport(report):
    """Report a module that failed to import or collect."""
    if report.failed:
        _send({"event": "collect_error", "nodeid": report.nodeid, "message": _short(str(report.longrepr))})


def pytest_collection_finish(session):
    """Report every collected test with its points."""
    for item in session.items:
        marker = item.get_closest_marker("points")
        points = marker.args[0] if marker is not None and marker.args else None
        _send({"event": "item", "nodeid": item.nodeid, "points": points,
               "function": getattr(item, "originalname", None) or item.name})


def pytest_runtest_logstart(nodeid, location):
    """Report that a test started (the parent times it)."""
    _outcomes[nodeid] = {"outcome": "passed", "message": ""}
    _send({"event": "start", "nodeid": nodeid})


def _alarm(signum, frame):
    raise GradingTimeout(f"the test ran longer than its limit of {_timeout:g} s and was stopped")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Run the test body under a SIGALRM limit."""
    if _timeout > 0:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, _timeout)
    try:
        yield
    finally:
        if _timeout > 0:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def _short(text: str) -> str:
    text, suffix = text.strip(), " ...[truncated]"
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - len(suffix)] + suffix


def _where(excinfo) -> str:
    """The innermost frame in a student file, as 'path:line in function'."""
    for entry in reversed(excinfo.traceback):
        path = str(entry.path).replace(os.sep, "/")
        for rel in _student_files:
            if path.endswith("/" + rel):
                return f"{rel}:{entry.lineno + 1} in {entry.name}"
    return ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep the first failure of a test (setup, call or teardown) as a short message."""
    outcome = yield
    report = outcome.get_result()
    state = _outcomes.setdefault(item.nodeid, {"outcome": "passed", "message": ""})
    if report.failed and state["outcome"] == "passed":
        message = "failed"
        if call.excinfo is not None:
            message = call.excinfo.exconly()
            where = _where(call.excinfo)
            if where:
                message += f"\n(raised at {where})"
        if report.when != "call":
            message = f"error in test {report.when}: {message}"
        state.update(outcome="failed", message=_short(message))
    elif report.skipped and state["outcome"] == "passed":
        state.update(outcome="failed", message="skipped: a graded test must run")


def pytest_runtest_logfinish(nodeid, location):
    """Report the test's outcome once all its phases are done."""
    state = _outcomes.get(nodeid, {"outcome": "failed", "message": "no outcome was recorded"})
    _send({"event": "result", "nodeid": nodeid, **state})
