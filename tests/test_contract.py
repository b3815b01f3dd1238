"""Tests for gradcheck.contract: every side check of check_layer fails on a layer that breaks it
(none is constant), the check functions return structured SideChecks, LayerContract counts its
calls, and the tests' harness catches what the contract describes."""

import numpy as np
import pytest

from gradcheck import check_layer, contract
from harness import assert_dtype_preserved, assert_pure
from layers import affine_backward, affine_forward, relu_forward
from test_check import (
    _affine_inputs,
    _relu_input,
    affine_backward_db_not_summed,
    affine_backward_ignoring_dout,
    relu_backward_mutating_dout,
)

pytestmark = pytest.mark.gradcheck


def forward_mutating_x(x, w, b):
    out = affine_forward(x, w, b)
    x[0, 0] += 1.0
    return out


def affine_backward_without_db(dout, cache):
    return affine_backward(dout, cache)[:2]


def affine_backward_writing_the_cache(dout, cache):
    grads = affine_backward(dout, cache)
    cache[1][0, 0] = 0.0
    return grads


def affine_forward_caching_its_inputs(x, w, b):
    return x @ w + b, (x, w)


def affine_backward_writing_x(dout, cache):
    x, w = cache
    dx, dw, db = dout @ w.T, x.T @ dout, dout.sum(axis=0)
    x[0, 0] = 0.0  # the cache holds x itself: the input changes
    return dx, dw, db


