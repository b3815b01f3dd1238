"""Hostile submissions graded end to end (issue 16): an attack gains nothing, hangs nothing, leaves nothing.

Each case hands a submission that attacks the grader to the real command (``python -m grading
grade`` in a subprocess, or the autograder zip's run_autograder) and checks what an honest
grader gives: the exact score (0 for an attack on the untouched release; full marks minus the
points of the tests its own breakage costs for an attack on the reference solution), a valid
results.json listing every graded test, a wall time under the per-test limit x 37 + 60 s, and
no process of the submission left afterwards: every attack names its processes after a token
of its own (written to /proc/self/comm, or as argv[0]) and /proc is searched for it.

Attack code goes into student files: appended to a module it runs at import; appended as a
function of an existing name it replaces that function (the original stays reachable).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile

import pytest
from grading_support import ROOT, copy_project, failed_tests, fill_with_reference, run_grading

from grading import manifest, sandbox
from hostile_attacks import (CHILDREN, CRASHES, FLOOD, FORGE, FULL_MARKS, KIT, LIARS, MARK, POINTS, PROBE,
                             SEARCH, SELF_ACTIVATING, SELF_ACTIVATING_FILES, STEAL, THIEF, append, code,
                             replace_function)

pytestmark = pytest.mark.grading

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


@pytest.fixture(scope="module")
def release_tree(tmp_path_factory):
    """The untouched student version."""
    out = tmp_path_factory.mktemp("hostile") / "release"
    done = run_grading("release", out)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture
def token():
    """A name for this attack's processes and files (fits /proc/PID/comm's 15 characters)."""
    return "hx" + uuid.uuid4().hex[:12]


@pytest.fixture
def release(release_tree, tmp_path):
    """A copy of the untouched student version to attack from."""
    return shutil.copytree(release_tree, tmp_path / "submission")


@pytest.fixture
def solved(release_tree, tmp_path):
    """A copy of the student version filled in with the reference solution, to attack from."""
    return fill_with_reference(shutil.copytree(release_tree, tmp_path / "submission"))


# -- 1-4: the escape kit on the untouched release
def test_escape_kit_on_the_release_finds_forges_and_patches_nothing(namespaced, release, tmp_path, token):
    """Searching for the solution, the tests and results.json, killing the grader, patching pytest: still 0 points.

    Graded from a copy of the project, so even an escape could not alter the real graded tests.
    """
    project = copy_project(tmp_path / "project")
    out = tmp_path / "out"
    kit = [code(MARK, token), code(SEARCH, token, results=str(out / "results.json")),
           code(FORGE, token, results=str(out / "results.json")), code(KIT, token, protected=str(ROOT))]
    for rel in manifest.STUDENT_FILES:
        append(release, rel, *kit)
    guarded = [project / "grading", ROOT / manifest.GRADED_TESTS_DIR, ROOT / manifest.REFERENCE_DIR]
    before = [tree_digest(folder) for folder in guarded]
    results = grade_hostile(release, out, token, project=project)
    assert_lost(results, POINTS)
    assert f"{token}-FOUND" not in json.dumps(results), [t["output"] for t in results["tests"]][:3]
    assert [tree_digest(folder) for folder in guarded] == before


# -- 5, 6: what the intake refuses, and files a grader must never use
def test_links_fifos_and_config_files_in_a_folder_are_refused(solved, tmp_path, token):
    """A symlinked solver/, links to the instructor's file and to /etc/passwd, a FIFO: each file's tests lost.

    conftest.py, sitecustomize.py, usercustomize.py, pytest.ini, a .pth file and a pytest plugin
    in the submission never run: each would leave a marker file if it did.
    """
    elsewhere = pathlib.Path(shutil.move(solved / "solver", tmp_path / "elsewhere"))
    (solved / "solver").symlink_to(elsewhere, target_is_directory=True)
    for rel, target in (("layers/affine.py", ROOT / "layers/affine.py"), ("layers/losses.py", "/etc/passwd")):
        (solved / rel).unlink()
        (solved / rel).symlink_to(target)
    (solved / "layers/dropout.py").unlink()
    os.mkfifo(solved / "layers/dropout.py")
    ran = tmp_path / "ran"
    ran.mkdir()
    exec(code(SELF_ACTIVATING, token, marker=str(tmp_path / "would-run")), {})  # what each leaves if it runs
    assert (tmp_path / "would-run").read_text() == token
    for rel in SELF_ACTIVATING_FILES:
        (solved / rel).parent.mkdir(parents=True, exist_ok=True)
        (solved / rel).write_text(code(SELF_ACTIVATING, token, marker=str(ran / rel.replace("/", "_"))))
    (elsewhere / "usercustomize.py").write_text(code(SELF_ACTIVATING, token, marker=str(ran / "solver_user")))
    pth = f"import os; open({str(ran / 'pth')!r}, 'w').write('ran')\n"
    for rel in ("hostile.pth", "layers/hostile.pth"):
        (solved / rel).write_text(pth)
    plugin = "[pytest]\naddopts = -p hostile_plugin -p layers.conftest\npythonpath = . layers\n"
    (solved / "pytest.ini").write_text(plugin)
    (solved / "tox.ini").write_text(plugin)
    (solved / "setup.cfg").write_text(plugin.replace("[pytest]", "[tool:pytest]"))
    results = grade_hostile(solved, tmp_path / "out", token)
    assert_lost(results, in_full(names("affine", "softmax", "svm", "losses", "dropout", "test_optim.py",
                                       "test_nets.py", "test_classifiers.py")))
    notes = results["output"]
    for rel in ("layers/affine.py", "layers/losses.py"):
        assert f"{rel}: not taken: {rel} is a symbolic link" in notes
    assert "layers/dropout.py: not taken: layers/dropout.py is a FIFO" in notes
    for rel in ("solver/optim.py", "solver/nets.py", "solver/cnn.py", "solver/classifiers/softmax.py"):
        assert f"{rel}: not taken: {rel} is below solver, which is a symbolic link" in notes
    assert sorted(p.name for p in ran.iterdir()) == []


def test_zip_members_that_climb_out_or_link_are_never_used(solved, tmp_path, token):
    """layers/affine.py only under ../, absolute and climbing names, losses.py as a symlink member: their tests lost."""
    archive = tmp_path / "submission.zip"
    affine = (solved / "layers/affine.py").read_bytes()
    escaped = f"/tmp/{token}-escaped"
    with zipfile.ZipFile(archive, "w") as opened:
        for rel in manifest.STUDENT_FILES:
            if rel not in ("layers/affine.py", "layers/losses.py"):
                opened.write(solved / rel, rel)
        for name in ("../layers/affine.py", "layers/../../layers/affine.py", f"/tmp/{token}/layers/affine.py",
                     "../../../../../../.." + escaped):
            opened.writestr(zipfile.ZipInfo(name), affine)
        link = zipfile.ZipInfo("layers/losses.py")
        link.external_attr = (0o120777 << 16)
        opened.writestr(link, "/etc/passwd")
    results = grade_hostile(archive, tmp_path / "out", token)
    assert_lost(results, in_full(names("affine", "softmax", "svm", "losses")))
    assert "contain '..'" in results["output"]
    assert "layers/losses.py: not taken: layers/losses.py is a symbolic link" in results["output"]
    assert not os.path.lexists(escaped) and not os.path.lexists(f"/tmp/{token}")


# -- 7: objects that lie
def test_lying_objects_and_patched_numpy_gain_nothing(solved, tmp_path, token):
    """__eq__ always True, a lying ndarray subclass and float, numpy's comparisons patched, frame peeking."""
    for (rel, name), body in LIARS.items():
        append(solved, rel, code(MARK, token))
        replace_function(solved, rel, name, body, token)
    results = grade_hostile(solved, tmp_path / "out", token)
    assert_lost(results, lost(RELU_BACKWARD, DROPOUT_BACKWARD, SVM_LOSS, optim_lost("rmsprop", "adam")))


