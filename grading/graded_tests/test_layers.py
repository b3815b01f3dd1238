"""Graded: affine, relu, softmax and SVM losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from grading_checks import assert_matches, check_layer_case

SEEDS = (0, 1)


@pytest.mark.points(2)
def test_affine_forward_small_example(student):
    """A 3-sample affine layer on (3, 2, 2) inputs, worked by hand (no symmetry: a transposed out fails)."""
    x = np.array([[[1.0, 2.0], [0.0, -1.0]], [[3.0, 0.0], [1.0, 1.0]], [[-2.0, 1.0], [2.0, 0.0]]])
    w = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0], [1.0, 3.0]])
    b = np.array([0.5, -1.0])
    out, _ = student.call("layers.affine_forward", x, w, b)
    assert_matches("affine_forward out", out, [[0.5, -2.0], [6.5, 1.0], [2.5, -2.0]])


@pytest.mark.points(3)
@pytest.mark.parametrize("seed", SEEDS)
def test_affine_backward_matches_numeric_gradient(student, seed):
    """dx, dw, db agree with centered differences (float64)."""
    check_layer_case(student, "affine_forward", seed).assert_ok()


@pytest.mark.points(1)
def test_relu_forward_small_example(student):
    """relu zeroes the negatives and keeps the rest."""
    out, _ = student.call("layers.relu_forward", np.array([[-2.0, -0.5, 0.0, 0.5, 3.0], [1.5, -1.0, 2.0, -3.0, 0.25]]))
    assert_matches("relu_forward out", out, [[0.0, 0.0, 0.0, 0.5, 3.0], [1.5, 0.0, 2.0, 0.0, 0.25]])


@pytest.mark.points(2)
@pytest.mark.parametrize("seed", SEEDS)
def test_relu_backward_matches_numeric_gradient(student, seed):
    """relu_backward agrees with centered differences away from 0."""
    check_layer_case(student, "relu_forward", seed).assert_ok()


@pytest.mark.points(1)
def test_softmax_loss_is_log_c_for_equal_scores(student):
    """With all scores equal every class has probability 1/C, so the loss is log C."""
    loss, _ = student.call("layers.softmax_loss", np.zeros((4, 10)), np.array([0, 3, 9, 2]))
    assert_matches("softmax_loss loss", loss, math.log(10))


@pytest.mark.points(2)
@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_loss_gradient_matches_numeric_gradient(student, seed):
    """dx of softmax_loss agrees with centered differences of the loss."""
    check_layer_case(student, "softmax_loss", seed).assert_ok()


@pytest.mark.points(1)
def test_svm_loss_is_c_minus_one_for_equal_scores(student):
    """With all scores equal every wrong class violates the margin by exactly 1."""
    loss, _ = student.call("layers.svm_loss", np.zeros((4, 10)), np.array([0, 3, 9, 2]))
    assert_matches("svm_loss loss", loss, 9.0)


@pytest.mark.points(2)
@pytest.mark.parametrize("seed", SEEDS)
def test_svm_loss_gradient_matches_numeric_gradient(student, seed):
    """dx of svm_loss agrees with centered differences away from the hinge."""
    check_layer_case(student, "svm_loss", seed).assert_ok()


# BEGIN HIDDEN TESTS
@pytest.mark.points(2)
def test_affine_matches_reference(student, reference):
    """affine_forward and affine_backward on a 4-d input match the reference outputs."""
    ref = reference("affine")
    out, cache = student.call("layers.affine_forward", ref["x"], ref["w"], ref["b"])
    assert_matches("affine_forward out", out, ref["out"])
    dx, dw, db = student.call("layers.affine_backward", ref["dout"], cache)
    assert_matches("affine_backward dx", dx, ref["dx"])
    assert_matches("affine_backward dw", dw, ref["dw"])
    assert_matches("affine_backward db", db, ref["db"])


@pytest.mark.points(1)
def test_relu_matches_reference(student, reference):
    """relu forward and backward match the reference outputs."""
    ref = reference("relu")
    out, cache = student.call("layers.relu_forward", ref["x"])
    assert_matches("relu_forward out", out, ref["out"])
    assert_matches("relu_backward dx", student.call("layers.relu_backward", ref["dout"], cache), ref["dx"])


@pytest.mark.points(2)
@pytest.mark.parametrize("loss_name", ["softmax_loss", "svm_loss"])
def test_losses_match_reference(student, reference, loss_name):
    """Each loss and its gradient match the reference on large-magnitude scores."""
    ref = reference(loss_name)
    loss, dx = student.call(f"layers.{loss_name}", ref["x"], ref["y"])
    assert_matches(f"{loss_name} loss", loss, ref["loss"])
    assert_matches(f"{loss_name} dx", dx, ref["dx"])
# END HIDDEN TESTS
