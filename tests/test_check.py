"""Tests for gradcheck.check: check_layer, check_loss and check_model catch deliberately broken
backward passes in full and fast mode, name the wrong element, and pass correct layers.
(The engine, the contract's side checks and the model protocol behind them have test_engine.py,
test_contract.py and test_models.py.)"""

import numpy as np
import pytest

from gradcheck import GradcheckWarning, check_layer, check_loss, check_model
from gradcheck.check import AUTO_FULL_MAX, FULL_RERUN_MAX
from layers import (
    affine_backward,
    affine_forward,
    batchnorm_backward_alt,
    batchnorm_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
)

pytestmark = pytest.mark.gradcheck

# Seeds over which fast mode must catch every broken layer (each seed draws new probes and dout).
FAST_SEEDS = range(10)


def _affine_inputs(N=6, D=12, M=12, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((N, D)), "w": rng.standard_normal((D, M)), "b": rng.standard_normal(M)}


# ---------------------------------------------------------------- deliberately broken layers


def softmax_loss_without_the_mean(x, y):
    loss, dx = softmax_loss(x, y)
    return loss, dx * x.shape[0]  # forgot the 1/N


def affine_backward_wrong_sign(dout, cache):
    dx, dw, db = affine_backward(dout, cache)
    return -dx, dw, db


def affine_backward_transposed_dw(dout, cache):
    dx, dw, db = affine_backward(dout, cache)
    return dx, dw.T.copy(), db


def affine_backward_db_not_summed(dout, cache):
    dx, dw, _ = affine_backward(dout, cache)
    return dx, dw, dout.copy()


def batchnorm_backward_without_variance_term(dout, cache):
    _, xhat, _, std, gamma = cache  # batchnorm_forward's train-mode cache
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=0)) / std  # the "- xhat * mean(dxhat * xhat)" term is gone
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def affine_backward_ignoring_dout(dout, cache):
    return affine_backward(np.ones_like(dout), cache)


def relu_backward_mutating_dout(dout, cache):
    mask = cache[0]  # relu_forward's cache: (x > 0, dtype)
    dout *= mask  # in place: the caller's dout is changed
    return dout.copy()


class SoftmaxRegression:
    """A linear softmax classifier with L2 weight decay; forget_reg drops reg * W from dW."""

    def __init__(self, D, C, reg, forget_reg=False, seed=0):
        rng = np.random.default_rng(seed)
        self.params = {"W": rng.standard_normal((D, C)), "b": rng.standard_normal(C)}
        self.reg, self.forget_reg = reg, forget_reg

    def loss(self, X, y):
        scores, cache = affine_forward(X, self.params["W"], self.params["b"])
        loss, dscores = softmax_loss(scores, y)
        _, dW, db = affine_backward(dscores, cache)
        loss += 0.5 * self.reg * np.sum(self.params["W"] ** 2)
        if not self.forget_reg:
            dW = dW + self.reg * self.params["W"]
        return loss, {"W": dW, "b": db}


def _bn_inputs(seed=0, N=8, D=5):
    rng = np.random.default_rng(seed)
    return {"x": 2 * rng.standard_normal((N, D)) + 1, "gamma": 1 + 0.1 * rng.standard_normal(D),
            "beta": rng.standard_normal(D)}


def _relu_input(seed=0):
    x = np.random.default_rng(seed).standard_normal((6, 7))
    return {"x": np.where(np.abs(x) < 0.05, 0.5, x)}


def _loss_inputs(seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((8, 5))}, {"y": rng.integers(0, 5, 8)}


def run_missing_mean(mode, seed):
    inputs, params = _loss_inputs(seed)
    return check_loss(softmax_loss_without_the_mean, inputs, params=params, mode=mode, seed=seed), "x"


def run_wrong_sign(mode, seed):
    return check_layer(affine_forward, affine_backward_wrong_sign, _affine_inputs(seed=seed), mode=mode, seed=seed), "x"


def run_transposed(mode, seed):
    return check_layer(affine_forward, affine_backward_transposed_dw, _affine_inputs(seed=seed), mode=mode,
                       seed=seed), "w"


