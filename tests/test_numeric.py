"""Tests for gradcheck.numeric: centered differences, sparse checks and rel_error."""

import warnings

import numpy as np
import pytest

from gradcheck import (
    REL_ERROR_FLOOR,
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    eval_numerical_gradient_blobs,
    eval_numerical_gradient_net,
    grad_check_sparse,
    rel_error,
)
from gradcheck.numeric import centered_pair, directional_pair, relative_errors

pytestmark = pytest.mark.gradcheck

# Centered differences of a smooth function in float64 with h = 1e-5 agree with the true
# derivative to about 1e-10 relative (O(h^2) truncation plus eps/h rounding).
NUMERIC_RTOL = 1e-8


def _x(shape=(3, 4), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def test_eval_numerical_gradient_matches_known_derivative():
    """The gradient of sum(sin(x) * x) is cos(x) x + sin(x)."""
    x = _x()
    grad = eval_numerical_gradient(lambda v: np.sum(np.sin(v) * v), x, verbose=False)
    assert grad.shape == x.shape and grad.dtype == np.float64
    assert rel_error(grad, np.cos(x) * x + np.sin(x)) < NUMERIC_RTOL


def test_eval_numerical_gradient_array_matches_known_derivative():
    """For f(x) = x**3 and upstream df, the gradient is 3 x**2 df."""
    x = _x((2, 3, 2))
    df = _x((2, 3, 2), seed=1)
    grad = eval_numerical_gradient_array(lambda v: v**3, x, df)
    assert rel_error(grad, 3 * x**2 * df) < NUMERIC_RTOL


def test_numerical_gradients_restore_x_exactly():
    """After a check, x holds its original values bit for bit."""
    x = _x()
    saved = x.copy()
    eval_numerical_gradient(lambda v: np.sum(v**2), x, verbose=False)
    eval_numerical_gradient_array(lambda v: v * 2, x, np.ones_like(x))
    grad_check_sparse(lambda v: np.sum(v**2), x, 2 * x, num_checks=5, seed=0, verbose=False)
    np.testing.assert_array_equal(x, saved)


class _Boom(Exception):
    pass


def _raises_on_third_call():
    calls = {"n": 0}

    def f(v):
        calls["n"] += 1
        if calls["n"] == 3:
            raise _Boom
        return np.sum(v)

    return f


@pytest.mark.parametrize("check", ["scalar", "array", "sparse"])
def test_x_is_restored_when_f_raises(check):
    """An exception inside f propagates and leaves x unperturbed."""
    x = _x()
    saved = x.copy()
    f = _raises_on_third_call()
    with pytest.raises(_Boom):
        if check == "scalar":
            eval_numerical_gradient(f, x, verbose=False)
        elif check == "array":
            eval_numerical_gradient_array(lambda v: np.atleast_1d(f(v)), x, np.ones(1))
        else:
            grad_check_sparse(f, x, np.ones_like(x), num_checks=5, seed=0, verbose=False)
    np.testing.assert_array_equal(x, saved)


def test_centered_pair_evaluates_both_sides_and_restores_x():
    """centered_pair gives f at x[ix] + h and x[ix] - h with the steps taken, and leaves x as it was."""
    x = _x()
    saved = x.copy()
    seen = []

    def f(v):
        seen.append(v[1, 2])
        return float(np.sum(v**2))

    f_plus, f_minus, h_plus, h_minus = centered_pair(f, x, (1, 2), 1e-3)
    assert seen == [saved[1, 2] + 1e-3, saved[1, 2] - 1e-3]
    assert h_plus == (saved[1, 2] + 1e-3) - saved[1, 2] and h_minus == saved[1, 2] - (saved[1, 2] - 1e-3)
    # sum(x**2) is quadratic, so the centered difference is exact up to rounding: 2 x.
    assert (f_plus - f_minus) / (h_plus + h_minus) == pytest.approx(2 * saved[1, 2], rel=1e-9)
    np.testing.assert_array_equal(x, saved)


def test_directional_pair_is_the_centered_difference_along_v_and_restores_x():
    """(f(x + t v) - f(x - t v)) / 2t of sum(x**2) is <2 x, v>; x is restored bit for bit, even when f raises."""
    x, v = _x(), _x(seed=1)
    saved = x.copy()
    f_plus, f_minus = directional_pair(lambda z: float(np.sum(z**2)), x, v, 1e-4)
    assert (f_plus - f_minus) / 2e-4 == pytest.approx(float(np.sum(2 * saved * v)), rel=1e-8)
    np.testing.assert_array_equal(x, saved)
    f = _raises_on_third_call()
    f(x)  # the third call, the second of the pair, raises
    with pytest.raises(_Boom):
        directional_pair(f, x, v, 1e-4)
    np.testing.assert_array_equal(x, saved)


def test_relative_errors_are_elementwise_and_rel_error_is_their_max():
    """relative_errors is |x - y| / max(1e-8, |x| + |y|) per element; rel_error reports the largest."""
    x, y = np.array([1.0, 3.0, 1e-10]), np.array([1.0, 1.0, 0.0])
    np.testing.assert_allclose(relative_errors(x, y), [0.0, 0.5, 1e-10 / REL_ERROR_FLOOR], rtol=1e-12)
    assert rel_error(x, y) == float(relative_errors(x, y).max())
    with pytest.raises(ValueError, match=r"relative_errors: x has shape \(3,\) but y has shape \(1, 3\)"):
        relative_errors(np.zeros(3), np.zeros((1, 3)))


def test_eval_numerical_gradient_verbose_prints_each_index(capsys):
    """verbose=True prints one line per element, naming its index; verbose=False prints nothing."""
    x = _x((2, 2))
    eval_numerical_gradient(lambda v: np.sum(v), x, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].startswith("(0, 0)") and lines[-1].startswith("(1, 1)")
    eval_numerical_gradient(lambda v: np.sum(v), x, verbose=False)
    assert capsys.readouterr().out == ""


def test_grad_check_sparse_accepts_a_right_gradient_and_flags_a_wrong_one(capsys):
    """Relative errors are tiny for the true gradient and large where it is wrong."""
    x = _x((5, 5))
    f = lambda v: np.sum(v**2)  # noqa: E731
    good = grad_check_sparse(f, x, 2 * x, num_checks=8, seed=3)
    assert good.shape == (8,) and np.all(good < NUMERIC_RTOL)
    assert len(capsys.readouterr().out.splitlines()) == 8
    bad = grad_check_sparse(f, x, 3 * x, num_checks=8, seed=3, verbose=False)
    # |2x - 3x| / (|2x| + |3x|) = 1/5 wherever x != 0.
    np.testing.assert_allclose(bad, 0.2, rtol=1e-6)


def test_grad_check_sparse_is_zero_not_nan_when_both_gradients_vanish():
    """A constant f with a zero analytic gradient gives errors of exactly 0 and no warning."""
    x = _x()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        errors = grad_check_sparse(lambda v: 1.0, x, np.zeros_like(x), num_checks=4, seed=0, verbose=False)
    np.testing.assert_array_equal(errors, np.zeros(4))


def test_grad_check_sparse_seed_is_reproducible_and_private():
    """The same seed samples the same elements, and numpy's global random state is untouched."""
    x = _x((6, 7))
    analytic = 2 * x + _x((6, 7), seed=9) * 1e-3  # slightly wrong, so each element's error differs
    state = np.random.get_state()
    first = grad_check_sparse(lambda v: np.sum(v**2), x, analytic, num_checks=6, seed=42, verbose=False)
    second = grad_check_sparse(lambda v: np.sum(v**2), x, analytic, num_checks=6, seed=42, verbose=False)
    np.testing.assert_array_equal(first, second)
    assert np.all(np.random.get_state()[1] == state[1])


def test_rel_error_definition():
    """rel_error is max |x - y| / max(1e-8, |x| + |y|), and 0 for identical inputs."""
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert rel_error(np.array([1.0, 3.0]), np.array([1.0, 1.0])) == pytest.approx(0.5, rel=1e-15)
    assert rel_error(0.0, 0.0) == 0.0
    # Below the floor the error is measured against 1e-8, not against the tiny values.
    assert rel_error(1e-10, 0.0) == pytest.approx(1e-10 / REL_ERROR_FLOOR, rel=1e-12)


def test_rel_error_refuses_to_broadcast():
    """Shapes must match; a (3,) against a (1, 3) is an error, not a broadcast."""
    with pytest.raises(ValueError, match=r"rel_error: x has shape \(3,\) but y has shape \(1, 3\)"):
        rel_error(np.zeros(3), np.zeros((1, 3)))


def test_numerical_gradient_rejects_bad_arguments():
    """x that cannot be perturbed, bad h, a non-scalar f and mismatched shapes are refused."""
    x = _x()
    with pytest.raises(TypeError, match=r"eval_numerical_gradient: x must be a floating-point numpy array \(it is perturbed in place\), got list"):
        eval_numerical_gradient(np.sum, [1.0, 2.0], verbose=False)
    with pytest.raises(TypeError, match=r"eval_numerical_gradient_array: x must be a floating-point numpy array .* got array of dtype int64"):
        eval_numerical_gradient_array(lambda v: v, np.arange(3), np.ones(3))
    readonly = x.copy()
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match=r"eval_numerical_gradient: x must be writeable"):
        eval_numerical_gradient(np.sum, readonly, verbose=False)
    for h in (0, -1e-5, float("nan"), "1e-5"):
        with pytest.raises(ValueError, match=r"eval_numerical_gradient: h must be a positive finite step size"):
            eval_numerical_gradient(np.sum, x, verbose=False, h=h)
    with pytest.raises(ValueError, match=r"eval_numerical_gradient: f must return a scalar, got an array of shape \(3, 4\)"):
        eval_numerical_gradient(lambda v: v, x, verbose=False)
    with pytest.raises(ValueError, match=r"eval_numerical_gradient_array: f returned shape \(3, 4\) but df has shape \(4, 3\)"):
        eval_numerical_gradient_array(lambda v: v, x, np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"grad_check_sparse: analytic_grad has shape \(4, 3\) but x has shape \(3, 4\)"):
        grad_check_sparse(np.sum, x, np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"grad_check_sparse: num_checks must be an int >= 1, got 0"):
        grad_check_sparse(np.sum, x, np.ones_like(x), num_checks=0)
    np.testing.assert_array_equal(x, _x())


