"""Numerical gradients by centered differences, and the relative error used to compare them.

    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2 h)        error O(h^2)

The functions perturb x in place, one element at a time, and always put the original value
back, even when f raises. centered_pair and directional_pair are the evaluations every difference
here is made of (one element, or the whole array along a direction); check_layer's engine
(gradcheck.engine) takes its differences with them too. The ``_blobs`` and ``_net`` variants do
the same for the course's blobs: objects whose ``.vals`` hold values and ``.diffs`` the upstream
gradient. Run them in float64: in float32 a step of h = 1e-5 is lost to rounding for values above about 1e2 and the
quotient is mostly noise.

Shape letters: S is x's shape, S_out the shape of f's output.
"""

from __future__ import annotations

import numbers

import numpy as np

from layers.validate import integer

# The floor on |x| + |y| in rel_error, so that two near-zero gradients do not divide by zero.
REL_ERROR_FLOOR = 1e-8


def _check_x(fn: str, x, name: str = "x") -> np.ndarray:
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        got = f"array of dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(
            f"{fn}: {name} must be a floating-point numpy array (it is perturbed in place), got {got}."
        )
    if not x.flags.writeable:
        raise ValueError(f"{fn}: {name} must be writeable (it is perturbed in place); pass {name}.copy().")
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


def centered_pair(f, x, ix, h):
    """f evaluated with x[ix] moved up by h and down by h, x restored after each call (even when f raises).

    The centered difference is (f_plus - f_minus) / (2 h), or (f_plus - f_minus) / (h_plus + h_minus)
    with the steps actually taken: x[ix] + h and x[ix] - h are rounded to x's dtype, so the steps
    differ from h in their last bits.

    Args:
        f: callable taking x; its results are returned as they are.
        x: floating-point array; x[ix] is perturbed in place and restored.
        ix: the index of one element of x (a tuple, or an int into a flat x).
        h: the step, > 0.

    Returns:
        (f_plus, f_minus, h_plus, h_minus): f at x[ix] + h and at x[ix] - h, and the steps
        (x[ix] + h) - x[ix] and x[ix] - (x[ix] - h) as rounded.

    Shape:
        x: S; ix: an index into S
    """
    old = x[ix]
    up, down = old + h, old - h
    f_plus = _at(f, x, ix, up)
    f_minus = _at(f, x, ix, down)
    return f_plus, f_minus, up - old, old - down


def directional_pair(f, x, v, t):
    """f evaluated at x + t v and at x - t v, x restored after each call (even when f raises).

    (f_plus - f_minus) / (2 t) is the centered difference of f along v: the directional
    derivative <grad f(x), v> to O(t^2).

    Args:
        f: callable taking x; its results are returned as they are.
        x: floating-point array; perturbed in place and restored.
        v: the direction, shaped like x.
        t: the step along v, > 0.

    Returns:
        (f_plus, f_minus).

    Shape:
        x, v: S
    """
    x0 = x.copy()
    try:
        x[...] = x0 + t * v
        f_plus = f(x)
        x[...] = x0 - t * v
        f_minus = f(x)
    finally:
        x[...] = x0
    return f_plus, f_minus


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
        f_plus, f_minus, _, _ = centered_pair(f, x, ix, h)
        grad[ix] = (_scalar(fn, f_plus) - _scalar(fn, f_minus)) / (2 * h)
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
        pos, neg, _, _ = centered_pair(f, x, ix, h)
        pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
        if pos.shape != df.shape:
            raise ValueError(
                f"{fn}: f returned shape {pos.shape} but df has shape {df.shape}; "
                f"df must be shaped like f's output."
            )
        grad[ix] = np.sum((pos - neg) * df) / (2 * h)
    return grad


def _blob_vals(fn: str, what: str, blob) -> np.ndarray:
    if not hasattr(blob, "vals"):
        raise TypeError(f"{fn}: {what} must be a blob with .vals (and .diffs), got {type(blob).__name__}.")
    return blob.vals


