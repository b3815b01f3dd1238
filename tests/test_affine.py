"""Tests for layers.affine: the fully connected layer."""

import numpy as np
import pytest

from harness import assert_backward_matches_numeric, assert_dtype_preserved, assert_pure
from layers import affine_backward, affine_forward

pytestmark = pytest.mark.affine


def _inputs(x_shape, M, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    D = int(np.prod(x_shape[1:]))
    return {
        "x": rng.standard_normal(x_shape).astype(dtype),
        "w": rng.standard_normal((D, M)).astype(dtype),
        "b": rng.standard_normal(M).astype(dtype),
    }


@pytest.mark.parametrize("x_shape, M", [((10, 6), 5), ((1, 3), 1), ((4, 2, 3), 7), ((2, 3, 4, 5), 3)])
def test_affine_backward_matches_numeric_gradient(x_shape, M):
    """dx (in x's own shape, 4-D included), dw and db match centered differences."""
    assert_backward_matches_numeric(affine_forward, affine_backward, _inputs(x_shape, M))


def test_affine_forward_flattens_each_sample():
    """A 4-D x gives the same output as its (N, D) flattening."""
    inp = _inputs((2, 3, 4, 5), 6)
    out, _ = affine_forward(**inp)
    flat, _ = affine_forward(inp["x"].reshape(2, 60), inp["w"], inp["b"])
    assert out.shape == (2, 6)
    np.testing.assert_array_equal(out, flat)


def test_affine_is_pure():
    """Forward and backward leave x, w, b, dout and the cache unchanged."""
    assert_pure(affine_forward, affine_backward, _inputs((4, 2, 3), 5))


def test_affine_keeps_float32():
    """float32 x, w, b give float32 out, dx, dw, db in the inputs' shapes."""
    assert_dtype_preserved(affine_forward, affine_backward, _inputs((4, 2, 3), 5, dtype=np.float32))


@pytest.mark.lecture
def test_lecture_matrix_multiply_example():
    """The lecture's y = x w example: dL/dx = dL/dy w^T is (N, D), dL/dw = x^T dL/dy is (D, M).

    Expected values are worked by hand. (The slide prints y's first row as [13, 9, -2, -6] and
    y[1, 2:] as [17, 1]; those are typos: x w gives [-1, -1, 2, 6] and [11, 7].)
    """
    x = np.array([[2.0, 1.0, -3.0], [-3.0, 4.0, 2.0]])  # (N, D) = (2, 3)
    w = np.array([[3.0, 2.0, 1.0, -1.0], [2.0, 1.0, 3.0, 2.0], [3.0, 2.0, 1.0, -2.0]])  # (D, M) = (3, 4)
    dy = np.array([[2.0, 3.0, -3.0, 9.0], [-8.0, 1.0, 4.0, 6.0]])  # (N, M) = (2, 4)
    y, cache = affine_forward(x, w, np.zeros(4))
    np.testing.assert_array_equal(y, [[-1.0, -1.0, 2.0, 6.0], [5.0, 2.0, 11.0, 7.0]])
    dx, dw, db = affine_backward(dy, cache)
    assert dx.shape == (2, 3) and dw.shape == (3, 4) and db.shape == (4,)
    np.testing.assert_array_equal(dx, [[0.0, 16.0, -9.0], [-24.0, 9.0, -30.0]])
    np.testing.assert_array_equal(dw, [[28.0, 3.0, -18.0, 0.0], [-30.0, 7.0, 13.0, 33.0], [-22.0, -7.0, 17.0, -15.0]])
    np.testing.assert_array_equal(db, [-6.0, 4.0, 1.0, 15.0])


def test_affine_forward_rejects_bad_shapes():
    """w with the wrong number of rows and b not of shape (M,) are refused with the shapes."""
    inp = _inputs((7, 2, 3), 4)
    with pytest.raises(ValueError, match=r"affine_forward: x has 6 features per sample \(shape \(7, 2, 3\)\) but w has shape \(5, 4\); w must be \(6, M\)"):
        affine_forward(inp["x"], np.zeros((5, 4)), inp["b"])
    # numpy would silently broadcast a (1, 4) or scalar bias; chainrule refuses.
    with pytest.raises(ValueError, match=r"affine_forward: b must have shape \(4,\) to match w of shape \(6, 4\), got \(1, 4\)"):
        affine_forward(inp["x"], inp["w"], inp["b"].reshape(1, 4))
    with pytest.raises(ValueError, match=r"affine_forward: b must have shape \(4,\) .* got \(\)"):
        affine_forward(inp["x"], inp["w"], np.zeros(()))
    with pytest.raises(ValueError, match=r"affine_forward: w must be 2-D, got shape \(6,\)"):
        affine_forward(inp["x"], np.zeros(6), inp["b"])
    with pytest.raises(ValueError, match=r"affine_forward: x must have at least 2 dimensions, got shape \(6,\)"):
        affine_forward(np.zeros(6), inp["w"], inp["b"])


def test_affine_forward_rejects_bad_types():
    """Lists, integer x, rounding integer or boolean w, and mixed float dtypes are refused by argument name."""
    inp = _inputs((3, 6), 4)
    with pytest.raises(TypeError, match=r"affine_forward: x must be a numpy array of floats, got list"):
        affine_forward(inp["x"].tolist(), inp["w"], inp["b"])
    with pytest.raises(TypeError, match=r"affine_forward: x must have a floating-point dtype, got int64"):
        affine_forward(inp["x"].astype(np.int64), inp["w"], inp["b"])
    with pytest.raises(TypeError, match=r"affine_forward: w holds integers that float64 cannot represent exactly "
                                        r"\(x is float64\); got 9007199254740993, which would become 9007199254740992.0"):
        affine_forward(inp["x"], np.full((6, 4), 2**53 + 1, dtype=np.int64), inp["b"])
    with pytest.raises(TypeError, match=r"affine_forward: w must have a floating-point dtype, got bool"):
        affine_forward(inp["x"], inp["w"] > 0, inp["b"])
    with pytest.raises(TypeError, match=r"affine_forward: b has dtype float32 but the other inputs are float64"):
        affine_forward(inp["x"], inp["w"], inp["b"].astype(np.float32))


def test_affine_backward_rejects_bad_dout():
    """dout must have the output's shape (N, M) and dtype."""
    inp = _inputs((3, 6), 4)
    _, cache = affine_forward(**inp)
    with pytest.raises(ValueError, match=r"affine_backward: dout has shape \(4, 3\) but the forward output had shape \(3, 4\)"):
        affine_backward(np.zeros((4, 3)), cache)
    with pytest.raises(TypeError, match=r"affine_backward: dout has dtype float32"):
        affine_backward(np.zeros((3, 4), np.float32), cache)


def test_affine_backward_can_skip_the_input_gradient():
    """need_dx=False returns None for dx and the same dw and db as the full backward pass."""
    inp = _inputs((4, 2, 3), 5)
    _, cache = affine_forward(**inp)
    dout = np.random.default_rng(1).standard_normal((4, 5))
    dx, dw, db = affine_backward(dout, cache)
    none, dw_only, db_only = affine_backward(dout, cache, need_dx=False)
    assert none is None and dx.shape == (4, 2, 3)
    np.testing.assert_array_equal(dw_only, dw)
    np.testing.assert_array_equal(db_only, db)


def test_affine_forward_takes_exact_integer_parameters_in_xs_dtype():
    """Integer w and b become x's float dtype (float32 too) and give the same output as their float copies."""
    rng = np.random.default_rng(4)
    w, b = rng.integers(-3, 4, (6, 4)), np.array([0, 128, -7, 2**24])
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((3, 6)).astype(dtype)
        out, cache = affine_forward(x, w, b)
        expected, _ = affine_forward(x, w.astype(dtype), b.astype(dtype))
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, expected)
        _, dw, db = affine_backward(np.ones_like(out), cache)
        assert dw.dtype == dtype and db.dtype == dtype
    assert w.dtype == np.int64 and b[3] == 2**24  # the caller's arrays are left alone
