"""End-to-end tests of python -m grading grade: real submissions, real subprocesses, real files.

The attacks of a hostile student live in test_hostile*.py; these are the grading scheme and the
mistakes an honest student makes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import os
import time
import zipfile

import pytest
from grading_support import ROOT, copy_project, edit, failed_tests, fill_with_reference, grade_cli, run_grading

from grading import manifest, sandbox
from grading.grade import GradingError, grade, hidden_test_names
from grading.reference import DECLARED, ReferenceError

pytestmark = pytest.mark.grading

# Per-test limit in the timeout scenarios: long enough for any graded test of the reference
# solution on a loaded 2-core machine (the slowest takes about 0.3 s).
SHORT_TIMEOUT_S = 3

# The declared layer cases graded by test_declared.py: one point per case in each of its two tests.
DECLARED_POINTS = len(DECLARED)

# The grading scheme: every graded test and its points, in the order Gradescope lists them.
POINTS = {
    "test_captioning.py::test_captioning_loss_matches_the_course_check": 4,
    "test_captioning.py::test_captioning_gradients_match_numeric_gradient": 3,
    "test_classifiers.py::test_knn_distances_worked_example": 2,
    "test_classifiers.py::test_knn_predict_labels_votes_and_breaks_ties_toward_the_smaller_label": 1,
    "test_classifiers.py::test_naive_loss_gradient_matches_numeric_gradient": 2,
    "test_classifiers.py::test_vectorized_loss_equals_naive": 1,
    "test_classifiers.py::test_softmax_loss_with_zero_weights_is_log_c": 1,
    "test_classifiers.py::test_linear_classifier_learns_separated_blobs": 2,
    "test_classifiers.py::test_knn_matches_reference": 2,
    "test_classifiers.py::test_linear_losses_match_reference": 2,
    "test_conv.py::test_conv_naive_matches_fast": 4,
    "test_conv.py::test_conv_backward_naive_matches_numeric_gradient": 2,
    "test_conv.py::test_max_pool_naive_matches_fast": 3,
    "test_conv.py::test_spatial_batchnorm_backward_matches_numeric_gradient": 2,
    "test_conv.py::test_spatial_batchnorm_forward_normalizes_each_channel": 1,
    "test_conv.py::test_spatial_groupnorm_backward_matches_numeric_gradient": 2,
    "test_conv.py::test_conv_naive_matches_reference": 2,
    "test_conv.py::test_max_pool_naive_matches_reference": 1,
    "test_conv.py::test_spatial_norms_match_reference": 2,
    "test_declared.py::test_declared_layer_backward_matches_numeric_gradient": DECLARED_POINTS,
    "test_declared.py::test_declared_layer_matches_reference": DECLARED_POINTS,
    "test_layers.py::test_affine_forward_small_example": 2,
    "test_layers.py::test_affine_backward_matches_numeric_gradient": 3,
    "test_layers.py::test_relu_forward_small_example": 1,
    "test_layers.py::test_relu_backward_matches_numeric_gradient": 2,
    "test_layers.py::test_softmax_loss_is_log_c_for_equal_scores": 1,
    "test_layers.py::test_softmax_loss_gradient_matches_numeric_gradient": 2,
    "test_layers.py::test_svm_loss_is_c_minus_one_for_equal_scores": 1,
    "test_layers.py::test_svm_loss_gradient_matches_numeric_gradient": 2,
    "test_layers.py::test_affine_matches_reference": 2,
    "test_layers.py::test_relu_matches_reference": 1,
    "test_layers.py::test_losses_match_reference": 2,
    "test_nets.py::test_net_loss_and_gradients_match_reference": 6,
    "test_nets.py::test_net_gradients_match_numeric_gradient": 3,
    "test_normalization.py::test_batchnorm_forward_train_normalizes_each_feature": 2,
    "test_normalization.py::test_batchnorm_forward_updates_running_averages": 1,
    "test_normalization.py::test_batchnorm_backward_matches_numeric_gradient": 3,
    "test_normalization.py::test_batchnorm_backward_alt_matches_numeric_gradient": 2,
    "test_normalization.py::test_layernorm_backward_matches_numeric_gradient": 2,
    "test_normalization.py::test_dropout_forward_test_mode_is_identity": 1,
    "test_normalization.py::test_dropout_forward_keeps_the_expected_fraction_and_mean": 2,
    "test_normalization.py::test_dropout_backward_matches_numeric_gradient": 1,
    "test_normalization.py::test_batchnorm_matches_reference": 3,
    "test_normalization.py::test_layernorm_matches_reference": 2,
    "test_normalization.py::test_dropout_backward_routes_through_the_mask": 1,
    "test_optim.py::test_sgd_momentum_first_two_steps": 1,
    "test_optim.py::test_rmsprop_first_step": 1,
    "test_optim.py::test_adam_first_step_has_size_learning_rate": 1,
    "test_optim.py::test_update_rules_match_reference_over_five_steps": 3,
}
FULL = sum(POINTS.values())  # 93 + 2 per declared case
TESTS = len(POINTS)  # 49


@pytest.fixture(scope="module")
def student_tree(release_tree):
    """The untouched student version (built once per session by tests/conftest.py; never written to)."""
    return release_tree


@pytest.fixture
def solved(student_tree, tmp_path):
    """A copy of the student version filled back in with the reference solutions."""
    return fill_with_reference(shutil.copytree(student_tree, tmp_path / "submission"))


@pytest.fixture(scope="module")
def full_marks(reference_results):
    """results.json of the reference solutions handed in as a submission (tests/conftest.py grades it once)."""
    return reference_results


def test_reference_solution_gets_full_marks_in_gradescope_format(full_marks):
    """Every test passes, and results.json has Gradescope's top-level and per-test fields."""
    assert set(full_marks) == {"score", "execution_time", "output", "visibility", "stdout_visibility", "tests"}
    assert {t["name"]: t["max_score"] for t in full_marks["tests"]} == POINTS
    assert [t["name"] for t in full_marks["tests"]] == list(POINTS)
    assert full_marks["score"] == FULL == 93 + 2 * DECLARED_POINTS
    for test in full_marks["tests"]:
        assert set(test) == {"name", "number", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] == "passed" and test["score"] == test["max_score"] > 0
        assert test["visibility"] in (manifest.PUBLIC_VISIBILITY, manifest.HIDDEN_VISIBILITY)
    assert "Public tests passed: 34 of 34." in full_marks["output"]  # 33 hand-written, 1 over the declared cases
    assert sandbox.describe(sandbox.isolation()) in full_marks["output"]
    assert "all tests passed" not in full_marks["output"].lower()
    hidden = [t for t in full_marks["tests"] if t["visibility"] == manifest.HIDDEN_VISIBILITY]
    expected = {f"{path.name}::{name}" for path in (ROOT / manifest.GRADED_TESTS_DIR).glob("test_*.py")
                for name in hidden_test_names(path) if name.startswith("test_")}
    assert {t["name"] for t in hidden} == expected and len(expected) == 15


