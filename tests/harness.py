"""Checks that every layer's tests share: gradients through check_layer, purity, dtype preservation.

The purity and dtype checks are gradcheck.contract's side checks (the ones check_layer runs),
asserted here on the layer's own inputs in their own dtype. Each assertion's message names the
layer, the property, the argument, and got vs expected.
"""

from __future__ import annotations

import numpy as np

from gradcheck import RTOL, check_layer, contract

# Relative tolerance of the gradient checks: check_layer's default (a correct float64 backward
# lands near 1e-9; a bug is off by far more).
GRAD_RTOL = RTOL


def as_tuple(grads):
    """backward's result as a tuple of gradients (a single gradient becomes a 1-tuple)."""
    return grads if isinstance(grads, tuple) else (grads,)


def random_dout(out, seed):
    """A signed random upstream gradient shaped and typed like the forward output."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(np.shape(out)).astype(np.asarray(out).dtype)


def assert_backward_matches_numeric(forward, backward, inputs, params=None, seed=0, tol=GRAD_RTOL):
    """check_layer in full mode passes: every gradient element matches its centered difference
    (float64), no element sits on a kink, and every side check holds.

    Args:
        forward, backward: the layer pair.
        inputs: dict of argument name -> float64 array, in forward's positional order.
        params: keyword arguments for forward that are not differentiated.
        seed: seeds the upstream gradient.
        tol: the relative tolerance.

    Returns:
        the analytic gradients for that upstream gradient, as a tuple.
    """
    params = params or {}
    out, cache = forward(*[v.copy() for v in inputs.values()], **params)
    dout = random_dout(out, seed)
    report = check_layer(forward, backward, inputs, params=params, dout=dout, seed=seed, mode="full", rtol=tol)
    report.assert_ok()
    kinks = {r.name: r.kinks[:3] for r in report.inputs if r.kinks}
    assert not kinks, f"{report.target}: inputs on a kink {kinks}; draw them clear of kinks\n{report}"
    return as_tuple(backward(dout, cache))


def _assert_sides(layer, sides):
    failed = [s for s in sides if not s.passed]
    assert not failed, f"{layer}: " + "; ".join(f"{s.name} fails: {s.detail}" for s in failed)


def _layer_name(forward, backward):
    return f"{getattr(forward, '__name__', 'forward')} / {getattr(backward, '__name__', 'backward')}"


def assert_pure(forward, backward, inputs, params=None, seed=0):
    """Forward and backward leave their inputs, dout and the cache untouched, backward returns one
    gradient per input, and no returned gradient shares memory with dout or an input.

    The inputs are used as given (in their own dtype); the checks are gradcheck.contract's.
    """
    params = params or {}
    names, values = list(inputs), list(inputs.values())
    saved_inputs = contract.snapshot(values)
    out, cache = forward(*values, **params)
    after_forward = contract.snapshot(values)
    saved_cache = contract.snapshot(cache)
    dout = random_dout(out, seed)
    saved_dout = contract.snapshot(dout)
    grads = as_tuple(backward(dout, cache))
    _assert_sides(_layer_name(forward, backward), [
        contract.forward_leaves_inputs_alone(names, saved_inputs, after_forward),
        contract.backward_returns_one_gradient_per_input(grads, names),
        contract.backward_leaves_dout_alone(saved_dout, dout),
        contract.backward_leaves_cache_alone(saved_cache, cache),
        contract.backward_leaves_inputs_alone(names, after_forward, values),
        contract.gradients_own_their_memory(names, grads, dout, values),
    ])


def assert_dtype_preserved(forward, backward, inputs, params=None, seed=0):
    """With inputs of one dtype, the output and every gradient keep that dtype and their shape."""
    params = params or {}
    names, values = list(inputs), list(inputs.values())
    dtype = values[0].dtype
    out, cache = forward(*values, **params)
    grads = as_tuple(backward(random_dout(out, seed), cache))
    _assert_sides(_layer_name(forward, backward), [
        contract.forward_keeps_dtype(out, dtype),
        contract.backward_returns_one_gradient_per_input(grads, names),
        contract.gradients_keep_input_dtypes(names, [dtype] * len(names), grads),
        contract.gradients_have_input_shapes(names, [v.shape for v in values], grads),
    ])
