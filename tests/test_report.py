"""Tests for gradcheck.report: the verdict, the text and HTML renderings, and the hints."""

import numpy as np
import pytest

from gradcheck import check_layer, contract
from gradcheck.report import CheckReport, InputReport, SideCheck, gradient_hints, hints_from_side_checks, shape_hint
from layers import affine_backward, affine_forward

pytestmark = pytest.mark.gradcheck


def _inputs(seed=5):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((4, 3)), "w": rng.standard_normal((3, 3)), "b": rng.standard_normal(3)}


def test_report_is_true_only_when_inputs_and_side_checks_all_pass():
    """bool(report) needs every input and every side check to pass; failures lists the others."""
    ok = InputReport("x", (2,))
    bad = InputReport("w", (2,), passed=False)
    assert CheckReport("t", [ok], [SideCheck("s", True)], 0, "h", "full", 1e-7, "auto")
    assert not CheckReport("t", [ok, bad], [SideCheck("s", True)], 0, "h", "full", 1e-7, "auto")
    report = CheckReport("t", [ok], [SideCheck("s", False, "why")], 0, "h", "full", 1e-7, "auto")
    assert not report and report.failures == ["s"]
    with pytest.raises(KeyError, match=r"no input named 'q'; inputs are \['x'\]"):
        report["q"]


def test_text_table_names_every_input_column_and_the_settings():
    """str(report) has the summary line, one row per input and the side-check count."""
    report = check_layer(affine_forward, affine_backward, _inputs(), seed=3)
    text = str(report)
    lines = text.splitlines()
    assert lines[0].startswith("affine_forward / affine_backward: passed (mode auto, seed 3")
    assert "forward evaluations" in lines[0]
    for column in ("input", "shape", "checked", "max rel_error", "worst index", "analytic", "numeric", "allowed",
                   "mismatches", "kinks", "verdict"):
        assert column in lines[1]
    assert [line.split()[0] for line in lines[2:5]] == ["x", "w", "b"]
    assert "side checks: 11 of 11 passed" in text


def test_html_rendering_is_a_table_with_the_verdict():
    """_repr_html_ gives an HTML table with one row per input and escaped text."""
    report = check_layer(affine_forward, affine_backward, _inputs())
    html = report._repr_html_()
    assert html.startswith("<div>") and html.count("<tr>") == 4 and "passed" in html
    assert "affine_forward / affine_backward" in html


def test_failed_report_shows_the_worst_element_and_the_hint():
    """A doubled dw: the row says FAIL with analytic = 2 x numeric, and the hint names the factor 2."""
    def backward(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx, 2 * dw, db

    report = check_layer(affine_forward, backward, _inputs())
    w = report["w"]
    assert not w.passed and w.mismatches == 9
    assert w.worst_analytic == pytest.approx(2 * w.worst_numeric, rel=1e-6)
    assert "twice the numeric one" in str(report)
    assert "FAIL" in str(report).splitlines()[3]


@pytest.mark.parametrize("factor, words", [
    (-1.0, "sign flipped"), (2.0, "twice"), (0.5, "half"), (8.0, "N = 8 times"), (1 / 8, "1/N = 1/8"),
    (3.7, "3.7 times"),
])
def test_gradient_hints_recognize_constant_factors(factor, words):
    """A gradient off by a constant factor gets the matching hint (N = 8)."""
    n = np.random.default_rng(0).standard_normal((8, 3))
    hints = gradient_hints("x", factor * n, n, np.ones((8, 3)), batch_size=8)
    assert len(hints) == 1 and words in hints[0], hints


def test_gradient_hints_recognize_transpose_regularization_and_zeros():
    """Transposed, off by a multiple of the input, all zero, partly zero: each has its hint."""
    rng = np.random.default_rng(1)
    n, x = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    assert "transpose" in gradient_hints("w", n.T, n, x, 4)[0]
    assert "+0.3 * w: a regularization term" in gradient_hints("w", n + 0.3 * x, n, x, 4)[0]
    assert "zero everywhere" in gradient_hints("w", np.zeros_like(n), n, x, 4)[0]
    partly = n.copy()
    partly[0, :2] = 0
    partly[3, 3] += 1.0
    assert "zero at 2 element(s)" in gradient_hints("w", partly, n, x, 4)[-1]
    assert gradient_hints("w", n, n, x, 4) == []


def test_shape_hints():
    """Transposed shapes, a kept batch axis and a flattened gradient are each explained."""
    assert shape_hint("w", (5, 3), (3, 5), 4) == "dw is transposed"
    assert "sum it over the N = 4 samples" in shape_hint("b", (4, 5), (5,), 4)
    assert "reshape it to (2, 6)" in shape_hint("x", (12,), (2, 6), 2)
    assert shape_hint("x", (7,), (2, 6), 2) == ""


def test_side_check_hints_read_codes_not_names():
    """A failed zero-dout or linearity check gives the dout hint whatever its name; a name alone gives none."""
    hint = "backward does not use dout as a factor"
    for code in (contract.ZERO_DOUT, contract.LINEAR_IN_DOUT):
        hints = hints_from_side_checks([SideCheck("reworded for display", False, "", code)])
        assert len(hints) == 1 and hint in hints[0]
    assert hints_from_side_checks([SideCheck("zero dout gives zero gradients", False, "")]) == []
    assert hints_from_side_checks([SideCheck("anything", True, "", contract.ZERO_DOUT)]) == []


def test_every_side_check_has_its_own_stable_code():
    """check_layer's side checks carry distinct codes, in the table's order, none of them empty."""
    report = check_layer(affine_forward, affine_backward, _inputs())
    assert [s.code for s in report.side_checks] == [
        contract.FORWARD_LEAVES_INPUTS, contract.FORWARD_DETERMINISTIC, contract.ONE_GRADIENT_PER_INPUT,
        contract.BACKWARD_LEAVES_DOUT, contract.BACKWARD_LEAVES_CACHE, contract.BACKWARD_LEAVES_INPUTS,
        contract.GRADIENT_SHAPES, contract.GRADIENT_DTYPES, contract.BACKWARD_DETERMINISTIC, contract.ZERO_DOUT,
        contract.LINEAR_IN_DOUT]