# -- 8: exits at import and in calls
def test_exits_cost_only_the_tests_that_reach_them(solved, tmp_path, token):
    """os._exit at import of losses.py, sys.exit at import of optim.py, os._exit, SystemExit, KeyboardInterrupt in calls."""
    append(solved, "layers/losses.py", code(MARK, token), "import os\nos._exit(0)\n")
    append(solved, "solver/optim.py", code(MARK, token), "import sys\nsys.exit(3)\n")
    for rel, name, body in (("layers/dropout.py", "dropout_backward", "import os\nos._exit(0)"),
                            ("layers/activations.py", "relu_backward", "raise SystemExit(1)"),
                            ("layers/normalization.py", "layernorm_backward", "raise KeyboardInterrupt")):
        append(solved, rel, code(MARK, token))
        replace_function(solved, rel, name, body, token)
    results = grade_hostile(solved, tmp_path / "out", token)
    assert_lost(results, lost(in_full(names("softmax", "svm", "losses", "test_optim.py", "layernorm")),
                              DROPOUT_BACKWARD, RELU_BACKWARD))


# -- 9, 10, 13: memory, the C stack, the channel
def test_memory_stack_and_channel_attacks_cost_only_their_tests(solved, tmp_path, token):
    """6 GiB, a segfault, a 2**62-byte header, random bytes and a 128 MiB frame: only those functions' tests fail."""
    for (rel, name), body in CRASHES.items():
        append(solved, rel, code(MARK, token))
        replace_function(solved, rel, name, body, token)
    results = grade_hostile(solved, tmp_path / "out", token, timeout=SHORT_TIMEOUT_S)
    assert_lost(results, lost(RELU_BACKWARD, SVM_LOSS, DROPOUT_BACKWARD, optim_lost("sgd_momentum", "adam")))
    outputs = json.dumps(results)
    assert "MemoryError" in outputs and "exit code -11" in outputs and "over the cap" in outputs


