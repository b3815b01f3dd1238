"""Tests for layers.dropout: inverted dropout with a keep probability p."""

import functools
import re
import warnings

import numpy as np
import pytest

from harness import assert_backward_matches_numeric, assert_dtype_preserved, assert_pure
from layers import dropout_backward, dropout_forward
from layers.dropout import SPARSE_KEEP_P

pytestmark = pytest.mark.dropout

# 250,000 units: the kept fraction's std is sqrt(p (1 - p) / n) < 1e-3, so 1e-2 is 10 sigma.
FRACTION_TOL = 1e-2
MEAN_RTOL = 1e-2


def _x(shape=(500, 500), seed=0, dtype=np.float64):
    return (np.random.default_rng(seed).standard_normal(shape) + 10).astype(dtype)


@pytest.mark.parametrize("p", [0.25, 0.4, 0.7])
def test_dropout_keeps_fraction_p_and_preserves_the_mean(p):
    """Train mode keeps about p of the units and, scaled by 1/p, the mean; test mode is the identity."""
    x = _x()
    out, _ = dropout_forward(x, {"p": p, "mode": "train", "seed": 123})
    assert np.mean(out != 0) == pytest.approx(p, abs=FRACTION_TOL)
    assert out.mean() == pytest.approx(x.mean(), rel=MEAN_RTOL)
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / p, rtol=1e-15)
    test_out, _ = dropout_forward(x, {"p": p, "mode": "test"})
    np.testing.assert_array_equal(test_out, x)
    assert not np.shares_memory(test_out, x)


def test_dropout_backward_matches_numeric_gradient():
    """With a seed the mask is fixed, so dx matches centered differences."""
    forward = functools.partial(dropout_forward, dropout_param={"p": 0.6, "mode": "train", "seed": 7})
    forward.__name__ = "dropout_forward"
    assert_backward_matches_numeric(forward, dropout_backward, {"x": _x((6, 7))})


def test_dropout_test_mode_backward_is_the_identity():
    """In test mode the gradient passes unchanged (as a fresh array)."""
    _, cache = dropout_forward(_x((3, 4)), {"p": 0.5, "mode": "test"})
    dout = np.arange(12.0).reshape(3, 4)
    dx = dropout_backward(dout, cache)
    np.testing.assert_array_equal(dx, dout)
    assert not np.shares_memory(dx, dout)


def test_seed_fixes_the_mask_and_a_generator_advances():
    """A seed repeats its mask; a Generator gives new masks each call; numpy's global state is untouched."""
    x = _x((50, 50))
    state = np.random.get_state()
    a, _ = dropout_forward(x, {"p": 0.5, "mode": "train", "seed": 3})
    b, _ = dropout_forward(x, {"p": 0.5, "mode": "train", "seed": 3})
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(3)
    c, _ = dropout_forward(x, {"p": 0.5, "mode": "train", "rng": rng})
    d, _ = dropout_forward(x, {"p": 0.5, "mode": "train", "rng": rng})
    assert not np.array_equal(c, d)
    assert np.array_equal(np.random.get_state()[1], state[1])


def test_dropout_is_pure_and_keeps_float32():
    """x, dout and the cache are unchanged; float32 in gives a float32 mask, output and gradient."""
    forward = functools.partial(dropout_forward, dropout_param={"p": 0.5, "mode": "train", "seed": 1})
    forward.__name__ = "dropout_forward"
    assert_pure(forward, dropout_backward, {"x": _x((8, 9))})
    assert_dtype_preserved(forward, dropout_backward, {"x": _x((8, 9), dtype=np.float32)})


@pytest.mark.parametrize("p", [0, -0.1, 1.5, float("nan")])
def test_keep_probability_outside_zero_one_is_refused(p):
    """p must be in (0, 1]: 0 would drop everything, above 1 is not a probability."""
    with pytest.raises(ValueError, match=r"dropout_forward: dropout_param\['p'\] \(the keep probability\) must be"):
        dropout_forward(_x((2, 2)), {"p": p, "mode": "train"})


