"""Graded: assignment 1's kNN classifier, the linear SVM and softmax losses, and SGD training."""

from __future__ import annotations

import math

import numpy as np
import pytest
from grading_checks import as_float64, assert_matches

from gradcheck import eval_numerical_gradient, rel_error

# A correct loss's gradient agrees with centered differences (h = 1e-5, float64) to about 1e-9.
GRAD_REL_TOL = 1e-7
LOSSES = ["linear_svm.svm_loss", "softmax.softmax_loss"]
REFERENCE_CASES = {"linear_svm.svm_loss": "linear_svm", "softmax.softmax_loss": "linear_softmax"}


def _loss_problem(seed=0, N=6, D=5, C=4):
    rng = np.random.default_rng(seed)
    return 0.1 * rng.standard_normal((D, C)), rng.standard_normal((N, D)), rng.integers(0, C, N)


def _knn(student, X_train, y_train):
    model = student.call("solver.classifiers.KNearestNeighbor")
    student.call([model, "train"], X_train, y_train)
    return model


@pytest.mark.points(2)
@pytest.mark.parametrize("method", ["compute_distances_two_loops", "compute_distances_one_loop",
                                    "compute_distances_no_loops"])
def test_knn_distances_worked_example(student, method):
    """Euclidean distances of two test points to three training points, worked by hand (3-4-5 triangles)."""
    model = _knn(student, np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]]), np.array([0, 1, 2]))
    dists = student.call([model, method], np.array([[0.0, 0.0], [6.0, 8.0]]))
    assert_matches(f"KNearestNeighbor.{method}", dists, [[0.0, 5.0, 1.0], [10.0, 5.0, math.sqrt(36 + 49)]])


@pytest.mark.points(1)
def test_knn_predict_labels_votes_and_breaks_ties_toward_the_smaller_label(student):
    """k = 1 takes the nearest label; a tied vote among the k nearest goes to the smaller label."""
    model = _knn(student, np.zeros((4, 1)), np.array([3, 1, 1, 3]))
    dists = np.array([[0.1, 0.2, 0.3, 0.4], [0.4, 0.1, 0.2, 0.3], [0.1, 0.4, 0.3, 0.2]])
    assert_matches("predict_labels k=1", student.call([model, "predict_labels"], dists, k=1), [3, 1, 3])
    # k = 2: row 0 sees labels {3, 1}, a tie that goes to 1; row 1 sees {1, 1}; row 2 sees {3, 3}.
    assert_matches("predict_labels k=2", student.call([model, "predict_labels"], dists, k=2), [1, 1, 3])


@pytest.mark.points(2)
@pytest.mark.parametrize("loss", LOSSES)
def test_naive_loss_gradient_matches_numeric_gradient(student, loss):
    """dW of the naive loss agrees with centered differences of the loss, regularization included."""
    W, X, y = _loss_problem()
    target = f"solver.classifiers.{loss}_naive"
    _, dW = student.call(target, W, X, y, 0.1)
    numeric = eval_numerical_gradient(lambda w: float(student.call(target, w, X, y, 0.1)[0]), W.copy(),
                                      verbose=False)
    dW = as_float64(f"{loss}_naive dW", dW)
    assert dW.shape == W.shape, f"{loss}_naive dW: shape {dW.shape}, expected {W.shape}"
    error = rel_error(dW, numeric)
    assert error < GRAD_REL_TOL, f"{loss}_naive dW: relative error {error:.3g} against centered differences"


@pytest.mark.points(1)
@pytest.mark.parametrize("loss", LOSSES)
def test_vectorized_loss_equals_naive(student, loss):
    """The vectorized loss and gradient equal the naive ones on a 50-sample problem."""
    W, X, y = _loss_problem(seed=1, N=50, D=7, C=5)
    naive = student.call(f"solver.classifiers.{loss}_naive", W, X, y, 0.05)
    fast = student.call(f"solver.classifiers.{loss}_vectorized", W, X, y, 0.05)
    assert_matches(f"{loss}_vectorized loss", fast[0], as_float64(f"{loss}_naive loss", naive[0]))
    assert_matches(f"{loss}_vectorized dW", fast[1], as_float64(f"{loss}_naive dW", naive[1]))


@pytest.mark.points(1)
def test_softmax_loss_with_zero_weights_is_log_c(student):
    """With W = 0 every class has probability 1/C: the loss is log C and reg adds nothing."""
    _, X, y = _loss_problem(N=8, C=10)
    for kind in ("naive", "vectorized"):
        loss, _ = student.call(f"solver.classifiers.softmax.softmax_loss_{kind}", np.zeros((5, 10)), X, y, 1.0)
        assert_matches(f"softmax_loss_{kind} loss", loss, math.log(10))


@pytest.mark.points(2)
@pytest.mark.parametrize("kind", ["LinearSVM", "Softmax"])
def test_linear_classifier_learns_separated_blobs(student, kind):
    """SGD on three well separated blobs (bias column included) classifies held-out points correctly."""
    rng = np.random.default_rng(7)
    centers = np.array([[4.0, 0.0], [-4.0, 4.0], [0.0, -4.0]])
    labels = rng.integers(0, 3, 400)
    points = centers[labels] + rng.standard_normal((400, 2))
    X = np.hstack([points, np.ones((400, 1))])
    student.call("numpy.random.seed", 0)  # the course's classifiers draw from numpy's global generator
    model = student.call(f"solver.classifiers.{kind}")
    history = student.call([model, "train"], X[:300], labels[:300], learning_rate=1e-2, reg=1e-4,
                           num_iters=300, batch_size=100)
    history = as_float64(f"{kind}.train loss history", history)
    assert history.shape == (300,), f"{kind}.train: expected a loss history of 300 values, got shape {history.shape}"
    assert history[-20:].mean() < history[:20].mean(), f"{kind}.train: the loss did not go down"
    accuracy = float(np.mean(as_float64(f"{kind}.predict", student.call([model, "predict"], X[300:])) == labels[300:]))
    assert accuracy >= 0.95, f"{kind}: held-out accuracy {accuracy:.2f}, expected at least 0.95"


# BEGIN HIDDEN TESTS
@pytest.mark.points(2)
def test_knn_matches_reference(student, reference):
    """Distances (all three ways) and predictions with k = 1 and k = 5 match the reference on digits-like data."""
    ref = reference("knn")
    model = _knn(student, ref["X_train"], ref["y_train"])
    for method in ("compute_distances_two_loops", "compute_distances_one_loop", "compute_distances_no_loops"):
        assert_matches(f"KNearestNeighbor.{method}", student.call([model, method], ref["X_test"]), ref["dists"],
                       rtol=1e-7, atol=1e-7)
    for k in (1, 5):
        assert_matches(f"KNearestNeighbor.predict k={k}", student.call([model, "predict"], ref["X_test"], k=k),
                       ref[f"pred_k{k}"])


@pytest.mark.points(2)
@pytest.mark.parametrize("loss", LOSSES)
def test_linear_losses_match_reference(student, reference, loss):
    """Naive and vectorized loss and dW match the reference, regularization included."""
    ref = reference(REFERENCE_CASES[loss])
    for kind in ("naive", "vectorized"):
        value, dW = student.call(f"solver.classifiers.{loss}_{kind}", ref["W"], ref["X"], ref["y"], float(ref["reg"]))
        assert_matches(f"{loss}_{kind} loss", value, ref["loss"])
        assert_matches(f"{loss}_{kind} dW", dW, ref["dW"])
# END HIDDEN TESTS
