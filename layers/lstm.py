"""Gated recurrent cells: the LSTM of the course's image captioning (CS231n assignment 3) and the
GRU, one step and a whole sequence, with backpropagation through time as in layers/rnn.py.

LSTM (Hochreiter and Schmidhuber, 1997), the gates in the course's order along the 4H axis:

    a = x Wx + prev_h Wh + b                       (N, 4H), split into a_i, a_f, a_o, a_g
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o)      input, forget and output gates
    g = tanh(a_g)                                  block input
    next_c = f * prev_c + i * g,   next_h = o * tanh(next_c)

GRU (Cho et al., 2014), the gates in the order update z, reset r, candidate n along the 3H axis:

    z = sigmoid(x Wx_z + prev_h Wh_z + b_z),   r = sigmoid(x Wx_r + prev_h Wh_r + b_r)
    n = tanh(x Wx_n + r * (prev_h Wh_n) + b_n),   next_h = (1 - z) * n + z * prev_h

The reset gate scales prev_h Wh_n, as in PyTorch's torch.nn.GRUCell (not prev_h before the
product, as in Cho et al.). With one bias b, this is GRUCell with bias_ih = b (reordered to
r, z, n), bias_hh = 0, weight_ih = Wx^T and weight_hh = Wh^T (their rows reordered likewise).

In the sequence's backward, the gradient flowing into h_t is dh[:, t] plus what step t + 1 sends
back; the LSTM's cell state c_t reaches the loss only through step t + 1 (dprev_c).

Shape letters: N batch, T time steps, D input features, H hidden units.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from layers.cases import LayerCase
from layers.rnn import recurrent_arguments, recurrent_make, sequence_shape, torch_sequence
from layers.validate import cache_type, check_cache, float_array, returns_cache, upstream

__all__ = ["lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward",
           "gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward"]

LstmStepCache = cache_type("lstm_step_forward", "x prev_h prev_c Wx Wh i f o g tanh_next_c")
LstmCache = cache_type("lstm_forward", "steps")
GruStepCache = cache_type("gru_step_forward", "x prev_h Wx Wh z r n hn")
GruCache = cache_type("gru_forward", "steps")


def _tagged(kind, cache):
    """A plain cache tuple as its tagged type, as returns_cache does for a forward returning (out, cache)."""
    if type(cache) is not tuple or len(cache) != len(kind._fields):
        got = type(cache).__name__
        if isinstance(cache, (tuple, list)):
            got = f"a {got} of {len(cache)} items"
        raise TypeError(f"{kind.forward}: its cache must be a tuple of {len(kind._fields)} items "
                        f"({', '.join(kind._fields)}), got {got}.")
    return kind._make(cache)


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM step (the equations are in the module docstring).

    Args:
        x: this step's input; prev_h, prev_c: the previous hidden and cell states.
        Wx, Wh, b: weights and biases of the four gates i, f, o, g, side by side in that order.

    Returns:
        next_h, next_c: the next hidden and cell states.
        cache: (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_next_c).

    Shape:
        x: (N, D); prev_h, prev_c, next_h, next_c: (N, H); Wx: (D, 4H); Wh: (H, 4H); b: (4H,)
    """
    fn = "lstm_step_forward"
    x, prev_h, Wx, Wh, b = recurrent_arguments(fn, x, prev_h, Wx, Wh, b, gates=4, h_name="prev_h")
    prev_c = float_array(fn, "prev_c", prev_c, dtype=x.dtype)
    if prev_c.shape != prev_h.shape:
        raise ValueError(f"{fn}: prev_c must have prev_h's shape {prev_h.shape}, got {prev_c.shape}.")
    H = prev_h.shape[1]
    # BEGIN SOLUTION
    a = x @ Wx + prev_h @ Wh + b  # (N, 4H): the pre-activations of i, f, o, g side by side
    ifo = expit(a[:, :3 * H])  # (N, 3H), overflow-free
    i, f, o = ifo[:, :H], ifo[:, H:2 * H], ifo[:, 2 * H:]
    g = np.tanh(a[:, 3 * H:])  # (N, H)
    next_c = f * prev_c + i * g
    tanh_next_c = np.tanh(next_c)
    next_h = o * tanh_next_c
    cache = (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_next_c)
    # END SOLUTION
    return next_h, next_c, _tagged(LstmStepCache, cache)


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward pass of one LSTM step.

    Args:
        dnext_h, dnext_c: upstream gradients of next_h and next_c; cache: from lstm_step_forward.

    Returns:
        dx, dprev_h, dprev_c, dWx, dWh, db: the gradients of forward's inputs, in its order.

    Shape:
        dnext_h, dnext_c, dprev_h, dprev_c: (N, H); dx: (N, D); dWx: (D, 4H); dWh: (H, 4H); db: (4H,)
    """
    fn = "lstm_step_backward"
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_next_c = check_cache(fn, cache, LstmStepCache)
    dnext_h = upstream(f"{fn} (dnext_h)", dnext_h, prev_h.shape, prev_h.dtype)
    dnext_c = upstream(f"{fn} (dnext_c)", dnext_c, prev_h.shape, prev_h.dtype)
    # BEGIN SOLUTION
    do = dnext_h * tanh_next_c  # next_h = o tanh(next_c)
    dc = dnext_c + dnext_h * o * (1 - tanh_next_c**2)  # next_c reaches the loss directly and through next_h
    df, dprev_c, di, dg = dc * prev_c, dc * f, dc * g, dc * i  # next_c = f prev_c + i g
    # through the sigmoids (s' = s (1 - s)) and tanh (1 - g^2), in the gates' order i, f, o, g
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g**2)], axis=1)  # (N, 4H)
    dx = da @ Wx.T  # (N, 4H) @ (4H, D) -> (N, D)
    dprev_h = da @ Wh.T  # (N, 4H) @ (4H, H) -> (N, H)
    dWx = x.T @ da  # (D, N) @ (N, 4H) -> (D, 4H)
    dWh = prev_h.T @ da  # (H, N) @ (N, 4H) -> (H, 4H)
    db = da.sum(axis=0)  # (4H,)
    # END SOLUTION
    return dx, dprev_h, dprev_c, dWx, dWh, db


@returns_cache(LstmCache)
def lstm_forward(x, h0, Wx, Wh, b):
    """An LSTM over a whole sequence: lstm_step_forward at t = 0, ..., T - 1, from h0 and a zero cell state.

    Args:
        x: the input sequences; h0: the initial hidden state (the cell state starts at 0).
        Wx, Wh, b: the weights and biases, shared by every step (as in lstm_step_forward).

    Returns:
        h: the hidden states of every step.
        cache: (steps,), the tuple of the T step caches.

    Shape:
        x: (N, T, D); h0: (N, H); Wx: (D, 4H); Wh: (H, 4H); b: (4H,); h: (N, T, H)
    """
    x, h0, Wx, Wh, b = recurrent_arguments("lstm_forward", x, h0, Wx, Wh, b, gates=4, h_name="h0", sequence=True)
    N, T, _ = x.shape
    # BEGIN SOLUTION
    h = np.empty((N, T, h0.shape[1]), dtype=x.dtype)
    steps, prev_h, prev_c = [], h0, np.zeros_like(h0)
    for t in range(T):
        prev_h, prev_c, step = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)  # (N, H) each
        h[:, t] = prev_h  # a copy: the next step's cache keeps prev_h itself, never a view of h
        steps.append(step)
    # END SOLUTION
    return h, (tuple(steps),)


def lstm_backward(dh, cache):
    """Backward pass of lstm_forward: backpropagation through time, step T - 1 down to 0.

    Args:
        dh: upstream gradient of every hidden state; cache: from lstm_forward.

    Returns:
        dx, dh0, dWx, dWh, db: the gradients of forward's inputs, in its order.

    Shape:
        dh: (N, T, H); dx: (N, T, D); dh0: (N, H); dWx: (D, 4H); dWh: (H, 4H); db: (4H,)
    """
    (steps,) = check_cache("lstm_backward", cache, LstmCache)
    N, T, D, H, dtype = sequence_shape(steps)
    dh = upstream("lstm_backward (dh)", dh, (N, T, H), dtype)
    # BEGIN SOLUTION
    # Step by step, only what must be sequential: the gates' gradient da_t and what it sends back to
    # h_{t-1} and c_{t-1} (lstm_step_backward's first half). The weight gradients are sums over the
    # steps of x_t^T da_t and h_{t-1}^T da_t, and dx_t = da_t Wx^T: each is one product over all N T
    # rows once the loop has gathered every da_t, which is what lstm_step_backward would compute T times.
    Wh = steps[0].Wh
    da = np.empty((N, T, 4 * H), dtype=dtype)  # the pre-activations' gradient at every step
    dprev_h = np.zeros((N, H), dtype)
    dprev_c = np.zeros((N, H), dtype)  # the last cell state is no output: nothing flows into it
    for t in reversed(range(T)):
        _, _, prev_c, _, _, i, f, o, g, tanh_c = steps[t]
        dnext_h = dh[:, t] + dprev_h  # h_t: from the loss at step t plus what step t + 1 sent back
        dc = dprev_c + dnext_h * o * (1 - tanh_c**2)  # c_t: from step t + 1 and through h_t = o tanh(c_t)
        da_t = da[:, t]
        da_t[:, :H] = dc * g * i * (1 - i)  # di through the sigmoid s' = s (1 - s)
        da_t[:, H:2 * H] = dc * prev_c * f * (1 - f)  # df
        da_t[:, 2 * H:3 * H] = dnext_h * tanh_c * o * (1 - o)  # do
        da_t[:, 3 * H:] = dc * i * (1 - g**2)  # dg through tanh
        dprev_h = da_t @ Wh.T  # (N, 4H) @ (4H, H) -> (N, H)
        dprev_c = dc * f  # c_t = f c_{t-1} + i g
    x = np.stack([step.x for step in steps], axis=1).reshape(N * T, D)  # (N T, D), row n T + t
    h_prev = np.stack([step.prev_h for step in steps], axis=1).reshape(N * T, H)  # h_{t-1}, h0 first
    da = da.reshape(N * T, 4 * H)
    dx = (da @ steps[0].Wx.T).reshape(N, T, D)  # (N T, 4H) @ (4H, D)
    dWx = x.T @ da  # (D, N T) @ (N T, 4H): every step's x_t^T da_t, summed
    dWh = h_prev.T @ da  # (H, N T) @ (N T, 4H)
    db = da.sum(axis=0)  # (4H,)
    dh0 = dprev_h
    # END SOLUTION
    return dx, dh0, dWx, dWh, db


@returns_cache(GruStepCache)
def gru_step_forward(x, prev_h, Wx, Wh, b):
    """One GRU step, PyTorch's convention with one bias (the equations are in the module docstring).

    Args:
        x: this step's input; prev_h: the previous hidden state.
        Wx, Wh, b: weights and biases of z, r and n, side by side in that order.

    Returns:
        next_h: the next hidden state.
        cache: (x, prev_h, Wx, Wh, z, r, n, hn), hn = prev_h Wh_n.

    Shape:
        x: (N, D); prev_h, next_h: (N, H); Wx: (D, 3H); Wh: (H, 3H); b: (3H,)
    """
    x, prev_h, Wx, Wh, b = recurrent_arguments("gru_step_forward", x, prev_h, Wx, Wh, b, gates=3, h_name="prev_h")
    H = prev_h.shape[1]
    # BEGIN SOLUTION
    ax = x @ Wx + b  # (N, 3H): the input's share of every gate, with the bias
    ah = prev_h @ Wh  # (N, 3H): the hidden state's share
    zr = expit(ax[:, :2 * H] + ah[:, :2 * H])  # (N, 2H), overflow-free
    z, r = zr[:, :H], zr[:, H:]
    hn = ah[:, 2 * H:]  # prev_h Wh_n, which the reset gate scales
    n = np.tanh(ax[:, 2 * H:] + r * hn)  # (N, H)
    next_h = (1 - z) * n + z * prev_h
    # END SOLUTION
    return next_h, (x, prev_h, Wx, Wh, z, r, n, hn)


def gru_step_backward(dnext_h, cache):
    """Backward pass of one GRU step.

    Args:
        dnext_h: upstream gradient of next_h; cache: from gru_step_forward.

    Returns:
        dx, dprev_h, dWx, dWh, db: the gradients of forward's inputs, in its order.

    Shape:
        dnext_h, dprev_h: (N, H); dx: (N, D); dWx: (D, 3H); dWh: (H, 3H); db: (3H,)
    """
    fn = "gru_step_backward"
    x, prev_h, Wx, Wh, z, r, n, hn = check_cache(fn, cache, GruStepCache)
    dnext_h = upstream(f"{fn} (dnext_h)", dnext_h, prev_h.shape, prev_h.dtype)
    # BEGIN SOLUTION
    dn = dnext_h * (1 - z)  # next_h = (1 - z) n + z prev_h
    dz = dnext_h * (prev_h - n)
    dan = dn * (1 - n**2)  # through tanh to n's pre-activation x Wx_n + r hn + b_n
    daz = dz * z * (1 - z)  # through the sigmoids
    dar = dan * hn * r * (1 - r)
    dax = np.concatenate([daz, dar, dan], axis=1)  # (N, 3H): gradient of x Wx + b
    dah = np.concatenate([daz, dar, dan * r], axis=1)  # (N, 3H): of prev_h Wh, whose n part r scales
    dx = dax @ Wx.T  # (N, 3H) @ (3H, D) -> (N, D)
    dprev_h = dnext_h * z + dah @ Wh.T  # prev_h is used directly and through Wh
    dWx = x.T @ dax  # (D, N) @ (N, 3H) -> (D, 3H)
    dWh = prev_h.T @ dah  # (H, N) @ (N, 3H) -> (H, 3H)
    db = dax.sum(axis=0)  # (3H,)
    # END SOLUTION
    return dx, dprev_h, dWx, dWh, db


@returns_cache(GruCache)
def gru_forward(x, h0, Wx, Wh, b):
    """A GRU over a whole sequence: gru_step_forward at t = 0, ..., T - 1, from h0.

    Args:
        x: the input sequences; h0: the initial hidden state.
        Wx, Wh, b: the weights and biases, shared by every step (as in gru_step_forward).

    Returns:
        h: the hidden states of every step.
        cache: (steps,), the tuple of the T step caches.

    Shape:
        x: (N, T, D); h0: (N, H); Wx: (D, 3H); Wh: (H, 3H); b: (3H,); h: (N, T, H)
    """
    x, h0, Wx, Wh, b = recurrent_arguments("gru_forward", x, h0, Wx, Wh, b, gates=3, h_name="h0", sequence=True)
    N, T, _ = x.shape
    # BEGIN SOLUTION
    h = np.empty((N, T, h0.shape[1]), dtype=x.dtype)
    steps, prev_h = [], h0
    for t in range(T):
        prev_h, step = gru_step_forward(x[:, t], prev_h, Wx, Wh, b)  # (N, H)
        h[:, t] = prev_h  # a copy: the next step's cache keeps prev_h itself, never a view of h
        steps.append(step)
    # END SOLUTION
    return h, (tuple(steps),)


def gru_backward(dh, cache):
    """Backward pass of gru_forward: backpropagation through time, step T - 1 down to 0.

    Args:
        dh: upstream gradient of every hidden state; cache: from gru_forward.

    Returns:
        dx, dh0, dWx, dWh, db: the gradients of forward's inputs, in its order.

    Shape:
        dh: (N, T, H); dx: (N, T, D); dh0: (N, H); dWx: (D, 3H); dWh: (H, 3H); db: (3H,)
    """
    (steps,) = check_cache("gru_backward", cache, GruCache)
    N, T, D, H, dtype = sequence_shape(steps)
    dh = upstream("gru_backward (dh)", dh, (N, T, H), dtype)
    # BEGIN SOLUTION
    dx = np.empty((N, T, D), dtype=dtype)
    dWx, dWh, db = np.zeros((D, 3 * H), dtype), np.zeros((H, 3 * H), dtype), np.zeros(3 * H, dtype)
    dprev_h = np.zeros((N, H), dtype)
    for t in reversed(range(T)):
        # the gradient flowing into h_t: from the loss at step t, plus what step t + 1 sent back
        dx[:, t], dprev_h, dWx_t, dWh_t, db_t = gru_step_backward(dh[:, t] + dprev_h, steps[t])
        dWx += dWx_t  # shared weights: their gradients add up over the steps
        dWh += dWh_t
        db += db_t
    dh0 = dprev_h
    # END SOLUTION
    return dx, dh0, dWx, dWh, db


# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests, the grader and the benchmarks run for this family (layers/cases.py).

def torch_lstm_step(torch, x, states, Wx, Wh, b):
    """The LSTM step in torch ops, for autograd: [next_h, next_c] from states [prev_h, prev_c]."""
    i, f, o, g = (x @ Wx + states[0] @ Wh + b).chunk(4, dim=1)
    next_c = torch.sigmoid(f) * states[1] + torch.sigmoid(i) * torch.tanh(g)
    return [torch.sigmoid(o) * torch.tanh(next_c), next_c]


def torch_gru_step(torch, x, states, Wx, Wh, b):
    """The GRU step in torch ops (not torch.nn.GRU), for autograd: [next_h] from states [prev_h]."""
    ax_z, ax_r, ax_n = (x @ Wx + b).chunk(3, dim=1)
    ah_z, ah_r, ah_n = (states[0] @ Wh).chunk(3, dim=1)
    z, r = torch.sigmoid(ax_z + ah_z), torch.sigmoid(ax_r + ah_r)
    n = torch.tanh(ax_n + r * ah_n)
    return [(1 - z) * n + z * states[0]]


def _lstm_step_pair(x, prev_h, prev_c, Wx, Wh, b):
    """lstm_step_forward as the pair convention: ((next_h, next_c), cache)."""
    next_h, next_c, cache = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    return (next_h, next_c), cache


def _lstm_step_pair_backward(douts, cache):
    """lstm_step_backward as the pair convention: douts = (dnext_h, dnext_c)."""
    dnext_h, dnext_c = douts
    return lstm_step_backward(dnext_h, dnext_c, cache)


# The generic tests name a case's pair in the cache messages they expect: the adapters take its names.
_lstm_step_pair.__name__ = _lstm_step_pair.__qualname__ = "lstm_step_forward"
_lstm_step_pair_backward.__name__ = _lstm_step_pair_backward.__qualname__ = "lstm_step_backward"


CASES = (
    # Two outputs and two upstream gradients: declared through the adapters, not graded (the grader
    # calls lstm_step_forward by name and expects (out, cache)); lstm_forward grades it in use. The
    # generic PyTorch comparison takes one output: tests/test_rnn.py compares both.
    LayerCase("lstm_step_forward", _lstm_step_pair, _lstm_step_pair_backward, recurrent_make(4, False, cell=True),
              graded=False, bench=False),
    # target: at most 2x PyTorch at the training size (N 64, T 32, D = H = 256); the benchmark's PyTorch
    # figure is the same recurrence in torch ops (the fused torch.nn.LSTM is in docs/performance-notes.md)
    LayerCase("lstm_forward", lstm_forward, lstm_backward, recurrent_make(4, True),
              torch=torch_sequence(torch_lstm_step, zero_states=1), target={"training": 2.0}),
    LayerCase("gru_step_forward", gru_step_forward, gru_step_backward, recurrent_make(3, False), bench=False,
              torch=lambda torch, t, p: torch_gru_step(torch, t["x"], [t["prev_h"]], t["Wx"], t["Wh"], t["b"])[0]),
    LayerCase("gru_forward", gru_forward, gru_backward, recurrent_make(3, True), bench=False,
              torch=torch_sequence(torch_gru_step)),
)
