"""Comparisons for graded tests: messages give error sizes, never the expected values.

Whatever a submission returns is converted with ``np.asarray(value, dtype=np.float64)`` and
its shape checked before any arithmetic, so an object that answers True to every ``==``
gains nothing.
"""

from __future__ import annotations

import numpy as np

# float64 results of the same formulas agree to about 1e-12; 1e-8 leaves room for a
# different but equivalent order of operations.
RTOL = 1e-8
ATOL = 1e-10


def as_float64(what: str, value) -> np.ndarray:
    """value as a float64 array, or an AssertionError naming what could not be converted."""
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
