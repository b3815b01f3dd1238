"""What the hostile grading suites (tests/test_hostile*.py) share: running the real grader on an attack,
the checks any honest grading passes, what breaking a function costs, and the fixtures.

release_tree, the untouched student version built once per session, is in tests/conftest.py;
the fixtures here copy it. A test module takes the fixtures it uses by importing them by name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid

import pytest
from grading_support import ROOT, failed_tests, fill_with_reference

from grading import manifest, sandbox
from hostile_attacks import FULL_MARKS, POINTS

# Per-test limit where an attack hangs or crashes workers (the slowest honest test takes ~0.3 s).
SHORT_TIMEOUT_S = 4
# Seconds a killed process may take to vanish from /proc after grading returns.
REAP_GRACE_S = 2.0
RESULTS_KEYS = {"score", "execution_time", "output", "visibility", "stdout_visibility", "tests"}


# What breaking one function costs an otherwise correct submission: test -> points lost.
LAYERS, NORM, OPTIM = "test_layers.py::", "test_normalization.py::", "test_optim.py::"
RELU_BACKWARD = {LAYERS + "test_relu_backward_matches_numeric_gradient": 2.0,
                 LAYERS + "test_relu_matches_reference": 1.0}
SVM_LOSS = {LAYERS + "test_svm_loss_is_c_minus_one_for_equal_scores": 1.0,
            LAYERS + "test_svm_loss_gradient_matches_numeric_gradient": 2.0,
            LAYERS + "test_losses_match_reference": 1.0}  # one of its two cases
DROPOUT_BACKWARD = {NORM + "test_dropout_backward_matches_numeric_gradient": 1.0,
                    NORM + "test_dropout_backward_routes_through_the_mask": 1.0}
FIRST_STEP = {"sgd_momentum": OPTIM + "test_sgd_momentum_first_two_steps", "rmsprop": OPTIM + "test_rmsprop_first_step",
              "adam": OPTIM + "test_adam_first_step_has_size_learning_rate"}


def optim_lost(*rules: str) -> dict[str, float]:
    """Broken update rules cost their first-step test and their case of the five-step test (1 point each)."""
    return {**{FIRST_STEP[r]: 1.0 for r in rules}, OPTIM + "test_update_rules_match_reference_over_five_steps": len(rules)}


def lost(*groups: dict) -> dict[str, float]:
    """The union of what several broken functions cost (points of a shared test add up)."""
    total: dict[str, float] = {}
    for group in groups:
        for name, points in group.items():
            total[name] = total.get(name, 0.0) + points
    return total


def names(*stems: str) -> set[str]:
    """The graded tests whose name contains one of stems.

    Assignment 1's tests (test_classifiers.py) share words like "softmax" with the layer tests;
    they count only when a stem names their file.
    """
    return {n for n in POINTS if any(s in n for s in stems)
            and (not n.startswith("test_classifiers.py") or any(s.startswith("test_classifiers") for s in stems))}


def in_full(tests: set[str]) -> dict[str, float]:
    """These tests lost entirely."""
    return {n: POINTS[n] for n in tests}


# -- running the grader and checking what any honest grading gives
def leftovers(token: str) -> list[str]:
    """Processes whose name or command line holds token."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
            with open(f"/proc/{entry}/comm", "rb") as handle:
                comm = handle.read().strip()
        except OSError:
            continue
        if token.encode() in cmdline or token.encode() in comm:
            found.append(f"pid {entry} {comm!r} {cmdline[:100]!r}")
    return found


def assert_no_leftovers(token: str) -> None:
    """No process named after token is left (killed ones get REAP_GRACE_S to vanish)."""
    deadline = time.monotonic() + REAP_GRACE_S
    while (found := leftovers(token)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not found, f"processes of the submission survived grading: {found}"


def check_results(path, seconds: float, timeout: float, token: str) -> dict:
    """results.json as a dict, after the checks every grading must pass."""
    assert path.is_file(), f"no results.json at {path}"
    assert path.stat().st_size < 100_000, f"results.json is {path.stat().st_size} bytes"
    results = json.loads(path.read_text())
    assert set(results) == RESULTS_KEYS
    assert {t["name"]: t["max_score"] for t in results["tests"]} == POINTS
    assert [t["name"] for t in results["tests"]] == list(POINTS)
    assert all(t["status"] in ("passed", "failed") and 0 <= t["score"] <= t["max_score"] for t in results["tests"])
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))
    assert f"{token}-forged" not in json.dumps(results), "the submission's forged results.json survived"
    limit = timeout * len(POINTS) + 60
    assert seconds < limit, f"grading took {seconds:.0f} s, over {limit:.0f} s"
    assert_no_leftovers(token)
    return results


@contextlib.contextmanager
def watching(token: str):
    """A set that collects, while the block runs, the processes named after token (polled)."""
    seen: set[str] = set()
    stop = threading.Event()

    def watch():
        while not stop.wait(0.1):
            seen.update(leftovers(token))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


def grade_hostile(submission, out, token: str, *extra, timeout: float = manifest.TEST_TIMEOUT_S,
                  project=None, seen: set | None = None, env: dict | None = None) -> dict:
    """Grade through the command line (from project, default the real one); results.json, checked.

    seen, when given, collects the submission's processes that were alive during grading.
    """
    results, project = out / "results.json", project or ROOT
    command = [sys.executable, "-m", "grading", "grade", submission, "--results", results, "--timeout", timeout, *extra]
    started = time.monotonic()
    with watching(token) as alive:
        done = subprocess.run(list(map(str, command)), cwd=project,
                              env=dict(os.environ, PYTHONPATH=str(project), **(env or {})),
                              capture_output=True, text=True, timeout=timeout * len(POINTS) + 120)
    seconds = time.monotonic() - started
    if seen is not None:
        seen.update(alive)
    assert done.returncode == 0, f"grade failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return check_results(results, seconds, timeout, token)


def assert_lost(results: dict, expected: dict[str, float]) -> None:
    """Exactly the expected tests lost exactly these points, and the total says so."""
    assert failed_tests(results) == expected
    assert results["score"] == FULL_MARKS - sum(expected.values())


def tree_digest(folder) -> str:
    """SHA-256 over the names and contents of every file below folder."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# -- fixtures
@pytest.fixture(scope="module")
def level():
    """The isolation level the grader will use here."""
    return sandbox.isolation()


@pytest.fixture
def namespaced(level):
    """Skip where the worker runs as a plain process: it can read and signal what the grader can (documented)."""
    if level == sandbox.PROCESS_LEVEL:
        pytest.skip("isolation is 'process': the worker can read the grader's files and signal its processes")


def new_token() -> str:
    """A name for an attack's processes and files (fits /proc/PID/comm's 15 characters)."""
    return "hx" + uuid.uuid4().hex[:12]


@pytest.fixture
def token():
    """A name for this attack's processes and files."""
    return new_token()


@pytest.fixture
def release(release_tree, tmp_path):
    """A copy of the untouched student version to attack from."""
    return shutil.copytree(release_tree, tmp_path / "submission")


@pytest.fixture
def solved(release_tree, tmp_path):
    """A copy of the student version filled in with the reference solution, to attack from."""
    return fill_with_reference(shutil.copytree(release_tree, tmp_path / "submission"))
