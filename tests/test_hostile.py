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

This file holds the attacks that reach for the grader's side (its files, its processes, its
results, the autograder zip); tests/test_hostile_limits.py holds those that lie, crash, flood or
hang inside the worker. What both share is in tests/hostile_support.py.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import zipfile

import pytest
from grading_support import ROOT, copy_project, run_grading

from grading import manifest, sandbox
from hostile_attacks import (FORGE, KIT, MARK, POINTS, PROBE, SEARCH, SELF_ACTIVATING, SELF_ACTIVATING_FILES, STEAL,
                             THIEF, append, code, replace_function)
from hostile_support import (RELU_BACKWARD, assert_lost, check_results, grade_hostile, in_full, names, tree_digest)
from hostile_support import level, namespaced, release, solved, token  # noqa: F401 - fixtures, used by name

pytestmark = pytest.mark.grading


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
                                       "test_nets.py", "test_classifiers.py", "test_captioning.py")))
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
