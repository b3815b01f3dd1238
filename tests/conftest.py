"""Fixtures that several test files share and that cost too much to build once per file."""

from __future__ import annotations

import pytest
from grading_support import run_grading


@pytest.fixture(scope="session")
def release_tree(tmp_path_factory):
    """The untouched student version, built once for the hostile suites (tests/test_hostile*.py)."""
    out = tmp_path_factory.mktemp("hostile") / "release"
    done = run_grading("release", out)
    assert done.returncode == 0, done.stderr
    return out
