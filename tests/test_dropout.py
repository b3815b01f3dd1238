"""Tests for layers.dropout: inverted dropout with a keep probability p."""

import functools

import numpy as np
import pytest

from harness import assert_backward_matches_numeric, assert_dtype_preserved, assert_pure
from layers import dropout_backward, dropout_forward

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