def test_untouched_release_scores_zero_with_every_test_listed(student_tree, full_marks, tmp_path):
    """The student version as released scores 0, and every graded test is listed as failed with its points."""
    results = grade_cli(student_tree, tmp_path / "results.json")
    assert results["score"] == 0
    assert [t["name"] for t in results["tests"]] == [t["name"] for t in full_marks["tests"]]
    assert all(t["status"] == "failed" and t["score"] == 0 for t in results["tests"])
    assert all("NotImplementedError" in t["output"] for t in results["tests"])


# What each independent breakage of the reference solution costs (the tests below make one each).
AFFINE_DW = {"test_layers.py::test_affine_backward_matches_numeric_gradient": 3.0,
             "test_layers.py::test_affine_matches_reference": 2.0}
RMSPROP_BUG = {"test_optim.py::test_rmsprop_first_step": 1.0,
               "test_optim.py::test_update_rules_match_reference_over_five_steps": 1.0}  # one of its three cases
RELU_LIAR = {"test_layers.py::test_relu_backward_matches_numeric_gradient": 2.0,
             "test_layers.py::test_relu_matches_reference": 1.0}
SVM_RAISES = {"test_layers.py::test_svm_loss_is_c_minus_one_for_equal_scores": 1.0,
              "test_layers.py::test_svm_loss_gradient_matches_numeric_gradient": 2.0,
              "test_layers.py::test_losses_match_reference": 1.0}  # svm_loss's half of it