# -- 11, 12: children and floods
def test_children_floods_and_a_call_at_the_full_limit_cost_only_their_tests(solved, tmp_path, token):
    """50 sleeping children, a daemon and a channel holder at import, 50 MB printed, a call past the limit.

    relu_backward exits while a child holds the channel open: its tests are lost at once, and no
    child survives. adam sleeps in the first-step test's call: that test is lost at the limit
    (6 s here), and the next one, whose worker was started ahead and has by then waited longer
    than a worker may take to start (4 s here, as 30 s is to the default 30 s limit), still passes.
    """
    assert manifest.TEST_TIMEOUT_S >= sandbox.STARTUP_S  # the case this scales down
    append(solved, "layers/activations.py", code(MARK, token), code(CHILDREN, token))
    replace_function(solved, "layers/activations.py", "relu_backward", "import os\nos._exit(0)", token)
    append(solved, "layers/normalization.py", code(MARK, token), code(FLOOD, token))
    replace_function(solved, "layers/normalization.py", "batchnorm_forward",
                     "import os\nos.write(1, b'x' * 1_000_000)\nos.write(2, b'y' * 1_000_000)\n"
                     "return _original(*args, **kwargs)", token)
    append(solved, "solver/optim.py", code(MARK, token))
    replace_function(solved, "solver/optim.py", "adam", '''
        import time
        config = args[2] if len(args) > 2 else kwargs.get("config") or {}
        if config.get("learning_rate") == 1e-3:  # the first-step test's call
            time.sleep(3600)
        return _original(*args, **kwargs)
        ''', token)
    seen: set[str] = set()
    results = grade_hostile(solved, tmp_path / "out", token, seen=seen, timeout=6,
                            env={sandbox.STARTUP_ENV: "4"})
    assert_lost(results, lost(RELU_BACKWARD, {FIRST_STEP["adam"]: 1.0}))
    outputs = json.dumps(results)
    assert "relu_backward: the submission's process ended during the call" in outputs
    assert "timed out; the test's calls ran past its limit of 6 s" in outputs
    # They did run: the marked workers, at least 50 sleepers at once, the daemon and the channel holder.
    assert any("/boot/worker.py" in p for p in seen), sorted(seen)[:5]
    assert sum(f"b'{token}\\x00300" in p for p in seen) >= 50
    for suffix in ("-daemon", "-channel"):
        assert any(f"b'{token}{suffix}\\x00" in p for p in seen), sorted(seen)[:5]


# -- 14: an import that never ends
def test_endless_import_costs_only_the_tests_that_need_the_module(solved, tmp_path, token):
    """layers/conv.py loops at import: the conv, max_pool (pooling imports conv) and net tests (sandwich does) fail."""
    append(solved, "layers/conv.py", code(MARK, token), "while True:\n    pass\n")
    results = grade_hostile(solved, tmp_path / "out", token, timeout=SHORT_TIMEOUT_S)
    assert_lost(results, in_full(names("test_conv_", "test_max_pool_", "test_nets.py")))
    assert "while importing layers.conv" in json.dumps(results)


