"""Checks that every layer's tests share: numeric gradients, purity and dtype preservation.

Each assertion's message names the layer, the argument, the worst index, and got vs expected.
"""

from __future__ import annotations

import copy

import numpy as np

from gradcheck import eval_numerical_gradient_array

# Largest accepted rel_error between an analytic gradient and the centered difference in
# float64 with h = 1e-5: the difference's truncation error is O(h^2) ~ 1e-10 relative and its
# rounding error ~ eps / h ~ 1e-11, so a correct backward lands near 1e-9 or below.
GRAD_RTOL = 1e-7
# The step eval_numerical_gradient_array uses by default.
NUMERIC_H = 1e-5


# Rounding noise of a centered difference is absolute, not relative: for a scalar f it is about
# eps * |f| / h, and for sum(f(x) * df) at most eps * sum(|f(x)| * |df|) / h. A gradient element
# far smaller than that noise (batchnorm's dx has such elements; the bias before a batchnorm has
# an exactly zero gradient) cannot be judged by its relative error alone, so checks allow an
# absolute floor of this many times the bound, on top of the relative tolerance GRAD_RTOL.
ROUNDING_SAFETY = 10
EPS = np.finfo(np.float64).eps


def assert_close_to_numeric(name, analytic, numeric, atol, rtol=GRAD_RTOL):
    """|a - n| <= atol + rtol * max(|a|, |n|) elementwise, with a message naming the worst element."""
    analytic = np.asarray(analytic, dtype=np.float64)
    diff = np.abs(analytic - numeric)
    allowed = atol + rtol * np.maximum(np.abs(analytic), np.abs(numeric))
    if np.any(diff > allowed):
        worst = np.unravel_index(np.argmax(diff - allowed), diff.shape) if diff.ndim else ()
        raise AssertionError(
            f"{name}: {int(np.sum(diff > allowed))} element(s) off; worst index {worst}: analytic "
            f"{analytic[worst]!r} vs numeric {numeric[worst]!r}, |diff| {diff[worst]:.2e} > "
            f"allowed {allowed[worst]:.2e} (atol {atol:.1e}, rtol {rtol:.0e})")


def assert_scalar_gradient_close(name, analytic, numeric, f_value, h=1e-5, rtol=GRAD_RTOL):
    """The check above for the gradient of a scalar f (a loss): atol from eps * max(1, |f|) / h."""
    atol = ROUNDING_SAFETY * EPS * max(1.0, abs(float(f_value))) / h
    assert_close_to_numeric(name, analytic, numeric, atol, rtol)


def as_tuple(grads):
    return grads if isinstance(grads, tuple) else (grads,)


def random_dout(out, seed):
    """A signed random upstream gradient shaped and typed like the forward output."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(np.shape(out)).astype(np.asarray(out).dtype)


def assert_backward_matches_numeric(forward, backward, inputs, params=None, seed=0, tol=GRAD_RTOL):
    """Every gradient from backward matches eval_numerical_gradient_array on that input.

    Args:
        forward, backward: the layer pair.
        inputs: dict of argument name -> float64 array, in forward's positional order.
        params: keyword arguments for forward that are not differentiated.
    """
    params = params or {}
    names = list(inputs)
    values = [inputs[n].copy() for n in names]
    out, cache = forward(*values, **params)
    dout = random_dout(out, seed)
    grads = as_tuple(backward(dout, cache))
    assert len(grads) == len(names), (
        f"{backward.__name__} returned {len(grads)} gradients for inputs {names}")
    for i, name in enumerate(names):

        def f(v, i=i):
            args = list(values)
            args[i] = v
            return forward(*args, **params)[0]

        numeric = eval_numerical_gradient_array(f, values[i].copy(), dout)
        analytic = grads[i]
        assert np.shape(analytic) == values[i].shape, (
            f"{backward.__name__}: d{name} has shape {np.shape(analytic)}, expected {values[i].shape}")
        atol = ROUNDING_SAFETY * EPS * float(np.sum(np.abs(out) * np.abs(dout))) / NUMERIC_H
        assert_close_to_numeric(f"{backward.__name__}: d{name}", analytic, numeric, atol, tol)
    return grads


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
