"""Graded: batch normalization, layer normalization and dropout."""

from __future__ import annotations

import numpy as np
import pytest
from grading_checks import as_float64, assert_matches, check_layer_case

SEEDS = (0, 1)


@pytest.mark.points(2)
def test_batchnorm_forward_train_normalizes_each_feature(student):
    """In train mode each output column has mean beta and standard deviation gamma."""
    rng = np.random.default_rng(0)
    x = 5 + 3 * rng.standard_normal((200, 4))
    gamma, beta = np.array([1.0, 2.0, 0.5, 3.0]), np.array([0.0, -1.0, 4.0, 0.5])
    out, _ = student.call("layers.batchnorm_forward", x, gamma, beta, {"mode": "train"})
    out = as_float64("batchnorm_forward out", out)
    assert out.shape == x.shape, f"batchnorm_forward out: shape {out.shape}, expected {x.shape}"
    var = x.var(axis=0)
    assert_matches("batchnorm_forward column means", out.mean(axis=0), beta)
    # eps = 1e-5 sits under the square root, so the std is gamma * sqrt(var / (var + eps)).
    assert_matches("batchnorm_forward column stds", out.std(axis=0), gamma * np.sqrt(var / (var + 1e-5)))


@pytest.mark.points(1)
def test_batchnorm_forward_updates_running_averages(student):
    """One train step moves the running mean and variance by (1 - momentum) toward the batch's."""
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    _, args, _ = student.call_with_args("layers.batchnorm_forward", x, np.ones(2), np.zeros(2),
                                        {"mode": "train", "momentum": 0.9})
    param = args[3]
    assert isinstance(param, dict), "batchnorm_forward: bn_param came back as something other than a dict"
    assert_matches("running_mean", param.get("running_mean"), 0.1 * np.array([2.0, 4.0]))
    assert_matches("running_var", param.get("running_var"), 0.1 * np.array([1.0, 4.0]))


@pytest.mark.points(3)
@pytest.mark.parametrize("seed", SEEDS)
def test_batchnorm_backward_matches_numeric_gradient(student, seed):
    """batchnorm_backward's dx, dgamma, dbeta agree with centered differences."""
    check_layer_case(student, "batchnorm_forward", seed).assert_ok()


@pytest.mark.points(2)
@pytest.mark.parametrize("seed", SEEDS)
def test_batchnorm_backward_alt_matches_numeric_gradient(student, seed):
    """The closed-form backward agrees with centered differences."""
    check_layer_case(student, "batchnorm_forward (alt backward)", seed).assert_ok()


@pytest.mark.points(2)
@pytest.mark.parametrize("seed", SEEDS)
def test_layernorm_backward_matches_numeric_gradient(student, seed):
    """layernorm_backward agrees with centered differences."""
    check_layer_case(student, "layernorm_forward", seed).assert_ok()


@pytest.mark.points(1)
def test_dropout_forward_test_mode_is_identity(student):
    """In test mode dropout passes its input through unchanged."""
    x = np.arange(12.0).reshape(3, 4)
    out, _ = student.call("layers.dropout_forward", x, {"p": 0.3, "mode": "test"})
    assert_matches("dropout_forward out (test mode)", out, x)


@pytest.mark.points(2)
def test_dropout_forward_keeps_the_expected_fraction_and_mean(student):
    """Train mode keeps about p of the units and, scaled by 1/p, preserves the mean."""
    p, n = 0.3, 200_000
    out, _ = student.call("layers.dropout_forward", np.ones((n // 100, 100)), {"p": p, "mode": "train", "seed": 1})
    out = as_float64("dropout_forward out", out)
    assert out.shape == (n // 100, 100), f"dropout_forward out: shape {out.shape}, expected {(n // 100, 100)}"
    kept = float(np.mean(out != 0))
    # Five binomial standard deviations: a correct layer fails with probability below 1e-6.
    assert abs(kept - p) < 5 * np.sqrt(p * (1 - p) / n), f"kept fraction {kept:.4f}, expected about {p}"
    assert_matches("dropout_forward kept values", np.unique(out[out != 0]), [1 / p])


@pytest.mark.points(1)
@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_backward_matches_numeric_gradient(student, seed):
    """With the mask fixed by the seed, dropout_backward agrees with centered differences."""
    check_layer_case(student, "dropout_forward", seed).assert_ok()


# BEGIN HIDDEN TESTS
@pytest.mark.points(3)
@pytest.mark.parametrize("mode", ["train", "test"])
def test_batchnorm_matches_reference(student, reference, mode):
    """batchnorm forward (with running averages) and both backwards match the reference."""
    ref = reference(f"batchnorm_{mode}")
    param = {"mode": mode, "momentum": 0.8, "running_mean": ref["running_mean"].copy(),
             "running_var": ref["running_var"].copy()}
    (out, cache), args, _ = student.call_with_args("layers.batchnorm_forward", ref["x"], ref["gamma"], ref["beta"],
                                                   param)
    param = args[3] if isinstance(args[3], dict) else {}
    assert_matches("batchnorm_forward out", out, ref["out"])
    assert_matches("batchnorm_forward running_mean", param.get("running_mean"), ref["new_running_mean"])
    assert_matches("batchnorm_forward running_var", param.get("running_var"), ref["new_running_var"])
    for backward in ("batchnorm_backward", "batchnorm_backward_alt"):
        dx, dgamma, dbeta = student.call(f"layers.{backward}", ref["dout"], cache)
        assert_matches(f"{backward} dx", dx, ref["dx"])
        assert_matches(f"{backward} dgamma", dgamma, ref["dgamma"])
        assert_matches(f"{backward} dbeta", dbeta, ref["dbeta"])


@pytest.mark.points(2)
def test_layernorm_matches_reference(student, reference):
    """layernorm forward and backward match the reference."""
    ref = reference("layernorm")
    out, cache = student.call("layers.layernorm_forward", ref["x"], ref["gamma"], ref["beta"], {"eps": 1e-5})
    assert_matches("layernorm_forward out", out, ref["out"])
    dx, dgamma, dbeta = student.call("layers.layernorm_backward", ref["dout"], cache)
    assert_matches("layernorm_backward dx", dx, ref["dx"])
    assert_matches("layernorm_backward dgamma", dgamma, ref["dgamma"])
    assert_matches("layernorm_backward dbeta", dbeta, ref["dbeta"])


@pytest.mark.points(1)
def test_dropout_backward_routes_through_the_mask(student, reference):
    """dropout_backward multiplies dout by the mask its forward pass drew."""
    ref = reference("dropout")
    out, cache = student.call("layers.dropout_forward", ref["x"], {"p": 0.6, "mode": "train", "seed": 7})
    mask = np.divide(as_float64("dropout_forward out", out), ref["x"])
    assert_matches("dropout_backward dx", student.call("layers.dropout_backward", ref["dout"], cache),
                   ref["dout"] * mask)
# END HIDDEN TESTS
