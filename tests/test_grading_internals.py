"""Unit tests of the grader's parts: the comparison helper, the workspace, the child runs."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest
from grading_support import ROOT

from grading import manifest
from grading.grade import collect, copy_submission, prepare_workspace, run_tests, source_root
from grading.release import strip_python

pytestmark = pytest.mark.grading


def _graded_module(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / manifest.GRADED_TESTS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checks = _graded_module("grading_checks")


class AlwaysEqual:
    def __eq__(self, other):
        return True


def test_assert_matches_reports_sizes_never_the_expected_values():
    """A mismatch names what, how many, the largest error and its index, but not the expected numbers."""
    expected = np.array([[1.2345678, 2.0], [3.0, 4.0]])
    got = expected.copy()
    got[1, 0] += 0.5
    with pytest.raises(AssertionError) as info:
        checks.assert_matches("layer out", got, expected)
    message = str(info.value)
    assert "layer out: 1 of 4 values are off; largest absolute error 0.5" in message and "(1, 0)" in message
    assert "1.23" not in message and "3.5" not in message
    checks.assert_matches("layer out", expected + 1e-12, expected)


@pytest.mark.parametrize("got, words", [
    (AlwaysEqual(), "expected an array of numbers, got AlwaysEqual"),
    (np.zeros((2, 3)), r"shape \(2, 3\), expected \(3, 2\)"),
    (np.full((3, 2), np.nan), "6 of 6 values are NaN or infinite"),
])
def test_as_float64_and_shapes_stop_tricks_and_mistakes(got, words):
    """Objects that are not numbers, wrong shapes and NaNs fail with a plain message."""
    with pytest.raises(AssertionError, match=words):
        checks.assert_matches("x", got, np.zeros((3, 2)))
    with pytest.raises(AssertionError, match="expected an array of numbers"):
        checks.as_float64("x", {"a": 1})


def test_workspace_collects_every_graded_test_and_a_crashing_child_fails_them_all(tmp_path):
    """collect lists 59 cases with points from the stub workspace; a child that dies fails every case."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    prepare_workspace(workspace, source_root())
    assert (workspace / "graded_tests/test_layers.py").is_file() and not (workspace / "tests").exists()
    with open(tmp_path / "log", "wb") as log:
        items = collect(workspace, log)
        assert len(items) == 59 and all(i["points"] > 0 for i in items)
        submission = tmp_path / "submission"
        (submission / "layers").mkdir(parents=True)
        shutil.copyfile(ROOT / "layers/affine.py", submission / "layers/affine.py")
        (submission / "layers/affine.py").write_text("import os\nos._exit(0)\n")
        notes = copy_submission(submission, workspace)
        assert len(notes) == len(manifest.STUDENT_FILES) - 1
        nodeids = [i["nodeid"] for i in items[:3]]
        outcome = run_tests(workspace, nodeids, 10, 0, log)
    assert set(outcome) == set(nodeids)
    assert all("ended" in message or "could not be collected" in message for message in outcome.values())


def test_strip_python_refuses_kinds_a_file_may_not_hold():
    """A hidden-test region in library code is an error naming the line."""
    text = "x = 1\n# BEGIN HIDDEN TESTS\ny = 2\n# END HIDDEN TESTS\n"
    with pytest.raises(ValueError, match="m.py:2: HIDDEN TESTS regions are not allowed"):
        strip_python(text, "m.py", allowed=("SOLUTION",))
    new, regions, names = strip_python(text, "t.py", allowed=("HIDDEN TESTS",))
    assert new == "x = 1\n" and names == [] and len(regions) == 1


def test_autograder_zip_rejects_bad_targets(tmp_path):
    """autograder_zip wants a .zip in an existing folder, and names the problem."""
    from grading.autograder import autograder_zip

    with pytest.raises(ValueError, match="must end in .zip"):
        autograder_zip(tmp_path / "out.tar")
    with pytest.raises(ValueError, match="does not exist"):
        autograder_zip(tmp_path / "missing" / "out.zip")
    assert list(tmp_path.iterdir()) == []


def test_reference_dir_defaults_beside_the_tests_and_follows_the_environment(monkeypatch, tmp_path):
    """The graded tests find reference data in ../reference, or where CHAINRULE_REFERENCE_DIR says."""
    conftest = _graded_module("conftest")
    monkeypatch.delenv(conftest.REFERENCE_ENV, raising=False)
    assert conftest.reference_dir() == ROOT / manifest.REFERENCE_DIR
    monkeypatch.setenv(conftest.REFERENCE_ENV, str(tmp_path))
    assert conftest.reference_dir() == tmp_path


def test_plugin_hooks_report_over_the_pipe_and_hide_their_settings(monkeypatch):
    """pytest_configure takes the pipe from the environment and removes it; the hooks write JSON lines."""
    import json
    import os
    from types import SimpleNamespace

    from grading import plugin

    read_fd, write_fd = os.pipe()
    monkeypatch.setenv("CHAINRULE_GRADER_FD", str(write_fd))
    monkeypatch.setenv("CHAINRULE_GRADER_TIMEOUT", "2.5")
    monkeypatch.setenv("CHAINRULE_GRADER_STUDENT_FILES", "layers/affine.py:solver/optim.py")
    try:
        plugin.pytest_configure(None)
        assert "CHAINRULE_GRADER_FD" not in os.environ and plugin._timeout == 2.5
        assert plugin._student_files == ("layers/affine.py", "solver/optim.py")
        plugin.pytest_collectreport(SimpleNamespace(failed=True, nodeid="graded_tests/test_x.py", longrepr="E" * 5000))
        marker = SimpleNamespace(args=(3,))
        item = SimpleNamespace(nodeid="t.py::test_a[1]", originalname="test_a", name="test_a[1]",
                               get_closest_marker=lambda name: marker)
        plugin.pytest_collection_finish(SimpleNamespace(items=[item]))
        plugin.pytest_runtest_logstart("t.py::test_a[1]", None)
        plugin.pytest_runtest_logfinish("t.py::test_a[1]", None)
    finally:
        plugin._fd = None
        os.close(write_fd)
    with os.fdopen(read_fd) as stream:
        records = [json.loads(line) for line in stream.read().splitlines()]
    assert [r["event"] for r in records] == ["collect_error", "item", "start", "result"]
    assert len(records[0]["message"]) == plugin.MESSAGE_CHARS and records[0]["message"].endswith("[truncated]")
    assert records[1] == {"event": "item", "nodeid": "t.py::test_a[1]", "points": 3, "function": "test_a"}
    assert records[3] == {"event": "result", "nodeid": "t.py::test_a[1]", "outcome": "passed", "message": ""}
