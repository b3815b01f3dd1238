"""The sequence models (CaptioningRNN, CharLM), the SequenceSolver and gradient clipping in the Solver."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradcheck import check_model
from solver import load_model, save_model
from solver.captioning import CaptioningRNN
from solver.charlm import CharLM
from solver.checkpoint import CheckpointMismatch
from solver.nets import TwoLayerNet
from solver.sequence import SequenceSolver
from solver.solver import Solver

pytestmark = pytest.mark.rnn

# The course's published losses of its fixed-parameter captioning check (given to 11 digits).
COURSE_RNN_LOSS, COURSE_LSTM_LOSS = 9.83235591003, 9.82445935443
COURSE_DIGITS = 1e-10
# Two evaluations of the same float64 computation that differ only in batching.
SAME_SUM = 1e-12
CHARS = list("abcdefgh")
WORDS = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "b": 4, "c": 5}


def course_model(cell_type, features_range):
    N, D, W, H, T = 10, 20, 30, 40, 13
    word_to_idx = {"<NULL>": 0, "cat": 2, "dog": 3}
    model = CaptioningRNN(word_to_idx, input_dim=D, wordvec_dim=W, hidden_dim=H, cell_type=cell_type, dtype=np.float64)
    for k, v in model.params.items():
        model.params[k] = np.linspace(-1.4, 1.3, num=v.size).reshape(*v.shape)
    features = np.linspace(*features_range, num=N * D).reshape(N, D)
    captions = (np.arange(N * T) % len(word_to_idx)).reshape(N, T)
    return model, features, captions


@pytest.mark.parametrize("cell_type, features_range, expected", [("rnn", (-1.5, 0.3), COURSE_RNN_LOSS),
                                                                  ("lstm", (-0.5, 1.7), COURSE_LSTM_LOSS)])
def test_captioning_loss_matches_the_courses_fixed_parameter_check(cell_type, features_range, expected):
    model, features, captions = course_model(cell_type, features_range)
    loss, grads = model.loss(features, captions)
    assert abs(loss - expected) < COURSE_DIGITS
    assert {k: g.shape for k, g in grads.items()} == {k: p.shape for k, p in model.params.items()}


def captioning_batch(rng):
    features = rng.standard_normal((3, 5))
    captions = np.array([[1, 3, 4, 2, 0], [1, 5, 2, 0, 0], [1, 3, 3, 4, 2]])
    return features, captions


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "gru"])
def test_captioning_gradients_match_centered_differences(cell_type):
    model = CaptioningRNN(WORDS, input_dim=5, wordvec_dim=4, hidden_dim=3, cell_type=cell_type, dtype=np.float64,
                          seed=0)
    report = check_model(model, *captioning_batch(np.random.default_rng(1)))
    assert report, report


def test_null_positions_contribute_nothing_to_the_captioning_loss():
    """Padding after <END> changes neither the loss nor any gradient."""
    model = CaptioningRNN(WORDS, input_dim=5, wordvec_dim=4, hidden_dim=3, dtype=np.float64, seed=0)
    features, captions = captioning_batch(np.random.default_rng(1))
    padded = np.concatenate([captions, np.zeros((3, 4), dtype=captions.dtype)], axis=1)
    loss, grads = model.loss(features, captions)
    loss_padded, grads_padded = model.loss(features, padded)
    assert loss_padded == pytest.approx(loss, rel=SAME_SUM)
    for name in grads:
        np.testing.assert_allclose(grads_padded[name], grads[name], rtol=SAME_SUM, atol=SAME_SUM)


def test_sample_is_greedy_and_pads_after_end():
    model = CaptioningRNN(WORDS, input_dim=5, wordvec_dim=4, hidden_dim=3, cell_type="lstm", seed=0)
    # Make <END> certain after exactly one word: b_vocab favours "c" while the previous word is <START>.
    model.params["W_vocab"][:] = 0
    model.params["b_vocab"][:] = [-9, -9, 5, -9, -9, 9]  # "c" then ... the bias alone scores: c always wins
    captions = model.sample(np.ones((2, 5), dtype=np.float32), max_length=4)
    assert captions.tolist() == [[5, 5, 5, 5]] * 2
    model.params["b_vocab"][:] = [-9, -9, 9, -9, -9, 5]  # <END> always wins: it is written, then <NULL>
    assert model.sample(np.ones((2, 5), dtype=np.float32), max_length=3).tolist() == [[2, 0, 0]] * 2
    hits, count = model.score(np.ones((2, 5), dtype=np.float32), np.array([[1, 2, 0, 0], [1, 5, 2, 0]]))
    assert (hits, count) == (1, 2)


def test_captioning_refuses_bad_arguments():
    with pytest.raises(ValueError, match="word_to_idx needs a '<NULL>'"):
        CaptioningRNN({"a": 0})
    with pytest.raises(ValueError, match="cell_type must be one of"):
        CaptioningRNN(WORDS, cell_type="transformer")
    model = CaptioningRNN(WORDS, input_dim=5, wordvec_dim=4, hidden_dim=3, seed=0)
    with pytest.raises(ValueError, match=r"CaptioningRNN.loss: features must have shape \(N, 5\)"):
        model.loss(np.zeros((2, 4)), np.ones((2, 3), dtype=int))
    with pytest.raises(ValueError, match=r"outside \[0, 6\)"):
        model.loss(np.zeros((2, 5)), np.full((2, 3), 6))
    with pytest.raises(TypeError, match="captions must be an integer array"):
        model.loss(np.zeros((2, 5)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="needs '<START>' and '<END>'"):
        CaptioningRNN({"<NULL>": 0, "a": 1}, input_dim=5).sample(np.zeros((1, 5)))


@pytest.mark.slow
@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "gru", "transformer"])
def test_char_model_gradients_match_centered_differences(cell_type):
    model = CharLM(CHARS, wordvec_dim=8, hidden_dim=6, cell_type=cell_type, num_layers=2, num_heads=2, max_length=8,
                   dtype=np.float64, seed=0)
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, len(CHARS), (2, 5)), rng.integers(0, len(CHARS), (2, 5))
    report = check_model(model, x, y)
    assert report, report


@pytest.mark.parametrize("cell_type", ["rnn", "lstm", "gru", "transformer"])
def test_char_model_never_looks_ahead(cell_type):
    """The scores at step t depend on characters 0..t only: changing the last one moves only the last scores."""
    model = CharLM(CHARS, wordvec_dim=8, hidden_dim=6, cell_type=cell_type, num_heads=2, max_length=8,
                   dtype=np.float64, seed=0)
    x = np.random.default_rng(3).integers(0, len(CHARS), (2, 6))
    changed = x.copy()
    changed[:, -1] = (x[:, -1] + 1) % len(CHARS)
    before, after = model._scores(x)[0], model._scores(changed)[0]
    np.testing.assert_array_equal(before[:, :-1], after[:, :-1])
    assert not np.allclose(before[:, -1], after[:, -1])


def test_bits_per_char_is_the_loss_in_bits_and_score_counts_hits():
    model = CharLM(CHARS, wordvec_dim=8, hidden_dim=6, dtype=np.float64, seed=0)
    rng = np.random.default_rng(4)
    x, y = rng.integers(0, len(CHARS), (5, 7)), rng.integers(0, len(CHARS), (5, 7))
    loss, _ = model.loss(x, y)
    assert model.bits_per_char(x, y, batch_size=2) == pytest.approx(loss / math.log(2), rel=SAME_SUM)
    hits, count = model.score(x, y)
    assert count == 35 and hits == int(np.sum(model._scores(x)[0].argmax(axis=2) == y))


def test_char_sample_continues_the_prefix_reproducibly():
    model = CharLM(CHARS, wordvec_dim=8, hidden_dim=6, cell_type="gru", seed=0)
    text = model.sample("abc", 20, temperature=1.0, seed=5)
    assert text.startswith("abc") and len(text) == 23 and set(text) <= set(CHARS)
    assert model.sample("abc", 20, seed=5) == text and model.sample("abc", 20, seed=6) != text
    # A very low temperature is greedy: every draw is the highest-scoring character.
    cold = model.sample("a", 6, temperature=1e-6, seed=0)
    assert cold == model.sample("a", 6, temperature=1e-6, seed=1)


def test_char_model_refuses_bad_arguments():
    with pytest.raises(ValueError, match=r"num_heads \(3\) must divide wordvec_dim \(8\)"):
        CharLM(CHARS, wordvec_dim=8, cell_type="transformer", num_heads=3)
    model = CharLM(CHARS, wordvec_dim=8, hidden_dim=6, cell_type="transformer", num_heads=2, max_length=4, seed=0)
    with pytest.raises(ValueError, match="more than max_length 4"):
        model.loss(np.zeros((1, 5), dtype=int), np.zeros((1, 5), dtype=int))
    with pytest.raises(ValueError, match=r"CharLM.loss: y must have shape \(1, 3\)"):
        model.loss(np.zeros((1, 3), dtype=int), np.zeros((1, 2), dtype=int))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.sample("xyz", 3)
    with pytest.raises(ValueError, match="temperature"):
        model.sample("a", 3, temperature=0)


@pytest.mark.parametrize("make", [lambda: CaptioningRNN(WORDS, input_dim=5, wordvec_dim=4, hidden_dim=3, seed=0),
                                  lambda: CharLM(CHARS, wordvec_dim=8, hidden_dim=6, cell_type="transformer",
                                                 num_heads=2, seed=0)])
def test_sequence_models_save_and_load(make, tmp_path):
    model = make()
    save_model(model, tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    for name, value in model.params.items():
        np.testing.assert_array_equal(loaded.params[name], value)


def lm_data(seed=0):
    rng = np.random.default_rng(seed)
    text = np.tile(np.arange(len(CHARS)), 40)  # "abcdefgh" repeated: the next character is certain
    starts = rng.integers(0, text.size - 9, 60)
    windows = np.stack([text[s:s + 9] for s in starts])
    return {"X_train": windows[:50, :-1], "y_train": windows[:50, 1:], "X_val": windows[50:, :-1],
            "y_val": windows[50:, 1:]}


def sequence_solver(**options):
    model = CharLM(CHARS, wordvec_dim=8, hidden_dim=16, cell_type="lstm", seed=0)
    settings = dict(update_rule="adam", optim_config={"learning_rate": 2e-2}, num_epochs=8, batch_size=10, seed=0,
                    verbose=False, grad_clip=5.0)
    settings.update(options)
    return SequenceSolver(model, lm_data(), **settings)


def test_sequence_solver_learns_a_periodic_text_reproducibly():
    epochs = []
    first = sequence_solver(on_epoch=lambda solver: epochs.append(solver.epoch)).train()
    again = sequence_solver().train()
    assert first.loss_history == again.loss_history
    assert epochs == list(range(9))
    assert first.best_val_acc == 1.0 and first.val_acc_history[0] < 0.5


def test_sequence_solver_resumes_exactly(tmp_path):
    straight = sequence_solver().train()
    part = sequence_solver(num_epochs=3)
    part.train()
    part.save_checkpoint(tmp_path / "cp.npz")
    resumed = sequence_solver()
    resumed.load_checkpoint(tmp_path / "cp.npz")
    resumed.train()
    assert resumed.loss_history == straight.loss_history
    with pytest.raises(CheckpointMismatch, match="grad_clip"):
        sequence_solver(grad_clip=1.0).load_checkpoint(tmp_path / "cp.npz")


def test_sequence_solver_refuses_bad_data_and_models():
    data = lm_data()
    with pytest.raises(ValueError, match=r"data\['y_train'\] must have shape \(50, T\)"):
        SequenceSolver(CharLM(CHARS, seed=0), {**data, "y_train": data["y_train"][:, 0]})
    with pytest.raises(TypeError, match="must have a score"):
        SequenceSolver(TwoLayerNet(input_dim=8, num_classes=8), data)
    with pytest.raises(TypeError, match="on_epoch must be None or a callable"):
        SequenceSolver(CharLM(CHARS, seed=0), data, on_epoch=3)


def test_grad_clip_scales_the_whole_step_to_the_clip_norm():
    """With sgd, a clipped step is the unclipped step times clip / norm, one factor for every parameter."""
    rng = np.random.default_rng(0)
    data = {"X_train": rng.standard_normal((20, 4)), "y_train": rng.integers(0, 3, 20),
            "X_val": rng.standard_normal((5, 4)), "y_val": rng.integers(0, 3, 5)}
    steps = {}
    for clip in (None, 1e-3):
        model = TwoLayerNet(input_dim=4, hidden_dim=5, num_classes=3, dtype=np.float64, seed=0)
        before = {k: v.copy() for k, v in model.params.items()}
        solver = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 1.0}, grad_clip=clip,
                        batch_size=20, num_epochs=1, verbose=False, seed=0)
        solver._step(data["X_train"], data["y_train"])
        steps[clip] = ({k: model.params[k] - before[k] for k in before}, solver.grad_norm)
    (full, norm), (clipped, same_norm) = steps[None], steps[1e-3]
    assert norm == same_norm > 1e-3
    for name in full:
        np.testing.assert_allclose(clipped[name], full[name] * (1e-3 / norm), rtol=1e-12, atol=1e-15)
    total = math.sqrt(sum(float(np.sum(d * d)) for d in clipped.values()))
    assert total == pytest.approx(1e-3, rel=1e-12)


@pytest.mark.parametrize("clip", [0, -1.0, float("nan"), float("inf")])
def test_grad_clip_must_be_a_positive_finite_number(clip):
    rng = np.random.default_rng(0)
    data = {"X_train": rng.standard_normal((4, 4)), "y_train": rng.integers(0, 3, 4),
            "X_val": rng.standard_normal((2, 4)), "y_val": rng.integers(0, 3, 2)}
    with pytest.raises(ValueError, match="grad_clip"):
        Solver(TwoLayerNet(input_dim=4, num_classes=3), data, grad_clip=clip)
