"""Grade a trained model a student hands in: loaded and scored on the trusted side, on a held-out set.

The course file's ``model`` entry of an assignment names the file (written by
``solver.save_model``, or the model.npz of ``python -m solver --dataset digits``), the held-out
set, a size cap and accuracy thresholds with points. The file comes through the same intake as
the code (grading.submission: no links, capped size, safe zip members). It is read with
``allow_pickle=False`` and checked before any net is built: its class must be a classifier of
8x8 digits, its settings must describe no more parameters than the file holds (so a crafted
file cannot make the grader allocate what it does not carry), and it may unpack to no more
than the cap. The scores come from this library's own forward pass, never the student's code.

The held-out set, ``optdigits-heldout``, is the UCI optdigits training file (3,823 digits by
writers other than those of the shipped 1,797; grading/heldout/README.md). It lives only in
the grader: never in a release nor in a worker's folder. Inputs are scaled to [0, 1] and have
the mean image of ``data.load_digits()`` (seed 0) subtracted: what ``python -m solver
--dataset digits`` trains on.
"""

from __future__ import annotations

import gzip
import hashlib
import pathlib
import zipfile

import numpy as np

from data.files import project_root
from grading.submission import SubmissionError, gather

HELDOUT_DIR = "grading/heldout"
HELDOUT_FILES = {"optdigits-heldout": "optdigits_train.csv.gz"}
HELDOUT_ROWS = {"optdigits-heldout": 3823}
CLASSIFIERS = ("FullyConnectedNet", "TwoLayerNet", "ThreeLayerConvNet")
NUM_CLASSES = 10
IMAGE_SHAPE = (1, 8, 8)
# Scores are computed this many images at a time (bounded memory whatever the net).
BATCH = 512
TEST_NAME = "model: held-out accuracy"


def load_heldout(name: str, root=None) -> tuple[np.ndarray, np.ndarray]:
    """The held-out images (N, 1, 8, 8) float64, preprocessed as for training, and labels (N,) int64.

    Args:
        name: a held-out set of grading.course.MODEL_DATASETS.
        root: the grader's root (default: this project).

    Returns:
        (X, y).

    Raises:
        ValueError: an unknown name, or a file that does not match grading/heldout/SHA256SUMS.
    """
    if name not in HELDOUT_FILES:
        raise ValueError(f"load_heldout: name must be one of {sorted(HELDOUT_FILES)}, got {name!r}.")
    folder = (project_root() if root is None else pathlib.Path(root)) / HELDOUT_DIR
    path = folder / HELDOUT_FILES[name]
    raw = path.read_bytes()
    sums = dict(line.split()[::-1] for line in (folder / "SHA256SUMS").read_text("utf-8").splitlines() if line)
    if sums.get(path.name) != hashlib.sha256(raw).hexdigest():
        raise ValueError(f"load_heldout: {path} does not match its SHA-256 in {folder / 'SHA256SUMS'}.")
    table = np.loadtxt(gzip.decompress(raw).decode("ascii").splitlines(), delimiter=",", dtype=np.int64)
    if table.shape != (HELDOUT_ROWS[name], 65):
        raise ValueError(f"load_heldout: {path} holds {table.shape} values, expected ({HELDOUT_ROWS[name]}, 65).")
    from data import load_digits

    mean = load_digits(dtype=np.float64)["mean_image"]
    X = table[:, :64].reshape(-1, *IMAGE_SHAPE) / 16.0 - mean
    return X, table[:, 64]


def take_model(submission, scratch: pathlib.Path, spec):
    """Copy the model file out of a submission into scratch/model (never a worker's folder).

    Args:
        submission: the folder or .zip handed in.
        scratch: a folder of the grader's own.
        spec: the assignment's grading.course.ModelSpec.

    Returns:
        The path of the copy, or a str saying why there is none (missing, too large, a link).
    """
    dest = pathlib.Path(scratch) / "model"
    dest.mkdir(exist_ok=True)
    try:
        intake = gather(submission, dest, [spec.file], max_file_bytes=spec.max_bytes)
    except SubmissionError as exc:
        return f"the model file could not be taken: {exc}"
    if spec.file not in intake.copied:
        return " ".join(intake.notes).replace("the unimplemented version was graded", "no model was graded")
    return dest / spec.file


