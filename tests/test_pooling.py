"""Tests for layers.pooling: naive and fast max pooling, the tie rule, geometry errors."""

import functools
import re

import numpy as np
import pytest

from harness import assert_backward_matches_numeric, assert_dtype_preserved, assert_pure
from layers import max_pool_backward_fast, max_pool_backward_naive, max_pool_forward_fast, max_pool_forward_naive
from layers.validate import NotAnInteger

pytestmark = pytest.mark.pooling

# Overlapping windows route several gradients to one input; naive and fast add them in
# different orders, so they agree to rounding there and exactly elsewhere.
OVERLAP_ATOL = 1e-14

POOLS = [  # x shape, (pool_height, pool_width, stride), windows tile the input?
    ((2, 3, 8, 8), (2, 2, 2), True),
    ((2, 2, 9, 9), (3, 3, 3), True),
    ((1, 2, 8, 9), (2, 3, 3), False),  # gaps between rows of windows, tiling columns
    ((2, 3, 7, 7), (3, 3, 2), False),  # overlapping
    ((2, 2, 7, 7), (2, 3, 1), False),  # overlapping, non-square
    ((2, 2, 8, 8), (2, 2, 3), False),  # gaps
]


def _param(ph, pw, s):
    return {"pool_height": ph, "pool_width": pw, "stride": s}


@pytest.mark.parametrize("x_shape, sizes, tiles", POOLS)
@pytest.mark.parametrize("data", ["normal", "relu_ties", "small_ints"])
def test_fast_matches_naive_including_ties(x_shape, sizes, tiles, data):
    """Same outputs and same routing as the naive loops, also when many window values tie."""
    rng = np.random.default_rng(0)
    x = {"normal": rng.standard_normal(x_shape), "relu_ties": np.maximum(rng.standard_normal(x_shape), 0),
         "small_ints": rng.integers(0, 3, x_shape).astype(np.float64)}[data]
    out_naive, cache_naive = max_pool_forward_naive(x, _param(*sizes))
    out_fast, cache_fast = max_pool_forward_fast(x, _param(*sizes))
    np.testing.assert_array_equal(out_fast, out_naive)
    dout = rng.standard_normal(out_naive.shape)
    dx_naive, dx_fast = max_pool_backward_naive(dout, cache_naive), max_pool_backward_fast(dout, cache_fast)
    if tiles or sizes[2] >= max(sizes[:2]):
        np.testing.assert_array_equal(dx_fast, dx_naive)
    else:
        np.testing.assert_allclose(dx_fast, dx_naive, rtol=0, atol=OVERLAP_ATOL)
    np.testing.assert_array_equal(dx_fast != 0, dx_naive != 0)


def test_ties_route_the_whole_gradient_to_the_first_maximum():
    """Window [[1, 2], [2, 2]]: all of its gradient goes to (0, 1), the first 2 in row-major order."""
    x = np.array([[[[1.0, 2.0], [2.0, 2.0]]]])
    for forward, backward in ((max_pool_forward_naive, max_pool_backward_naive),
                              (max_pool_forward_fast, max_pool_backward_fast)):
        _, cache = forward(x, _param(2, 2, 2))
        dx = backward(np.array([[[[5.0]]]]), cache)
        np.testing.assert_array_equal(dx, [[[[0.0, 5.0], [0.0, 0.0]]]])


