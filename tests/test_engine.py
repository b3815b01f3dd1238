"""Tests for gradcheck.engine: one target compared element by element and by probes, the settings
checks, the private float64 copies and the report's descriptions of the step and tolerance."""

import numpy as np
import pytest

from gradcheck import GradcheckWarning
from gradcheck.engine import (
    DEFAULT_PROBES,
    EPS,
    RTOL,
    Target,
    check_settings,
    compare,
    describe_atol,
    describe_h,
    warn_upcast,
    work_copies,
)
from gradcheck.report import InputReport

pytestmark = pytest.mark.gradcheck


def test_engine_compares_one_target_and_names_its_wrong_element():
    """The engine alone: Target + compare on sum(x**2), with one analytic element wrong, in full and fast mode."""
    x = np.random.default_rng(0).standard_normal((3, 4))
    analytic = 2 * x
    analytic[2, 1] += 1e-3
    for mode, expected in (("full", "full"), ("fast", "fast+full")):
        report = InputReport(name="x", shape=x.shape)
        target = Target("x", x, analytic, lambda: float(np.sum(x**2)), EPS * float(np.sum(x**2)), None, RTOL, None)
        compare(report, target, mode, np.random.default_rng(1), target.evaluate(), DEFAULT_PROBES, "rademacher", 3)
        assert report.mode == expected and not report.passed and report.mismatches == 1
        assert tuple(int(i) for i in report.worst) == (2, 1)


def test_engine_settings_copies_and_descriptions():
    """check_settings names the caller; work_copies are private float64 copies naming the upcast ones; the
    report's descriptions of h and atol; warn_upcast warns with a GradcheckWarning."""
    with pytest.raises(ValueError, match="check_model: probes must be an int >= 2, got 0"):
        check_settings("check_model", "auto", 0, None, RTOL, None, 0, "rademacher")
    x32 = np.ones((2, 2), np.float32)
    work, upcast = work_copies("f", {"x": x32, "s": 2.5})
    assert upcast == ["x"] and work["x"].dtype == np.float64 and not np.shares_memory(work["x"], x32)
    assert work["s"].shape == () and work["s"].dtype == np.float64
    assert (describe_h(None), describe_h(1e-4)) == ("cbrt(eps)*max(1,|x|)", "0.0001")
    assert (describe_atol(None), describe_atol(1e-6)) == ("auto (rounding noise)", "1e-06")
    with pytest.warns(GradcheckWarning, match="f: x not float64"):
        warn_upcast("f", ["x"])
