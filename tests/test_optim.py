"""Tests for solver.optim: the update rules against their equations."""

import math

import numpy as np
import pytest

from solver import optim
from solver.optim import UPDATE_RULES, adam, adamw, get_update_rule, nesterov, rmsprop, sgd, sgd_momentum

pytestmark = pytest.mark.optim

# Hand-worked single-element steps are exact up to float64 rounding of a few operations.
EXACT = 1e-12
# Scalar Python math and numpy's vectorized float64 math agree to a few ulps per step.
REFERENCE_RTOL = 1e-12


def _one(value):
    return np.array([value])


def test_sgd_hand_example():
    """w = 1, dw = 0.5, lr = 0.1: w <- 1 - 0.1 * 0.5 = 0.95."""
    w, cfg = sgd(_one(1.0), _one(0.5), {"learning_rate": 0.1})
    assert w[0] == pytest.approx(0.95, abs=EXACT)


def test_sgd_momentum_hand_example():
    """velocity 0.2, mu 0.9: v <- 0.18 - 0.05 = 0.13, w <- 1 + 0.13."""
    w, cfg = sgd_momentum(_one(1.0), _one(0.5), {"learning_rate": 0.1, "momentum": 0.9, "velocity": _one(0.2)})
    assert cfg["velocity"][0] == pytest.approx(0.13, abs=EXACT)
    assert w[0] == pytest.approx(1.13, abs=EXACT)


def test_nesterov_hand_example():
    """v_prev 0.2: v <- 0.13, w <- 1 - 0.9 * 0.2 + 1.9 * 0.13 = 1.067."""
    w, cfg = nesterov(_one(1.0), _one(0.5), {"learning_rate": 0.1, "momentum": 0.9, "velocity": _one(0.2)})
    assert cfg["velocity"][0] == pytest.approx(0.13, abs=EXACT)
    assert w[0] == pytest.approx(1.067, abs=EXACT)


def test_rmsprop_hand_example():
    """cache 0.1, rho 0.9: cache <- 0.09 + 0.1 * 0.25 = 0.115, w <- 1 - 0.1 * 0.5 / sqrt(0.115)."""
    w, cfg = rmsprop(_one(1.0), _one(0.5), {"learning_rate": 0.1, "decay_rate": 0.9, "cache": _one(0.1)})
    assert cfg["cache"][0] == pytest.approx(0.115, abs=EXACT)
    assert w[0] == pytest.approx(1 - 0.05 / (math.sqrt(0.115) + 1e-8), abs=EXACT)


def test_adam_first_step_moves_by_learning_rate():
    """With bias correction the first Adam step is lr * dw / |dw|: from 1 to 0.9 for lr 0.1."""
    w, cfg = adam(_one(1.0), _one(0.5), {"learning_rate": 0.1})
    assert cfg["t"] == 1
    assert cfg["m"][0] == pytest.approx(0.05, abs=EXACT) and cfg["v"][0] == pytest.approx(0.00025, abs=EXACT)
    assert w[0] == pytest.approx(1 - 0.1 * 0.5 / (0.5 + 1e-8), abs=EXACT)


def test_adamw_first_step_adds_decoupled_decay():
    """AdamW's first step is Adam's plus lr * weight_decay * w: 1 - 0.1 * (1 + 0.01 * 1)."""
    w, cfg = adamw(_one(1.0), _one(0.5), {"learning_rate": 0.1, "weight_decay": 0.01})
    assert w[0] == pytest.approx(1 - 0.1 * (0.5 / (0.5 + 1e-8) + 0.01), abs=EXACT)


def _reference_adam(w, dw_seq, lr, b1, b2, eps, wd=0.0):
    """Adam/AdamW in scalar Python math, element by element, as an independent oracle."""
    w = [float(v) for v in w]
    m = [0.0] * len(w)
    v = [0.0] * len(w)
    for t, dw in enumerate(dw_seq, start=1):
        for i, g in enumerate(dw):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat = m[i] / (1 - b1**t)
            v_hat = v[i] / (1 - b2**t)
            w[i] = w[i] - lr * (m_hat / (math.sqrt(v_hat) + eps) + wd * w[i])
    return w