def eval_numerical_gradient_blobs(f, inputs, output, h=1e-5):
    """Centered-difference gradients for a function on the course's blobs (objects with .vals, .diffs).

    ``f(*inputs, output)`` reads each input's ``.vals`` and writes its result into
    ``output.vals``; with ``output.diffs`` as the upstream gradient, this is the gradient of
    sum(output.vals * output.diffs) with respect to each input's ``.vals``, as
    eval_numerical_gradient_array computes it for one array.

    Args:
        f: callable f(*inputs, output) that fills output.vals.
        inputs: a sequence of blobs; each one's .vals (a floating-point array) is perturbed in
            place and restored, even when f raises.
        output: a blob whose .diffs is the upstream gradient, shaped like the .vals f writes.
        h: step size.

    Returns:
        A list with one float64 array per input, shaped like its .vals.

    Shape:
        inputs[i].vals, result[i]: S_i
        output.vals, output.diffs: S_out
    """
    fn = "eval_numerical_gradient_blobs"
    h = _check_h(fn, h)
    inputs = tuple(inputs)
    vals = [_check_x(fn, _blob_vals(fn, f"inputs[{i}]", blob), f"inputs[{i}].vals") for i, blob in enumerate(inputs)]
    _blob_vals(fn, "output", output)
    if not hasattr(output, "diffs"):
        raise TypeError(f"{fn}: output must be a blob with .vals and .diffs (the upstream gradient), "
                        f"got {type(output).__name__} without .diffs.")
    diffs = np.asarray(output.diffs)

    def result(_):
        f(*inputs, output)
        out = np.array(output.vals, dtype=np.float64)  # a copy: f may reuse the buffer
        if out.shape != diffs.shape:
            raise ValueError(f"{fn}: f wrote output.vals of shape {out.shape} but output.diffs has shape "
                             f"{diffs.shape}; they must match.")
        return out

    grads = []
    for x in vals:
        grad = np.zeros(x.shape, dtype=np.float64)
        for ix in np.ndindex(x.shape):
            pos, neg, _, _ = centered_pair(result, x, ix, h)
            grad[ix] = np.sum((pos - neg) * diffs) / (2 * h)
        grads.append(grad)
    return grads


def eval_numerical_gradient_net(net, inputs, output, h=1e-5):
    """eval_numerical_gradient_blobs for a net whose ``forward()`` reads inputs and fills output.

    Args:
        net: an object with a forward() method (called with no arguments).
        inputs, output, h: as for eval_numerical_gradient_blobs.

    Returns:
        A list with one float64 array per input, shaped like its .vals.

    Shape:
        inputs[i].vals, result[i]: S_i
        output.vals, output.diffs: S_out
    """
    if not callable(getattr(net, "forward", None)):
        raise TypeError(f"eval_numerical_gradient_net: net must have a forward() method, got {type(net).__name__}.")
    return eval_numerical_gradient_blobs(lambda *blobs: net.forward(), inputs, output, h=h)


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
    num_checks = integer(fn, "num_checks", num_checks, low=1)
    if x.size == 0:
        raise ValueError(f"{fn}: x is empty (shape {x.shape}); there is nothing to check.")
    rng = np.random.default_rng(seed)
    errors = np.zeros(int(num_checks), dtype=np.float64)
    for k in range(int(num_checks)):
        ix = tuple(int(rng.integers(n)) for n in x.shape)
        f_plus, f_minus, _, _ = centered_pair(f, x, ix, h)
        numeric = (_scalar(fn, f_plus) - _scalar(fn, f_minus)) / (2 * h)
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
    return float(np.max(relative_errors(x_arr, y_arr)))


def relative_errors(x, y):
    """Elementwise |x - y| / max(1e-8, |x| + |y|): the errors whose maximum rel_error reports.

    Args:
        x, y: arrays (or numbers) of the same shape; no broadcasting.

    Returns:
        float64 array of relative errors (a 0-d array for numbers).

    Shape:
        x, y, result: S
    """
    x_arr = np.asarray(x, dtype=np.float64)
    y_arr = np.asarray(y, dtype=np.float64)
    if x_arr.shape != y_arr.shape:
        raise ValueError(f"relative_errors: x has shape {x_arr.shape} but y has shape {y_arr.shape}; "
                         f"they must match (no broadcasting).")
    return np.abs(x_arr - y_arr) / np.maximum(REL_ERROR_FLOOR, np.abs(x_arr) + np.abs(y_arr))
