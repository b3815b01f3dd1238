"""Tests for the activation families: layers.activations (relu, leaky_relu, elu, gelu, silu, maxout) and
layers.saturating (sigmoid, tanh)."""

import functools
import warnings

import numpy as np
import pytest

from harness import assert_backward_matches_numeric, assert_dtype_preserved, assert_pure
from layers import (
    elu_backward,
    elu_forward,
    gelu_backward,
    gelu_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    maxout_backward,
    maxout_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    silu_backward,
    silu_forward,
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
    (elu_forward, elu_backward),
    (gelu_forward, gelu_backward),
    (silu_forward, silu_backward),
]
IDS = ["relu", "leaky_relu", "sigmoid", "tanh", "elu", "gelu", "silu"]
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


# -- ELU, GELU, SiLU and maxout: the lecture's activation slide.

# Known values: GELU(1) = Phi(1); the tanh form's largest distance from the exact one over the
# real line is about 4.7e-4 (at |x| near 2).
PHI_1 = 0.8413447460685429
GELU_TANH_MAX_GAP = 5e-4


def test_elu_is_x_above_zero_and_approaches_minus_alpha_below():
    """elu(x) = x for x > 0, alpha (e^x - 1) below, -alpha far out; its gradient there is alpha e^x."""
    x = np.array([-50.0, -1.0, -1e-9, 2.0])
    out, cache = elu_forward(x, alpha=0.5)
    np.testing.assert_allclose(out, [-0.5, 0.5 * np.expm1(-1.0), 0.5 * np.expm1(-1e-9), 2.0], rtol=1e-15)
    np.testing.assert_allclose(elu_backward(np.ones(4), cache), [0.5 * np.exp(-50.0), 0.5 * np.exp(-1.0),
                                                                0.5 * np.exp(-1e-9), 1.0], rtol=1e-15)
    assert elu_forward(-1.0)[0] == pytest.approx(np.expm1(-1.0), rel=1e-15)  # alpha defaults to 1.0


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("inf"), "1", True])
def test_elu_rejects_bad_alpha(alpha):
    """alpha must be a positive finite number."""
    with pytest.raises((ValueError, TypeError), match=r"elu_forward: alpha must be"):
        elu_forward(np.ones(3), alpha=alpha)


def test_gelu_exact_is_x_times_the_normal_cdf_and_tanh_form_stays_close():
    """gelu(1) = Phi(1), gelu(0) = 0, gelu(-x) = gelu(x) - x; the tanh form is within 5e-4 everywhere."""
    out, _ = gelu_forward(np.array([1.0, 0.0]))
    np.testing.assert_allclose(out, [PHI_1, 0.0], rtol=1e-15, atol=0)
    x = np.linspace(-8, 8, 1601)
    exact, exact_cache = gelu_forward(x)
    mirrored, _ = gelu_forward(-x)
    np.testing.assert_allclose(mirrored, exact - x, rtol=0, atol=1e-14)
    approx, approx_cache = gelu_forward(x, approximate="tanh")
    assert 1e-5 < np.max(np.abs(approx - exact)) < GELU_TANH_MAX_GAP
    assert np.max(np.abs(gelu_backward(np.ones_like(x), approx_cache) - gelu_backward(np.ones_like(x), exact_cache))) < 0.02


def test_gelu_rejects_an_unknown_approximation():
    """approximate is "none" or "tanh", as in torch.nn.functional.gelu."""
    with pytest.raises(ValueError, match=r"gelu_forward: approximate must be one of \('none', 'tanh'\), got 'erf'"):
        gelu_forward(np.ones(3), approximate="erf")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_backward_matches_numeric_gradient_in_both_forms(approximate):
    """Both forms' gradients match centered differences."""
    forward = functools.partial(gelu_forward, approximate=approximate)
    forward.__name__ = "gelu_forward"
    assert_backward_matches_numeric(forward, gelu_backward, {"x": _x((5, 6), seed=3)})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_silu_and_gelu_are_stable_for_huge_inputs(dtype):
    """silu, gelu and elu at +-1000 give finite values and gradients with no overflow warning."""
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = [(f(x)[0], b(np.ones_like(x), f(x)[1])) for f, b in
                   ((silu_forward, silu_backward), (gelu_forward, gelu_backward), (elu_forward, elu_backward),
                    (functools.partial(gelu_forward, approximate="tanh"), gelu_backward))]
    for out, dx in results:
        assert out.dtype == dtype and np.all(np.isfinite(out)) and np.all(np.isfinite(dx))
        assert out[-1] == 1000.0 and out[2] == 0.0
    silu, dsilu = results[0]
    assert silu[0] == 0.0 and dsilu[0] == 0.0 and dsilu[-1] == 1.0 and dsilu[2] == 0.5


def test_maxout_keeps_each_units_largest_piece_and_routes_the_gradient_to_it():
    """Two units of three pieces each: out is each unit's max; dx puts dout where the max was."""
    x = np.array([[1.0, 5.0, -2.0, 0.5, 0.25, 3.0], [-1.0, -3.0, -2.0, 4.0, 4.5, -4.0]])
    out, cache = maxout_forward(x, k=3)
    np.testing.assert_array_equal(out, [[5.0, 3.0], [-1.0, 4.5]])
    dx = maxout_backward(np.array([[10.0, 20.0], [30.0, 40.0]]), cache)
    np.testing.assert_array_equal(dx, [[0, 10, 0, 0, 0, 20], [30, 0, 0, 0, 40, 0]])
    _, tie_cache = maxout_forward(np.array([[2.0, 2.0]]), k=2)
    np.testing.assert_array_equal(maxout_backward(np.array([[1.0]]), tie_cache), [[1.0, 0.0]])  # first on a tie


def test_maxout_backward_matches_numeric_gradient_and_keeps_float32():
    """maxout's gradient matches centered differences; float32 stays float32, shapes are x's."""
    x = np.random.default_rng(4).permutation(np.arange(24.0)).reshape(3, 8) / 4  # gaps of 0.25: no ties
    assert_backward_matches_numeric(maxout_forward, maxout_backward, {"x": x}, params={"k": 4})
    assert_pure(maxout_forward, maxout_backward, {"x": x}, params={"k": 2})
    assert_dtype_preserved(maxout_forward, maxout_backward, {"x": x.astype(np.float32)}, params={"k": 2})


@pytest.mark.parametrize("k, error, message", [
    (4, ValueError, r"maxout_forward: x has 6 features, not a multiple of k = 4"),
    (0, ValueError, r"maxout_forward: k \(pieces per unit\) must be an int >= 1, got 0"),
    (2.0, TypeError, r"maxout_forward: k \(pieces per unit\) must be an int >= 1, got 2.0"),
    (True, TypeError, r"maxout_forward: k \(pieces per unit\) must be an int >= 1, got True"),
])
def test_maxout_rejects_a_bad_number_of_pieces(k, error, message):
    """k must be a positive int dividing the number of features."""
    with pytest.raises(error, match=message):
        maxout_forward(np.ones((2, 6)), k=k)


def test_maxout_rejects_inputs_that_are_not_a_batch_of_vectors():
    """x is (N, D): a 1-d or 3-d x is refused by name, as is an empty batch."""
    with pytest.raises(ValueError, match=r"maxout_forward: x must be 2-D, got shape \(6,\)"):
        maxout_forward(np.ones(6), k=2)
    with pytest.raises(ValueError, match=r"maxout_forward: x holds no samples"):
        maxout_forward(np.ones((0, 6)), k=2)