class Blob:
    """The course's blob: values and the gradient flowing into them."""

    def __init__(self, vals, diffs=None):
        self.vals = vals
        self.diffs = np.zeros_like(vals) if diffs is None else diffs


def _affine_tanh(x, w, out):
    out.vals = np.tanh(x.vals @ w.vals)


def test_eval_numerical_gradient_blobs_matches_eval_numerical_gradient():
    """For f(x, w, out) writing out.vals, each input's gradient is that of sum(out.vals * out.diffs)."""
    x, w = Blob(_x((3, 4))), Blob(_x((4, 2), seed=1))
    out = Blob(np.zeros((3, 2)), _x((3, 2), seed=2))
    dx, dw = eval_numerical_gradient_blobs(_affine_tanh, (x, w), out)
    objective = {"x": lambda v: np.sum(np.tanh(v @ w.vals) * out.diffs),
                 "w": lambda v: np.sum(np.tanh(x.vals @ v) * out.diffs)}
    assert dx.shape == (3, 4) and dw.shape == (4, 2) and dx.dtype == dw.dtype == np.float64
    assert rel_error(dx, eval_numerical_gradient(objective["x"], x.vals.copy(), verbose=False)) < NUMERIC_RTOL
    assert rel_error(dw, eval_numerical_gradient(objective["w"], w.vals.copy(), verbose=False)) < NUMERIC_RTOL


