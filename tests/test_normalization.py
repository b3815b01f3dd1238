"""Tests for layers.normalization (batchnorm, layernorm) and the affine_norm_relu sandwich."""

import functools

import numpy as np
import pytest

from harness import assert_backward_matches_numeric, assert_dtype_preserved, assert_pure
from layers import (
    affine_norm_relu_backward,
    affine_norm_relu_forward,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
)
from layers.normalization import normalized_input_grad

pytestmark = pytest.mark.normalization

# The two batchnorm backward passes compute the same float64 numbers by different routes.
BACKWARDS_AGREE = 1e-10
# std of the normalized output is sqrt(var / (var + eps)): below 1 by about eps / (2 var).
EPS_EFFECT = 1e-4
# Running averages after warm-up estimate the population statistics from finite batches.
WARMUP_TOL = 0.1

SHAPES = [(3, 4), (10, 5), (50, 20)]


def _inputs(N, D, seed=0, dtype=np.float64, scale=3.0, shift=2.0):
    rng = np.random.default_rng(seed)
    return {"x": (scale * rng.standard_normal((N, D)) + shift).astype(dtype),
            "gamma": rng.standard_normal(D).astype(dtype), "beta": rng.standard_normal(D).astype(dtype)}


def _named(fn, name, **kwargs):
    wrapped = functools.partial(fn, **kwargs)
    wrapped.__name__ = name
    return wrapped


@pytest.mark.parametrize("backward", [batchnorm_backward, batchnorm_backward_alt])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["train", "test"])
def test_batchnorm_backward_matches_numeric_gradient(backward, shape, mode):
    """Both backward passes give dx, dgamma, dbeta matching centered differences, in either mode."""
    D = shape[1]
    rng = np.random.default_rng(1)
    running = {"running_mean": rng.standard_normal(D), "running_var": rng.uniform(0.5, 2.0, D)}
    forward = _named(batchnorm_forward, "batchnorm_forward", bn_param={"mode": mode, **running})
    assert_backward_matches_numeric(forward, backward, _inputs(*shape))


@pytest.mark.parametrize("shape", SHAPES)
def test_batchnorm_backwards_agree(shape):
    """The graph-walking and closed-form backward passes agree to 1e-10 from the same cache."""
    inp = _inputs(*shape, seed=2)
    _, cache = batchnorm_forward(**inp, bn_param={"mode": "train"})
    dout = np.random.default_rng(3).standard_normal(shape)
    for a, b in zip(batchnorm_backward(dout, cache), batchnorm_backward_alt(dout, cache)):
        assert np.max(np.abs(a - b)) <= BACKWARDS_AGREE * max(1.0, np.max(np.abs(a)))


def test_batchnorm_of_two_samples_passes_no_gradient_to_x():
    """With N = 2 each feature normalizes to -1 and +1 whatever x is, so dx is ~0 (up to eps)."""
    inp = _inputs(2, 3, seed=8)
    out, cache = batchnorm_forward(inp["x"], np.ones(3), np.zeros(3), {"mode": "train"})
    np.testing.assert_allclose(np.abs(out), 1.0, atol=EPS_EFFECT)
    dx, _, _ = batchnorm_backward_alt(np.random.default_rng(9).standard_normal((2, 3)), cache)
    assert np.max(np.abs(dx)) < 1e-5


