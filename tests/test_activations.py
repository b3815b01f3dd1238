"""Tests for the activation families: layers.activations (relu, leaky_relu) and layers.saturating (sigmoid, tanh)."""

import functools
import warnings

import numpy as np
import pytest

from harness import assert_backward_matches_numeric, assert_dtype_preserved, assert_pure
from layers import (
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)

pytestmark = pytest.mark.activations

# sigmoid and tanh saturate to exactly 0 or 1 in floating point; this is how far from the
# limit a value 1000 units out may land (it lands exactly on it).
SATURATION_TOL = 0.0

ACTIVATIONS = [
    (relu_forward, relu_backward),
    (leaky_relu_forward, leaky_relu_backward),
    (sigmoid_forward, sigmoid_backward),
    (tanh_forward, tanh_backward),
]
IDS = ["relu", "leaky_relu", "sigmoid", "tanh"]
SHAPES = [(), (7,), (4, 5), (2, 3, 4, 5)]


def _x(shape, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    # Magnitudes >= 0.1 keep relu's kink at 0 far outside the finite-difference step.
    x = rng.uniform(0.1, 3.0, shape) * rng.choice([-1, 1], shape)
    return np.asarray(x, dtype=dtype)


@pytest.mark.parametrize("forward, backward", ACTIVATIONS, ids=IDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_activation_backward_matches_numeric_gradient(forward, backward, shape):
    """dx matches centered differences for every shape, 0-d and 4-D included."""
    assert_backward_matches_numeric(forward, backward, {"x": _x(shape)})


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.3])
def test_leaky_relu_backward_matches_numeric_gradient_for_each_slope(slope):
    """leaky_relu's gradient is right for plain relu (0), the default and a steep slope."""
    forward = functools.partial(leaky_relu_forward, negative_slope=slope)
    forward.__name__ = "leaky_relu_forward"
    assert_backward_matches_numeric(forward, leaky_relu_backward, {"x": _x((6, 5))})


@pytest.mark.parametrize("forward, backward", ACTIVATIONS, ids=IDS)
def test_activation_is_pure(forward, backward):
    """Forward and backward leave x, dout and the cache unchanged and return fresh arrays."""
    assert_pure(forward, backward, {"x": _x((4, 5))})


@pytest.mark.parametrize("forward, backward", ACTIVATIONS, ids=IDS)
def test_activation_keeps_float32(forward, backward):
    """float32 in, float32 out, for the output and the gradient."""
    assert_dtype_preserved(forward, backward, {"x": _x((4, 5), dtype=np.float32)})


@pytest.mark.parametrize("forward, backward", ACTIVATIONS, ids=IDS)
def test_activation_rejects_bad_input(forward, backward):
    """Integer arrays and lists for x, and a dout of the wrong shape or dtype, are refused."""
    with pytest.raises(TypeError, match=rf"{forward.__name__}: x must be a floating-point array"):
        forward(np.arange(4))
    with pytest.raises(TypeError, match=rf"{forward.__name__}: x must be a Python number or a floating-point numpy array, got list"):
        forward([1.0, -1.0])
    _, cache = forward(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=rf"{backward.__name__}: dout has shape \(3, 2\) but the forward output had shape \(2, 3\)"):
        backward(np.ones((3, 2), np.float32), cache)
    with pytest.raises(TypeError, match=rf"{backward.__name__}: dout has dtype float64 but the forward pass ran in float32"):
        backward(np.ones((2, 3)), cache)


@pytest.mark.parametrize("forward, backward", ACTIVATIONS, ids=IDS)
def test_activation_refuses_float16(forward, backward):
    """float16 (which scipy's expit would return as float64) is refused at the boundary, with the cast to use."""
    with pytest.raises(TypeError, match=rf"{forward.__name__}: x is float16, but chainrule computes in float32 or "
                                        r"float64 only .*cast it with x.astype\(np.float32\)"):
        forward(np.ones((2, 3), np.float16))


@pytest.mark.parametrize("slope", [-0.1, 1.0, float("nan"), "0.1"])
def test_leaky_relu_rejects_bad_slope(slope):
    """negative_slope outside [0, 1), or not a number, is refused by name."""
    with pytest.raises((ValueError, TypeError), match=r"leaky_relu_forward: negative_slope must be"):
        leaky_relu_forward(np.ones(3), negative_slope=slope)


@pytest.mark.lecture
def test_lecture_relu_vector_example():
    """x=[1,-2,3,-1] gives [1,0,3,0]; upstream [4,-1,5,9] gives dx=[4,0,5,0] (no Jacobian)."""
    out, cache = relu_forward(np.array([1.0, -2.0, 3.0, -1.0]))
    np.testing.assert_array_equal(out, [1.0, 0.0, 3.0, 0.0])
    dx = relu_backward(np.array([4.0, -1.0, 5.0, 9.0]), cache)
    np.testing.assert_array_equal(dx, [4.0, 0.0, 5.0, 0.0])


def test_relu_gradient_at_zero_is_zero():
    """At x == 0 exactly relu passes no gradient (the subgradient 0 is chosen)."""
    _, cache = relu_forward(np.array([0.0, -0.0]))
    np.testing.assert_array_equal(relu_backward(np.array([5.0, 5.0]), cache), [0.0, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_are_stable_for_huge_inputs(dtype):
    """sigmoid(+-1000) and tanh(+-1000) saturate exactly, with no overflow warning and no NaN."""
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s, s_cache = sigmoid_forward(x)
        t, t_cache = tanh_forward(x)
        ds = sigmoid_backward(np.ones_like(x), s_cache)
        dt = tanh_backward(np.ones_like(x), t_cache)
    assert s[0] == pytest.approx(0.0, abs=SATURATION_TOL) and s[-1] == pytest.approx(1.0, abs=SATURATION_TOL)
    assert s[2] == 0.5
    np.testing.assert_array_equal(t[[0, -1]], [-1.0, 1.0])
    assert np.all(np.isfinite(ds)) and np.all(np.isfinite(dt))
    assert ds[0] == 0.0 and ds[-1] == 0.0


def test_sigmoid_matches_its_definition_where_it_is_safe():
    """For moderate x the stable form equals 1 / (1 + exp(-x)) to float64 rounding."""
    x = np.linspace(-30, 30, 121)
    out, _ = sigmoid_forward(x)
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-x)), rtol=1e-15, atol=1e-300)


def test_activations_work_on_python_numbers():
    """A Python float in gives numpy float64 scalars out (which are Python floats)."""
    out, cache = sigmoid_forward(1.0)
    assert isinstance(out, float) and out == pytest.approx(0.7310585786300049, rel=1e-15)
    assert isinstance(sigmoid_backward(1.0, cache), float)
    out, cache = leaky_relu_forward(-2.0)
    assert out == pytest.approx(-0.02, rel=1e-15)
    assert leaky_relu_backward(1.0, cache) == pytest.approx(0.01, rel=1e-15)