MAXOUT_HIDDEN = {"test_declared.py::test_declared_layer_backward_matches_numeric_gradient": 1.0,
                 "test_declared.py::test_declared_layer_matches_reference": 1.0}  # the maxout case of each
CONV_MISSING = {"test_conv.py::test_conv_naive_matches_fast": 4.0,
                "test_conv.py::test_conv_backward_naive_matches_numeric_gradient": 2.0,
                "test_conv.py::test_conv_naive_matches_reference": 2.0}
BROKEN = {**AFFINE_DW, **RMSPROP_BUG, **RELU_LIAR, **SVM_RAISES, **MAXOUT_HIDDEN, **CONV_MISSING}


@pytest.fixture(scope="module")
def broken(student_tree, tmp_path_factory):
    """results.json of the reference solution with six independent breakages, each in a function (or file) of
    its own, graded as one submission: the tests below check each one's share of what it lost.

    Graded together to grade once instead of six times; test_one_broken_function_loses_exactly_its_points
    checks that the lost tests are exactly the union of the six sets, so each costs exactly its own.
    """
    tmp = tmp_path_factory.mktemp("broken")
    solved = fill_with_reference(shutil.copytree(student_tree, tmp / "submission"))
    target = tmp / "results.json"
    # test_one_broken_function_loses_exactly_its_points: a wrong dw in affine_backward
    edit(solved / "layers/affine.py", "dw = x.reshape(N, -1).T @ dout", "dw = 2 * (x.reshape(N, -1).T @ dout)")
    # test_partial_credit_per_parametrized_case: a bug in rmsprop alone
    edit(solved / "solver/optim.py", "    cache += (1 - rho) * (dw * dw)", "    cache += (1 - rho) * dw")
    # test_values_are_compared_as_float64_arrays_...: relu_backward returns an object whose == is always True
    edit(solved / "layers/activations.py", "    return scalar_if_0d(dout * mask)\n",
         "    class Liar:\n        def __eq__(self, other):\n            return True\n        __array__ = None\n"
         "    return Liar()\n")
    # test_submission_writing_results_json_itself_is_overwritten: a forged results.json, and svm_loss raises
    forged = json.dumps({"score": 1000, "tests": []})
    edit(solved / "layers/losses.py", "import numpy as np\n",
         f"import numpy as np\ntry:\n    open({str(target)!r}, 'w').write({forged!r})\nexcept OSError:\n    pass\n")
    edit(solved / "layers/losses.py", "    fn = \"svm_loss\"\n", "    fn = \"svm_loss\"\n    raise RuntimeError('broken')\n")
    # test_a_submissions_own_declarations_change_nothing_the_grader_grades: its own CASES emptied and
    # misdeclared, and an __all__ that hides maxout
    path = solved / "layers/activations.py"
    path.write_text(path.read_text() + "\nCASES = ()\nDECLARED_LATER = [None]\n")
    edit(path, '"maxout_forward", "maxout_backward"]', ']')
    # test_missing_student_file_keeps_the_stub_and_says_so: no layers/conv.py
    (solved / "layers/conv.py").unlink()
    return grade_cli(solved, target)