def test_dropout_rejects_bad_params():
    """A missing p or mode, unknown keys and a non-Generator rng are refused by name."""
    x = _x((2, 2))
    with pytest.raises(ValueError, match=r"dropout_forward: dropout_param\['p'\], the probability of keeping a unit, is required"):
        dropout_forward(x, {"mode": "train"})
    with pytest.raises(ValueError, match=r"dropout_forward: dropout_param\['mode'\] must be 'train' or 'test', got None"):
        dropout_forward(x, {"p": 0.5})
    with pytest.raises(ValueError, match=r"dropout_forward: dropout_param has unknown key\(s\) \['keep'\]"):
        dropout_forward(x, {"p": 0.5, "mode": "train", "keep": 0.5})
    with pytest.raises(TypeError, match=r"dropout_forward: dropout_param\['rng'\] must be a numpy Generator, got int"):
        dropout_forward(x, {"p": 0.5, "mode": "train", "rng": 5})
    _, cache = dropout_forward(x, {"p": 0.5, "mode": "train", "seed": 0})
    with pytest.raises(ValueError, match=r"dropout_backward: dout has shape \(3,\)"):
        dropout_backward(np.ones(3), cache)


@pytest.mark.parametrize("dtype, p", [(np.float32, 1e-39), (np.float64, 5e-324), (np.float32, 1e-45),
                                      (np.float32, 2.0**-30), (np.float64, 1e-300)])
def test_tiny_keep_probability_drops_every_unit_without_nan(dtype, p):
    """A valid but tiny p (1/p may overflow the dtype) keeps no unit of 250,000: out and dx are exact zeros, no NaN."""
    x = _x(dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, cache = dropout_forward(x, {"p": p, "mode": "train", "seed": 0})
        dx = dropout_backward(np.ones_like(x), cache)
    for name, value in (("out", out), ("dx", dx)):
        assert value.dtype == dtype, f"{name} is {value.dtype}, expected {dtype}"
        bad = np.flatnonzero(value != 0)
        assert bad.size == 0, f"p={p!r}: {name} has {bad.size} nonzero values, first {value.flat[bad[0]]!r} at {bad[0]}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keep_probability_below_the_sparse_threshold_keeps_fraction_p(dtype):
    """Below SPARSE_KEEP_P the kept count is binomial(n, p) and each kept unit is x / p, as in the dense path."""
    p = SPARSE_KEEP_P / 2
    x = _x((1000, 1000), dtype=dtype)
    out, cache = dropout_forward(x, {"p": p, "mode": "train", "seed": 5})
    kept = out != 0
    n = x.size
    # Five binomial standard deviations: a correct draw fails with probability below 1e-6.
    assert abs(kept.sum() - n * p) < 5 * np.sqrt(n * p * (1 - p)), f"kept {kept.sum()} of {n}, expected about {n * p}"
    np.testing.assert_array_equal(out[kept], x[kept] * dtype(1 / p))
    dout = _x((1000, 1000), seed=1, dtype=dtype)
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout * cache.mask)
    np.testing.assert_array_equal(cache.mask != 0, kept)


def test_test_mode_backward_checks_dout_against_x():
    """In test mode, too, dout must have x's shape and dtype: others are refused by name."""
    _, cache = dropout_forward(_x((3, 4)), {"p": 0.5, "mode": "test"})
    with pytest.raises(ValueError, match=r"dropout_backward: dout has shape \(4, 3\) but the forward output had shape \(3, 4\)"):
        dropout_backward(np.ones((4, 3)), cache)
    with pytest.raises(TypeError, match=r"dropout_backward: dout has dtype float32 but the forward pass ran in float64"):
        dropout_backward(np.ones((3, 4), np.float32), cache)
    with pytest.raises(TypeError, match=r"dropout_backward: dout must be a numpy array of shape \(3, 4\)"):
        dropout_backward([[1.0] * 4] * 3, cache)


@pytest.mark.parametrize("seed", ["abc", -1, 1.5, True, [1, 2]], ids=repr)
def test_bad_seed_is_refused_naming_dropout_forward(seed):
    """A seed that is not an int >= 0 gets dropout_forward's own message, in train and test mode."""
    for mode in ("train", "test"):
        with pytest.raises(ValueError, match=r"^dropout_forward: dropout_param\['seed'\] must be an int >= 0 or None, "
                                             rf"got {re.escape(repr(seed))}; leave it out for a fresh mask, or for a new "
                                             r"mask on every call pass a numpy Generator as dropout_param\['rng'\] instead\.$"):
            dropout_forward(_x((2, 2)), {"p": 0.5, "mode": mode, "seed": seed})


def test_numpy_integer_seed_and_keep_probability_work_like_python_numbers():
    """seed = np.int64(3) and p = np.float32(0.5) give the mask of seed = 3 and p = 0.5."""
    x = _x((20, 20))
    want, _ = dropout_forward(x, {"p": 0.5, "mode": "train", "seed": 3})
    got, _ = dropout_forward(x, {"p": np.float32(0.5), "mode": "train", "seed": np.int64(3)})
    np.testing.assert_array_equal(got, want)