def test_batchnorm_train_mode_normalizes_each_feature():
    """With gamma=1, beta=0 each feature has mean ~0 and std ~1; otherwise mean ~beta, std ~|gamma|."""
    inp = _inputs(200, 4, scale=5.0, shift=-3.0)
    out, _ = batchnorm_forward(inp["x"], np.ones(4), np.zeros(4), {"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1.0, atol=EPS_EFFECT)
    out, _ = batchnorm_forward(**inp, bn_param={"mode": "train"})
    np.testing.assert_allclose(out.mean(axis=0), inp["beta"], atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), np.abs(inp["gamma"]), rtol=EPS_EFFECT)


def test_batchnorm_running_averages_follow_the_momentum_rule():
    """After one call: running = 0.9 * 0 + 0.1 * batch statistic (biased variance)."""
    inp = _inputs(30, 4)
    bn_param = {"mode": "train"}
    batchnorm_forward(**inp, bn_param=bn_param)
    np.testing.assert_allclose(bn_param["running_mean"], 0.1 * inp["x"].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn_param["running_var"], 0.1 * inp["x"].var(axis=0), rtol=1e-12)
    assert bn_param["running_mean"].dtype == np.float64


def test_batchnorm_test_mode_uses_running_averages_after_warmup():
    """After 200 training batches, test mode normalizes fresh samples to mean ~0, std ~1."""
    rng = np.random.default_rng(4)
    D, bn_param = 3, {"mode": "train"}
    means, stds = np.array([5.0, -2.0, 0.5]), np.array([3.0, 0.5, 10.0])
    for _ in range(200):
        batchnorm_forward(rng.standard_normal((50, D)) * stds + means, np.ones(D), np.zeros(D), bn_param)
    bn_param["mode"] = "test"
    x = rng.standard_normal((500, D)) * stds + means
    out, _ = batchnorm_forward(x, np.ones(D), np.zeros(D), bn_param)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=WARMUP_TOL)
    np.testing.assert_allclose(out.std(axis=0), 1.0, atol=WARMUP_TOL)
    expected = (x - bn_param["running_mean"]) / np.sqrt(bn_param["running_var"] + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_layernorm_backward_matches_numeric_gradient(shape):
    """layernorm's dx, dgamma and dbeta match centered differences."""
    forward = _named(layernorm_forward, "layernorm_forward", ln_param={})
    assert_backward_matches_numeric(forward, layernorm_backward, _inputs(*shape))


def test_layernorm_normalizes_each_sample_the_same_in_train_and_test():
    """Each row has mean ~0 and std ~1 with gamma=1, beta=0, whatever the batch size."""
    x = _inputs(6, 50, scale=4.0)["x"]
    out, _ = layernorm_forward(x, np.ones(50), np.zeros(50), {})
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=1), 1.0, atol=EPS_EFFECT)
    single, _ = layernorm_forward(x[2:3], np.ones(50), np.zeros(50), {})
    np.testing.assert_allclose(single[0], out[2], rtol=1e-12)


@pytest.mark.parametrize("normalization", ["batchnorm", "layernorm"])
@pytest.mark.parametrize("x_shape", [(5, 4), (4, 2, 3)])
def test_affine_norm_relu_backward_matches_numeric_gradient(normalization, x_shape):
    """The sandwich's dx, dw, db, dgamma, dbeta match centered differences."""
    rng = np.random.default_rng(5)
    D, M = int(np.prod(x_shape[1:])), 6
    inputs = {"x": rng.standard_normal(x_shape), "w": rng.standard_normal((D, M)), "b": rng.standard_normal(M),
              "gamma": rng.uniform(0.5, 1.5, M), "beta": rng.uniform(-0.5, 0.5, M)}
    norm_param = {"mode": "train"} if normalization == "batchnorm" else {}
    forward = _named(affine_norm_relu_forward, "affine_norm_relu_forward", norm_param=norm_param,
                     normalization=normalization)
    assert_backward_matches_numeric(forward, affine_norm_relu_backward, inputs)


@pytest.mark.parametrize("forward, backward, param", [
    (batchnorm_forward, batchnorm_backward, {"mode": "train"}),
    (batchnorm_forward, batchnorm_backward_alt, {"mode": "train"}),
    (layernorm_forward, layernorm_backward, {}),
], ids=["batchnorm", "batchnorm_alt", "layernorm"])
def test_normalization_is_pure_and_keeps_float32(forward, backward, param):
    """x, gamma, beta, dout and the cache stay unchanged; float32 stays float32."""
    key = "bn_param" if forward is batchnorm_forward else "ln_param"
    assert_pure(_named(forward, forward.__name__, **{key: dict(param)}), backward, _inputs(8, 5))
    assert_dtype_preserved(_named(forward, forward.__name__, **{key: dict(param)}), backward,
                           _inputs(8, 5, dtype=np.float32))