def test_eval_numerical_gradient_net_calls_forward_and_restores_the_inputs():
    """A net whose forward() reads its input blobs gets the blobs' gradients; the values come back exactly."""
    class Net:
        def __init__(self):
            self.x, self.w, self.out = Blob(_x((2, 3))), Blob(_x((3, 3), seed=3)), Blob(None, _x((2, 3), seed=4))

        def forward(self):
            self.out.vals = np.tanh(self.x.vals @ self.w.vals)

    net = Net()
    before = net.x.vals.copy(), net.w.vals.copy()
    dx, dw = eval_numerical_gradient_net(net, (net.x, net.w), net.out)
    expected = eval_numerical_gradient_blobs(_affine_tanh, (Blob(before[0].copy()), Blob(before[1].copy())),
                                             Blob(None, net.out.diffs))
    np.testing.assert_array_equal(dx, expected[0])
    np.testing.assert_array_equal(dw, expected[1])
    np.testing.assert_array_equal(net.x.vals, before[0])
    np.testing.assert_array_equal(net.w.vals, before[1])


def test_blob_helpers_reject_bad_arguments_and_restore_vals_when_f_raises():
    """Non-blobs, integer vals, mismatched diffs and a net without forward() are refused by name."""
    x, out = Blob(_x((2, 2))), Blob(np.zeros((2, 2)), np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"eval_numerical_gradient_blobs: inputs\[0\] must be a blob with .vals"):
        eval_numerical_gradient_blobs(_affine_tanh, (np.ones(2),), out)
    with pytest.raises(TypeError, match=r"eval_numerical_gradient_blobs: inputs\[0\].vals must be a floating-point numpy array"):
        eval_numerical_gradient_blobs(_affine_tanh, (Blob(np.ones(2, int)),), out)
    with pytest.raises(ValueError, match=r"eval_numerical_gradient_blobs: f wrote output.vals of shape \(2, 2\) but output.diffs has shape \(2, 3\)"):
        eval_numerical_gradient_blobs(_affine_tanh, (x, Blob(np.eye(2))), out)
    with pytest.raises(TypeError, match=r"eval_numerical_gradient_net: net must have a forward\(\) method, got object"):
        eval_numerical_gradient_net(object(), (x,), out)
    before = x.vals.copy()

    def broken(x, out):
        raise RuntimeError("broken")

    with pytest.raises(RuntimeError, match="broken"):
        eval_numerical_gradient_blobs(broken, (x,), out)
    np.testing.assert_array_equal(x.vals, before)