@pytest.fixture(scope="module")
def harmless(student_tree, tmp_path_factory):
    """(results.json, the --log file's text) of the reference solution with changes that must cost nothing:
    garbage on stdout and stderr from layers/affine.py (test_garbage_on_stdout_and_stderr_changes_nothing),
    and layers/activations.py's own declarations emptied and misdeclared
    (test_a_submissions_own_declarations_change_nothing_the_grader_grades), graded as one submission."""
    tmp = tmp_path_factory.mktemp("harmless")
    solved = fill_with_reference(shutil.copytree(student_tree, tmp / "submission"))
    edit(solved / "layers/affine.py", "import math\n",
         "import math\nimport os\nimport sys\n"
         "os.write(2, bytes(range(256)) * 50)\nos.write(1, b'{\"score\": 999}\\n' * 100)\n"
         "sys.stderr.write('Traceback (most recent call last):\\nFAILED everything\\n')\n")
    edit(solved / "layers/affine.py", "    fn = \"affine_forward\"\n",
         "    fn = \"affine_forward\"\n    os.write(2, b'\\xff\\xfe garbage \\x00\\n')\n    print('PASSED', file=sys.stderr)\n")
    path = solved / "layers/activations.py"
    path.write_text(path.read_text() + "\nCASES = ()\nDECLARED_LATER = [None]\n")
    results = grade_cli(solved, tmp / "results.json", "--log", tmp / "printed.log")
    return results, (tmp / "printed.log").read_text()


def test_one_broken_function_loses_exactly_its_points(broken):
    """A wrong dw in affine_backward fails only the affine backward tests: 3 + 2 points.

    The net tests pass because they run on stand-in layers (the standin_layers fixture). Graded beside
    the other breakages of ``broken``: the submission loses exactly the union of what each costs alone.
    """
    assert failed_tests(broken) == BROKEN
    assert broken["score"] == FULL - sum(BROKEN.values()) == FULL - 24
    output = next(t["output"] for t in broken["tests"] if t["name"].endswith("test_affine_matches_reference"))
    assert "affine_backward dw" in output and "largest absolute error" in output


def test_partial_credit_per_parametrized_case(broken):
    """A bug in rmsprop alone costs one of the three cases of the update-rule reference test."""
    assert {n: p for n, p in failed_tests(broken).items() if n.startswith("test_optim.py")} == RMSPROP_BUG
    entry = next(t for t in broken["tests"] if t["name"].endswith("five_steps"))
    assert entry["score"] == 2.0 and entry["output"].startswith("2 of 3 cases passed.")


def test_values_are_compared_as_float64_arrays_so_always_equal_objects_gain_nothing(broken):
    """An output object whose == is always True fails like any wrong answer."""
    lost = failed_tests(broken)
    assert {name for name in lost if "relu" in name} == {"test_layers.py::test_relu_backward_matches_numeric_gradient",
                                                         "test_layers.py::test_relu_matches_reference"}


def test_infinite_loop_that_ignores_signals_is_killed_and_the_rest_graded(solved, tmp_path):
    """A loop that never returns and ignores SIGALRM, SIGTERM and SIGINT costs only its own tests, each
    reported as timed out; the remaining tests run in a new worker, well within the time bound."""
    edit(solved / "solver/optim.py", '    config = _start("adam", w, dw, config,',
         '    import signal\n    for s in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT):\n'
         '        signal.signal(s, signal.SIG_IGN)\n    while True:\n        pass\n'
         '    config = _start("adam", w, dw, config,')
    started = time.monotonic()
    results = grade_cli(solved, tmp_path / "results.json", "--timeout", SHORT_TIMEOUT_S)
    assert failed_tests(results) == {"test_optim.py::test_adam_first_step_has_size_learning_rate": 1.0,
                                     "test_optim.py::test_update_rules_match_reference_over_five_steps": 1.0}
    assert results["score"] == FULL - 2
    outputs = " ".join(t["output"] for t in results["tests"] if t["status"] == "failed")
    assert outputs.count("solver.optim.adam: timed out; the test's calls ran past its limit of 3 s") == 2
    assert time.monotonic() - started < SHORT_TIMEOUT_S * TESTS + 60


