"""Tests for the losses of solver.classifiers (assignment 1): svm_loss_naive / _vectorized and
softmax_loss_naive / _vectorized (kNN, LinearSVM, Softmax and the package: tests/test_classifiers.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from classifiers_support import ALL_LOSSES, EXACT_TOL, LOSSES, assert_close, digits_with_bias, problem
from gradcheck import KINK_MARGIN, eval_numerical_gradient, grad_check_sparse
from solver.classifiers import softmax_loss_vectorized, svm_loss_vectorized

pytestmark = pytest.mark.classifiers

# float32 versions of one computation: a few hundred ulps of values of size ~10.
FLOAT32_TOL = 1e-4
# Centered-difference step for the loss checks, and the relative error a correct gradient stays under.
LOSS_H = 1e-5
GRAD_TOL = 1e-7
# At course size some dW elements are ~1e-4 (pixels that rarely vary), and the difference's
# rounding error eps |L| / h is then ~2e-7 of them with h = 1e-5; h = 1e-4 cuts it tenfold.
# With W ~ 0.01 every SVM margin is near 1, far from the hinge for this step.
SPARSE_H = 1e-4
# Tiny weights give near-uniform scores: softmax loss ~ log(C), SVM loss ~ C - 1.
UNIFORM_TOL = 1e-2


def _svm_reference(W, X, y, reg):
    """The hinge loss written straight from its definition, one sample at a time."""
    total = 0.0
    for x_i, y_i in zip(X, y):
        s = x_i @ W
        total += sum(max(0.0, s[j] - s[y_i] + 1.0) for j in range(W.shape[1]) if j != y_i)
    return total / len(X) + reg * np.sum(W * W)


def _softmax_reference(W, X, y, reg):
    """Cross-entropy written from its definition, without the max shift (fine for small scores)."""
    s = X @ W
    p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)
    return -np.mean(np.log(p[np.arange(len(y)), y])) + reg * np.sum(W * W)


REFERENCES = {"svm": _svm_reference, "softmax": _softmax_reference}


@pytest.fixture(scope="module")
def digits():
    return digits_with_bias()


@pytest.mark.parametrize("kind", LOSSES)
@pytest.mark.parametrize("N, D, C, reg", [(1, 3, 2, 0.0), (8, 5, 4, 0.1), (50, 65, 10, 1e-3)])
def test_naive_loss_equals_vectorized_loss(kind, N, D, C, reg):
    """The looped and the loop-free version give the same loss and dW to 1e-10."""
    W, X, y = problem(N, D, C, seed=N)
    naive, vectorized = LOSSES[kind]
    loss_n, dW_n = naive(W, X, y, reg)
    loss_v, dW_v = vectorized(W, X, y, reg)
    assert_close(loss_v, loss_n, EXACT_TOL, f"{kind} loss")
    assert_close(dW_v, dW_n, EXACT_TOL, f"{kind} dW")


@pytest.mark.parametrize("kind", LOSSES)
@pytest.mark.parametrize("which", [0, 1], ids=["naive", "vectorized"])
def test_loss_equals_reference_written_from_the_definition(kind, which):
    """Both versions give the loss computed directly from its formula, reg * sum(W * W) included."""
    W, X, y = problem(20, 6, 5, seed=3)
    loss, _ = LOSSES[kind][which](W, X, y, 0.25)
    assert_close(loss, REFERENCES[kind](W, X, y, 0.25), EXACT_TOL, f"{kind} loss")


@pytest.mark.parametrize("loss_fn", ALL_LOSSES, ids=lambda f: f.__name__)
def test_regularization_adds_reg_sum_w_squared_and_2_reg_w(loss_fn):
    """The course's assignment-1 convention: the loss gains reg * sum(W * W), dW gains 2 * reg * W."""
    W, X, y = problem(10, 4, 3, seed=4)
    reg = 0.7
    loss_0, dW_0 = loss_fn(W, X, y, 0.0)
    loss_r, dW_r = loss_fn(W, X, y, reg)
    assert_close(loss_r - loss_0, reg * np.sum(W * W), EXACT_TOL, "loss difference")
    assert_close(dW_r - dW_0, 2 * reg * W, EXACT_TOL, "dW difference")


def _clear_of_hinge(W, X, y, h):
    """How many steps h the nearest SVM margin is from its kink, for any one perturbation of W."""
    s = X @ W
    gaps = np.abs(s - s[np.arange(len(y)), y][:, None] + 1)
    gaps[np.arange(len(y)), y] = np.inf
    return gaps.min() / (h * np.abs(X).max())


@pytest.mark.parametrize("loss_fn", ALL_LOSSES, ids=lambda f: f.__name__)
def test_loss_gradient_matches_numeric_gradient(loss_fn):
    """Every element of dW matches the centered difference of the loss (eval_numerical_gradient)."""
    W, X, y = problem(8, 5, 4, seed=5)
    if loss_fn in LOSSES["svm"]:
        assert _clear_of_hinge(W, X, y, LOSS_H) > KINK_MARGIN, "the test data sit on a hinge kink"
    _, dW = loss_fn(W, X, y, 0.1)
    numeric = eval_numerical_gradient(lambda w: loss_fn(w, X, y, 0.1)[0], W.copy(), verbose=False, h=LOSS_H)
    errors = np.abs(numeric - dW) / np.maximum(np.abs(numeric) + np.abs(dW), 1e-8)
    worst = np.unravel_index(np.argmax(errors), errors.shape)
    assert errors[worst] < GRAD_TOL, f"dW{worst}: analytic {dW[worst]}, numeric {numeric[worst]}"


