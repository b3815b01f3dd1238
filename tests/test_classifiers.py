"""Tests for solver.classifiers: kNN, LinearSVM / Softmax of assignment 1 and the package (the SVM and
softmax losses: tests/test_classifiers_losses.py)."""

from __future__ import annotations

import collections
import inspect
import types

import numpy as np
import pytest

from classifiers_support import ALL_LOSSES, EXACT_TOL, assert_close, digits_with_bias, problem
from grading.release import strip_python
from solver import classifiers
from solver.classifiers import KNearestNeighbor, LinearClassifier, LinearSVM, Softmax
from solver.classifiers import k_nearest_neighbor, linear_classifier, linear_svm, softmax

pytestmark = pytest.mark.classifiers

MODULES = [k_nearest_neighbor, linear_classifier, linear_svm, softmax]

# The loop-free kNN distance of a point to itself: the expanded square cancels to ~eps ||x||^2,
# so its square root is ~sqrt(eps) ||x|| (float32: 3.5e-4 ||x||); a few times that bounds it.
COINCIDENT_TOL = 4 * float(np.sqrt(np.finfo(np.float32).eps))
# Accuracies on the shipped digits (1,257 training, 180 validation samples); measured 0.978
# (kNN, k = 1), 0.944 (LinearSVM) and 0.922 (Softmax) with the settings below.
KNN_MIN_ACCURACY = 0.95
LINEAR_MIN_ACCURACY = 0.90
LINEAR_SETTINGS = {"learning_rate": 0.3, "reg": 1e-4, "num_iters": 500, "batch_size": 200}


@pytest.fixture
def global_state():
    """Save numpy's global random state and put it back afterwards, whatever the test did."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


@pytest.fixture(scope="module")
def digits():
    return digits_with_bias()


# ---------------------------------------------------------------- k-nearest neighbors

def _knn(num_train=30, D=7, C=4, seed=11, dtype=np.float64):
    rng = np.random.default_rng(seed)
    knn = KNearestNeighbor()
    knn.train(rng.standard_normal((num_train, D)).astype(dtype), rng.integers(0, C, num_train))
    return knn, rng.standard_normal((12, D)).astype(dtype)


DISTANCES = ["compute_distances_two_loops", "compute_distances_one_loop", "compute_distances_no_loops"]


@pytest.mark.parametrize("method", DISTANCES)
def test_distances_equal_brute_force_reference(method):
    """Each distance function gives ||X[i] - X_train[j]|| (broadcast and summed in the test) to 1e-10."""
    knn, X = _knn()
    expected = np.sqrt(((X[:, None, :] - knn.X_train[None, :, :]) ** 2).sum(axis=2))
    assert_close(getattr(knn, method)(X), expected, EXACT_TOL, method)


def test_three_distance_functions_agree():
    """Two loops, one loop and no loops give the same matrix to 1e-10."""
    knn, X = _knn(seed=12)
    two, one, none = (getattr(knn, m)(X) for m in DISTANCES)
    assert_close(one, two, EXACT_TOL, "one loop vs two")
    assert_close(none, two, EXACT_TOL, "no loops vs two")


@pytest.mark.parametrize("method", DISTANCES)
def test_distances_keep_float32_and_never_go_negative(method):
    """float32 data give float32 distances; a point's distance to itself is 0, never NaN."""
    knn, _ = _knn(dtype=np.float32)
    dists = getattr(knn, method)(knn.X_train[:5])
    assert dists.dtype == np.float32 and dists.shape == (5, 30)
    assert np.all(np.isfinite(dists)) and np.all(dists >= 0)
    norms = np.linalg.norm(knn.X_train[:5].astype(np.float64), axis=1)
    assert np.all(np.diag(dists[:, :5]) <= COINCIDENT_TOL * norms), np.diag(dists[:, :5])


def _vote_reference(dists, y_train, k):
    """Majority of the k nearest (stable order), smallest label among the tied counts."""
    predictions = []
    for row in dists:
        counts = collections.Counter(y_train[np.argsort(row, kind="stable")[:k]].tolist())
        top = max(counts.values())
        predictions.append(min(label for label, n in counts.items() if n == top))
    return np.array(predictions)