@pytest.mark.parametrize("x_shape, sizes, tiles", POOLS)
def test_fast_routes_nan_windows_like_naive(x_shape, sizes, tiles):
    """With NaN in some windows (alone, twice, after and before the maximum, with -inf), fast
    gives the naive outputs (NaN there) and routes every gradient to the same input."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape)
    x.flat[rng.choice(x.size, x.size // 7, replace=False)] = np.nan
    x.flat[rng.choice(x.size, x.size // 11, replace=False)] = -np.inf
    x[0, 0, 0, :3] = [5.0, np.nan, np.nan]  # NaN after the window's maximum, then a second NaN
    out_naive, cache_naive = max_pool_forward_naive(x, _param(*sizes))
    out_fast, cache_fast = max_pool_forward_fast(x, _param(*sizes))
    assert np.isnan(out_naive).any() and not np.isnan(out_naive).all()
    np.testing.assert_array_equal(out_fast, out_naive)  # NaN compare equal here
    dout = rng.standard_normal(out_naive.shape)
    dx_naive, dx_fast = max_pool_backward_naive(dout, cache_naive), max_pool_backward_fast(dout, cache_fast)
    np.testing.assert_array_equal(dx_fast != 0, dx_naive != 0, err_msg="gradient routed to different inputs")
    np.testing.assert_allclose(dx_fast, dx_naive, rtol=0, atol=OVERLAP_ATOL)


def test_nan_takes_the_gradient_of_its_window_as_the_largest_value():
    """Window [[1, nan], [nan, 3]]: out is NaN and all of the gradient goes to (0, 1), its first NaN."""
    x = np.array([[[[1.0, np.nan], [np.nan, 3.0]]]])
    for forward, backward in ((max_pool_forward_naive, max_pool_backward_naive),
                              (max_pool_forward_fast, max_pool_backward_fast)):
        out, cache = forward(x, _param(2, 2, 2))
        assert np.isnan(out).all(), f"{forward.__name__}: out {out}"
        dx = backward(np.array([[[[5.0]]]]), cache)
        np.testing.assert_array_equal(dx, [[[[0.0, 5.0], [0.0, 0.0]]]], err_msg=backward.__name__)


@pytest.mark.parametrize("x_shape, sizes, tiles", POOLS[:4])
@pytest.mark.parametrize("version", ["naive", "fast"])
def test_pool_backward_matches_numeric_gradient(x_shape, sizes, tiles, version):
    """dx matches centered differences (distinct random values, so no window is tied)."""
    forward, backward = {"naive": (max_pool_forward_naive, max_pool_backward_naive),
                         "fast": (max_pool_forward_fast, max_pool_backward_fast)}[version]
    wrapped = functools.partial(forward, pool_param=_param(*sizes))
    wrapped.__name__ = forward.__name__
    assert_backward_matches_numeric(wrapped, backward, {"x": np.random.default_rng(1).standard_normal(x_shape)})


@pytest.mark.parametrize("forward, backward", [(max_pool_forward_naive, max_pool_backward_naive),
                                               (max_pool_forward_fast, max_pool_backward_fast)], ids=["naive", "fast"])
def test_pool_is_pure_and_keeps_float32(forward, backward):
    """x, dout and the cache stay unchanged; float32 stays float32."""
    wrapped = functools.partial(forward, pool_param=_param(2, 2, 2))
    wrapped.__name__ = forward.__name__
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 4))
    assert_pure(wrapped, backward, {"x": x})
    assert_dtype_preserved(wrapped, backward, {"x": x.astype(np.float32)})


@pytest.mark.parametrize("forward", [max_pool_forward_naive, max_pool_forward_fast])
def test_bad_pool_geometry_names_every_number(forward):
    """A window that does not fit with the stride, or is larger than the input, is refused."""
    name = forward.__name__
    x = np.zeros((1, 1, 7, 7))
    with pytest.raises(ValueError, match=rf"^{name}: the window does not fit along H: \(H \+ 2 \* pad - window\) / stride = "
                                         r"\(7 \+ 2 \* 0 - 2\) / 2 = 5/2 is not a whole number; change pool_param\['stride'\] "
                                         r"or pool_param\['pool_height'\] so that the stride divides H \+ 2 \* pad - window\.$"):
        forward(x, _param(2, 2, 2))
    with pytest.raises(ValueError, match=rf"^{name}: the window \(8 along H\) is larger than the padded input "
                                         r"\(H = 7 \+ 2 \* pad 0 = 7\); pool_param\['pool_height'\] must be at most 7\.$"):
        forward(x, _param(8, 1, 1))
    with pytest.raises(ValueError, match=rf"^{name}: the window \(9 along W\) is larger than the padded input "
                                         r"\(W = 7 \+ 2 \* pad 0 = 7\); pool_param\['pool_width'\] must be at most 7\.$"):
        forward(x, _param(1, 9, 1))
    with pytest.raises(ValueError, match=rf"{name}: pool_param has unknown key\(s\) \['size'\]"):
        forward(x, {"size": 2})
    with pytest.raises(ValueError, match=rf"{name}: pool_param\['stride'\] must be an int >= 1, got 0"):
        forward(x, _param(1, 1, 0))
    for bad in (2.0, True, np.float64(2)):
        with pytest.raises(NotAnInteger, match=rf"^{name}: pool_param\['pool_width'\] must be an int >= 1, "
                                               rf"got {re.escape(repr(bad))}\.$"):
            forward(x, {"pool_height": 1, "pool_width": bad, "stride": 1})
