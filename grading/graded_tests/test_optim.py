"""Graded: the update rules sgd_momentum, rmsprop and adam."""

from __future__ import annotations

import numpy as np
import pytest
from grading_checks import assert_matches

W = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.5]])
DW = np.array([[0.5, -1.0, 2.0], [-0.25, 0.0, 1.0]])


@pytest.mark.points(1)
def test_sgd_momentum_first_two_steps(student):
    """From zero velocity: v1 = -lr dw, then v2 = mu v1 - lr dw."""
    lr, mu = 0.1, 0.9
    w1, config = student.call("solver.optim.sgd_momentum", W.copy(), DW, {"learning_rate": lr, "momentum": mu})
    assert_matches("sgd_momentum step 1", w1, W - lr * DW)
    w2, _ = student.call("solver.optim.sgd_momentum", np.asarray(w1, dtype=np.float64), DW, config)
    assert_matches("sgd_momentum step 2", w2, W - lr * DW + mu * (-lr * DW) - lr * DW)


@pytest.mark.points(1)
def test_rmsprop_first_step(student):
    """From a zero cache: cache = (1 - rho) dw^2 and the step is lr dw / (sqrt(cache) + eps)."""
    lr, rho, eps = 0.01, 0.9, 1e-8
    w1, _ = student.call("solver.optim.rmsprop", W.copy(), DW, {"learning_rate": lr, "decay_rate": rho, "epsilon": eps})
    assert_matches("rmsprop step 1", w1, W - lr * DW / (np.sqrt((1 - rho) * DW**2) + eps))


@pytest.mark.points(1)
def test_adam_first_step_has_size_learning_rate(student):
    """Bias correction makes Adam's first step lr * dw / (|dw| + eps): about lr per nonzero entry."""
    lr, eps = 1e-3, 1e-8
    w1, config = student.call("solver.optim.adam", W.copy(), DW, {"learning_rate": lr, "epsilon": eps})
    assert_matches("adam step 1", w1, W - lr * DW / (np.abs(DW) + eps))
    assert isinstance(config, dict) and config.get("t") == 1, \
        f"adam: config['t'] should be 1 after one step, got {config.get('t') if isinstance(config, dict) else config!r}"


# BEGIN HIDDEN TESTS
@pytest.mark.points(3)
@pytest.mark.parametrize("rule_name", ["sgd_momentum", "rmsprop", "adam"])
def test_update_rules_match_reference_over_five_steps(student, reference, rule_name):
    """Five steps with changing gradients land where the reference does."""
    ref = reference(rule_name)
    w, config = ref["w"].copy(), {"learning_rate": 0.05}
    for step, dw in enumerate(ref["dws"], start=1):
        w, config = student.call(f"solver.optim.{rule_name}", np.asarray(w, dtype=np.float64), dw, config)
        assert_matches(f"{rule_name} step {step}", w, ref["ws"][step - 1])
# END HIDDEN TESTS