@pytest.mark.parametrize("loss_fn", [svm_loss_vectorized, softmax_loss_vectorized], ids=lambda f: f.__name__)
def test_loss_gradient_passes_sparse_check_at_course_size(loss_fn, digits):
    """On 100 digits with the bias column and C = 10, grad_check_sparse finds dW right at 30 elements."""
    rng = np.random.default_rng(6)
    X, y = digits["X_train_bias"][:100], digits["y_train"][:100]
    W = 0.01 * rng.standard_normal((X.shape[1], 10))
    _, dW = loss_fn(W, X, y, 1e-2)
    errors = grad_check_sparse(lambda w: loss_fn(w, X, y, 1e-2)[0], W.copy(), dW, num_checks=30,
                               h=SPARSE_H, seed=6, verbose=False)
    assert errors.max() < GRAD_TOL, f"largest relative error {errors.max():.2e}"


def test_svm_loss_of_the_lecture_example():
    """Scores (3.2, 5.1, -1.7) for a cat: max(0, 5.1 - 3.2 + 1) + max(0, -1.7 - 3.2 + 1) = 2.9."""
    W = np.array([[3.2, 5.1, -1.7], [0.0, 0.0, 0.0]])
    X, y = np.array([[1.0, 0.0]]), np.array([0])
    for loss_fn in LOSSES["svm"]:
        loss, dW = loss_fn(W, X, y, 0.0)
        assert loss == pytest.approx(2.9, abs=EXACT_TOL)
        assert_close(dW, [[-1.0, 1.0, 0.0], [0.0, 0.0, 0.0]], EXACT_TOL, loss_fn.__name__)


@pytest.mark.parametrize("kind, expected", [("svm", 9.0), ("softmax", math.log(10))])
def test_loss_with_tiny_weights_is_the_uniform_value(kind, expected, digits):
    """With W ~ 1e-4 the scores are near zero: SVM loss ~ C - 1 = 9 and softmax loss ~ log(10)."""
    rng = np.random.default_rng(7)
    W = 1e-4 * rng.standard_normal((65, 10))
    for loss_fn in LOSSES[kind]:
        loss, _ = loss_fn(W, digits["X_train_bias"][:200], digits["y_train"][:200], 0.0)
        assert loss == pytest.approx(expected, abs=UNIFORM_TOL), loss_fn.__name__


@pytest.mark.parametrize("loss_fn", LOSSES["softmax"], ids=lambda f: f.__name__)
def test_softmax_loss_is_stable_for_huge_scores(loss_fn):
    """Scores of ~1e4 give a finite loss and gradient, no overflow warning (the max shift)."""
    W, X, y = problem(6, 4, 3, seed=8)
    loss, dW = loss_fn(1e4 * W, X, y, 0.0)
    assert np.isfinite(loss) and np.all(np.isfinite(dW))
    s = X @ (1e4 * W)
    top = s.max(axis=1)
    expected = np.mean(top + np.log(np.exp(s - top[:, None]).sum(axis=1)) - s[np.arange(6), y])
    assert_close(loss, expected, EXACT_TOL, "loss")


@pytest.mark.parametrize("loss_fn", ALL_LOSSES, ids=lambda f: f.__name__)
def test_loss_keeps_float32(loss_fn):
    """float32 W and X give a float32 loss and dW, close to the float64 result."""
    W, X, y = problem(12, 6, 4, seed=9)
    loss, dW = loss_fn(W.astype(np.float32), X.astype(np.float32), y, 0.1)
    assert type(loss) is np.float32 and dW.dtype == np.float32 and dW.shape == W.shape
    loss_64, dW_64 = loss_fn(W, X, y, 0.1)
    assert type(loss_64) is np.float64
    assert_close(loss, loss_64, FLOAT32_TOL, "loss")
    assert_close(dW, dW_64, FLOAT32_TOL, "dW")


@pytest.mark.parametrize("loss_fn", ALL_LOSSES, ids=lambda f: f.__name__)
def test_loss_leaves_its_inputs_alone(loss_fn):
    """W, X and y are not modified."""
    W, X, y = problem(6, 4, 3, seed=10)
    copies = W.copy(), X.copy(), y.copy()
    loss_fn(W, X, y, 0.5)
    for original, kept in zip((W, X, y), copies):
        np.testing.assert_array_equal(original, kept)


def _bad_loss_calls():
    W, X, y = problem(4, 3, 2, seed=0)
    return [
        ((W.tolist(), X, y, 0.1), TypeError, "W must be a numpy array"),
        ((W, X.astype(np.float32), y, 0.1), TypeError, "X has dtype float32 but the other inputs are float64"),
        ((W, X[:, :2], y, 0.1), ValueError, r"X has 2 features per sample .* must be \(N, 3\)"),
        ((W, X.reshape(4, 3, 1), y, 0.1), ValueError, r"X must be 2-D.*reshape"),
        ((W, X, y[:3], 0.1), ValueError, r"y must have shape \(4,\)"),
        ((W, X, y.astype(float), 0.1), TypeError, "y must hold integer class labels"),
        ((W, X, np.array([0, 1, 2, 0]), 0.1), ValueError,
         r"y must hold labels in \[0, 2\) for 2 classes, got 1 outside \(first: 2\)"),
        ((W, X, y, -1.0), ValueError, r"reg must be a finite number in \[0"),
        ((W, X[:0], y[:0], 0.1), ValueError, "X must hold at least one sample"),
    ]


@pytest.mark.parametrize("loss_fn", ALL_LOSSES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("args, error, message", _bad_loss_calls())
def test_loss_refuses_bad_arguments_by_name(loss_fn, args, error, message):
    """Wrong types, shapes, dtypes, labels or reg raise, naming the function and the argument."""
    with pytest.raises(error, match=f"{loss_fn.__name__}: {message}"):
        loss_fn(*args)
