"""Shared fixtures of the graded tests: the ``points`` marker and the reference data.

Each graded test carries ``@pytest.mark.points(n)``. A parametrized test shares its points
among its cases, so a test with four cases earns a quarter of its points per passing case.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest

REFERENCE_ENV = "CHAINRULE_REFERENCE_DIR"


def pytest_configure(config):
    """Register the points marker."""
    config.addinivalue_line("markers", "points(n): what the test is worth; a parametrized test shares n among its cases")


def reference_dir() -> pathlib.Path:
    """Where the reference .npz files are: $CHAINRULE_REFERENCE_DIR, else ../reference."""
    configured = os.environ.get(REFERENCE_ENV)
    return pathlib.Path(configured) if configured else pathlib.Path(__file__).resolve().parent.parent / "reference"


@pytest.fixture
def reference():
    """reference(name) -> dict of the arrays stored for that case (no pickle)."""

    def load(name: str) -> dict:
        path = reference_dir() / f"{name}.npz"
        if not path.is_file():
            pytest.fail(f"reference data {path.name} is missing; the autograder was packaged without it.")
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}

    return load
