"""Tests for layers.spatial_norm (spatial batchnorm, groupnorm) and the convolutional sandwiches."""

import functools

import numpy as np
import pytest

from harness import assert_backward_matches_numeric, assert_dtype_preserved, assert_pure
from layers import (
    batchnorm_backward_alt,
    batchnorm_forward,
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)

pytestmark = pytest.mark.conv

EPS_EFFECT = 1e-4
# The same formula summed in another order (maps against pixel rows): float64 rounding only.
REORDER_TOL = 1e-12


def _named(fn, **kwargs):
    wrapped = functools.partial(fn, **kwargs)
    wrapped.__name__ = fn.__name__
    return wrapped


def _maps(shape=(3, 4, 5, 6), seed=0, dtype=np.float64):
    return (4 * np.random.default_rng(seed).standard_normal(shape) + 3).astype(dtype)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_spatial_batchnorm_backward_matches_numeric_gradient(mode):
    """dx, dgamma, dbeta of spatial batchnorm match centered differences in both modes."""
    rng = np.random.default_rng(1)
    C = 4
    bn_param = {"mode": mode, "running_mean": rng.standard_normal(C), "running_var": rng.uniform(0.5, 2, C)}
    inputs = {"x": _maps(), "gamma": rng.uniform(0.5, 1.5, C), "beta": rng.standard_normal(C)}
    assert_backward_matches_numeric(_named(spatial_batchnorm_forward, bn_param=bn_param), spatial_batchnorm_backward,
                                    inputs)


def test_spatial_batchnorm_normalizes_each_channel_like_batchnorm_on_pixels():
    """Each channel has mean ~0, std ~1 over (N, H, W), exactly batchnorm of the (N*H*W, C) pixel rows."""
    x = _maps((4, 3, 5, 5))
    out, _ = spatial_batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1.0, atol=EPS_EFFECT)
    rows, _ = batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, 3), np.ones(3), np.zeros(3), {"mode": "train"})
    np.testing.assert_allclose(out, rows.reshape(4, 5, 5, 3).transpose(0, 3, 1, 2), rtol=REORDER_TOL, atol=REORDER_TOL)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_spatial_batchnorm_backward_is_batchnorm_backward_on_pixels(mode):
    """dx, dgamma, dbeta equal batchnorm_backward_alt's on the (N*H*W, C) pixel rows: one closed form."""
    rng = np.random.default_rng(7)
    x, dout = _maps((4, 3, 5, 5)), rng.standard_normal((4, 3, 5, 5))
    gamma, beta = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    running = {"running_mean": rng.standard_normal(3), "running_var": rng.uniform(0.5, 2, 3)}
    _, cache = spatial_batchnorm_forward(x, gamma, beta, {"mode": mode, **running})
    rows = x.transpose(0, 2, 3, 1).reshape(-1, 3)
    _, row_cache = batchnorm_forward(rows, gamma, beta, {"mode": mode, **running})
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
    row_dx, row_dgamma, row_dbeta = batchnorm_backward_alt(dout.transpose(0, 2, 3, 1).reshape(-1, 3), row_cache)
    np.testing.assert_allclose(dx, row_dx.reshape(4, 5, 5, 3).transpose(0, 3, 1, 2), rtol=REORDER_TOL, atol=REORDER_TOL)
    np.testing.assert_allclose(dgamma, row_dgamma, rtol=REORDER_TOL, err_msg="dgamma")
    np.testing.assert_allclose(dbeta, row_dbeta, rtol=REORDER_TOL, err_msg="dbeta")


@pytest.mark.parametrize("G", [1, 2, 4])
def test_spatial_groupnorm_backward_matches_numeric_gradient(G):
    """dx, dgamma, dbeta of groupnorm match centered differences, from one group to one per channel."""
    rng = np.random.default_rng(2)
    inputs = {"x": _maps(), "gamma": rng.uniform(0.5, 1.5, (1, 4, 1, 1)), "beta": rng.standard_normal((1, 4, 1, 1))}
    assert_backward_matches_numeric(_named(spatial_groupnorm_forward, G=G, gn_param={}), spatial_groupnorm_backward,
                                    inputs)