def run_forgotten_reg(mode, seed):
    rng = np.random.default_rng(seed)
    model = SoftmaxRegression(6, 4, reg=0.3, forget_reg=True, seed=seed)
    return check_model(model, rng.standard_normal((5, 6)), rng.integers(0, 4, 5), mode=mode, seed=seed), "W"


def run_db_not_summed(mode, seed):
    return check_layer(affine_forward, affine_backward_db_not_summed, _affine_inputs(seed=seed), mode=mode,
                       seed=seed), "b"


def run_bn_no_variance(mode, seed):
    return check_layer(batchnorm_forward, batchnorm_backward_without_variance_term, _bn_inputs(seed),
                       params={"bn_param": {"mode": "train"}}, mode=mode, seed=seed), "x"


def run_ignores_dout(mode, seed):
    return check_layer(affine_forward, affine_backward_ignoring_dout, _affine_inputs(seed=seed), mode=mode,
                       seed=seed), "x"


def run_mutates_dout(mode, seed):
    return check_layer(relu_forward, relu_backward_mutating_dout, _relu_input(seed), mode=mode, seed=seed), None


BROKEN = {
    "missing 1/N": (run_missing_mean, "N = 8 times the numeric one: forgot to average"),
    "wrong sign": (run_wrong_sign, "sign flipped"),
    "transposed dw": (run_transposed, "transpose of the numeric one"),
    "forgotten regularization": (run_forgotten_reg, "regularization term"),
    "db not summed over the batch": (run_db_not_summed, "keeps the batch axis: sum it over the N = 6 samples"),
    "batchnorm without the variance term": (run_bn_no_variance, None),
    "backward ignores dout": (run_ignores_dout, "does not use dout"),
    "backward mutates dout": (run_mutates_dout, None),
}


@pytest.mark.parametrize("bug", list(BROKEN))
def test_full_mode_catches_every_broken_backward(bug):
    """Each deliberately broken layer fails in full mode, on the input that is wrong, with its hint."""
    run, hint = BROKEN[bug]
    report, wrong_input = run("full", 0)
    assert not report, str(report)
    if wrong_input is not None:
        assert not report[wrong_input].passed, str(report)
    if hint is not None:
        assert hint in str(report), str(report)
    with pytest.raises(AssertionError, match="gradient check failed"):
        report.assert_ok()


@pytest.mark.parametrize("bug", list(BROKEN))
def test_fast_mode_catches_every_broken_backward_for_every_seed(bug):
    """With the default number of probes, fast mode catches each broken layer for each of 10 seeds."""
    run, _ = BROKEN[bug]
    missed = [seed for seed in FAST_SEEDS if run("fast", seed)[0]]
    assert not missed, f"{bug}: fast mode passed it for seeds {missed}"


def test_mutated_dout_is_named_in_the_side_checks():
    """A backward that writes into dout fails the side check 'backward leaves dout alone'."""
    report, _ = run_mutates_dout("full", 0)
    side = {s.name: s for s in report.side_checks}
    assert not side["backward leaves dout alone"].passed and "dout" in side["backward leaves dout alone"].detail
    assert report.failures == ["backward leaves dout alone"]


def test_ignored_dout_fails_the_zero_and_linearity_side_checks():
    """A backward that ignores dout gives nonzero gradients for a zero dout and is not linear in dout."""
    report, _ = run_ignores_dout("full", 0)
    failed = set(report.failures)
    assert {"zero dout gives zero gradients", "backward is linear in dout"} <= failed