def test_predict_labels_breaks_ties_toward_the_smaller_label():
    """Two votes for 3 and two for 1 give 1; one vote each for 2 and 0 gives 0; sparse labels work."""
    knn = KNearestNeighbor()
    knn.train(np.zeros((5, 1)), np.array([3, 1, 3, 1, 2]))
    dists = np.array([[0.1, 0.2, 0.3, 0.4, 9.0]])
    assert knn.predict_labels(dists, k=4).tolist() == [1]
    assert knn.predict_labels(dists, k=1).tolist() == [3]
    knn.train(np.zeros((3, 1)), np.array([2, 0, 0]))
    assert knn.predict_labels(np.array([[0.1, 0.2, 5.0]]), k=2).tolist() == [0]
    assert knn.predict_labels(np.array([[0.1, 0.2, 5.0]]), k=3).tolist() == [0]
    knn.train(np.zeros((4, 1)), np.array([70, 7, 7, 70]))
    assert knn.predict_labels(np.array([[0.1, 0.2, 0.3, 0.4]]), k=4).tolist() == [7]


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 30])
def test_predict_labels_matches_vote_reference(k):
    """On distances with many ties, predict_labels equals a Counter-based majority vote."""
    rng = np.random.default_rng(13)
    knn = KNearestNeighbor()
    knn.train(np.zeros((30, 2)), rng.integers(0, 4, 30))
    dists = rng.integers(0, 5, (40, 30)).astype(np.float64)  # few distinct values: ties everywhere
    y_pred = knn.predict_labels(dists, k=k)
    np.testing.assert_array_equal(y_pred, _vote_reference(dists, knn.y_train, k))
    assert y_pred.dtype == knn.y_train.dtype


def test_predict_with_any_number_of_loops_gives_the_same_labels():
    """num_loops 0, 1 and 2 predict identically, and k = 1 on the training data returns its labels."""
    knn, X = _knn(seed=14)
    predictions = [knn.predict(X, k=3, num_loops=n) for n in (0, 1, 2)]
    np.testing.assert_array_equal(predictions[0], predictions[1])
    np.testing.assert_array_equal(predictions[0], predictions[2])
    np.testing.assert_array_equal(knn.predict(knn.X_train, k=1, num_loops=2), knn.y_train)


def test_knn_reaches_stated_accuracy_on_digits(digits):
    """1-NN on the shipped digits classifies the validation split with accuracy >= 0.95."""
    knn = KNearestNeighbor()
    knn.train(digits["X_train"], digits["y_train"])
    accuracy = np.mean(knn.predict(digits["X_val"], k=1) == digits["y_val"])
    assert accuracy >= KNN_MIN_ACCURACY, f"1-NN validation accuracy {accuracy:.3f}"


