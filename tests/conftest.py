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
from grading_support import run_grading

from data.mnist import DEBIAN_FASHION_MNIST

# The longest single job of the suite: `python -m solver --dataset fashion-mnist --model cnn` with
# its defaults (about 100 s on 2 cores). Once collection has selected the test that needs it, it
# starts in the background, niced and on one BLAS thread, so it runs on the core that the rest of
# the suite (one pytest process, mostly) leaves idle; the test waits for its metrics.json.
FASHION_CNN_TEST = "test_cnn_beats_the_fully_connected_net_on_fashion_mnist"
# The tests of the real Fashion-MNIST run last, so that the background run has the whole suite's
# time to finish (they share one module fixture, so they move together).
FASHION_TESTS = (FASHION_CNN_TEST, "test_fashion_mnist_training_reaches_85_percent_in_two_minutes")
FASHION_CNN_ARGS = ("--dataset", "fashion-mnist", "--model", "cnn", "--quiet")
# How long the test waits for the background run after the rest of the suite reached it.
FASHION_CNN_TIMEOUT_S = 600
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
    """Start the convnet's Fashion-MNIST training when its test is selected and can run."""
    if session.config.option.collectonly or not fashion_available():
        return
    if not any(item.name == FASHION_CNN_TEST for item in session.items):
        return
    folder = Path(tempfile.mkdtemp(prefix="chainrule-fashion-cnn-"))
    log = open(folder / "log.txt", "w")  # noqa: SIM115 -- closed in pytest_sessionfinish
    process = subprocess.Popen([sys.executable, "-m", "solver", *FASHION_CNN_ARGS, "--out", str(folder / "run")],
                               stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, **ONE_THREAD),
                               preexec_fn=lambda: os.nice(10))
    _background["fashion_cnn"] = (process, folder, log)


def pytest_sessionfinish(session):
    """Stop the background training if it still runs, and remove the folder it was given."""
    started = _background.pop("fashion_cnn", None)
    if started is not None:
        process, folder, log = started
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def fashion_cnn_metrics():
    """metrics.json of the background `python -m solver --dataset fashion-mnist --model cnn` run."""
    if "fashion_cnn" not in _background:
        pytest.fail("the background Fashion-MNIST convnet run was not started (see tests/conftest.py)")
    process, folder, _ = _background["fashion_cnn"]
    try:
        code = process.wait(timeout=FASHION_CNN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the Fashion-MNIST convnet run took over {FASHION_CNN_TIMEOUT_S} s more")
    assert code == 0, f"exit {code}:\n{(folder / 'log.txt').read_text()[-3000:]}"
    return json.loads((folder / "run" / "metrics.json").read_text())


@pytest.fixture(scope="session")
def release_tree(tmp_path_factory):
    """The untouched student version, built once for the hostile suites (tests/test_hostile*.py)."""
    out = tmp_path_factory.mktemp("hostile") / "release"
    done = run_grading("release", out)
    assert done.returncode == 0, done.stderr
    return out
