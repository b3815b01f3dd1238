"""Tests for layers.validate, the public argument checks every layer, update rule and net share,
and for the small public helpers beside the layers (layers.reductions, the activations' kink
distance and elementwise backward)."""

import numpy as np
import pytest

from layers.activations import EluCache, elu_forward, maxout_kink_distance
from layers.reductions import fused_subtract_scale, mean, sum_product
from layers.saturating import SigmoidCache, elementwise_backward, sigmoid_forward
from layers.validate import (
    NotAnInteger,
    cache_type,
    check_cache,
    float_array,
    float_operands,
    integer,
    param_array,
    real_number,
)

pytestmark = pytest.mark.package

# The tuned reductions reorder float64 sums: equal to the plain expressions up to rounding.
REDUCTION_RTOL = 1e-13


def test_float_array_passes_floats_unchanged_and_names_what_is_wrong():
    """A float array comes back as the same object; a list, an int array, a wrong ndim or dtype,
    or an empty batch is refused naming the function and the argument."""
    x = np.ones((2, 3), np.float32)
    assert float_array("f", "x", x, ndim=2, batch=True) is x
    with pytest.raises(TypeError, match=r"^f: x must be a numpy array of floats, got list; wrap it with np.asarray"):
        float_array("f", "x", [1.0, 2.0])
    with pytest.raises(TypeError, match=r"^f: x must have a floating-point dtype, got int64"):
        float_array("f", "x", np.arange(3))
    with pytest.raises(ValueError, match=r"^f: x must be 3-D, got shape \(2, 3\)"):
        float_array("f", "x", x, ndim=3)
    with pytest.raises(TypeError, match=r"^f: x has dtype float32"):
        float_array("f", "x", x, dtype=np.float64)
    with pytest.raises(ValueError, match=r"^f: x holds no samples"):
        float_array("f", "x", np.ones((0, 3)), batch=True)


def test_param_array_converts_exact_integers_only():
    """Integer parameters become x's float dtype when exact; rounding integers and bools are refused."""
    b = np.array([0, 128])
    converted = param_array("f", "b", b, np.float32)
    assert converted.dtype == np.float32 and converted.tolist() == [0.0, 128.0] and b.dtype.kind == "i"
    with pytest.raises(TypeError, match=r"^f: b .*float32"):
        param_array("f", "b", np.array([2**24 + 1]), np.float32)
    with pytest.raises(TypeError, match=r"^f: b "):
        param_array("f", "b", np.array([True, False]), np.float64)
    with pytest.raises(TypeError, match=r"^f: b "):
        param_array("f", "b", np.ones(2, np.float32), np.float64)


def test_float_operands_give_numbers_the_arrays_dtype():
    """Python numbers take the dtype of the array operands; float32 and float64 arrays never mix."""
    (x, two), dtype = float_operands("f", x=np.ones(2, np.float32), y=2.0)
    assert dtype == np.float32 and two.dtype == np.float32 and two == 2.0
    with pytest.raises(TypeError, match=r"^f: "):
        float_operands("f", x=np.ones(2, np.float32), y=np.ones(2))


@pytest.mark.parametrize("value, expected", [(3, 3), (np.int64(3), 3), (np.uint8(0), 0)])
def test_integer_accepts_python_and_numpy_ints(value, expected):
    """ints and numpy integer scalars come back as Python ints."""
    got = integer("f", "n", value, low=0)
    assert got == expected and type(got) is int


@pytest.mark.parametrize("value", [2.0, True, np.bool_(True), "3", None])
def test_integer_refuses_what_is_not_an_int_as_both_type_and_value_error(value):
    """Floats (whole ones too), bools, strings and None are NotAnInteger, a TypeError and a ValueError."""
    with pytest.raises(NotAnInteger, match=rf"^f: n must be an int >= 1, got {value!r:.10}") as info:
        integer("f", "n", value, low=1)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_integer_ranges_none_and_hint():
    """Out of range is a ValueError stating the range; None passes only when allowed; the hint ends the message."""
    with pytest.raises(ValueError, match=r"^f: n must be an int in \[1, 4\], got 5\.$"):
        integer("f", "n", 5, low=1, high=4)
    assert integer("f", "n", None, allow_none=True) is None
    with pytest.raises(ValueError, match=r"^f: n must be an int <= 2 or None, got 3; use 2\.$"):
        integer("f", "n", 3, high=2, allow_none=True, hint="use 2")