def test_spatial_groupnorm_normalizes_each_group_of_each_sample():
    """With G = 2 each (sample, group of C/2 channels) has mean ~0 and std ~1."""
    x = _maps((3, 6, 4, 4))
    out, _ = spatial_groupnorm_forward(x, np.ones((1, 6, 1, 1)), np.zeros((1, 6, 1, 1)), 2, {})
    grouped = out.reshape(3, 2, -1)
    np.testing.assert_allclose(grouped.mean(axis=2), 0.0, atol=1e-12)
    np.testing.assert_allclose(grouped.std(axis=2), 1.0, atol=EPS_EFFECT)


def test_spatial_norms_are_pure_and_keep_float32():
    """Inputs, dout and the caches stay unchanged; float32 stays float32."""
    C = 4
    bn = {"x": _maps(), "gamma": np.ones(C), "beta": np.zeros(C)}
    gn = {"x": _maps(), "gamma": np.ones((1, C, 1, 1)), "beta": np.zeros((1, C, 1, 1))}
    assert_pure(_named(spatial_batchnorm_forward, bn_param={"mode": "train"}), spatial_batchnorm_backward, bn)
    assert_pure(_named(spatial_groupnorm_forward, G=2, gn_param={}), spatial_groupnorm_backward, gn)
    assert_dtype_preserved(_named(spatial_batchnorm_forward, bn_param={"mode": "train"}), spatial_batchnorm_backward,
                           {k: v.astype(np.float32) for k, v in bn.items()})
    assert_dtype_preserved(_named(spatial_groupnorm_forward, G=2, gn_param={}), spatial_groupnorm_backward,
                           {k: v.astype(np.float32) for k, v in gn.items()})


def test_spatial_norms_reject_bad_input():
    """G not dividing C, wrongly shaped gamma, unknown gn_param keys are refused with the numbers."""
    x = _maps((2, 6, 3, 3))
    with pytest.raises(ValueError, match=r"spatial_groupnorm_forward: G = 4 groups must divide the C = 6 channels of x \(2, 6, 3, 3\); 6 / 4 = 1.5"):
        spatial_groupnorm_forward(x, np.ones((1, 6, 1, 1)), np.zeros((1, 6, 1, 1)), 4, {})
    with pytest.raises(ValueError, match=r"spatial_groupnorm_forward: gamma must have shape \(1, 6, 1, 1\) for x \(2, 6, 3, 3\), got \(6,\)"):
        spatial_groupnorm_forward(x, np.ones(6), np.zeros((1, 6, 1, 1)), 2, {})
    with pytest.raises(ValueError, match=r"spatial_groupnorm_forward: gn_param must be a dict with at most the keys 'eps' and 'mode'"):
        spatial_groupnorm_forward(x, np.ones((1, 6, 1, 1)), np.zeros((1, 6, 1, 1)), 2, {"mode": "train", "G": 2})
    with pytest.raises(ValueError, match=r"spatial_groupnorm_forward: gn_param\['mode'\] must be 'train' or 'test' if given"):
        spatial_groupnorm_forward(x, np.ones((1, 6, 1, 1)), np.zeros((1, 6, 1, 1)), 2, {"mode": "eval"})
    with pytest.raises(ValueError, match=r"spatial_batchnorm_forward: gamma must have shape \(6,\) and dtype float64, one value per channel"):
        spatial_batchnorm_forward(x, np.ones((1, 6, 1, 1)), np.zeros(6), {"mode": "train"})


def _conv_inputs(seed=3, with_norm=False):
    rng = np.random.default_rng(seed)
    inputs = {"x": rng.standard_normal((2, 3, 6, 6)), "w": rng.standard_normal((4, 3, 3, 3)),
              "b": rng.standard_normal(4)}
    if with_norm:
        inputs.update(gamma=rng.uniform(0.5, 1.5, 4), beta=rng.standard_normal(4))
    return inputs