def test_batchnorm_rejects_bad_input():
    """Unknown or missing mode, bad gamma, wrong running stats, unknown keys, one-sample batches."""
    inp = _inputs(4, 3)
    with pytest.raises(ValueError, match=r"batchnorm_forward: bn_param\['mode'\] must be 'train' or 'test', got 'eval'"):
        batchnorm_forward(**inp, bn_param={"mode": "eval"})
    with pytest.raises(ValueError, match=r"batchnorm_forward: bn_param\['mode'\] must be 'train' or 'test', got None"):
        batchnorm_forward(**inp, bn_param={})
    with pytest.raises(ValueError, match=r"batchnorm_forward: gamma must have shape \(3,\), one value per feature of x \(4, 3\), got \(4,\)"):
        batchnorm_forward(inp["x"], np.ones(4), inp["beta"], {"mode": "train"})
    with pytest.raises(ValueError, match=r"batchnorm_forward: bn_param\['running_var'\] must be an array of shape \(3,\) and dtype float64, got \(3,\) float32"):
        batchnorm_forward(**inp, bn_param={"mode": "test", "running_var": np.ones(3, np.float32)})
    with pytest.raises(ValueError, match=r"batchnorm_forward: bn_param has unknown key\(s\) \['momentun'\]"):
        batchnorm_forward(**inp, bn_param={"mode": "train", "momentun": 0.9})
    with pytest.raises(ValueError, match=r"batchnorm_forward: train mode needs at least 2 samples"):
        batchnorm_forward(inp["x"][:1], inp["gamma"], inp["beta"], {"mode": "train"})
    with pytest.raises(ValueError, match=r"batchnorm_forward: x must be 2-D, got shape \(12,\)"):
        batchnorm_forward(inp["x"].ravel(), inp["gamma"], inp["beta"], {"mode": "train"})
    _, cache = batchnorm_forward(**inp, bn_param={"mode": "train"})
    with pytest.raises(ValueError, match=r"batchnorm_backward_alt: dout has shape \(3, 4\)"):
        batchnorm_backward_alt(np.ones((3, 4)), cache)


def test_layernorm_and_sandwich_reject_bad_input():
    """layernorm's ln_param keys and mode value and the sandwich's normalization name are checked."""
    inp = _inputs(4, 3)
    with pytest.raises(ValueError, match=r"layernorm_forward: ln_param has unknown key\(s\) \['momentum'\]; valid keys are \['eps', 'mode'\]"):
        layernorm_forward(**inp, ln_param={"mode": "train", "momentum": 0.9})
    with pytest.raises(ValueError, match=r"layernorm_forward: ln_param\['mode'\] must be 'train' or 'test' if given \(it changes nothing here\), got 'eval'"):
        layernorm_forward(**inp, ln_param={"mode": "eval"})
    with pytest.raises(ValueError, match=r"layernorm_forward: ln_param\['eps'\] must be a finite number"):
        layernorm_forward(**inp, ln_param={"eps": -1.0})
    with pytest.raises(ValueError, match=r"affine_norm_relu_forward: normalization must be one of \('batchnorm', 'layernorm'\), got 'groupnorm'"):
        affine_norm_relu_forward(inp["x"], np.ones((3, 3)), np.ones(3), np.ones(3), np.ones(3), {}, "groupnorm")