def _noisy_backward():
    rng = np.random.default_rng(0)

    def affine_backward_with_noise(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx, dw, db + 1e-3 * rng.standard_normal(db.shape)
    return affine_backward_with_noise


def affine_backward_squaring_dout(dout, cache):
    return affine_backward(dout * np.abs(dout), cache)


# code -> (forward, backward) whose check fails that side check
BROKEN_CONTRACT = {
    contract.FORWARD_LEAVES_INPUTS: (forward_mutating_x, affine_backward),
    contract.ONE_GRADIENT_PER_INPUT: (affine_forward, affine_backward_without_db),
    contract.BACKWARD_LEAVES_DOUT: (relu_forward, relu_backward_mutating_dout),
    contract.BACKWARD_LEAVES_CACHE: (affine_forward, affine_backward_writing_the_cache),
    contract.BACKWARD_LEAVES_INPUTS: (affine_forward_caching_its_inputs, affine_backward_writing_x),
    contract.GRADIENT_SHAPES: (affine_forward, affine_backward_db_not_summed),
    contract.BACKWARD_DETERMINISTIC: (affine_forward, None),
    contract.ZERO_DOUT: (affine_forward, affine_backward_ignoring_dout),
    contract.LINEAR_IN_DOUT: (affine_forward, affine_backward_squaring_dout),
}


@pytest.mark.parametrize("code", list(BROKEN_CONTRACT))
def test_each_side_check_fails_on_a_layer_that_breaks_it(code):
    """No side check of check_layer is constant: for each one a broken layer fails it, with a detail."""
    forward, backward = BROKEN_CONTRACT[code]
    inputs = _relu_input() if forward is relu_forward else _affine_inputs()
    report = check_layer(forward, backward or _noisy_backward(), inputs, mode="full")
    side = {s.code: s for s in report.side_checks}[code]
    assert not side.passed and side.detail and side.name in report.failures, str(report)
    # forward determinism and the dtype check have their own tests above


def test_a_forward_that_mutates_its_inputs_is_not_blamed_on_backward():
    """Only 'forward leaves its inputs alone' fails when forward writes into x; backward's check judges backward."""
    report = check_layer(forward_mutating_x, affine_backward, _affine_inputs(), mode="full")
    failed = {s.code for s in report.side_checks if not s.passed}
    assert contract.FORWARD_LEAVES_INPUTS in failed and contract.BACKWARD_LEAVES_INPUTS not in failed, str(report)


def test_side_check_functions_return_structured_results():
    """The contract's checks compare what they are given and return a SideCheck with code, verdict and detail."""
    x = np.ones((2, 3))
    ok = contract.gradients_have_input_shapes(["x"], [x.shape], [np.zeros((2, 3))])
    bad = contract.gradients_have_input_shapes(["x"], [x.shape], [np.zeros((3, 2))])
    assert ok.passed and ok.code == contract.GRADIENT_SHAPES and ok.detail == ""
    assert not bad.passed and bad.detail == "dx is (3, 2), x is (2, 3)"
    shared = contract.gradients_own_their_memory(["x"], [x[0]], np.zeros(3), [x])
    assert not shared.passed and shared.detail == "dx shares memory with x"
    mixed = contract.forward_keeps_dtype((x, x.astype(np.float32)), np.float64)
    assert not mixed.passed and mixed.detail == "out[1] is float32, expected float64"
    assert contract.differences({"a": [x, 1]}, {"a": [x + 1, 1]}, "cache") == ["cache['a'][0]"]
    assert contract.like_output((x, x), contract.output_leaves((x, x))) == (x, x)


def test_gradient_side_checks_judge_the_arrays_they_are_given():
    """Determinism, zero-dout and linearity checks pass on consistent results, else fail naming the gradient."""
    g, names = (np.ones(3),), ["x"]
    assert contract.forward_is_deterministic(g[0], g[0]).passed
    assert not contract.forward_is_deterministic(g[0], g[0] + 1).passed
    assert contract.backward_is_deterministic(g, (np.ones(3),)).passed
    assert not contract.backward_is_deterministic(g, (np.zeros(3),)).passed
    assert contract.zero_dout_gives_zero_gradients(names, (np.zeros(3),)).passed
    assert contract.zero_dout_gives_zero_gradients(names, g).detail.startswith("dx not zero")
    g2 = (np.full(3, 5.0),)
    assert contract.backward_is_linear_in_dout(names, g, g2, (2 * g[0] - 3 * g2[0],)).passed
    bad = contract.backward_is_linear_in_dout(names, g, g2, (2 * g[0] - 3 * g2[0] + 1e-6,))
    assert not bad.passed and bad.detail.startswith("dx: backward(2 d1 - 3 d2)")


def test_layer_contract_counts_its_calls_and_keeps_what_the_first_calls_returned():
    """LayerContract runs forward twice and backward five times for a correct layer, every check passing."""
    inputs = _affine_inputs()
    layer = contract.LayerContract("t", affine_forward, affine_backward, list(inputs), list(inputs.values()), {})
    d_leaves = [np.ones((6, 12))]
    sides = layer.check_forward() + layer.check_backward(d_leaves, np.random.default_rng(0))
    assert all(s.passed for s in sides) and (layer.forward_calls, layer.backward_calls) == (2, 5)
    np.testing.assert_array_equal(layer.grads[2], np.full(12, 6.0))  # db = dout summed over the batch
    assert all(v is not inputs[n] and np.array_equal(v, inputs[n]) for n, v in zip(inputs, layer.values))


def test_harness_purity_check_catches_a_gradient_sharing_memory_with_dout():
    """assert_pure (the tests' harness, through the contract) refuses a backward that hands back dout itself."""
    def identity_forward(x):
        return x.copy(), None

    def identity_backward(dout, cache):
        return dout

    with pytest.raises(AssertionError, match="gradients own their memory fails: dx shares memory with dout"):
        assert_pure(identity_forward, identity_backward, {"x": np.ones((2, 3))})
    with pytest.raises(AssertionError, match="backward leaves dout alone fails: changed: dout"):
        assert_pure(relu_forward, relu_backward_mutating_dout, _relu_input())


def test_harness_dtype_check_catches_an_upcasting_forward():
    """assert_dtype_preserved refuses a forward whose float32 inputs give a float64 output."""
    def upcasting_forward(x):
        return x.astype(np.float64), None

    def upcasting_backward(dout, cache):
        return dout.astype(np.float32)

    with pytest.raises(AssertionError, match="forward keeps its inputs' dtype fails: out is float64, expected float32"):
        assert_dtype_preserved(upcasting_forward, upcasting_backward, {"x": np.ones((2, 3), np.float32)})