@pytest.mark.parametrize("forward, backward, extra, norm", [
    (conv_relu_forward, conv_relu_backward, {}, False),
    (conv_relu_pool_forward, conv_relu_pool_backward, {"pool_param": {"pool_height": 2, "pool_width": 2, "stride": 2}}, False),
    (conv_bn_relu_forward, conv_bn_relu_backward, {"bn_param": {"mode": "train"}}, True),
], ids=["conv_relu", "conv_relu_pool", "conv_bn_relu"])
def test_conv_sandwiches_match_numeric_gradient_and_can_skip_dx(forward, backward, extra, norm):
    """Every gradient of each convolutional sandwich matches centered differences; need_dx=False skips dx."""
    wrapped = _named(forward, conv_param={"stride": 1, "pad": 1}, **extra)
    inputs = _conv_inputs(with_norm=norm)
    grads = assert_backward_matches_numeric(wrapped, backward, inputs)
    out, cache = wrapped(*inputs.values())
    partial = backward(np.ones_like(out), cache, need_dx=False)
    assert partial[0] is None and len(partial) == len(grads)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_groupnorm_accepts_the_courses_mode_key_and_ignores_it(mode):
    """gn_param={"mode": ...}, as the course passes it, gives exactly the output and gradients of {}."""
    x = _maps((2, 6, 3, 3), seed=4)
    gamma, beta = np.linspace(0.5, 1.5, 6).reshape(1, 6, 1, 1), np.linspace(-1, 1, 6).reshape(1, 6, 1, 1)
    out, cache = spatial_groupnorm_forward(x, gamma, beta, 3, {"mode": mode})
    plain, plain_cache = spatial_groupnorm_forward(x, gamma, beta, 3, {})
    np.testing.assert_array_equal(out, plain)
    dout = np.random.default_rng(5).standard_normal(out.shape)
    for got, expected in zip(spatial_groupnorm_backward(dout, cache), spatial_groupnorm_backward(dout, plain_cache)):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spatial_norms_take_the_courses_integer_gamma_and_beta(dtype):
    """gamma = np.array([3, 4, 5]) works as its float copy in spatial batchnorm and groupnorm, in x's dtype."""
    x = _maps((2, 3, 4, 5), seed=6, dtype=dtype)
    gamma, beta = np.array([3, 4, 5]), np.array([6, 7, 8])
    out, cache = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    expected, _ = spatial_batchnorm_forward(x, gamma.astype(dtype), beta.astype(dtype), {"mode": "train"})
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, expected)
    _, dgamma, dbeta = spatial_batchnorm_backward(np.ones_like(out), cache)
    assert dgamma.dtype == dtype and dbeta.dtype == dtype
    out, _ = spatial_groupnorm_forward(x, gamma.reshape(1, 3, 1, 1), beta.reshape(1, 3, 1, 1), 3, {"mode": "train"})
    expected, _ = spatial_groupnorm_forward(x, gamma.reshape(1, 3, 1, 1).astype(dtype),
                                            beta.reshape(1, 3, 1, 1).astype(dtype), 3, {})
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, expected)
    other = np.float64 if dtype == np.float32 else np.float32
    with pytest.raises(TypeError, match=rf"spatial_batchnorm_forward: gamma has dtype {np.dtype(other)} but the other inputs are {np.dtype(dtype)}"):
        spatial_batchnorm_forward(x, gamma.astype(other), beta.astype(dtype), {"mode": "train"})
    with pytest.raises(TypeError, match=r"spatial_batchnorm_forward: beta must have a floating-point dtype, got bool"):
        spatial_batchnorm_forward(x, gamma, beta > 6, {"mode": "train"})


@pytest.mark.parametrize("eps", [0.0, 1e-50])
def test_spatial_norms_refuse_an_eps_that_is_zero_in_the_dtype(eps):
    """eps = 0 (or one float32 rounds to 0) is refused by name: a constant channel or group would give 0 / 0."""
    x = _maps((2, 4, 3, 3), dtype=np.float32)
    x[:, :2] = 1.0  # channels 0 and 1 (group 0 of 2) constant
    gamma, beta = np.ones(4, np.float32), np.zeros(4, np.float32)
    for mode in ("train", "test"):
        with pytest.raises(ValueError, match=r"spatial_batchnorm_forward: bn_param\['eps'\] must be positive in float32"):
            spatial_batchnorm_forward(x, gamma, beta, {"mode": mode, "eps": eps})
    with pytest.raises(ValueError, match=r"spatial_groupnorm_forward: gn_param\['eps'\] must be positive in float32"):
        spatial_groupnorm_forward(x, gamma.reshape(1, 4, 1, 1), beta.reshape(1, 4, 1, 1), 2, {"eps": eps})


def test_spatial_batchnorm_refuses_a_negative_running_var():
    """A negative running variance is refused in test mode instead of giving NaN maps."""
    x = _maps((2, 3, 2, 2))
    with pytest.raises(ValueError, match=r"spatial_batchnorm_forward: bn_param\['running_var'\] must hold variances"):
        spatial_batchnorm_forward(x, np.ones(3), np.zeros(3), {"mode": "test", "running_mean": np.zeros(3),
                                                               "running_var": np.array([1.0, 1.0, -1e-3])})