def test_real_number_checks_range_and_openness():
    """Numbers come back as floats; a closed bound admits its end, an open one does not; NaN and bools are refused."""
    assert real_number("f", "p", np.float32(0.5), low=0.0, high=1.0) == 0.5
    assert real_number("f", "p", 0.0, low=0.0) == 0.0
    with pytest.raises(ValueError, match=r"^f: p must be"):
        real_number("f", "p", 0.0, low=0.0, low_open=True)
    for bad in (float("nan"), True, "1"):
        with pytest.raises((TypeError, ValueError), match=r"^f: p must be"):
            real_number("f", "p", bad)


def test_check_cache_accepts_only_its_own_tagged_type():
    """The right tagged cache passes unchanged; a tuple with the same items names the forward expected."""
    kind = cache_type("thing_forward", "a b")
    cache = kind(1, 2)
    assert check_cache("thing_backward", cache, kind) is cache
    with pytest.raises(TypeError, match=r"^thing_backward: cache is not from thing_forward \(got a tuple of 2 items\)"):
        check_cache("thing_backward", (1, 2), kind)


def test_tuned_reductions_equal_their_plain_expressions():
    """sum_product, mean and fused_subtract_scale compute what their docstrings' numpy expressions do."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 6)), rng.standard_normal((5, 6))
    gamma = rng.standard_normal(6)
    np.testing.assert_allclose(sum_product(a, b, 0), (a * b).sum(0, keepdims=True), rtol=REDUCTION_RTOL)
    np.testing.assert_allclose(sum_product(a, gamma, 1), (a * gamma).sum(1, keepdims=True), rtol=REDUCTION_RTOL)
    x4 = rng.standard_normal((2, 3, 4, 4))
    np.testing.assert_allclose(sum_product(x4, x4, (0, 2, 3)), (x4 * x4).sum((0, 2, 3), keepdims=True),
                               rtol=REDUCTION_RTOL)
    for axis in (0, 1):
        np.testing.assert_allclose(mean(a, axis), a.mean(axis, keepdims=True), rtol=REDUCTION_RTOL)
    c, d, scale = rng.standard_normal((1, 6)), rng.standard_normal((5, 1)), rng.standard_normal((1, 6))
    np.testing.assert_allclose(fused_subtract_scale(a, b, c, d, scale), (a - b * c - d) * scale, rtol=REDUCTION_RTOL)
    assert mean(a.astype(np.float32), 0).dtype == np.float32


def test_maxout_kink_distance_is_the_smallest_gap_between_a_units_two_largest_pieces():
    """Units (1, 1.5, 0) and (4, 2, 3.75): gaps 0.5 and 0.25; a single piece never ties."""
    x = np.array([[1.0, 1.5, 0.0, 4.0, 2.0, 3.75]])
    assert maxout_kink_distance(x, 3) == 0.25
    assert maxout_kink_distance(x, 1) == float("inf")


def test_elementwise_backward_multiplies_by_the_cached_local_gradient_and_checks_the_cache():
    """dx = dout * local_grad; another activation's cache is refused naming the forward expected."""
    x = np.array([-1.0, 0.0, 2.0])
    _, cache = sigmoid_forward(x)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(elementwise_backward("sigmoid_backward", np.full(3, 2.0), cache, SigmoidCache),
                               2 * s * (1 - s), rtol=1e-15)
    _, elu_cache = elu_forward(x)
    with pytest.raises(TypeError, match=r"^sigmoid_backward: cache is not from sigmoid_forward \(got a cache from "
                                        r"elu_forward\)"):
        elementwise_backward("sigmoid_backward", np.ones(3), elu_cache, SigmoidCache)
    assert type(elu_cache) is EluCache
