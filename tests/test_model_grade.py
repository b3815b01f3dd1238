"""Grading a handed-in model file: scored on the trusted side on the held-out digits, with a leaderboard."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest
from grading_support import ROOT, grade_cli

from data import load_digits
from grading.course import ModelSpec, load_course
from grading.model_grade import HELDOUT_DIR, TEST_NAME, grade_model, load_heldout, take_model
from solver import FullyConnectedNet, Solver, save_model
from solver.captioning import CaptioningRNN
from solver.checkpoint import MODEL_FORMAT, write_npz

SPEC = load_course().get("a1").model
HELDOUT_ROWS = 3823


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small FullyConnectedNet trained on the shipped digits, saved as the command saves it."""
    data = load_digits(seed=0)
    data.pop("mean_image")
    model = FullyConnectedNet([64], input_dim=64, num_classes=10, weight_scale=0.1, reg=1e-3, seed=0)
    solver = Solver(model, data, update_rule="adam", num_epochs=15, batch_size=50,
                    optim_config={"learning_rate": 3e-3}, verbose=False, seed=0)
    solver.train()
    path = tmp_path_factory.mktemp("model") / "model.npz"
    save_model(model, path)
    return model, path


def _own_accuracy(model) -> float:
    """The held-out accuracy computed here, from the model's scores, independently of grade_model."""
    X, y = load_heldout("optdigits-heldout")
    return float(np.mean(np.argmax(model.loss(X.astype(np.float32)), axis=1) == y))


def test_the_heldout_set_is_the_optdigits_training_file_with_the_training_preprocessing():
    X, y = load_heldout("optdigits-heldout")
    assert X.shape == (HELDOUT_ROWS, 1, 8, 8) and y.shape == (HELDOUT_ROWS,)
    assert np.bincount(y).tolist() == [376, 389, 380, 389, 387, 376, 377, 387, 380, 382]  # the UCI counts
    mean = load_digits(dtype=np.float64)["mean_image"]
    pixels = (X + mean) * 16
    assert np.allclose(pixels, np.round(pixels), rtol=0, atol=1e-9) and pixels.min() == 0 and pixels.max() == 16


def test_a_changed_heldout_file_is_refused(tmp_path):
    shutil.copytree(ROOT / HELDOUT_DIR, tmp_path / HELDOUT_DIR)
    path = tmp_path / HELDOUT_DIR / "optdigits_train.csv.gz"
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ValueError, match="does not match its SHA-256"):
        load_heldout("optdigits-heldout", root=tmp_path)
    with pytest.raises(ValueError, match="name must be one of"):
        load_heldout("cifar10")


def test_a_trained_model_earns_the_points_of_the_threshold_its_accuracy_reaches(trained):
    model, path = trained
    test, board = grade_model(path, SPEC)
    accuracy = _own_accuracy(model)
    assert accuracy > 0.85, f"a net trained on the shipped digits reaches only {accuracy:.3f} on the held-out ones"
    assert test.score == SPEC.points_for(accuracy) and test.points == SPEC.points
    assert board == [{"name": "Held-out accuracy", "value": round(accuracy, 4)},
                     {"name": "Parameters", "value": sum(p.size for p in model.params.values()), "order": "asc"}]
    assert f"held-out accuracy {accuracy:.4f} on {HELDOUT_ROWS} digits" in test.output()


def test_partial_credit_follows_the_thresholds(trained):
    """The same model under stricter thresholds earns the points of the highest one it reaches."""
    model, path = trained
    accuracy = _own_accuracy(model)
    spec = ModelSpec("model.npz", "optdigits-heldout", SPEC.max_bytes,
                     ((accuracy - 0.01, 1.0), (accuracy, 2.0), (min(1.0, accuracy + 0.01), 6.0)))
    test, _ = grade_model(path, spec)
    assert test.score == 2.0 and test.status == "failed" and test.points == 6.0


def _crafted(path, name, config, arrays):
    write_npz(path, {f"params/{k}": v for k, v in arrays.items()},
              {"format": MODEL_FORMAT, "version": 1, "class": name, "config": config})
    return path


