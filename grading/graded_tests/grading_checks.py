"""What the graded tests share: the comparison, the layer and net gradient checks, and the local
stand-in for the grader's handle on your code.

The tests call your code through the ``student`` fixture, never by importing it:

    out, cache = student.call("layers.affine_forward", x, w, b)

On your machine ``student`` is a LocalStudent: it imports your modules and calls them directly.
In the autograder it is the grader's RemoteStudent, which runs your code in a separate,
sandboxed process and sends arguments and results across as plain data, so the tests, their
tolerances and any reference data never share a process with the code they grade.

Whatever your code returns is converted with ``np.asarray(value, dtype=np.float64)`` and its
shape checked before any arithmetic, so an object that answers True to every ``==`` gains
nothing; messages give error sizes and an index, never the expected values.
"""

from __future__ import annotations

import importlib

import numpy as np

from gradcheck import check_layer, check_loss, check_model
from gradcheck.registry import check_inputs, layer_case

# float64 results of the same formulas agree to about 1e-12; 1e-8 leaves room for a
# different but equivalent order of operations.
RTOL = 1e-8
ATOL = 1e-10


def as_float64(what: str, value) -> np.ndarray:
    """value as a float64 array, or an AssertionError naming what could not be converted."""
    if type(value) not in (np.ndarray, float, int, bool, list, tuple) and not isinstance(value, np.generic):
        raise AssertionError(f"{what}: expected an array of numbers, got {type(value).__name__}.")
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{what}: expected an array of numbers, got {type(value).__name__} ({exc}).") from None


def assert_matches(what: str, got, expected, rtol: float = RTOL, atol: float = ATOL) -> None:
    """Assert got equals expected elementwise within |g - e| <= atol + rtol * |e|.

    Args:
        what: names the value in the message, e.g. "affine_forward out".
        got: what the submission returned.
        expected: the reference value.
        rtol, atol: the tolerance.
    """
    expected = np.asarray(expected, dtype=np.float64)
    got = as_float64(what, got)
    if got.shape != expected.shape:
        raise AssertionError(f"{what}: shape {got.shape}, expected {expected.shape}.")
    if not np.all(np.isfinite(got)):
        bad = int(np.count_nonzero(~np.isfinite(got)))
        raise AssertionError(f"{what}: {bad} of {got.size} values are NaN or infinite.")
    err = np.abs(got - expected)
    allowed = atol + rtol * np.abs(expected)
    wrong = err > allowed
    if wrong.any():
        worst = np.unravel_index(int(np.argmax(err - allowed)), err.shape) if err.ndim else ()
        rel = float(err.max() / max(float(np.abs(expected).max()), atol))
        raise AssertionError(
            f"{what}: {int(wrong.sum())} of {err.size} values are off; largest absolute error "
            f"{float(err.max()):.3g} (relative to the largest value: {rel:.3g}) at index "
            f"{tuple(int(i) for i in worst)}; tolerance {atol:g} + {rtol:g} * |expected|."
        )


def _require_numbers(what: str, value) -> None:
    """An AssertionError unless value is an array, a number, or a tuple/list of them."""
    if isinstance(value, (tuple, list)):
        for k, item in enumerate(value):
            _require_numbers(f"{what}[{k}]", item)
    elif type(value) is not np.ndarray and not isinstance(value, (int, float, np.generic)) or isinstance(value, bool):
        raise AssertionError(f"{what}: expected an array of numbers, got {type(value).__name__}.")


def _checked(function, kind: str):
    """function, with what it returns checked to be numbers before the gradient check reads it."""
    name = getattr(function, "__name__", "the function")

    def call(*args, **kwargs):
        result = function(*args, **kwargs)
        if kind == "backward":
            _require_numbers(f"{name} gradients", result)
            return result
        if not isinstance(result, tuple) or len(result) != 2:
            raise AssertionError(f"{name}: expected a pair ({'loss, dx' if kind == 'loss' else 'out, cache'}), "
                                 f"got {type(result).__name__}.")
        _require_numbers(f"{name} {'loss, dx' if kind == 'loss' else 'out'}", result if kind == "loss" else result[0])
        return result

    call.__name__ = name
    return call


def check_layer_case(student, case_name: str, seed: int, mode: str = "fast"):
    """Gradient-check the student's layer pair of a registered case; returns the CheckReport.

    The inputs come from the case (gradcheck.registry), the forward and backward are the
    student's, called through ``student``; the numeric differences are taken on this side.
    """
    case = layer_case(case_name)
    inputs, params = check_inputs(case, seed)
    forward = _checked(student.function(f"layers.{case.forward.__name__}"), case.kind if case.kind == "loss" else "forward")
    if case.kind == "loss":
        report = check_loss(forward, inputs, params=params, seed=seed, **{**case.check, "mode": mode})
    else:
        backward = _checked(student.function(f"layers.{case.backward.__name__}"), "backward")
        report = check_layer(forward, backward, inputs, params=params, seed=seed, **{**case.check, "mode": mode})
    report.target = case.name
    return report


def check_net(student, target: str, X, y, *args, mode: str = "fast", **kwargs):
    """Gradient-check every parameter of the student's net target(*args, **kwargs) on (X, y)."""
    return check_model(student.model(target, *args, **kwargs), X, y, mode=mode)


class LocalStudent:
    """The ``student`` fixture outside the autograder: your own modules, called in this process."""

    def _resolve(self, target):
        if isinstance(target, (list, tuple)):
            obj, method = target
            return getattr(obj, method)
        parts = target.split(".")
        obj = importlib.import_module(parts[0])
        for i, part in enumerate(parts[1:], start=2):
            try:
                obj = getattr(obj, part)
            except AttributeError:  # a submodule its package does not import (solver.classifiers)
                obj = importlib.import_module(".".join(parts[:i]))
        return obj

    def call(self, target, *args, **kwargs):
        """target(*args, **kwargs); target is a dotted name like "layers.affine_forward"."""
        return self._resolve(target)(*args, **kwargs)

    def call_with_args(self, target, *args, **kwargs):
        """(value, args, kwargs): the arguments as the call left them."""
        args = list(args)
        return self._resolve(target)(*args, **kwargs), args, kwargs

    def function(self, target):
        """The function itself."""
        return self._resolve(target)

    def getattr(self, obj, name):
        """getattr(obj, name)."""
        return getattr(obj, name)

    def setattr(self, obj, name, value):
        """setattr(obj, name, value)."""
        setattr(obj, name, value)

    def model(self, target, *args, **kwargs):
        """The net target(*args, **kwargs) itself."""
        return self.call(target, *args, **kwargs)

    def use_standins(self, names):
        """The autograder swaps in its own layers of these names for net tests; here yours are used."""
