"""Graded: CaptioningRNN's loss and gradients, with your own recurrent, embedding and temporal layers.

The grader's own affine layer stands in for yours (``student.use_standins``), so a broken affine
layer costs only its own points; the recurrent, embedding and temporal layers are yours.
The loss check is the course's own: fixed parameters (each a linspace from -1.4 to 1.3), fixed
features and captions, and the published loss to the 11 digits given. The gradient check takes
centered differences of your loss on a small batch with <NULL> padding, for each cell type.
"""

from __future__ import annotations

import numpy as np
import pytest
from grading_checks import assert_matches, check_net

MODEL = "solver.captioning.CaptioningRNN"
STANDINS = ["affine_forward", "affine_backward"]
# The course's published losses of its fixed-parameter check (rnn, lstm), given to 11 digits.
COURSE_LOSSES = {"rnn": ((-1.5, 0.3), 9.83235591003), "lstm": ((-0.5, 1.7), 9.82445935443)}
COURSE_DIGITS = 1e-10
WORDS = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "b": 4, "c": 5}


@pytest.mark.points(4)
@pytest.mark.parametrize("cell_type", list(COURSE_LOSSES))
def test_captioning_loss_matches_the_course_check(student, cell_type):
    """CaptioningRNN(cell_type).loss on the course's fixed parameters gives its published loss, and a
    gradient for every parameter, shaped like it."""
    N, D, W, H, T = 10, 20, 30, 40, 13
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    student.use_standins(STANDINS)
    model = student.model(MODEL, word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type=cell_type,
                          dtype=np.float64)
    shapes = {name: np.shape(value) for name, value in model.params.items()}
    for name, shape in shapes.items():
        model.params[name] = np.linspace(-1.4, 1.3, num=int(np.prod(shape))).reshape(shape)
    feature_range, expected = COURSE_LOSSES[cell_type]
    features = np.linspace(*feature_range, num=N * D).reshape(N, D)
    captions = (np.arange(N * T) % len(word_to_idx)).reshape(N, T)
    result = model.loss(features, captions)
    assert isinstance(result, tuple) and len(result) == 2, "CaptioningRNN.loss must return (loss, grads)"
    loss, grads = result
    assert_matches(f"CaptioningRNN({cell_type!r}).loss", loss, np.float64(expected), rtol=0.0, atol=COURSE_DIGITS)
    assert isinstance(grads, dict), f"CaptioningRNN.loss: grads must be a dict, got {type(grads).__name__}"
    for name, shape in shapes.items():
        assert name in grads, f"CaptioningRNN.loss: grads lacks {name!r}"
        assert np.shape(grads[name]) == shape, f"grads[{name!r}] has shape {np.shape(grads[name])}, expected {shape}"


@pytest.mark.points(3)
@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "gru"])
def test_captioning_gradients_match_numeric_gradient(student, cell_type):
    """Every parameter's gradient agrees with centered differences of the loss (float64)."""
    rng = np.random.default_rng(1)
    student.use_standins(STANDINS)
    features = rng.standard_normal((3, 5))
    captions = np.array([[1, 3, 4, 2, 0], [1, 5, 2, 0, 0], [1, 3, 3, 4, 2]])
    check_net(student, MODEL, features, captions, WORDS, input_dim=5, wordvec_dim=4, hidden_dim=3,
              cell_type=cell_type, dtype=np.float64, seed=0).assert_ok()