@pytest.mark.parametrize("make, reason", [
    (lambda p: (p.write_bytes(b"not a zip at all"), p)[1], "it is not an .npz file written by save_model"),
    (lambda p: _crafted(p, "FullyConnectedNet", {"hidden_dims": [10**6, 10**6], "input_dim": 64, "num_classes": 10},
                        {"W1": np.zeros((2, 2), np.float32)}),
     "its settings describe 1,000,076,000,010 parameters but it holds 4"),
    (lambda p: _crafted(p, "FullyConnectedNet", {"hidden_dims": [8], "input_dim": 32, "num_classes": 10}, {}),
     "it takes 32 inputs, not the 64 pixels of a digit"),
    (lambda p: _crafted(p, "FullyConnectedNet", {"hidden_dims": [8], "input_dim": 64, "num_classes": 3}, {}),
     "it predicts 3 classes, not the 10 digits"),
    (lambda p: (save_model(CaptioningRNN({"<NULL>": 0, "<START>": 1, "<END>": 2}, input_dim=4, wordvec_dim=3,
                                         hidden_dim=3, seed=0), p), p)[1], "it holds a 'CaptioningRNN'"),
])
def test_a_malformed_model_file_fails_the_test_with_its_reason(tmp_path, make, reason):
    path = make(tmp_path / "model.npz")
    test, board = grade_model(path, SPEC)
    assert test.score == 0 and test.status == "failed" and board == []
    assert reason in test.output(), test.output()


def test_a_model_that_unpacks_past_the_cap_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "model.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("params/W1.npy", b"\0" * (SPEC.max_bytes + 1))
    test, _ = grade_model(path, SPEC)
    assert f"unpacks to {SPEC.max_bytes + 1:,} bytes, more than the {SPEC.max_bytes:,} allowed" in test.output()


def test_a_missing_or_oversized_model_file_is_a_failed_test_with_its_reason(tmp_path, trained):
    _, path = trained
    (tmp_path / "sub").mkdir()
    found = take_model(tmp_path / "sub", tmp_path, SPEC)
    test, _ = grade_model(found, SPEC)
    assert test.score == 0 and "model.npz: not in the submission; no model was graded" in test.output()
    shutil.copyfile(path, tmp_path / "sub" / "model.npz")
    small = ModelSpec("model.npz", "optdigits-heldout", 1024, SPEC.thresholds)
    found = take_model(tmp_path / "sub", tmp_path, small)
    assert isinstance(found, str) and "larger than the 1024-byte limit" in found
    assert not (tmp_path / "model" / "model.npz").exists()


@pytest.mark.grading
def test_grading_assignment_1_with_a_model_file_puts_it_on_the_leaderboard(tmp_path, trained):
    """Through the command line: the a1 student files and model.npz handed in side by side; the
    code earns full marks, the model its threshold's points, and results.json has the leaderboard."""
    model, path = trained
    submission = tmp_path / "submission"
    for rel in load_course().get("a1").student_files():
        (submission / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, submission / rel)
    shutil.copyfile(path, submission / "model.npz")
    results = grade_cli(submission, tmp_path / "results.json", "--assignment", "a1")
    accuracy = _own_accuracy(model)
    by_name = {t["name"]: t for t in results["tests"]}
    assert by_name[TEST_NAME]["score"] == SPEC.points_for(accuracy) and by_name[TEST_NAME]["max_score"] == SPEC.points
    assert all(t["score"] == t["max_score"] for name, t in by_name.items() if name != TEST_NAME)
    assert results["leaderboard"][0] == {"name": "Held-out accuracy", "value": round(accuracy, 4)}
    expected = sum(t["max_score"] for t in results["tests"]) - SPEC.points + SPEC.points_for(accuracy)
    assert results["score"] == round(expected, 4)


# Appended to the submission's solver/optim.py: at import, in the worker, rewrite every model copy the
# grader may hold and leave a marker that the attack ran.
REWRITE_MODEL = '''

import glob as _glob, tempfile as _tempfile
for _path in _glob.glob("/tmp/chainrule-grade-*/model/*.npz") + _glob.glob(_tempfile.gettempdir() + "/chainrule-grade-*/model/*.npz"):
    try:
        open(_path, "wb").write(b"rewritten by the submission")
    except OSError:
        pass
open(@MARKER@, "w").write("ran")
'''


@pytest.mark.grading
def test_a_submission_that_rewrites_the_model_copy_changes_nothing(tmp_path, trained):
    """Hostile: at the process level (where a worker can write the grader's files) the submission's
    import rewrites the grader's copy of model.npz. The model was scored before any worker started, so
    its points stand; the attack demonstrably ran."""
    model, path = trained
    submission = tmp_path / "submission"
    for rel in load_course().get("a1").student_files():
        (submission / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, submission / rel)
    marker = tmp_path / "attack-ran"
    with open(submission / "solver/optim.py", "a") as handle:
        handle.write(REWRITE_MODEL.replace("@MARKER@", repr(str(marker))))
    shutil.copyfile(path, submission / "model.npz")
    results = grade_cli(submission, tmp_path / "results.json", "--assignment", "a1", "--isolation", "process")
    assert marker.read_text() == "ran", "the attack never ran, so this test shows nothing"
    model_test = next(t for t in results["tests"] if t["name"] == TEST_NAME)
    assert model_test["score"] == SPEC.points_for(_own_accuracy(model)) > 0, model_test["output"]
