"""Tests for layers.losses: softmax_loss and svm_loss."""

import copy
import math
import warnings

import numpy as np
import pytest

from gradcheck import check_loss, eval_numerical_gradient, rel_error
from harness import GRAD_RTOL
from layers import softmax_loss, svm_loss

pytestmark = pytest.mark.losses

LOSSES = [softmax_loss, svm_loss]
# Step for loss checks. An averaged loss has gradients of size ~1/(N C) while the rounding
# error of the difference is ~eps |L| / h; at N=50, C=10 that noise alone is ~2e-7 relative
# with h = 1e-5. h = 1e-4 cuts it tenfold, and the O(h^2) truncation error stays below 1e-9.
LOSS_H = 1e-4
# Tiny scores give a uniform softmax, whose loss is log(C) up to O(score) corrections.
UNIFORM_LOSS_TOL = 1e-3


def _scores(N, C, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, C)).astype(dtype), rng.integers(0, C, N)


@pytest.mark.parametrize("loss_fn", LOSSES)
@pytest.mark.parametrize("N, C", [(1, 2), (5, 3), (50, 10)])
def test_loss_gradient_matches_numeric_gradient(loss_fn, N, C):
    """dx matches the centered difference of the loss (the course helper, and check_loss element by element)."""
    x, y = _scores(N, C)
    loss, dx = loss_fn(x, y)
    numeric = eval_numerical_gradient(lambda v: loss_fn(v, y)[0], x.copy(), verbose=False, h=LOSS_H)
    assert dx.shape == x.shape
    assert rel_error(dx, numeric) < GRAD_RTOL
    report = check_loss(loss_fn, {"x": x}, params={"y": y}, mode="full").assert_ok()
    assert not report["x"].kinks and report["x"].checked == N * C


def test_softmax_loss_of_tiny_scores_is_log_c():
    """Scores near zero give loss near log(C): the classic sanity check."""
    x, y = _scores(100, 10)
    loss, _ = softmax_loss(1e-3 * x, y)
    assert loss == pytest.approx(math.log(10), abs=UNIFORM_LOSS_TOL)


def test_svm_loss_of_tiny_scores_is_c_minus_one():
    """With delta = 1 and scores near zero each of the C - 1 wrong classes adds about 1."""
    x, y = _scores(100, 10)
    loss, _ = svm_loss(1e-3 * x, y)
    assert loss == pytest.approx(9.0, abs=UNIFORM_LOSS_TOL * 10)


def test_svm_loss_hand_example():
    """Scores [3.2, 5.1, -1.7] with label 0: max(0, 5.1-3.2+1) + max(0, -1.7-3.2+1) = 2.9."""
    loss, dx = svm_loss(np.array([[3.2, 5.1, -1.7]]), np.array([0]))
    assert loss == pytest.approx(2.9, abs=1e-12)
    np.testing.assert_array_equal(dx, [[-1.0, 1.0, 0.0]])


