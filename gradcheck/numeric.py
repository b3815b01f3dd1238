"""Numerical gradients by centered differences, and the relative error used to compare them.

    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2 h)        error O(h^2)

The functions perturb x in place, one element at a time, and always put the original value
back, even when f raises. Run them in float64: in float32 a step of h = 1e-5 is lost to
rounding for values above about 1e2 and the quotient is mostly noise.

Shape letters: S is x's shape, S_out the shape of f's output.
"""

from __future__ import annotations

import numbers

import numpy as np

# The floor on |x| + |y| in rel_error, so that two near-zero gradients do not divide by zero.
REL_ERROR_FLOOR = 1e-8


def _check_x(fn: str, x) -> np.ndarray:
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        got = f"array of dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(
            f"{fn}: x must be a floating-point numpy array (it is perturbed in place), got {got}."
        )
    if not x.flags.writeable:
        raise ValueError(f"{fn}: x must be writeable (it is perturbed in place); pass x.copy().")
    return x


def _check_h(fn: str, h) -> float:
    if isinstance(h, bool) or not isinstance(h, numbers.Real) or not (np.isfinite(h) and h > 0):
        raise ValueError(f"{fn}: h must be a positive finite step size, got {h!r}.")
    return float(h)


def _at(f, x, ix, value):
    """Evaluate f with x[ix] set to value, restoring x[ix] afterwards whatever happens."""
    old = x[ix]
    x[ix] = value
    try:
        return f(x)
    finally:
        x[ix] = old


def _scalar(fn: str, value) -> float:
    if np.ndim(value) != 0:
        raise ValueError(
            f"{fn}: f must return a scalar, got an array of shape {np.shape(value)}; "
            f"use eval_numerical_gradient_array for array-valued f."
        )
    return float(value)


def eval_numerical_gradient(f, x, verbose=True, h=1e-5):
    """Centered-difference gradient of a scalar function f at x.

    Args:
        f: callable taking x and returning a scalar.
        x: floating-point array; perturbed in place and restored.
        verbose: print each index and its gradient as it is computed.
        h: step size.

    Returns:
        grad: float64 array shaped like x.

    Shape:
        x, grad: S
    """
    fn = "eval_numerical_gradient"
    x = _check_x(fn, x)
    h = _check_h(fn, h)
    grad = np.zeros(x.shape, dtype=np.float64)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        f_plus = _scalar(fn, _at(f, x, ix, old + h))
        f_minus = _scalar(fn, _at(f, x, ix, old - h))
        grad[ix] = (f_plus - f_minus) / (2 * h)
        if verbose:
            print(ix, grad[ix])
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Centered-difference gradient of sum(f(x) * df) at x, for an array-valued f.

    This is the gradient a backward pass computes when df is its upstream gradient.

    Args:
        f: callable taking x and returning an array shaped like df.
        x: floating-point array; perturbed in place and restored.
        df: upstream gradient.
        h: step size.

    Returns:
        grad: float64 array shaped like x.

    Shape:
        x, grad: S
        df, f(x): S_out
    """
    fn = "eval_numerical_gradient_array"
    x = _check_x(fn, x)
    h = _check_h(fn, h)
    df = np.asarray(df)
    grad = np.zeros(x.shape, dtype=np.float64)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        pos = np.asarray(_at(f, x, ix, old + h), dtype=np.float64)
        neg = np.asarray(_at(f, x, ix, old - h), dtype=np.float64)
        if pos.shape != df.shape:
            raise ValueError(
                f"{fn}: f returned shape {pos.shape} but df has shape {df.shape}; "
                f"df must be shaped like f's output."
            )
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    return grad


def grad_check_sparse(f, x, analytic_grad, num_checks=10, h=1e-5, seed=None, verbose=True):
    """Compare an analytic gradient with centered differences at a few random elements.

    Args:
        f: callable taking x and returning a scalar.
        x: floating-point array; perturbed in place and restored.
        analytic_grad: the gradient to check, shaped like x.
        num_checks: how many elements to sample (with replacement).
        h: step size.
        seed: seed of the private random generator that picks the elements; numpy's global
            random state is left alone.
        verbose: print one line per element.

    Returns:
        errors: float64 array of the num_checks relative errors |n - a| / (|n| + |a|), with 0
            where both gradients are exactly zero (never NaN).

    Shape:
        x, analytic_grad: S
        errors: (num_checks,)
    """
    fn = "grad_check_sparse"
    x = _check_x(fn, x)
    h = _check_h(fn, h)
    analytic_grad = np.asarray(analytic_grad)
    if analytic_grad.shape != x.shape:
        raise ValueError(
            f"{fn}: analytic_grad has shape {analytic_grad.shape} but x has shape {x.shape}; "
            f"they must match."
        )
    if isinstance(num_checks, bool) or not isinstance(num_checks, numbers.Integral) or num_checks < 1:
        raise ValueError(f"{fn}: num_checks must be an int >= 1, got {num_checks!r}.")
    if x.size == 0:
        raise ValueError(f"{fn}: x is empty (shape {x.shape}); there is nothing to check.")
    rng = np.random.default_rng(seed)
    errors = np.zeros(int(num_checks), dtype=np.float64)
    for k in range(int(num_checks)):
        ix = tuple(int(rng.integers(n)) for n in x.shape)
        old = x[ix]
        numeric = (_scalar(fn, _at(f, x, ix, old + h)) - _scalar(fn, _at(f, x, ix, old - h))) / (2 * h)
        analytic = float(analytic_grad[ix])
        denom = abs(numeric) + abs(analytic)
        errors[k] = abs(numeric - analytic) / denom if denom > 0 else 0.0
        if verbose:
            print(f"index {ix}: numerical {numeric:+.6e} analytic {analytic:+.6e}, "
                  f"relative error {errors[k]:.3e}")
    return errors


def rel_error(x, y):
    """The largest elementwise relative error, max(|x - y| / max(1e-8, |x| + |y|)).

    Args:
        x, y: arrays (or numbers) of the same shape; no broadcasting.

    Returns:
        The maximum relative error as a Python float (0.0 for empty inputs).

    Shape:
        x, y: S
    """
    x_arr = np.asarray(x, dtype=np.float64)
    y_arr = np.asarray(y, dtype=np.float64)
    if x_arr.shape != y_arr.shape:
        raise ValueError(
            f"rel_error: x has shape {x_arr.shape} but y has shape {y_arr.shape}; "
            f"they must match (no broadcasting)."
        )
    if x_arr.size == 0:
        return 0.0
    diff = np.abs(x_arr - y_arr)
    return float(np.max(diff / np.maximum(REL_ERROR_FLOOR, np.abs(x_arr) + np.abs(y_arr))))