def test_garbage_on_stdout_and_stderr_changes_nothing(harmless):
    """Bytes sprayed on both streams at import and in every call leave the score at full marks."""
    results, log = harmless
    assert results["score"] == FULL and not failed_tests(results)
    # What it printed is kept, bounded, in the log, and labelled as its own in results.json.
    assert "PASSED" in log and log.startswith("== graded_tests/")
    labelled = [t for t in results["tests"] if "[the submission's own output during" in t["output"]]
    assert labelled and all(len(t["output"]) <= 1800 for t in results["tests"])


def test_malicious_conftest_and_edited_tests_are_ignored(student_tree, tmp_path):
    """A conftest.py that forces every outcome to pass, and rewritten tests, are never copied."""
    submission = shutil.copytree(student_tree, tmp_path / "submission")
    hook = ("import pytest\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
            "    outcome = yield\n    report = outcome.get_result()\n    report.outcome = 'passed'\n")
    for folder in ("", "tests", "layers", "graded_tests"):
        (submission / folder).mkdir(exist_ok=True)
        (submission / folder / "conftest.py").write_text(hook)
    for test_file in (submission / "tests").glob("test_*.py"):
        test_file.write_text("def test_nothing():\n    assert True\n")
    (submission / "pytest.ini").write_text("[pytest]\naddopts = -p no:terminal\n")
    results = grade_cli(submission, tmp_path / "results.json")
    assert results["score"] == 0 and len(results["tests"]) == TESTS


def test_submission_writing_results_json_itself_is_overwritten(broken):
    """Student code that writes a perfect results.json to the results path does not change the grade."""
    # svm_loss's own tests: 1 + 2 points, and its half of the 2-point reference test (the grade is the
    # grader's: exactly what the breakages of ``broken`` cost, see test_one_broken_function_loses_exactly_its_points).
    lost = failed_tests(broken)
    assert {n: p for n, p in lost.items() if "svm" in n or "losses" in n} == SVM_RAISES
    assert broken["score"] == FULL - sum(BROKEN.values()) and len(broken["tests"]) == TESTS


def test_syntax_error_costs_only_the_tests_that_need_that_file(solved, tmp_path):
    """A syntax error in layers/conv.py fails the tests that import it, keeps affine's points, and is named once."""
    edit(solved / "layers/conv.py", "def conv_forward_naive(", "def conv_forward_naive(:\ndef _unused(")
    results = grade_cli(solved, tmp_path / "results.json")
    lost = failed_tests(results)
    assert len(results["tests"]) == TESTS
    assert not any(name.startswith(("test_layers.py", "test_optim.py", "test_normalization.py")) for name in lost)
    assert "test_conv.py::test_conv_naive_matches_fast" in lost and results["score"] == FULL - sum(lost.values())
    line = next(n for n, text in enumerate((solved / "layers/conv.py").read_text().splitlines(), 1) if "(:" in text)
    assert results["output"].count(f"layers/conv.py could not be imported (SyntaxError at layers/conv.py:{line}") == 1
    for test in results["tests"]:
        if test["status"] == "failed":
            assert "Traceback" not in test["output"] and "SyntaxError" in test["output"] or "not tried" in test["output"]


def test_a_submissions_own_declarations_change_nothing_the_grader_grades(harmless, broken):
    """The cases a submission declares are its own business: emptying CASES and misdeclaring a case in
    layers/activations.py grades the same (full marks); the grader reads only its own declarations, and
    the worker maps names from the literal __all__, so an __all__ that hides a function costs exactly its tests."""
    results, _ = harmless
    assert results["score"] == FULL and not failed_tests(results)
    lost = {n: p for n, p in failed_tests(broken).items() if n.startswith("test_declared.py")}
    assert set(lost) == {"test_declared.py::test_declared_layer_backward_matches_numeric_gradient",
                         "test_declared.py::test_declared_layer_matches_reference"}
    assert lost == {name: 1.0 for name in lost}  # the maxout case of each: one point apiece
    # (and nothing else: test_one_broken_function_loses_exactly_its_points checks the whole lost set)