@pytest.mark.slow
def test_one_wrong_element_in_a_large_weight_gradient_is_found_and_named():
    """One element of a 1000 x 1000 dw off by 1% of a typical entry: fast mode fails and the
    bisection search names exactly that element, for every seed tried, in a few hundred calls."""
    i, j = 123, 456
    rng = np.random.default_rng(0)
    inputs = {"x": rng.standard_normal((4, 1000)), "w": 0.03 * rng.standard_normal((1000, 1000)),
              "b": rng.standard_normal(1000)}

    def backward(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        dw = dw.copy()
        dw[i, j] += 0.02  # typical |dw| entries are about 2 here
        return dx, dw, db

    for seed in range(3):
        report = check_layer(affine_forward, backward, inputs, mode="fast", seed=seed)
        w = report["w"]
        assert not w.passed and w.mode == "fast+search", str(report)
        assert tuple(int(k) for k in w.worst) == (i, j) and w.mismatches == 1, str(report)
        assert report["x"].passed and report["b"].passed
        # probes and the isolated blocks, against 2,000,000 calls for every element of w
        assert report.forward_evaluations < 2 * (w.probes + w.checked) + 50 < 1000, str(report)


def test_one_wrong_element_is_caught_by_full_mode():
    """Full mode compares every element, so a single wrong entry of dw is the only mismatch."""
    inputs = _affine_inputs(N=5, D=30, M=20)

    def backward(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        dw = dw.copy()
        dw[7, 11] *= 1.001
        return dx, dw, db

    report = check_layer(affine_forward, backward, inputs, mode="full")
    assert report["w"].mismatches == 1 and tuple(int(k) for k in report["w"].worst) == (7, 11)
    assert report["w"].checked == 600


def test_correct_layers_pass_in_every_mode():
    """affine, batchnorm and relu (inputs clear of 0) pass in full, fast and auto mode."""
    for mode in ("full", "fast", "auto"):
        check_layer(affine_forward, affine_backward, _affine_inputs(), mode=mode).assert_ok()
        check_layer(batchnorm_forward, batchnorm_backward_alt, _bn_inputs(), params={"bn_param": {"mode": "train"}},
                    mode=mode).assert_ok()
        check_layer(relu_forward, relu_backward, _relu_input(), mode=mode).assert_ok()


def test_float32_inputs_are_upcast_with_a_warning_and_pass():
    """float32 inputs: a GradcheckWarning, a float64 check that passes, the dtype check on float32."""
    inputs = {k: v.astype(np.float32) for k, v in _affine_inputs().items()}
    with pytest.warns(GradcheckWarning, match="x, w, b not float64"):
        report = check_layer(affine_forward, affine_backward, inputs)
    report.assert_ok()
    assert report.upcast == ["x", "w", "b"]
    assert str(report).splitlines()[0].endswith("; upcast to float64: x, w, b)")
    assert all(v.dtype == np.float32 for v in inputs.values())  # the caller's arrays are untouched


def test_float32_layer_that_upcasts_its_gradients_is_reported():
    """A backward returning float64 gradients for float32 inputs fails 'gradients keep their inputs' dtype'."""
    def backward(dout, cache):
        return tuple(g.astype(np.float64) for g in affine_backward(dout, cache))

    inputs = {k: v.astype(np.float32) for k, v in _affine_inputs().items()}
    with pytest.warns(GradcheckWarning):
        report = check_layer(affine_forward, backward, inputs)
    assert report.failures == ["gradients keep their inputs' dtype"]


def test_kinks_are_reported_not_failed():
    """relu at exactly 0 is listed as a kink; the rest of the elements are compared normally."""
    x = _relu_input()["x"]
    x[1, 2] = 0.0
    x[4, 0] = 0.0
    report = check_layer(relu_forward, relu_backward, {"x": x}, mode="full").assert_ok()
    assert sorted(tuple(int(i) for i in k) for k in report["x"].kinks) == [(1, 2), (4, 0)]
    assert "kink(s) at (1, 2), (4, 0)" in str(report)


def test_wrong_gradient_at_a_smooth_point_is_not_called_a_kink():
    """A wrong relu gradient away from 0 is a mismatch, never a kink."""
    def backward(dout, cache):
        return dout * cache[0] * 1.5

    report = check_layer(relu_forward, backward, _relu_input(), mode="full")
    assert not report and not report["x"].kinks and report["x"].mismatches > 0


def test_nondeterministic_forward_is_reported():
    """Dropout without a fixed seed changes between calls: 'forward is deterministic' fails."""
    from layers import dropout_backward, dropout_forward

    report = check_layer(dropout_forward, dropout_backward, {"x": np.ones((4, 5))},
                         params={"dropout_param": {"p": 0.5, "mode": "train", "rng": np.random.default_rng(0)}})
    assert "forward is deterministic" in report.failures


def test_check_model_restores_the_model_and_passes_a_correct_one():
    """check_model passes a correct model and leaves its float32 parameters exactly as they were."""
    from solver import FullyConnectedNet

    model = FullyConnectedNet([5], input_dim=4, num_classes=3, normalization="batchnorm", weight_scale="he", seed=0)
    before = {k: v.copy() for k, v in model.params.items()}
    buffers = {k: v.copy() for k, v in model.buffers().items()}
    rng = np.random.default_rng(0)
    with pytest.warns(GradcheckWarning):
        report = check_model(model, rng.standard_normal((6, 4)), rng.integers(0, 3, 6))
    report.assert_ok()
    assert all(model.params[k].dtype == np.float32 and np.array_equal(model.params[k], before[k]) for k in before)
    assert all(np.array_equal(model.buffers()[k], buffers[k]) for k in buffers) and model.dtype == np.float32


def test_fast_mode_cost_does_not_grow_with_the_input():
    """Fast mode spends the same number of forward calls on a 12 x 12 and a 300 x 400 weight."""
    small = check_layer(affine_forward, affine_backward, _affine_inputs(), mode="fast")
    large = check_layer(affine_forward, affine_backward, _affine_inputs(N=3, D=300, M=400), mode="fast")
    assert small and large and small.forward_evaluations == large.forward_evaluations


def test_auto_mode_switches_to_probes_above_the_threshold():
    """auto compares every element up to AUTO_FULL_MAX and probes larger inputs."""
    report = check_layer(affine_forward, affine_backward, _affine_inputs(N=2, D=80, M=60), mode="auto")
    assert 80 * 60 > AUTO_FULL_MAX and report["w"].mode == "fast" and report["x"].mode == "full"
    assert FULL_RERUN_MAX > AUTO_FULL_MAX


@pytest.mark.parametrize("kwargs, error, message", [
    ({"mode": "slow"}, ValueError, "check_layer: mode must be 'auto', 'full' or 'fast', got 'slow'"),
    ({"probes": 1}, ValueError, "check_layer: probes must be an int >= 2, got 1"),
    ({"h": -1.0}, ValueError, "check_layer: h must be None"),
    ({"rtol": float("nan")}, ValueError, "check_layer: rtol must be a finite number >= 0"),
    ({"probe": "uniform"}, ValueError, "probe must be 'rademacher' or 'gaussian'"),
    ({"seed": 1.5}, TypeError, "check_layer: seed must be an int"),
])
def test_bad_settings_raise_naming_the_setting(kwargs, error, message):
    """Bad settings raise before any work, naming the function, the setting and the value."""
    with pytest.raises(error, match=message.replace("(", r"\(")):
        check_layer(affine_forward, affine_backward, _affine_inputs(), **kwargs)


def test_bad_inputs_raise_naming_the_input():
    """Integer inputs, an empty dict, a dout of the wrong shape and a forward without a cache are refused."""
    with pytest.raises(TypeError, match=r"check_layer: inputs\['x'\] must be a floating-point array"):
        check_layer(relu_forward, relu_backward, {"x": np.arange(4)})
    with pytest.raises(TypeError, match="inputs must be a non-empty dict"):
        check_layer(relu_forward, relu_backward, {})
    with pytest.raises(ValueError, match=r"dout must be shaped like forward's output \[\(6, 7\)\], got \[\(7, 6\)\]"):
        check_layer(relu_forward, relu_backward, _relu_input(), dout=np.ones((7, 6)))
    with pytest.raises(TypeError, match=r"forward must return \(out, cache\)"):
        check_layer(lambda x: x, relu_backward, _relu_input())
    with pytest.raises(ValueError, match=r"check_model: names \['W9'\] are not parameters"):
        check_model(SoftmaxRegression(3, 2, 0.0), np.ones((2, 3)), np.array([0, 1]), names=["W9"])


def test_default_step_scales_with_the_magnitude_of_x():
    """default_step is cbrt(eps) for |x| <= 1 and grows in proportion above."""
    from gradcheck import H_REL, default_step

    steps = default_step(np.array([0.0, -0.5, 1.0, -4.0, 1e3]))
    assert H_REL == pytest.approx(np.finfo(np.float64).eps ** (1 / 3))
    np.testing.assert_allclose(steps, H_REL * np.array([1, 1, 1, 4, 1e3]), rtol=0)
