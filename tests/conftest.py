"""Fixtures that several test files share and that cost too much to build once per file, and the
one slow job the suite starts ahead of time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from grading_support import fill_with_reference, grade_cli, run_grading

from data.mnist import DEBIAN_FASHION_MNIST

# The two longest jobs of the suite: `python -m solver --dataset fashion-mnist` with its defaults,
# for the fully connected net (about 20 s) and the convnet (about 100 s on 2 cores). Once collection
# has selected the tests that need them, both start in the background, niced and on one BLAS thread
# each, so they run on the core the rest of the suite (one pytest process, mostly) leaves idle;
# those tests run last and wait for the runs' metrics.json.
FASHION_RUNS = {"fc": ("--dataset", "fashion-mnist", "--quiet"),
                "cnn": ("--dataset", "fashion-mnist", "--model", "cnn", "--quiet")}
FASHION_TESTS = ("test_fashion_mnist_training_reaches_85_percent_in_two_minutes",
                 "test_cnn_beats_the_fully_connected_net_on_fashion_mnist")
# How long a test waits for a background run once the rest of the suite has reached it.
FASHION_TIMEOUT_S = 600
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
_background: dict = {}


def fashion_available() -> bool:
    """The real Fashion-MNIST is installed, or this is CI, where it must be (.ci/run installs it)."""
    return (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file() or bool(os.environ.get("CI"))


def pytest_collection_modifyitems(session, config, items):
    """Move the Fashion-MNIST tests to the end of the run, in their order."""
    last = [item for item in items if item.name in FASHION_TESTS]
    items[:] = [item for item in items if item.name not in FASHION_TESTS] + last


def pytest_collection_finish(session):
    """Start both Fashion-MNIST trainings when a test that needs them is selected and can run."""
    if session.config.option.collectonly or not fashion_available():
        return
    if not any(item.name in FASHION_TESTS for item in session.items):
        return
    folder = Path(tempfile.mkdtemp(prefix="chainrule-fashion-"))
    for name, args in FASHION_RUNS.items():
        log = open(folder / f"{name}.log", "w")  # noqa: SIM115 -- closed in pytest_sessionfinish
        process = subprocess.Popen([sys.executable, "-m", "solver", *args, "--out", str(folder / name)],
                                   stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, **ONE_THREAD),
                                   preexec_fn=lambda: os.nice(10))
        _background[name] = (process, folder, log)


def pytest_sessionfinish(session):
    """Stop the background trainings that still run, and remove the folder they were given."""
    folders = set()
    for process, folder, log in _background.values():
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()
        folders.add(folder)
    _background.clear()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def fashion_metrics(name: str) -> dict:
    """metrics.json of the background Fashion-MNIST run called name ("fc" or "cnn"), once it ends."""
    if name not in _background:
        pytest.fail(f"the background Fashion-MNIST {name} run was not started (see tests/conftest.py)")
    process, folder, _ = _background[name]
    try:
        code = process.wait(timeout=FASHION_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the Fashion-MNIST {name} run took over {FASHION_TIMEOUT_S} s more")
    assert code == 0, f"exit {code}:\n{(folder / f'{name}.log').read_text()[-3000:]}"
    return json.loads((folder / name / "metrics.json").read_text())


@pytest.fixture(scope="session")
def fashion_fc():
    """metrics.json of `python -m solver --dataset fashion-mnist` with its defaults (run in the background)."""
    return fashion_metrics("fc")


@pytest.fixture(scope="session")
def fashion_cnn_metrics():
    """metrics.json of `python -m solver --dataset fashion-mnist --model cnn` (run in the background)."""
    return fashion_metrics("cnn")


@pytest.fixture(scope="session")
def release_tree(tmp_path_factory):
    """The untouched student version, built once for the hostile suites (tests/test_hostile*.py)."""
    out = tmp_path_factory.mktemp("hostile") / "release"
    done = run_grading("release", out)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="session")
def reference_results(release_tree, tmp_path_factory):
    """results.json of the reference solution handed in over the untouched release (graded once per session)."""
    tmp = tmp_path_factory.mktemp("full")
    submission = fill_with_reference(shutil.copytree(release_tree, tmp / "submission"))
    return grade_cli(submission, tmp / "results.json")