@pytest.mark.parametrize("rule, wd", [(adam, 0.0), (adamw, 0.05)])
def test_adam_family_matches_scalar_reference_over_several_steps(rule, wd):
    """Five steps of adam/adamw equal the scalar reference, so t, m, v carry over correctly."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(6)
    grads = [rng.standard_normal(6) for _ in range(5)]
    cfg = {"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-6}
    if rule is adamw:
        cfg["weight_decay"] = wd
    w = w0.copy()
    for g in grads:
        w, cfg = rule(w, g, cfg)
    assert cfg["t"] == 5
    np.testing.assert_allclose(w, _reference_adam(w0, grads, 0.05, 0.8, 0.95, 1e-6, wd), rtol=REFERENCE_RTOL)


def test_rules_fill_course_defaults():
    """config=None gets the course's defaults via setdefault, and user values are kept."""
    w, g = np.ones(3), np.ones(3)
    assert sgd(w, g)[1] == {"learning_rate": 1e-2}
    cfg = sgd_momentum(w, g)[1]
    assert (cfg["learning_rate"], cfg["momentum"]) == (1e-2, 0.9)
    cfg = rmsprop(w, g)[1]
    assert (cfg["learning_rate"], cfg["decay_rate"], cfg["epsilon"]) == (1e-2, 0.99, 1e-8)
    cfg = adam(w, g)[1]
    assert (cfg["learning_rate"], cfg["beta1"], cfg["beta2"], cfg["epsilon"], cfg["t"]) == (1e-3, 0.9, 0.999, 1e-8, 1)
    assert adamw(w, g)[1]["weight_decay"] == 1e-2
    assert adam(w, g, {"learning_rate": 0.5})[1]["learning_rate"] == 0.5


@pytest.mark.parametrize("name", sorted(UPDATE_RULES))
def test_rule_is_pure_and_keeps_float32(name):
    """w is never modified; next_w and every state array keep w's dtype and shape."""
    rule = UPDATE_RULES[name]
    w = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    saved = w.copy()
    cfg = None
    for _ in range(3):
        next_w, cfg = rule(w, (w * 0.5).astype(np.float32), cfg)
    np.testing.assert_array_equal(w, saved)
    assert next_w.dtype == np.float32 and next_w.shape == w.shape
    for key, value in cfg.items():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32, f"{name}: state {key} is {value.dtype}"


@pytest.mark.parametrize("name", sorted(UPDATE_RULES))
def test_rule_minimizes_a_quadratic(name):
    """300 steps on f(w) = 0.5 |w - target|^2 bring w close to the target."""
    rule = UPDATE_RULES[name]
    target = np.array([1.0, -2.0, 3.0])
    w = np.zeros(3)
    cfg = {"learning_rate": 0.05}
    if name == "adamw":
        cfg["weight_decay"] = 0.0
    for _ in range(300):
        w, cfg = rule(w, w - target, cfg)
    assert np.max(np.abs(w - target)) < 0.05, f"{name} ended at {w}"


@pytest.mark.parametrize("rule, key, value", [
    (sgd, "learning_rate", 0.0), (sgd, "learning_rate", -1e-3), (sgd, "learning_rate", float("nan")),
    (sgd_momentum, "momentum", 1.0), (sgd_momentum, "momentum", -0.1), (nesterov, "momentum", 1.5),
    (rmsprop, "decay_rate", 1.0), (rmsprop, "epsilon", 0.0), (adam, "beta1", 1.0), (adam, "beta2", -0.5),
    (adamw, "weight_decay", -0.1),
])
def test_rule_rejects_bad_hyperparameters(rule, key, value):
    """Each invalid hyperparameter raises ValueError naming the rule and the key."""
    with pytest.raises(ValueError, match=rf"{rule.__name__}: config\['{key}'\] must be"):
        rule(np.ones(2), np.ones(2), {key: value})


def test_rule_rejects_mismatched_arrays_and_state():
    """dw of another shape or dtype, and state of another shape, are refused."""
    with pytest.raises(ValueError, match=r"sgd: dw has shape \(3,\) but w has shape \(2,\)"):
        sgd(np.ones(2), np.ones(3))
    with pytest.raises(TypeError, match=r"adam: dw has dtype float32 but the other inputs are float64"):
        adam(np.ones(2), np.ones(2, np.float32))
    with pytest.raises(ValueError, match=r"sgd_momentum: config\['velocity'\] must be an array of w's shape \(2,\)"):
        sgd_momentum(np.ones(2), np.ones(2), {"velocity": np.ones(3)})
    with pytest.raises(TypeError, match=r"rmsprop: config must be a dict or None, got list"):
        rmsprop(np.ones(2), np.ones(2), [])
    with pytest.raises(ValueError, match=r"^adam: config\['t'\] \(steps taken\) must be an int >= 0, got -1\.$"):
        adam(np.ones(2), np.ones(2), {"t": -1})
    with pytest.raises(ValueError, match=r"^adam: config\['t'\] \(steps taken\) must be an int >= 0, got 1\.0\.$"):
        adam(np.ones(2), np.ones(2), {"t": 1.0})


def test_get_update_rule_by_name_or_callable():
    """Names map to the rules, callables pass through, unknown names list the choices."""
    assert get_update_rule("adam") is adam and get_update_rule(sgd) is sgd
    assert optim.sgd is sgd
    with pytest.raises(ValueError, match=r"update_rule must be one of \['adam', 'adamw', 'nesterov', 'rmsprop', 'sgd', 'sgd_momentum'\]"):
        get_update_rule("adagrad")
