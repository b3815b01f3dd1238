"""Graded: every layer case its family declares ``graded=True`` (layers/cases.py), one point per
case in each test. A new declared layer is graded here without a test of its own."""

from __future__ import annotations

import pytest
from grading_checks import assert_matches, check_layer_case

import layers

GRADED = [case.name for case in layers.CASES if case.graded]


@pytest.mark.points(len(GRADED))
@pytest.mark.parametrize("name", GRADED)
def test_declared_layer_backward_matches_numeric_gradient(student, name):
    """Your backward pass agrees with centered differences of your forward pass (float64; the side
    checks, such as purity and linearity in dout, hold too)."""
    check_layer_case(student, name, seed=0).assert_ok()


# BEGIN HIDDEN TESTS
@pytest.mark.points(len(GRADED))
@pytest.mark.parametrize("name", GRADED)
def test_declared_layer_matches_reference(student, reference, name):
    """Forward output and every gradient (or the loss and dx) match the reference solution's."""
    from grading.reference import declared_inputs

    case = layers.case(name)
    ref = reference(name)
    inputs, params = declared_inputs(case)
    for key, value in inputs.items():
        assert_matches(f"reference input {key} (the declaration changed: run make-reference)", value, ref[key],
                       rtol=0, atol=0)
    forward = case.forward.__name__
    if case.kind == "loss":
        loss, dx = student.call(f"layers.{forward}", *inputs.values(), **params)
        assert_matches(f"{forward} loss", loss, ref["loss"])
        assert_matches(f"{forward} dx", dx, ref["dx"])
        return
    out, cache = student.call(f"layers.{forward}", *inputs.values(), **params)
    assert_matches(f"{forward} out", out, ref["out"])
    grads = student.call(f"layers.{case.backward.__name__}", ref["dout"], cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert len(grads) == len(inputs), f"{case.backward.__name__} returned {len(grads)} gradients, expected {len(inputs)}"
    for key, grad in zip(inputs, grads):
        assert_matches(f"{case.backward.__name__} d{key}", grad, ref[f"d{key}"])
# END HIDDEN TESTS