def test_missing_student_file_keeps_the_stub_and_says_so(broken):
    """A submission without layers/conv.py is graded with the stub and the summary says which file."""
    assert "layers/conv.py: not in the submission" in broken["output"]
    assert {n for n in failed_tests(broken) if n.startswith("test_conv.py")} == {
        "test_conv.py::test_conv_naive_matches_fast", "test_conv.py::test_conv_backward_naive_matches_numeric_gradient",
        "test_conv.py::test_conv_naive_matches_reference"}


def test_altered_reference_data_stops_grading(tmp_path, student_tree):
    """A reference file that no longer matches SHA256SUMS stops the grader before any test runs."""
    root = copy_project(tmp_path / "project")
    path = root / manifest.REFERENCE_DIR / "affine.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ReferenceError, match="affine.npz has SHA-256"):
        grade(student_tree, root=root)


def test_grade_rejects_bad_arguments(tmp_path):
    """A missing submission folder or a non-positive timeout is refused with the argument named."""
    with pytest.raises(GradingError, match="SUBMISSION .* is neither a folder nor a .zip file"):
        grade(tmp_path / "nope")
    with pytest.raises(GradingError, match="timeout must be a positive number"):
        grade(tmp_path, timeout=0)
    with pytest.raises(GradingError, match="isolation must be one of"):
        grade(tmp_path, isolation="docker")
    done = run_grading("grade", tmp_path / "nope")
    assert done.returncode == 2 and "is neither a folder nor a .zip file" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_hidden_test_names_follow_the_markers():
    """The hidden tests of a file are exactly those defined inside its HIDDEN TESTS regions."""
    names = hidden_test_names(ROOT / manifest.GRADED_TESTS_DIR / "test_layers.py")
    assert names == {"test_affine_matches_reference", "test_relu_matches_reference", "test_losses_match_reference"}


def test_autograder_zip_runs_as_gradescope_would(tmp_path):
    """The zip holds setup.sh and run_autograder; unpacked, run_autograder grades into results.json."""
    archive = tmp_path / "autograder.zip"
    done = run_grading("autograder-zip", archive)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(archive) as opened:
        names = opened.namelist()
        modes = {info.filename: info.external_attr >> 16 for info in opened.infolist()}
        opened.extractall(tmp_path / "source")
    assert {"setup.sh", "run_autograder", "requirements.txt", "grading/grade.py",
            "grading/reference/SHA256SUMS", "base/layers/affine.py"} <= set(names)
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    marker_lines = [name for name in names if name.startswith("base/")
                    and "# BEGIN SOLUTION" in [line.strip() for line in
                                               (tmp_path / "source" / name).read_text(errors="ignore").splitlines()]]
    assert marker_lines == []
    source = tmp_path / "source"
    (source / "run_autograder").chmod(0o755)
    submission = fill_with_reference(shutil.copytree(source / "base", tmp_path / "submission"))
    results = tmp_path / "results" / "results.json"
    run = subprocess.run(["bash", str(source / "run_autograder")], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, AUTOGRADER_SOURCE=str(source), AUTOGRADER_SUBMISSION=str(submission),
                                  AUTOGRADER_RESULTS=str(results), AUTOGRADER_PYTHON=sys.executable,
                                  PYTHONPATH=""))
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(results.read_text())["score"] == FULL


def test_memory_limit_fails_the_hungry_test_and_flat_uploads_are_accepted(tmp_path):
    """Student files uploaded side by side are graded; a 2 GB allocation under a 1 GiB limit fails its tests only."""
    submission = tmp_path / "flat"
    submission.mkdir()
    for rel in manifest.STUDENT_FILES:
        shutil.copyfile(ROOT / rel, submission / rel.rsplit("/", 1)[-1])
    edit(submission / "dropout.py", "    fn = \"dropout_forward\"\n",
         "    fn = \"dropout_forward\"\n    np.ones(250_000_000)  # 2 GB\n")
    results = grade_cli(submission, tmp_path / "results.json", "--memory-mb", 1024)
    lost = failed_tests(results)
    assert lost and all("dropout" in name for name in lost), lost
    assert "MemoryError" in json.dumps(results)
    assert results["score"] == FULL - sum(lost.values())