def _implied_parameters(name: str, config: dict) -> int:
    """How many parameters a classifier's settings describe (ValueError when they do not fit 8x8 digits)."""
    def whole(key, value):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"its setting {key} must be a positive int, got {value!r}")
        return value

    if config.get("num_classes") != NUM_CLASSES:
        raise ValueError(f"it predicts {config.get('num_classes')!r} classes, not the {NUM_CLASSES} digits")
    if name == "ThreeLayerConvNet":
        if list(config.get("input_dim", [])) != list(IMAGE_SHAPE):
            raise ValueError(f"it takes inputs {config.get('input_dim')!r}, not {IMAGE_SHAPE}")
        filters, size = whole("num_filters", config.get("num_filters")), whole("filter_size", config.get("filter_size"))
        hidden = whole("hidden_dim", config.get("hidden_dim"))
        return filters * size * size + filters + filters * 16 * hidden + hidden + hidden * NUM_CLASSES + NUM_CLASSES
    if config.get("input_dim") != 64:
        raise ValueError(f"it takes {config.get('input_dim')!r} inputs, not the 64 pixels of a digit")
    if name == "TwoLayerNet":
        hidden = [whole("hidden_dim", config.get("hidden_dim"))]
    else:
        hidden = config.get("hidden_dims")
        if not isinstance(hidden, list):
            raise ValueError(f"its setting hidden_dims must be a list, got {hidden!r}")
        hidden = [whole("hidden_dims", h) for h in hidden]
    dims = [64, *hidden, NUM_CLASSES]
    count = sum(a * b + b for a, b in zip(dims, dims[1:]))
    return count + (2 * sum(hidden) if config.get("normalization") else 0)


def _load(path: pathlib.Path, spec):
    """The net in the file, after the checks of the module docstring (ValueError saying which failed)."""
    from solver.checkpoint import MODEL_FORMAT, load_model, read_npz

    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"it is not an .npz file written by save_model ({exc})") from None
    if unpacked > spec.max_bytes:
        raise ValueError(f"it unpacks to {unpacked:,} bytes, more than the {spec.max_bytes:,} allowed")
    arrays, meta = read_npz(path, "the grader", MODEL_FORMAT)
    name, config = meta.get("class"), meta.get("config")
    if name not in CLASSIFIERS or not isinstance(config, dict):
        raise ValueError(f"it holds a {name!r}; the grader scores {', '.join(CLASSIFIERS)}")
    stored = sum(a.size for key, a in arrays.items() if key.startswith("params/"))
    implied = _implied_parameters(name, config)
    if implied > stored:
        raise ValueError(f"its settings describe {implied:,} parameters but it holds {stored:,}")
    return load_model(path), stored


def accuracy(model, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of X the model classifies as y (scores from model.loss(X) in test mode, by batches).

    Args:
        model: a loaded classifier.
        X: (N, 1, 8, 8) images; cast to the model's dtype.
        y: (N,) labels.

    Returns:
        The accuracy in [0, 1].
    """
    dtype = next(iter(model.params.values())).dtype
    hits = 0
    for start in range(0, len(X), BATCH):
        scores = model.loss(X[start : start + BATCH].astype(dtype, copy=False))
        if not (isinstance(scores, np.ndarray) and scores.shape == (len(X[start : start + BATCH]), NUM_CLASSES)):
            raise ValueError(f"its scores have shape {getattr(scores, 'shape', None)}, expected (N, {NUM_CLASSES})")
        hits += int(np.sum(np.argmax(scores, axis=1) == y[start : start + BATCH]))
    return hits / len(X)


def grade_model(found, spec, root=None):
    """Score a handed-in model: its graded test and its leaderboard entries.

    Args:
        found: the path take_model returned, or its reason why there is no model.
        spec: the assignment's grading.course.ModelSpec.
        root: the grader's root (for the held-out set).

    Returns:
        (grading.grade.GradedTest, leaderboard list for results.json; empty when nothing was scored).
    """
    from grading.grade import GradedTest

    test = GradedTest(name=TEST_NAME, file=spec.file, points=spec.points, hidden=False)
    steps = ", ".join(f"{p:g} points from {a:.0%}" for a, p in spec.thresholds)
    if isinstance(found, str):
        test.cases[TEST_NAME] = f"{spec.file}: {found} ({steps})"
        return test, []
    try:
        with np.errstate(all="ignore"):
            model, size = _load(found, spec)
            X, y = load_heldout(spec.dataset, root)
            score = accuracy(model, X, y)
    except (ValueError, TypeError, KeyError, MemoryError) as exc:
        test.cases[TEST_NAME] = f"{spec.file} was not scored: {str(exc).rstrip('.')}."
        return test, []
    earned = spec.points_for(score)
    verdict = (f"held-out accuracy {score:.4f} on {len(y)} digits: {earned:g} of {spec.points:g} points "
               f"({steps}); {size:,} parameters")
    test.earned = earned
    test.cases[TEST_NAME] = "passed" if earned == spec.points else verdict
    if earned == spec.points:
        test.note = verdict
    leaderboard = [{"name": "Held-out accuracy", "value": round(score, 4)},
                   {"name": "Parameters", "value": int(size), "order": "asc"}]
    return test, leaderboard