@pytest.mark.parametrize("loss_fn", LOSSES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_is_stable_for_huge_scores(loss_fn, dtype):
    """Scores of magnitude 1e4 give a finite loss and gradient with no overflow warning."""
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]], dtype=dtype)
    y = np.array([1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dx = loss_fn(x, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dx))
    if loss_fn is softmax_loss:
        # Row 0's label trails the max by 2e4; row 1's label is the max by 5e3 (loss ~ e^-5000).
        expected_loss = (2e4 + 0.0) / 2
    else:
        # Row 0 violates both margins: (1e4 + 1e4 + 1) + (0 + 1e4 + 1); row 1 violates none.
        expected_loss = (3e4 + 2) / 2
    assert loss == pytest.approx(expected_loss, rel=1e-6)


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_loss_keeps_float32(loss_fn):
    """float32 scores give a float32 loss and gradient."""
    x, y = _scores(6, 4, dtype=np.float32)
    loss, dx = loss_fn(x, y)
    assert np.asarray(loss).dtype == np.float32 and dx.dtype == np.float32


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_loss_is_pure(loss_fn):
    """The loss leaves x and y unchanged and dx does not share memory with x."""
    x, y = _scores(6, 4)
    saved = copy.deepcopy((x, y))
    _, dx = loss_fn(x, y)
    np.testing.assert_array_equal(x, saved[0])
    np.testing.assert_array_equal(y, saved[1])
    assert not np.shares_memory(dx, x)


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_loss_rejects_bad_labels(loss_fn):
    """Labels out of range, of the wrong length, of float dtype or as a list are refused."""
    name = loss_fn.__name__
    x, _ = _scores(4, 3)
    with pytest.raises(ValueError, match=rf"{name}: labels must lie in \[0, 3\) for x with 3 classes, got 1 out of range \(first: 3\)"):
        loss_fn(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=rf"{name}: labels must lie in \[0, 3\).*first: -1"):
        loss_fn(x, np.array([0, -1, 2, 2]))
    with pytest.raises(ValueError, match=rf"{name}: y must have shape \(4,\), one label per row of x, got shape \(3,\)"):
        loss_fn(x, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match=rf"{name}: y must hold integer class labels, got dtype float64"):
        loss_fn(x, np.array([0.0, 1.0, 2.0, 0.0]))
    with pytest.raises(TypeError, match=rf"{name}: y must be a numpy array of integer class labels, got list"):
        loss_fn(x, [0, 1, 2, 0])


@pytest.mark.parametrize("loss_fn", LOSSES)
def test_loss_rejects_bad_scores(loss_fn):
    """Scores that are not a 2-D float array with at least one sample are refused."""
    name = loss_fn.__name__
    with pytest.raises(ValueError, match=rf"{name}: x must be 2-D, got shape \(4,\)"):
        loss_fn(np.zeros(4), np.array([0]))
    with pytest.raises(ValueError, match=rf"{name}: x holds no samples \(shape \(0, 3\), N = 0\)"):
        loss_fn(np.zeros((0, 3)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match=rf"{name}: x must hold at least one class, got shape \(2, 0\)"):
        loss_fn(np.zeros((2, 0)), np.zeros(2, dtype=int))
    with pytest.raises(TypeError, match=rf"{name}: x must have a floating-point dtype, got int64"):
        loss_fn(np.zeros((2, 3), dtype=np.int64), np.array([0, 1]))


@pytest.mark.parametrize("delta", [1, np.float32(1.0), np.float64(1.0), np.int64(1)], ids=repr)
def test_svm_loss_accepts_numpy_scalars_wherever_python_numbers_are(delta):
    """delta = np.float32(1.0), np.int64(1) or 1 gives exactly what delta = 1.0 gives."""
    x, y = _scores(4, 3)
    loss, dx = svm_loss(x, y, delta=delta)
    want_loss, want_dx = svm_loss(x, y, delta=1.0)
    assert loss == want_loss, f"delta={delta!r}: loss {loss} != {want_loss}"
    np.testing.assert_array_equal(dx, want_dx, err_msg=f"delta={delta!r}")


@pytest.mark.parametrize("delta", [0, -1.0, np.float32(0.0), float("inf"), float("nan")], ids=repr)
def test_svm_loss_rejects_a_delta_that_is_not_positive_and_finite(delta):
    """A margin of 0, below 0 or not finite is refused, naming svm_loss and delta."""
    x, y = _scores(2, 3)
    with pytest.raises(ValueError, match=r"svm_loss: delta \(the margin\) must be a finite number in \(0.0, inf\)"):
        svm_loss(x, y, delta=delta)


@pytest.mark.parametrize("delta", ["1", None, True, np.array([1.0])], ids=repr)
def test_svm_loss_rejects_a_delta_that_is_not_a_number(delta):
    """A string, None, a bool or an array as the margin is a TypeError naming svm_loss and delta."""
    x, y = _scores(2, 3)
    with pytest.raises(TypeError, match=r"svm_loss: delta \(the margin\) must be a real number"):
        svm_loss(x, y, delta=delta)