def test_affine_norm_relu_can_skip_the_input_gradient():
    """need_dx=False returns None for dx and the same parameter gradients."""
    rng = np.random.default_rng(6)
    args = (rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), np.zeros(3), np.ones(3), np.zeros(3))
    _, cache = affine_norm_relu_forward(*args, {"mode": "train"})
    dout = rng.standard_normal((5, 3))
    full, partial = affine_norm_relu_backward(dout, cache), affine_norm_relu_backward(dout, cache, need_dx=False)
    assert partial[0] is None
    for a, b in zip(full[1:], partial[1:]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape, axis", [((6, 5), 0), ((4, 7), 1), ((3, 2, 10), 2), ((3, 4, 2, 5), (0, 2, 3))])
def test_normalized_input_grad_is_the_gradient_through_the_normalization(shape, axis):
    """The closed form equals the numeric gradient of x -> (x - mean) / sqrt(var + eps) along any axes."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape) * 3 + 1
    eps = 1e-5

    def normalize(v):
        mean = v.mean(axis=axis, keepdims=True)
        return (v - mean) / np.sqrt(v.var(axis=axis, keepdims=True) + eps)

    def forward(v):
        return normalize(v), v

    def backward(dxhat, v):
        std = np.sqrt(v.var(axis=axis, keepdims=True) + eps)
        return normalized_input_grad(dxhat, normalize(v), std, axis)

    assert_backward_matches_numeric(forward, backward, {"x": x})


@pytest.mark.parametrize("shape, axis", [((6, 5), 0), ((3, 4, 2, 5), (0, 2, 3))])
def test_normalized_input_grad_lets_a_gamma_constant_along_the_axis_factor_out(shape, axis):
    """Given dout, its sums and a gamma constant along the axis, it returns the plain closed form of dout * gamma."""
    rng = np.random.default_rng(8)
    xhat, dout = rng.standard_normal(shape), rng.standard_normal(shape)
    reduced = tuple(1 if i in np.atleast_1d(axis) else n for i, n in enumerate(shape))
    std, gamma = rng.uniform(0.5, 2.0, reduced), rng.uniform(-2.0, 2.0, reduced)
    sums = dout.sum(axis=axis, keepdims=True), (dout * xhat).sum(axis=axis, keepdims=True)
    folded = normalized_input_grad(dout, xhat, std, axis, sums=sums, gamma=gamma)
    plain = normalized_input_grad(dout * gamma, xhat, std, axis)
    np.testing.assert_allclose(folded, plain, rtol=BACKWARDS_AGREE, atol=BACKWARDS_AGREE,
                               err_msg=f"folded gamma vs dxhat = dout * gamma, axis {axis}")


def test_layernorm_refuses_gamma_and_beta_of_the_wrong_shape_by_name():
    """The shared gamma/beta check names layernorm, the argument and the feature count."""
    inp = _inputs(4, 3)
    with pytest.raises(ValueError, match=r"layernorm_forward: beta must have shape \(3,\), one value per feature of x \(4, 3\), got \(1, 3\)"):
        layernorm_forward(inp["x"], inp["gamma"], inp["beta"][None], {})


def test_bn_settings_validates_and_defaults_the_running_averages():
    """bn_settings fills zero running averages of the given dtype and names a bad one with its shape."""
    from layers.normalization import bn_settings

    mode, eps, momentum, running = bn_settings("f", {"mode": "test"}, 3, np.float32)
    assert (mode, eps, momentum) == ("test", 1e-5, 0.9)
    assert running["running_var"].dtype == np.float32 and running["running_mean"].shape == (3,)
    with pytest.raises(ValueError, match=r"f: bn_param\['running_var'\] must be an array of shape \(3,\) and dtype "
                                         r"float32, got \(4,\) float32"):
        bn_settings("f", {"mode": "train", "running_var": np.ones(4, np.float32)}, 3, np.float32)
    with pytest.raises(ValueError, match="f: bn_param\\['mode'\\] must be 'train' or 'test'"):
        bn_settings("f", {}, 3, np.float32)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_layernorm_accepts_the_courses_mode_key_and_ignores_it(mode):
    """ln_param={"mode": ...}, as the course passes it, gives exactly the output and gradients of {}."""
    inp = _inputs(5, 4, seed=2)
    out, cache = layernorm_forward(**inp, ln_param={"mode": mode})
    plain, plain_cache = layernorm_forward(**inp, ln_param={})
    np.testing.assert_array_equal(out, plain)
    dout = np.random.default_rng(3).standard_normal(out.shape)
    for got, expected in zip(layernorm_backward(dout, cache), layernorm_backward(dout, plain_cache)):
        np.testing.assert_array_equal(got, expected)


def test_norms_take_exact_integer_gamma_and_beta():
    """Integer gamma and beta become x's float dtype in batchnorm and layernorm; dgamma, dbeta have x's dtype."""
    for dtype in (np.float32, np.float64):
        x = _inputs(6, 3, seed=5, dtype=dtype)["x"]
        gamma, beta = np.array([3, 4, 5]), np.array([6, 7, 8])
        for forward, backward, param in ((batchnorm_forward, batchnorm_backward, {"mode": "train"}),
                                         (layernorm_forward, layernorm_backward, {"mode": "train"})):
            out, cache = forward(x, gamma, beta, dict(param))
            expected, _ = forward(x, gamma.astype(dtype), beta.astype(dtype), dict(param))
            assert out.dtype == dtype
            np.testing.assert_array_equal(out, expected)
            _, dgamma, dbeta = backward(np.ones_like(out), cache)
            assert dgamma.dtype == dtype and dbeta.dtype == dtype
    x32 = _inputs(6, 3, dtype=np.float32)["x"]
    with pytest.raises(TypeError, match=r"batchnorm_forward: gamma has dtype float64 but the other inputs are float32"):
        batchnorm_forward(x32, np.ones(3), np.zeros(3, np.float32), {"mode": "train"})
    with pytest.raises(TypeError, match=r"layernorm_forward: beta holds integers that float32 cannot represent exactly"):
        layernorm_forward(x32, np.ones(3, np.float32), np.array([0, 1, 2**24 + 1]), {})


NORM_LAYERS = [(batchnorm_forward, "bn_param", {"mode": "train"}), (batchnorm_forward, "bn_param", {"mode": "test"}),
               (layernorm_forward, "ln_param", {})]


@pytest.mark.parametrize("forward, key, param", NORM_LAYERS, ids=["batchnorm train", "batchnorm test", "layernorm"])
@pytest.mark.parametrize("eps, dtype", [(0.0, np.float64), (0, np.float32), (1e-50, np.float32), (1e-330, np.float64)])
def test_eps_that_is_zero_in_the_dtype_is_refused(forward, key, param, eps, dtype):
    """eps = 0 (or an eps x's dtype rounds to 0) is refused by name: a constant feature would give 0 / 0 = NaN."""
    inp = {k: v.astype(dtype) for k, v in _inputs(4, 3).items()}
    inp["x"][:, 1] = 2.0  # a constant column (batchnorm)
    inp["x"][2] = 2.0  # and a constant row (layernorm)
    running = {"running_var": np.zeros(3, dtype)} if param.get("mode") == "test" else {}
    with pytest.raises(ValueError, match=rf"{forward.__name__}: {key}\['eps'\] must be positive in {np.dtype(dtype)}"):
        forward(**inp, **{key: {**param, **running, "eps": eps}})


@pytest.mark.parametrize("forward, key, param", NORM_LAYERS, ids=["batchnorm train", "batchnorm test", "layernorm"])
def test_smallest_positive_eps_keeps_constant_features_finite(forward, key, param):
    """The smallest eps float32 represents (1.4e-45) still normalizes a constant column and row to 0, not NaN."""
    inp = _inputs(4, 3, dtype=np.float32)
    inp["x"][:, 1] = 2.0
    inp["x"][2] = 2.0
    running = {"running_mean": np.full(3, 2.0, np.float32), "running_var": np.zeros(3, np.float32)}
    out, cache = forward(**inp, **{key: {**param, **(running if param.get("mode") == "test" else {}),
                                         "eps": float(np.finfo(np.float32).smallest_subnormal)}})
    assert np.isfinite(out).all(), out


@pytest.mark.parametrize("mode", ["train", "test"])
def test_negative_running_var_is_refused(mode):
    """A running_var holding a negative value (whose square root would be NaN) is refused, naming the feature."""
    inp = _inputs(4, 3)
    running = {"running_mean": np.zeros(3), "running_var": np.array([1.0, -0.5, 2.0])}
    with pytest.raises(ValueError, match=r"batchnorm_forward: bn_param\['running_var'\] must hold variances \(>= 0\), "
                                         r"got -0.5 for feature 1"):
        batchnorm_forward(**inp, bn_param={"mode": mode, **running})
