"""Tests for layers.sandwich: affine_relu."""

import numpy as np
import pytest

from harness import assert_backward_matches_numeric, assert_dtype_preserved, assert_pure
from layers import affine_forward, affine_relu_backward, affine_relu_forward, relu_forward

pytestmark = pytest.mark.sandwich


def _inputs(x_shape, M, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    D = int(np.prod(x_shape[1:]))
    return {
        "x": rng.standard_normal(x_shape).astype(dtype),
        "w": rng.standard_normal((D, M)).astype(dtype),
        "b": rng.standard_normal(M).astype(dtype),
    }


@pytest.mark.parametrize("x_shape, M", [((2, 3, 4), 10), ((8, 5), 6)])
def test_affine_relu_backward_matches_numeric_gradient(x_shape, M):
    """dx, dw and db of the composite match centered differences."""
    assert_backward_matches_numeric(affine_relu_forward, affine_relu_backward, _inputs(x_shape, M, seed=3))


def test_affine_relu_forward_is_relu_of_affine():
    """The composite's output equals relu(affine(x)) exactly."""
    inp = _inputs((3, 4), 5)
    out, _ = affine_relu_forward(**inp)
    expected, _ = relu_forward(affine_forward(**inp)[0])
    np.testing.assert_array_equal(out, expected)


def test_affine_relu_is_pure():
    """Forward and backward leave inputs, dout and the cache unchanged."""
    assert_pure(affine_relu_forward, affine_relu_backward, _inputs((3, 2, 2), 5))


def test_affine_relu_keeps_float32():
    """float32 in gives float32 out and float32 gradients."""
    assert_dtype_preserved(affine_relu_forward, affine_relu_backward, _inputs((3, 4), 5, dtype=np.float32))


def test_affine_relu_rejects_bad_input():
    """Mismatched shapes are refused by the affine part, naming affine_forward."""
    inp = _inputs((3, 4), 5)
    with pytest.raises(ValueError, match=r"affine_forward: x has 4 features per sample"):
        affine_relu_forward(inp["x"], np.zeros((3, 5)), inp["b"])
    _, cache = affine_relu_forward(**inp)
    with pytest.raises(ValueError, match=r"relu_backward: dout has shape \(5, 3\)"):
        affine_relu_backward(np.zeros((5, 3)), cache)


def test_affine_relu_backward_can_skip_the_input_gradient():
    """need_dx=False passes through: dx is None, dw and db are unchanged."""
    inp = _inputs((3, 4), 5)
    _, cache = affine_relu_forward(**inp)
    dout = np.random.default_rng(2).standard_normal((3, 5))
    full = affine_relu_backward(dout, cache)
    partial = affine_relu_backward(dout, cache, need_dx=False)
    assert partial[0] is None
    np.testing.assert_array_equal(partial[1], full[1])
    np.testing.assert_array_equal(partial[2], full[2])
