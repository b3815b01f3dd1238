"""Checks that every layer's tests share: gradients through check_layer, purity, dtype preservation.

Each assertion's message names the layer, the argument, the worst index, and got vs expected.
"""

from __future__ import annotations

import copy

import numpy as np

from gradcheck import RTOL, check_layer

# Relative tolerance of the gradient checks: check_layer's default (a correct float64 backward
# lands near 1e-9; a bug is off by far more).
GRAD_RTOL = RTOL


def as_tuple(grads):
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


def _snapshot(obj):
    return copy.deepcopy(obj)


def _assert_same(before, after, what):
    if isinstance(before, (tuple, list)):
        assert isinstance(after, (tuple, list)) and len(before) == len(after), f"{what} changed structure"
        for k, (b, a) in enumerate(zip(before, after)):
            _assert_same(b, a, f"{what}[{k}]")
    elif isinstance(before, dict):
        assert before.keys() == after.keys(), f"{what} changed keys"
        for k in before:
            _assert_same(before[k], after[k], f"{what}[{k!r}]")
    elif isinstance(before, (np.ndarray, np.generic)):
        assert np.array_equal(before, after, equal_nan=True), f"{what} was mutated"
    else:
        assert before == after, f"{what} was mutated: {before!r} -> {after!r}"


def assert_pure(forward, backward, inputs, params=None, seed=0):
    """Forward and backward leave their inputs, dout and the cache untouched, and no
    returned gradient shares memory with dout or an input."""
    params = params or {}
    values = list(inputs.values())
    saved_inputs = _snapshot(values)
    out, cache = forward(*values, **params)
    saved_cache = _snapshot(cache)
    dout = random_dout(out, seed)
    saved_dout = dout.copy()
    grads = as_tuple(backward(dout, cache))
    _assert_same(saved_inputs, values, f"{forward.__name__} inputs")
    _assert_same(saved_cache, cache, f"{backward.__name__} cache")
    _assert_same(saved_dout, dout, f"{backward.__name__} dout")
    for name, grad in zip(inputs, grads):
        for other_name, other in [("dout", dout), *zip(inputs, values)]:
            assert not np.shares_memory(grad, other), (
                f"{backward.__name__}: d{name} shares memory with {other_name}")


def assert_dtype_preserved(forward, backward, inputs, params=None, seed=0):
    """With inputs of one dtype, the output and every gradient keep that dtype and their shape."""
    params = params or {}
    dtype = next(iter(inputs.values())).dtype
    out, cache = forward(*inputs.values(), **params)
    assert np.asarray(out).dtype == dtype, f"{forward.__name__}: out is {np.asarray(out).dtype}, expected {dtype}"
    grads = as_tuple(backward(random_dout(out, seed), cache))
    for (name, value), grad in zip(inputs.items(), grads):
        assert np.asarray(grad).dtype == dtype, (
            f"{backward.__name__}: d{name} is {np.asarray(grad).dtype}, expected {dtype}")
        assert np.shape(grad) == value.shape, (
            f"{backward.__name__}: d{name} has shape {np.shape(grad)}, expected {value.shape}")
