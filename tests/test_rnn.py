"""Tests for the recurrent families: layers.rnn (the vanilla RNN), layers.lstm (LSTM and GRU) and
layers.temporal (word embedding, temporal affine, temporal softmax loss).

The generic properties (purity, float32 kept, N = 0 and float16 refused, foreign caches refused,
agreement with PyTorch autograd) run over the declared cases in tests/test_registry.py; here are
the gradient checks, what is particular to recurrence (a sequence is its steps, gradients flow
backwards in time only, the gates' order) and worked examples."""

import math

import numpy as np
import pytest

import layers
from gradcheck import check_layer, check_loss
from harness import GRAD_RTOL, assert_backward_matches_numeric
from layers import (
    affine_forward,
    gru_backward,
    gru_forward,
    gru_step_backward,
    gru_step_forward,
    lstm_backward,
    lstm_forward,
    lstm_step_backward,
    lstm_step_forward,
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
    temporal_affine_backward,
    temporal_affine_forward,
    temporal_softmax_loss,
    word_embedding_backward,
    word_embedding_forward,
)

pytestmark = pytest.mark.rnn

# Worked examples are a few exact operations on short decimals: equal up to rounding.
EXACT = 1e-12
LN2, LN3 = math.log(2.0), math.log(3.0)
# Each cell: (step forward, step backward, sequence forward, sequence backward, gate blocks).
CELLS = {
    "rnn": (rnn_step_forward, rnn_step_backward, rnn_forward, rnn_backward, 1),
    "lstm": (lstm_step_forward, lstm_step_backward, lstm_forward, lstm_backward, 4),
    "gru": (gru_step_forward, gru_step_backward, gru_forward, gru_backward, 3),
}


def _cell(gates, N=3, T=4, D=5, H=6, seed=0, dtype=np.float64):
    """(x, h0, Wx, Wh, b) of a sequence, weights of scale 1 / sqrt(fan-in)."""
    rng = np.random.default_rng(seed)
    arrays = (rng.standard_normal((N, T, D)), 0.5 * rng.standard_normal((N, H)),
              rng.standard_normal((D, gates * H)) / math.sqrt(D), rng.standard_normal((H, gates * H)) / math.sqrt(H),
              0.5 * rng.standard_normal(gates * H))
    return tuple(a.astype(dtype) for a in arrays)


def _named(x, h, Wx, Wh, b, h_name):
    return {"x": x, h_name: h, "Wx": Wx, "Wh": Wh, "b": b}


# -- gradients against centered differences (float64, every element)

@pytest.mark.parametrize("cell", ["rnn", "gru"])
@pytest.mark.parametrize("T", [1, 4])
def test_step_and_sequence_backward_match_numeric_gradient(cell, T):
    """Every gradient of a step and of a whole sequence (through time) matches centered differences."""
    step_f, step_b, seq_f, seq_b, gates = CELLS[cell]
    x, h0, Wx, Wh, b = _cell(gates, T=T)
    assert_backward_matches_numeric(step_f, step_b, _named(x[:, 0], h0, Wx, Wh, b, "prev_h"))
    assert_backward_matches_numeric(seq_f, seq_b, _named(x, h0, Wx, Wh, b, "h0"))


@pytest.mark.parametrize("T", [1, 4])
def test_lstm_backward_matches_numeric_gradient(T):
    """The LSTM step (both outputs, both upstream gradients) and the sequence match centered differences."""
    x, h0, Wx, Wh, b = _cell(4, T=T)
    step = layers.case("lstm_step_forward")  # the declared pair adapters: ((next_h, next_c), cache), (dnext_h, dnext_c)
    prev_c = np.random.default_rng(1).standard_normal(h0.shape)
    inputs = {"x": x[:, 0], "prev_h": h0, "prev_c": prev_c, "Wx": Wx, "Wh": Wh, "b": b}
    # check_layer draws one upstream gradient per output (the harness's helper takes one output)
    report = check_layer(step.forward, step.backward, inputs, mode="full", rtol=GRAD_RTOL).assert_ok()
    assert all(r.checked == r.shape_size and not r.kinks for r in report.inputs)
    assert_backward_matches_numeric(lstm_forward, lstm_backward, _named(x, h0, Wx, Wh, b, "h0"))