# -- 15: the autograder zip, as Gradescope runs it
@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    """The autograder zip, unpacked (what Gradescope puts at /autograder/source)."""
    tmp = tmp_path_factory.mktemp("autograder")
    done = run_grading("autograder-zip", tmp / "autograder.zip")
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp / "autograder.zip") as opened:
        opened.extractall(tmp / "source")
    (tmp / "source/run_autograder").chmod(0o755)
    return tmp / "source"


def run_autograder(source, submission, out, token: str) -> dict:
    """Grade submission with run_autograder; results.json, checked."""
    results = out / "results.json"
    started = time.monotonic()
    done = subprocess.run(["bash", str(source / "run_autograder")], capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, AUTOGRADER_SOURCE=str(source), AUTOGRADER_SUBMISSION=str(submission),
                                   AUTOGRADER_RESULTS=str(results), AUTOGRADER_PYTHON=sys.executable, PYTHONPATH=""))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return check_results(results, time.monotonic() - started, manifest.TEST_TIMEOUT_S, token)


def test_autograder_zip_gives_the_untouched_release_zero(autograder, tmp_path, token):
    """The untouched release scores 0 through run_autograder, every test listed (test_grade.py grades the
    reference solution through the same zip to full marks)."""
    submission = shutil.copytree(autograder / "base", tmp_path / "submission")
    results = run_autograder(autograder, submission, tmp_path / "out", token)
    assert results["score"] == 0 and len(results["tests"]) == len(POINTS)


def test_autograder_zip_keeps_its_solution_and_results_from_the_submission(namespaced, autograder, solved,
                                                                          tmp_path, token):
    """relu_backward left to whatever it can find of /autograder, forging results.json and killing the grader."""
    results_path = str(tmp_path / "out" / "results.json")
    append(solved, "layers/activations.py", code(MARK, token), code(SEARCH, token, results=results_path),
           code(FORGE, token, results=results_path))
    replace_function(solved, "layers/activations.py", "relu_backward", THIEF, token, forge="_hostile_forge(found)")
    results = run_autograder(autograder, solved, tmp_path / "out", token)
    assert_lost(results, RELU_BACKWARD)
    assert f"{token}-FOUND" not in json.dumps(results)


def test_the_search_is_real_it_finds_the_solution_where_isolation_is_only_a_process(solved, tmp_path, token):
    """Control: with --isolation process the worker can read the grader's files, and the search scores.

    So "found nothing" at the root and userns levels means out of reach, not a search that misses.
    (Only the grader's working folder is searched here: the whole host takes longer than a test may.)
    """
    results_path = str(tmp_path / "out" / "results.json")
    append(solved, "layers/activations.py", code(MARK, token), code(SEARCH, token, results=results_path, scope="grader"))
    edit_out = "raise NotImplementedError('relu_backward is not implemented yet')"
    replace_function(solved, "layers/activations.py", "relu_backward", edit_out, token)
    append(solved, "layers/activations.py", code(STEAL, token))
    results = grade_hostile(solved, tmp_path / "out", token, "--isolation", sandbox.PROCESS_LEVEL)
    assert_lost(results, {})
    assert f"{token}-FOUND /" in json.dumps(results)


# -- 16: what the root level holds
def test_root_worker_is_nobody_offline_and_blind(level, solved, tmp_path, token):
    """The worker runs as uid 65534 without capabilities, reaches no network, sees no grader process or file."""
    if level != sandbox.ROOT_LEVEL:
        pytest.skip(f"isolation is {level!r}, not 'root'")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    append(solved, "solver/optim.py", code(MARK, token), code(PROBE, token, port=port))
    log = tmp_path / "log.txt"
    try:
        results = grade_hostile(solved, tmp_path / "out", token, "--log", log)
    finally:
        listener.close()
    assert_lost(results, {})
    assert "Isolation: root" in results["output"]
    lines = [line for line in log.read_text().splitlines() if line.startswith(f"{token}-PROBE ")]
    assert lines, log.read_text()[:2000]
    for line in lines:
        facts = json.loads(line.split(" ", 1)[1])
        assert facts["uid"] == facts["euid"] == 65534, facts
        assert int(facts["CapEff"], 16) == int(facts["CapPrm"], 16) == int(facts["CapBnd"], 16) == 0, facts
        assert facts["connect"] in ("ENETUNREACH", "ECONNREFUSED"), facts
        assert facts["routes"] == 0 and facts["interfaces"] in ([], ["lo"]) and facts["up"] == [], facts
        assert not facts["grader_seen"] and facts["solutions"] == [] and facts["data"] == [], facts