def test_knn_refuses_bad_arguments_by_name():
    """Untrained use, bad k, num_loops, dtype, feature count or dists shape raise with the method's name."""
    with pytest.raises(RuntimeError, match="KNearestNeighbor.predict: .*call train"):
        KNearestNeighbor().predict(np.zeros((2, 3)))
    knn, X = _knn()
    cases = [
        (lambda: knn.predict(X, k=0), ValueError, r"KNearestNeighbor.predict: k must be an int in \[1, 30\], got 0"),
        (lambda: knn.predict(X, k=31), ValueError, r"KNearestNeighbor.predict: k must be an int in \[1, 30\]"),
        (lambda: knn.predict(X, k=2.0), TypeError, "KNearestNeighbor.predict: k must be an int"),
        (lambda: knn.predict(X, num_loops=3), ValueError, "KNearestNeighbor.predict: num_loops must be 0, 1 or 2"),
        (lambda: knn.compute_distances_one_loop(X.astype(np.float32)), TypeError,
         "compute_distances_one_loop: X has dtype float32 but the other inputs are float64"),
        (lambda: knn.compute_distances_no_loops(X[:, :3]), ValueError,
         r"compute_distances_no_loops: X has 3 features per sample .* \(N, 7\)"),
        (lambda: knn.predict_labels(np.zeros((4, 29))), ValueError,
         "KNearestNeighbor.predict_labels: dists has 29 features"),
        (lambda: knn.train(X, np.arange(11)), ValueError, r"KNearestNeighbor.train: y must have shape \(12,\)"),
        (lambda: knn.train(X, -np.ones(12, dtype=int)), ValueError, "KNearestNeighbor.train: y must hold labels >= 0"),
        (lambda: knn.train(X.astype(np.int64), np.zeros(12, dtype=int)), TypeError,
         "KNearestNeighbor.train: X must have a floating-point dtype"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()


# ---------------------------------------------------------------- LinearSVM and Softmax

@pytest.mark.parametrize("cls", [LinearSVM, Softmax])
def test_training_lowers_loss_and_reaches_stated_accuracy(cls, digits):
    """500 SGD steps on the digits (bias column added) cut the loss by more than half; val accuracy >= 0.90."""
    model = cls(seed=0)
    history = model.train(digits["X_train_bias"], digits["y_train"], **LINEAR_SETTINGS)
    assert len(history) == LINEAR_SETTINGS["num_iters"] and all(isinstance(v, float) for v in history)
    assert np.mean(history[-20:]) < 0.5 * history[0], f"loss {history[0]:.3f} -> {np.mean(history[-20:]):.3f}"
    accuracy = np.mean(model.predict(digits["X_val_bias"]) == digits["y_val"])
    assert accuracy >= LINEAR_MIN_ACCURACY, f"{cls.__name__} validation accuracy {accuracy:.3f}"


def test_training_from_the_same_global_seed_gives_the_same_w(digits, global_state):
    """The course's convention: np.random.seed(s) before train makes W repeat exactly, and W starts at 0.001 * randn."""
    X, y = digits["X_train_bias"][:300], digits["y_train"][:300]
    weights = []
    for _ in range(2):
        np.random.seed(17)
        model = LinearSVM()
        model.train(X, y, num_iters=20)
        weights.append(model.W)
    np.testing.assert_array_equal(weights[0], weights[1])
    np.random.seed(17)
    untrained = Softmax()
    untrained.train(X, y, num_iters=0)
    np.random.seed(17)
    np.testing.assert_array_equal(untrained.W, 0.001 * np.random.randn(65, 10))


def test_seeded_classifier_repeats_and_leaves_the_global_generator_alone(digits, global_state):
    """Two Softmax(seed=3) train to the same W, and numpy's global state is unchanged by either."""
    X, y = digits["X_train_bias"][:300], digits["y_train"][:300]
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    weights = []
    for _ in range(2):
        model = Softmax(seed=3)
        model.train(X, y, num_iters=20)
        weights.append(model.W)
    np.testing.assert_array_equal(weights[0], weights[1])
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    other = Softmax(seed=4)
    other.train(X, y, num_iters=20)
    assert not np.array_equal(other.W, weights[0])


def test_minibatches_are_drawn_with_replacement():
    """A batch larger than the training set is allowed, as with np.random.choice(N, B, replace=True)."""
    W, X, y = problem(5, 3, 2, seed=18)
    history = LinearSVM(seed=0).train(X, y, learning_rate=0.1, num_iters=3, batch_size=50)
    assert len(history) == 3


@pytest.mark.parametrize("cls", [LinearSVM, Softmax])
def test_linear_classifier_keeps_float32(cls):
    """float32 training data give float32 W and losses; predict returns int64 labels in [0, C)."""
    _, X, y = problem(40, 6, 3, seed=19, dtype=np.float32)
    model = cls(seed=0)
    model.train(X, y, learning_rate=0.1, num_iters=10, batch_size=20)
    assert model.W.dtype == np.float32 and model.W.shape == (6, 3)
    y_pred = model.predict(X)
    assert y_pred.dtype == np.int64 and y_pred.shape == (40,) and set(y_pred.tolist()) <= {0, 1, 2}


def test_second_train_continues_from_current_w(digits):
    """Calling train again keeps W (no re-initialization) and keeps lowering the loss."""
    model = LinearSVM(seed=0)
    first = model.train(digits["X_train_bias"], digits["y_train"], learning_rate=0.1, num_iters=50)
    W_after_first = model.W.copy()
    second = model.train(digits["X_train_bias"], digits["y_train"], learning_rate=0.1, num_iters=50)
    assert np.mean(second[:10]) < np.mean(first[:10])
    assert not np.array_equal(model.W, W_after_first)


def test_verbose_training_prints_every_100_iterations(capsys):
    """verbose=True prints the iteration and loss at 0, 100, ...; verbose=False prints nothing."""
    _, X, y = problem(20, 3, 2, seed=20)
    Softmax(seed=0).train(X, y, num_iters=201, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["iteration 0 / 201", "iteration 100 / 201", "iteration 200 / 201"]
    Softmax(seed=0).train(X, y, num_iters=5)
    assert capsys.readouterr().out == ""


def test_linear_classifier_refuses_bad_arguments_by_name():
    """Bad settings, data or an untrained predict raise, naming the class, the method and the argument."""
    _, X, y = problem(10, 3, 2, seed=21)
    trained = LinearSVM(seed=0)
    trained.train(X, y, num_iters=1)
    cases = [
        (lambda: LinearSVM().predict(X), RuntimeError, "LinearSVM.predict: W is not set yet"),
        (lambda: LinearSVM(seed=-1), ValueError, r"LinearSVM: seed must be an int >= 0, got -1"),
        (lambda: Softmax(seed=1.5), TypeError, "Softmax: seed must be an int"),
        (lambda: LinearSVM().train(X, y, learning_rate=0), ValueError, "LinearSVM.train: learning_rate must be > 0"),
        (lambda: LinearSVM().train(X, y, reg=-1.0), ValueError, "LinearSVM.train: reg must be a finite number"),
        (lambda: LinearSVM().train(X, y, num_iters=-1), ValueError, "LinearSVM.train: num_iters must be an int >= 0"),
        (lambda: LinearSVM().train(X, y, batch_size=0), ValueError, "LinearSVM.train: batch_size must be an int >= 1"),
        (lambda: LinearSVM().train(X, y, verbose="yes"), TypeError, "LinearSVM.train: verbose must be True or False"),
        (lambda: Softmax().train(X, y.astype(float)), TypeError, "Softmax.train: y must hold integer class labels"),
        (lambda: trained.train(X[:, :2], y), ValueError, r"LinearSVM.train: X has 2 features .* \(N, 3\)"),
        (lambda: trained.train(X, y + 5), ValueError, r"LinearSVM.train: y must hold labels in \[0, 2\)"),
        (lambda: trained.predict(X.astype(np.float32)), TypeError, "LinearSVM.predict: X has dtype float32"),
        (lambda: LinearClassifier().train(X, y, num_iters=1), NotImplementedError,
         "LinearClassifier.loss: .*use LinearSVM or Softmax"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()


# ---------------------------------------------------------------- the package itself

def test_course_names_and_signatures():
    """The package exports the course's names, and train / predict / losses have the course's signatures."""
    assert set(classifiers.__all__) == {
        "KNearestNeighbor", "LinearClassifier", "LinearSVM", "Softmax", "svm_loss_naive", "svm_loss_vectorized",
        "softmax_loss_naive", "softmax_loss_vectorized"}
    assert str(inspect.signature(LinearClassifier.train)) == (
        "(self, X, y, learning_rate=0.001, reg=1e-05, num_iters=100, batch_size=200, verbose=False)")
    assert str(inspect.signature(KNearestNeighbor.predict)) == "(self, X, k=1, num_loops=0)"
    assert str(inspect.signature(KNearestNeighbor.predict_labels)) == "(self, dists, k=1)"
    for fn in ALL_LOSSES:
        assert str(inspect.signature(fn)) == "(W, X, y, reg)"
    assert issubclass(LinearSVM, LinearClassifier) and issubclass(Softmax, LinearClassifier)
    assert "W=None" in repr(LinearSVM()) and "untrained" in repr(KNearestNeighbor())


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_public_functions_document_args_returns_and_shapes(module):
    """The module declares its shape letters; every public function and method has Args, Returns and Shape."""
    assert "Shape letters:" in module.__doc__
    public = []
    for name in module.__all__:
        obj = getattr(module, name)
        public += [obj] if inspect.isfunction(obj) else [
            member for attr, member in vars(obj).items() if inspect.isfunction(member) and not attr.startswith("_")]
    missing = [f"{fn.__qualname__} lacks {block}" for fn in public for block in ("Args:", "Returns:", "Shape:")
               if block not in (inspect.getdoc(fn) or "")]
    assert public and not missing, "\n".join(missing)


def _student_module(module):
    """The module as the student release ships it: solution regions replaced by stubs."""
    with open(module.__file__, encoding="utf-8") as handle:
        text, regions, names = strip_python(handle.read(), module.__name__, allowed=("SOLUTION",))
    student = types.ModuleType(f"student_{module.__name__}")
    exec(compile(text, module.__file__, "exec"), student.__dict__)
    return student, regions


def test_student_version_stubs_the_work_but_still_validates():
    """With the solutions cut out, bad arguments still raise ValueError; good ones reach NotImplementedError."""
    W, X, y = problem(4, 3, 2, seed=22)
    for module, fn_name in ((linear_svm, "svm_loss_naive"), (linear_svm, "svm_loss_vectorized"),
                            (softmax, "softmax_loss_naive"), (softmax, "softmax_loss_vectorized")):
        student, regions = _student_module(module)
        assert len(regions) == 2
        with pytest.raises(ValueError, match=f"{fn_name}: reg"):
            getattr(student, fn_name)(W, X, y, -1.0)
        with pytest.raises(NotImplementedError):
            getattr(student, fn_name)(W, X, y, 0.1)
    student, regions = _student_module(k_nearest_neighbor)
    assert len(regions) == 4
    knn = student.KNearestNeighbor()
    knn.train(X, y)
    with pytest.raises(ValueError, match="num_loops"):
        knn.predict(X, num_loops=5)
    for method in DISTANCES:
        with pytest.raises(NotImplementedError):
            getattr(knn, method)(X)
    student, regions = _student_module(linear_classifier)
    assert len(regions) == 3
    with pytest.raises(ValueError, match="batch_size"):
        student.LinearSVM(seed=0).train(X, y, batch_size=0)
    with pytest.raises(NotImplementedError):
        student.LinearSVM(seed=0).train(X, y, num_iters=1)