def test_word_embedding_and_temporal_affine_backward_match_numeric_gradient():
    """dW of the word embedding (ids repeated) and the temporal affine gradients match centered differences."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 4, (3, 5))
    (dW,) = assert_backward_matches_numeric(lambda W: word_embedding_forward(ids, W), word_embedding_backward,
                                            {"W": rng.standard_normal((4, 3))})
    assert dW.shape == (4, 3)
    assert_backward_matches_numeric(temporal_affine_forward, temporal_affine_backward,
                                    {"x": rng.standard_normal((2, 3, 4)), "w": rng.standard_normal((4, 5)),
                                     "b": rng.standard_normal(5)})


@pytest.mark.parametrize("N, T, V", [(1, 1, 2), (3, 4, 5), (8, 6, 10)])
def test_temporal_softmax_loss_gradient_matches_numeric_gradient(N, T, V):
    """dx matches the centered difference of the masked loss, element by element."""
    rng = np.random.default_rng(N)
    mask = rng.random((N, T)) < 0.6
    mask.flat[0] = True
    report = check_loss(temporal_softmax_loss, {"x": 2 * rng.standard_normal((N, T, V))},
                        params={"y": rng.integers(0, V, (N, T)), "mask": mask}, mode="full").assert_ok()
    assert report["x"].checked == N * T * V and not report["x"].kinks


# -- what recurrence means

@pytest.mark.parametrize("cell", CELLS)
def test_sequence_forward_is_its_steps_applied_in_turn(cell):
    """h[:, t] is step t applied to x[:, t] and h[:, t - 1] (the LSTM's cell state starting at 0), bit for bit."""
    step_f, _, seq_f, _, gates = CELLS[cell]
    x, h0, Wx, Wh, b = _cell(gates)
    h, _ = seq_f(x, h0, Wx, Wh, b)
    prev_h, prev_c = h0, np.zeros_like(h0)
    for t in range(x.shape[1]):
        if cell == "lstm":
            prev_h, prev_c, _ = step_f(x[:, t], prev_h, prev_c, Wx, Wh, b)
        else:
            prev_h, _ = step_f(x[:, t], prev_h, Wx, Wh, b)
        np.testing.assert_array_equal(h[:, t], prev_h, err_msg=f"{cell}: step {t}")


@pytest.mark.parametrize("cell", CELLS)
def test_a_single_step_sequence_backward_is_the_step_backward(cell):
    """With T = 1 the sequence's gradients are the step's for dnext_h = dh[:, 0] (and a zero dnext_c)."""
    step_f, step_b, seq_f, seq_b, gates = CELLS[cell]
    x, h0, Wx, Wh, b = _cell(gates, T=1)
    dh = np.random.default_rng(2).standard_normal((3, 1, 6))
    dx, dh0, dWx, dWh, db = seq_b(dh, seq_f(x, h0, Wx, Wh, b)[1])
    if cell == "lstm":
        *_, cache = step_f(x[:, 0], h0, np.zeros_like(h0), Wx, Wh, b)
        want = step_b(dh[:, 0], np.zeros_like(h0), cache)
        want = want[:2] + want[3:]  # the initial cell state is no input of lstm_forward
    else:
        want = step_b(dh[:, 0], step_f(x[:, 0], h0, Wx, Wh, b)[1])
    for name, got, expected in zip(("dx", "dh0", "dWx", "dWh", "db"), (dx[:, 0], dh0, dWx, dWh, db), want):
        np.testing.assert_allclose(got, expected, rtol=EXACT, atol=EXACT, err_msg=f"{cell}: {name}")


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_flow_backwards_in_time_only(cell):
    """A loss on h[:, t] alone gives zero gradient to the inputs of later steps, and nonzero to every earlier one."""
    _, _, seq_f, seq_b, gates = CELLS[cell]
    x, h0, Wx, Wh, b = _cell(gates, T=5)
    _, cache = seq_f(x, h0, Wx, Wh, b)
    dh = np.zeros((3, 5, 6))
    dh[:, 2] = 1.0
    dx, dh0, *_ = seq_b(dh, cache)
    assert np.all(dx[:, 3:] == 0), f"{cell}: x after step 2 got gradient"
    assert np.all(np.abs(dx[:, :3]).sum(axis=(0, 2)) > 0) and np.any(dh0 != 0), f"{cell}: an earlier step got none"


# -- worked examples, by hand

def test_rnn_step_worked_example():
    """x Wx = 0 and prev_h Wh = 0.5, so a = ln 2 and next_h = tanh(ln 2) = 0.6; tanh' = 1 - 0.36 = 0.64."""
    x, prev_h = np.array([[1.0, 2.0]]), np.array([[2.0]])
    Wx, Wh, b = np.array([[0.5], [-0.25]]), np.array([[0.25]]), np.array([LN2 - 0.5])
    next_h, cache = rnn_step_forward(x, prev_h, Wx, Wh, b)
    np.testing.assert_allclose(next_h, [[0.6]], rtol=EXACT)
    dx, dprev_h, dWx, dWh, db = rnn_step_backward(np.array([[1.0]]), cache)
    for got, want in ((dx, [[0.32, -0.16]]), (dprev_h, [[0.16]]), (dWx, [[0.64], [1.28]]), (dWh, [[1.28]]),
                      (db, [0.64])):
        np.testing.assert_allclose(got, want, rtol=EXACT)


def test_rnn_backward_through_time_worked_example():
    """h1 = tanh(ln 2) = 0.6, h2 = tanh(0.6) with Wh = 1 and no input; a loss on h2 alone reaches h0 through
    both steps: dh0 = (1 - h2^2) * 1 * (1 - h1^2) * 1."""
    x, h0 = np.zeros((1, 2, 1)), np.array([[LN2]])
    h, cache = rnn_forward(x, h0, np.zeros((1, 1)), np.ones((1, 1)), np.zeros(1))
    h2 = math.tanh(0.6)
    np.testing.assert_allclose(h[0, :, 0], [0.6, h2], rtol=EXACT)
    _, dh0, _, dWh, _ = rnn_backward(np.array([[[0.0], [1.0]]]), cache)
    np.testing.assert_allclose(dh0, [[(1 - h2**2) * 0.64]], rtol=EXACT)
    # Wh is used at both steps: (1 - h2^2) h1 at step 2, plus (1 - h2^2) 0.64 h0 at step 1
    np.testing.assert_allclose(dWh, [[(1 - h2**2) * (0.6 + 0.64 * LN2)]], rtol=EXACT)


def test_lstm_step_gates_are_in_the_order_i_f_o_g():
    """With Wx = Wh = 0 and b = [ln 3, -ln 3, 0, atanh(0.6)]: i = 0.75, f = 0.25, o = 0.5, g = 0.6, so with
    prev_c = 2, next_c = 0.25 * 2 + 0.75 * 0.6 = 0.95 and next_h = 0.5 tanh(0.95); backward of dnext_c = 1
    alone gives dprev_c = f and db = [g i (1 - i), prev_c f (1 - f), 0, i (1 - g^2)]."""
    x, prev_h, prev_c = np.array([[1.0, -1.0]]), np.array([[3.0]]), np.array([[2.0]])
    b = np.array([LN3, -LN3, 0.0, math.atanh(0.6)])
    next_h, next_c, cache = lstm_step_forward(x, prev_h, prev_c, np.zeros((2, 4)), np.zeros((1, 4)), b)
    np.testing.assert_allclose(next_c, [[0.95]], rtol=EXACT)
    np.testing.assert_allclose(next_h, [[0.5 * math.tanh(0.95)]], rtol=EXACT)
    dx, dprev_h, dprev_c, dWx, dWh, db = lstm_step_backward(np.zeros((1, 1)), np.ones((1, 1)), cache)
    np.testing.assert_allclose(dprev_c, [[0.25]], rtol=EXACT)
    np.testing.assert_allclose(db, [0.6 * 0.1875, 2 * 0.1875, 0.0, 0.75 * 0.64], rtol=EXACT, atol=EXACT)
    np.testing.assert_allclose(dWx, np.outer(x, db), rtol=EXACT, atol=EXACT)


def test_gru_step_gates_are_z_r_n_and_the_reset_gate_scales_h_wh():
    """b = [ln 3, -ln 3, 0]: z = 0.75, r = 0.25; prev_h = 1 and Wh_n = 2 give n = tanh(0.25 * 2) and
    next_h = (1 - z) n + z prev_h = 0.25 tanh(0.5) + 0.75."""
    Wh = np.array([[0.0, 0.0, 2.0]])
    next_h, _ = gru_step_forward(np.array([[0.0]]), np.array([[1.0]]), np.zeros((1, 3)), Wh, np.array([LN3, -LN3, 0.0]))
    np.testing.assert_allclose(next_h, [[0.25 * math.tanh(0.5) + 0.75]], rtol=EXACT)


def test_word_embedding_worked_example_and_repeated_words_accumulate():
    """out[n, t] is W's row x[n, t]; a word used k times gets the sum of its k upstream gradients."""
    W = np.arange(6.0).reshape(3, 2)
    x = np.array([[0, 2, 0], [1, 0, 2]])
    out, cache = word_embedding_forward(x, W)
    np.testing.assert_array_equal(out, [[[0, 1], [4, 5], [0, 1]], [[2, 3], [0, 1], [4, 5]]])
    dout = np.arange(12.0).reshape(2, 3, 2)
    dW = word_embedding_backward(dout, cache)
    # word 0 at (0, 0), (0, 2), (1, 1); word 1 at (1, 0); word 2 at (0, 1), (1, 2)
    np.testing.assert_array_equal(dW, [[0 + 4 + 8, 1 + 5 + 9], [6, 7], [2 + 10, 3 + 11]])
    unused = word_embedding_backward(dout, word_embedding_forward(np.zeros((2, 3), np.int64), np.ones((4, 2)))[1])
    np.testing.assert_array_equal(unused[1:], 0)
    np.testing.assert_array_equal(unused[0], dout.sum(axis=(0, 1)))


def test_temporal_softmax_loss_worked_example():
    """Zero scores give -log(1/3) = ln 3 at each of the 3 kept positions: loss 3 ln 3 / N with N = 2;
    dx is (1/3 - onehot) / 2 where kept and 0 where masked out."""
    y, mask = np.array([[0, 2], [1, 1]]), np.array([[True, True], [True, False]])
    loss, dx = temporal_softmax_loss(np.zeros((2, 2, 3)), y, mask)
    assert loss == pytest.approx(1.5 * LN3, rel=EXACT)
    want = np.full((2, 2, 3), 1 / 6)
    for n, t in ((0, 0), (0, 1), (1, 0)):
        want[n, t, y[n, t]] -= 0.5
    want[1, 1] = 0.0
    np.testing.assert_allclose(dx, want, rtol=EXACT, atol=EXACT)


def test_temporal_affine_is_the_affine_layer_at_every_step():
    """out[:, t] equals affine_forward(x[:, t], w, b) at each step."""
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((3, 4, 5)), rng.standard_normal((5, 2)), rng.standard_normal(2)
    out, _ = temporal_affine_forward(x, w, b)
    for t in range(4):
        np.testing.assert_allclose(out[:, t], affine_forward(x[:, t], w, b)[0], rtol=EXACT)


# -- the mask, the labels and the ids

def test_a_zero_mask_gives_zero_loss_and_zero_gradient():
    """With every position masked out nothing counts: loss 0 and dx 0, whatever the scores."""
    x = 50 * np.random.default_rng(0).standard_normal((2, 3, 4))
    loss, dx = temporal_softmax_loss(x, np.zeros((2, 3), np.int64), np.zeros((2, 3), bool))
    assert loss == 0 and not np.any(dx)


def test_masked_out_positions_change_nothing_and_a_0_1_mask_equals_the_boolean_one():
    """Scores and labels at masked-out positions leave the loss and the other rows of dx alone; 0/1 masks work."""
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((3, 4, 5)), rng.integers(0, 5, (3, 4))
    mask = rng.random((3, 4)) < 0.5
    loss, dx = temporal_softmax_loss(x, y, mask)
    x2, y2 = x.copy(), y.copy()
    x2[~mask], y2[~mask] = 1e4, 0  # scores of 1e4: no overflow warning either (warnings are errors)
    loss2, dx2 = temporal_softmax_loss(x2, y2, mask)
    assert loss2 == loss
    np.testing.assert_array_equal(dx2, dx)
    assert not np.any(dx[~mask])
    for as_numbers in (mask.astype(np.int64), mask.astype(np.float32)):
        same_loss, same_dx = temporal_softmax_loss(x, y, as_numbers)
        assert same_loss == loss
        np.testing.assert_array_equal(same_dx, dx)


def test_temporal_softmax_loss_keeps_float32():
    """float32 scores give a float32 loss and dx."""
    rng = np.random.default_rng(0)
    loss, dx = temporal_softmax_loss(rng.standard_normal((2, 3, 4)).astype(np.float32), rng.integers(0, 4, (2, 3)),
                                     np.ones((2, 3), bool))
    assert np.asarray(loss).dtype == np.float32 and dx.dtype == np.float32


def test_temporal_softmax_loss_refuses_bad_labels_and_masks():
    """Labels out of [0, V) or not integers, and masks of another shape or holding other values, are refused."""
    x, y, mask = np.zeros((2, 3, 4)), np.zeros((2, 3), np.int64), np.ones((2, 3), bool)
    fn = "temporal_softmax_loss"
    with pytest.raises(ValueError, match=rf"{fn}: y must hold labels in \[0, 4\) \(x has V = 4 scores per step\), "
                                         r"got 1 out of range \(first: 4\)"):
        temporal_softmax_loss(x, np.array([[0, 1, 4], [0, 0, 0]]), mask)
    with pytest.raises(ValueError, match=r"first: -1"):
        temporal_softmax_loss(x, np.array([[0, 1, 2], [0, -1, 0]]), mask)
    with pytest.raises(TypeError, match=rf"{fn}: y must hold integer labels, got dtype float64"):
        temporal_softmax_loss(x, y.astype(float), mask)
    with pytest.raises(ValueError, match=rf"{fn}: y must have shape \(2, 3\), one per position of x, got \(2, 4\)"):
        temporal_softmax_loss(x, np.zeros((2, 4), np.int64), mask)
    with pytest.raises(ValueError, match=rf"{fn}: mask must have shape \(2, 3\), one per position of x, got \(3,\)"):
        temporal_softmax_loss(x, y, np.ones(3, bool))
    with pytest.raises(ValueError, match=rf"{fn}: mask must hold only 0 and 1 \(or True and False\), got 2"):
        temporal_softmax_loss(x, y, np.array([[1, 0, 2], [1, 1, 1]]))
    with pytest.raises(TypeError, match=rf"{fn}: mask must be a numpy array of booleans \(or of 0 and 1\), got list"):
        temporal_softmax_loss(x, y, [[1, 1, 1], [1, 1, 1]])


def test_word_embedding_refuses_ids_out_of_range_and_non_integer_ids():
    """Ids outside [0, V) (negative ones included: no indexing from the end), floats and booleans are refused."""
    W, fn = np.zeros((5, 3)), "word_embedding_forward"
    for bad, first in ((5, 5), (-1, -1)):
        with pytest.raises(ValueError, match=rf"{fn}: x must hold word ids in \[0, 5\) \(W has shape \(5, 3\): "
                                             rf"V = 5 words\), got 1 out of range \(first: {first}\)"):
            word_embedding_forward(np.array([[0, 1], [bad, 2]]), W)
    with pytest.raises(TypeError, match=rf"{fn}: x must hold integer word ids, got dtype float64; convert it"):
        word_embedding_forward(np.zeros((2, 2)), W)
    with pytest.raises(TypeError, match=rf"{fn}: x must hold integer word ids, got dtype bool"):
        word_embedding_forward(np.zeros((2, 2), bool), W)
    with pytest.raises(ValueError, match=rf"{fn}: x must be 2-D, got shape \(4,\)"):
        word_embedding_forward(np.zeros(4, np.int64), W)
    with pytest.raises(ValueError, match=rf"{fn}: x holds no samples \(shape \(0, 2\), N = 0\)"):
        word_embedding_forward(np.zeros((0, 2), np.int64), W)
    with pytest.raises(TypeError, match=rf"{fn}: W must have a floating-point dtype, got int64"):
        word_embedding_forward(np.zeros((2, 2), np.int64), np.zeros((5, 3), np.int64))


# -- the boundary of the recurrent cells

def test_recurrent_cells_refuse_bad_shapes_naming_the_argument():
    """Weights, biases and states of the wrong shape, an empty sequence and mixed dtypes are refused with shapes."""
    x, h0, Wx, Wh, b = _cell(4, N=2, T=3, D=4, H=5)
    with pytest.raises(ValueError, match=r"lstm_forward: Wx must have shape \(4, 20\) = \(D, 4H\) for x of shape "
                                         r"\(2, 3, 4\) and h0 of shape \(2, 5\), got \(4, 15\)"):
        lstm_forward(x, h0, Wx[:, :15], Wh, b)
    with pytest.raises(ValueError, match=r"lstm_forward: b must have shape \(20,\) = \(4H,\) .* got \(1, 20\)"):
        lstm_forward(x, h0, Wx, Wh, b.reshape(1, 20))
    with pytest.raises(ValueError, match=r"rnn_forward: Wh must have shape \(5, 5\) = \(H, H\) .* got \(5, 20\)"):
        rnn_forward(x, h0, Wx[:, :5], Wh, b[:5])
    with pytest.raises(ValueError, match=r"gru_step_forward: prev_h has shape \(3, 5\) but x holds 2 samples"):
        gru_step_forward(x[:, 0], np.zeros((3, 5)), Wx[:, :15], Wh[:, :15], b[:15])
    with pytest.raises(ValueError, match=r"rnn_forward: x holds no time steps \(shape \(2, 0, 4\), T = 0\)"):
        rnn_forward(x[:, :0], h0, Wx[:, :5], Wh[:, :5], b[:5])
    with pytest.raises(ValueError, match=r"lstm_step_forward: prev_c must have prev_h's shape \(2, 5\), got \(2, 4\)"):
        lstm_step_forward(x[:, 0], h0, h0[:, :4], Wx, Wh, b)
    with pytest.raises(TypeError, match=r"rnn_step_forward: prev_h has dtype float32 but the other inputs are float64"):
        rnn_step_forward(x[:, 0], h0.astype(np.float32), Wx[:, :5], Wh[:, :5], b[:5])
    with pytest.raises(ValueError, match=r"rnn_backward \(dh\): dout has shape \(2, 3, 4\) but the forward output had "
                                         r"shape \(2, 3, 5\)"):
        rnn_backward(np.zeros((2, 3, 4)), rnn_forward(x, h0, Wx[:, :5], Wh[:, :5], b[:5])[1])
    cache = lstm_step_forward(x[:, 0], h0, h0, Wx, Wh, b)[2]
    with pytest.raises(ValueError, match=r"lstm_step_backward \(dnext_c\): dout has shape \(2, 4\)"):
        lstm_step_backward(np.zeros((2, 5)), np.zeros((2, 4)), cache)


def test_integer_weights_are_converted_as_the_course_writes_them():
    """Integer Wx, Wh and b (exact in x's dtype) give the same states as their float copies, in x's dtype."""
    x, h0 = _cell(1, dtype=np.float32)[:2]
    Wx, Wh, b = np.ones((5, 6), np.int64), -np.eye(6, dtype=np.int64), np.arange(6)
    h, cache = rnn_forward(x, h0, Wx, Wh, b)
    want, _ = rnn_forward(x, h0, Wx.astype(np.float32), Wh.astype(np.float32), b.astype(np.float32))
    assert h.dtype == np.float32
    np.testing.assert_array_equal(h, want)
    assert all(g.dtype == np.float32 for g in rnn_backward(np.ones_like(h), cache))


# -- PyTorch, beyond the declared comparisons (tests/test_registry.py)

def test_lstm_step_agrees_with_pytorch_autograd():
    """Both outputs and all six gradients of the LSTM step equal autograd through torch ops (float64)."""
    torch = pytest.importorskip("torch", reason="PyTorch is an optional extra (pip install chainrule[bench])")
    from layers.lstm import torch_lstm_step

    x, h0, Wx, Wh, b = _cell(4)
    arrays = {"x": x[:, 0], "prev_h": h0, "prev_c": np.random.default_rng(1).standard_normal(h0.shape),
              "Wx": Wx, "Wh": Wh, "b": b}
    tensors = {k: torch.from_numpy(v.copy()).requires_grad_(True) for k, v in arrays.items()}
    theirs = torch_lstm_step(torch, tensors["x"], [tensors["prev_h"], tensors["prev_c"]], tensors["Wx"],
                             tensors["Wh"], tensors["b"])
    dnext_h, dnext_c = np.random.default_rng(2).standard_normal((2, *h0.shape))
    torch.autograd.backward(theirs, [torch.from_numpy(dnext_h), torch.from_numpy(dnext_c)])
    next_h, next_c, cache = lstm_step_forward(*arrays.values())
    np.testing.assert_allclose(next_h, theirs[0].detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(next_c, theirs[1].detach().numpy(), rtol=1e-12)
    for (name, tensor), grad in zip(tensors.items(), lstm_step_backward(dnext_h, dnext_c, cache)):
        np.testing.assert_allclose(grad, tensor.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"d{name}")


def test_gru_step_is_torch_grucell_with_reordered_weights_and_no_hidden_bias():
    """As the docstring says: torch.nn.GRUCell with weight_ih = Wx^T, weight_hh = Wh^T and bias_ih = b, each
    reordered from (z, r, n) to PyTorch's (r, z, n), and bias_hh = 0, computes gru_step_forward."""
    torch = pytest.importorskip("torch", reason="PyTorch is an optional extra (pip install chainrule[bench])")
    x, h0, Wx, Wh, b = _cell(3)
    H = h0.shape[1]
    order = np.r_[H:2 * H, 0:H, 2 * H:3 * H]  # PyTorch's r, z, n from our z, r, n
    cell = torch.nn.GRUCell(x.shape[2], H, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(Wx[:, order].T.copy()))
        cell.weight_hh.copy_(torch.from_numpy(Wh[:, order].T.copy()))
        cell.bias_ih.copy_(torch.from_numpy(b[order].copy()))
        cell.bias_hh.zero_()
        theirs = cell(torch.from_numpy(x[:, 0].copy()), torch.from_numpy(h0.copy())).numpy()
    np.testing.assert_allclose(gru_step_forward(x[:, 0], h0, Wx, Wh, b)[0], theirs, rtol=1e-12, atol=1e-14)
