"""The vanilla recurrent layer of the course's image captioning (CS231n assignment 3): one step and
a whole sequence. The LSTM and GRU cells are in layers/lstm.py, the layers that work on every
time step alike (word embedding, temporal affine, temporal softmax loss) in layers/temporal.py.

A step is next_h = tanh(x Wx + prev_h Wh + b). Its backward is the chain rule through tanh and
two matrix products. A sequence's backward (backpropagation through time) runs the steps in
reverse, T - 1 down to 0, reusing the step's backward: the hidden state h_t reaches the loss
directly (dh[:, t]) and through h_{t+1} (what step t + 1 sends back as dprev_h), so the gradient
flowing into h_t is their sum. Every step shares Wx, Wh and b, so their gradients add up.

Shape letters: N batch, T time steps, D input features, H hidden units.
"""

from __future__ import annotations

import numpy as np

from layers.cases import LayerCase, normal
from layers.validate import cache_type, check_cache, float_array, param_array, returns_cache, upstream

__all__ = ["rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward"]

RnnStepCache = cache_type("rnn_step_forward", "x prev_h Wx Wh local_grad")
RnnCache = cache_type("rnn_forward", "steps")


def recurrent_arguments(fn, x, h, Wx, Wh, b, *, gates, h_name, sequence=False):
    """Check a recurrent cell's arguments; H comes from the hidden state h.

    Args:
        fn: the calling function, for messages; x, h, Wx, Wh, b: its arguments.
        gates: blocks of H columns in Wx, Wh and b (1 for the RNN, 4 for the LSTM, 3 for the GRU).
        h_name: the hidden state's argument name ("prev_h" or "h0").
        sequence: x is a sequence (N, T, D), T >= 1, rather than one step (N, D).

    Returns:
        (x, h, Wx, Wh, b), the weights converted to x's dtype when they are integer arrays.

    Shape:
        x: (N, D) or (N, T, D); h: (N, H); Wx: (D, gates H); Wh: (H, gates H); b: (gates H,)
    """
    x = float_array(fn, "x", x, ndim=3 if sequence else 2, batch=True)
    h = float_array(fn, h_name, h, ndim=2, dtype=x.dtype)
    Wx, Wh, b = (param_array(fn, name, value, x.dtype) for name, value in (("Wx", Wx), ("Wh", Wh), ("b", b)))
    N, D, H = x.shape[0], x.shape[-1], h.shape[1]
    if sequence and x.shape[1] == 0:
        raise ValueError(f"{fn}: x holds no time steps (shape {x.shape}, T = 0); a sequence needs T >= 1.")
    if h.shape[0] != N:
        raise ValueError(f"{fn}: {h_name} has shape {h.shape} but x holds {N} samples (shape {x.shape}); "
                         f"{h_name} must be ({N}, H).")
    cols, letters = gates * H, "H" if gates == 1 else f"{gates}H"
    for name, value, want, rows in (("Wx", Wx, (D, cols), "D"), ("Wh", Wh, (H, cols), "H"), ("b", b, (cols,), "")):
        if value.shape != want:
            layout = f"({rows}, {letters})" if rows else f"({letters},)"
            raise ValueError(f"{fn}: {name} must have shape {want} = {layout} for x of shape {x.shape} and "
                             f"{h_name} of shape {h.shape}, got {value.shape}.")
    return x, h, Wx, Wh, b


def sequence_shape(steps):
    """The dimensions of a sequence, read from its step caches (as rnn_forward, lstm_forward and
    gru_forward store them).

    Args:
        steps: the T step caches, each with fields x and prev_h.

    Returns:
        (N, T, D, H, dtype).

    Shape:
        steps[t].x: (N, D); steps[t].prev_h: (N, H)
    """
    N, D = steps[0].x.shape
    return N, len(steps), D, steps[0].prev_h.shape[1], steps[0].x.dtype


@returns_cache(RnnStepCache)
def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One step of a vanilla RNN: next_h = tanh(x Wx + prev_h Wh + b).

    Args:
        x: this step's input; prev_h: the previous hidden state.
        Wx: input-to-hidden weights; Wh: hidden-to-hidden weights; b: biases.

    Returns:
        next_h: the next hidden state.
        cache: (x, prev_h, Wx, Wh, local_grad), local_grad = 1 - next_h^2 (tanh's derivative).

    Shape:
        x: (N, D); prev_h, next_h: (N, H); Wx: (D, H); Wh: (H, H); b: (H,)
    """
    x, prev_h, Wx, Wh, b = recurrent_arguments("rnn_step_forward", x, prev_h, Wx, Wh, b, gates=1, h_name="prev_h")
    # BEGIN SOLUTION
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)
    local_grad = 1 - next_h**2  # tanh'(a) = 1 - tanh(a)^2; a new array, so the cache never holds next_h
    # END SOLUTION
    return next_h, (x, prev_h, Wx, Wh, local_grad)


def rnn_step_backward(dnext_h, cache):
    """Backward pass of one RNN step.

    Args:
        dnext_h: upstream gradient of next_h; cache: from rnn_step_forward.

    Returns:
        dx, dprev_h, dWx, dWh, db: the gradients of forward's inputs, in its order.

    Shape:
        dnext_h, dprev_h: (N, H); dx: (N, D); dWx: (D, H); dWh: (H, H); db: (H,)
    """
    fn = "rnn_step_backward"
    x, prev_h, Wx, Wh, local_grad = check_cache(fn, cache, RnnStepCache)
    dnext_h = upstream(f"{fn} (dnext_h)", dnext_h, local_grad.shape, local_grad.dtype)
    # BEGIN SOLUTION
    da = dnext_h * local_grad  # (N, H): through tanh to a = x Wx + prev_h Wh + b
    dx = da @ Wx.T  # (N, H) @ (H, D) -> (N, D)
    dprev_h = da @ Wh.T  # (N, H) @ (H, H) -> (N, H)
    dWx = x.T @ da  # (D, N) @ (N, H) -> (D, H)
    dWh = prev_h.T @ da  # (H, N) @ (N, H) -> (H, H)
    db = da.sum(axis=0)  # (H,)
    # END SOLUTION
    return dx, dprev_h, dWx, dWh, db


@returns_cache(RnnCache)
def rnn_forward(x, h0, Wx, Wh, b):
    """A vanilla RNN over a whole sequence: rnn_step_forward at t = 0, ..., T - 1, from h0.

    Args:
        x: the input sequences; h0: the initial hidden state.
        Wx, Wh, b: the weights and biases, shared by every step (as in rnn_step_forward).

    Returns:
        h: the hidden states of every step (h[:, t] is the state after step t).
        cache: (steps,), the tuple of the T step caches.

    Shape:
        x: (N, T, D); h0: (N, H); Wx: (D, H); Wh: (H, H); b: (H,); h: (N, T, H)
    """
    x, h0, Wx, Wh, b = recurrent_arguments("rnn_forward", x, h0, Wx, Wh, b, gates=1, h_name="h0", sequence=True)
    N, T, _ = x.shape
    # BEGIN SOLUTION
    h = np.empty((N, T, h0.shape[1]), dtype=x.dtype)
    steps, prev_h = [], h0
    for t in range(T):
        prev_h, step = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)  # (N, H)
        h[:, t] = prev_h  # a copy: the next step's cache keeps prev_h itself, never a view of h
        steps.append(step)
    # END SOLUTION
    return h, (tuple(steps),)


def rnn_backward(dh, cache):
    """Backward pass of rnn_forward: backpropagation through time, step T - 1 down to 0.

    Args:
        dh: upstream gradient of every hidden state (from the loss at each step); cache: from rnn_forward.

    Returns:
        dx, dh0, dWx, dWh, db: the gradients of forward's inputs, in its order.

    Shape:
        dh: (N, T, H); dx: (N, T, D); dh0: (N, H); dWx: (D, H); dWh: (H, H); db: (H,)
    """
    (steps,) = check_cache("rnn_backward", cache, RnnCache)
    N, T, D, H, dtype = sequence_shape(steps)
    dh = upstream("rnn_backward (dh)", dh, (N, T, H), dtype)
    # BEGIN SOLUTION
    dx = np.empty((N, T, D), dtype=dtype)
    dWx, dWh, db = np.zeros((D, H), dtype), np.zeros((H, H), dtype), np.zeros(H, dtype)
    dprev_h = np.zeros((N, H), dtype)  # no step after the last: h_{T-1} reaches the loss through dh only
    for t in reversed(range(T)):
        # the gradient flowing into h_t: from the loss at step t, plus what step t + 1 sent back
        dx[:, t], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev_h, steps[t])
        dWx += dWx_t  # the weights are shared by every step: their gradients add up
        dWh += dWh_t
        db += db_t
    dh0 = dprev_h
    # END SOLUTION
    return dx, dh0, dWx, dWh, db


# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests, the grader and the benchmarks run for this family (layers/cases.py).

# (N, T, D, H) of the recurrent cells' cases at each size (layers/lstm.py's too).
RECURRENT_SIZES = {"check": (2, 3, 4, 5), "course": (10, 20, 30, 40), "training": (64, 32, 256, 256)}


def recurrent_make(gates, sequence, cell=False):
    """The make of a recurrent cell's case: x, the hidden state (and the cell state), Wx, Wh and b.

    Args:
        gates: blocks of H columns in the weights; sequence: the whole sequence's case (x (N, T, D),
            h0) rather than one step's (x (N, D), prev_h); cell: add prev_c (the LSTM step).

    Returns:
        make(rng, size, dtype) -> (inputs, {}), inputs in the forward's argument order.

    Shape:
        x: (N, T, D) or (N, D); h0 / prev_h / prev_c: (N, H); Wx: (D, gates H); Wh: (H, gates H); b: (gates H,)
    """
    def make(rng, size, dtype):
        N, T, D, H = RECURRENT_SIZES[size]
        inputs = {"x": normal(rng, (N, T, D) if sequence else (N, D), dtype),
                  "h0" if sequence else "prev_h": normal(rng, (N, H), dtype, scale=0.5)}
        if cell:
            inputs["prev_c"] = normal(rng, (N, H), dtype)
        # weights of scale 1 / sqrt(fan-in) keep the gates' pre-activations of order 1, away from saturation
        inputs.update(Wx=normal(rng, (D, gates * H), dtype, scale=D**-0.5),
                      Wh=normal(rng, (H, gates * H), dtype, scale=H**-0.5),
                      b=normal(rng, (gates * H,), dtype, scale=0.5))
        return inputs, {}
    return make


def torch_sequence(step, zero_states=0):
    """The PyTorch equivalent of a sequence forward, for autograd: step(torch, x_t, states, Wx, Wh, b)
    -> states (the hidden state first) at every t, from [h0] and zero_states states of zeros (the
    LSTM's cell state); returns the hidden states stacked over T."""
    def run(torch, t, p):
        states, hs = [t["h0"]] + [torch.zeros_like(t["h0"])] * zero_states, []
        for k in range(t["x"].shape[1]):
            states = step(torch, t["x"][:, k], states, t["Wx"], t["Wh"], t["b"])
            hs.append(states[0])
        return torch.stack(hs, dim=1)
    return run


def _torch_rnn_step(torch, x, states, Wx, Wh, b):
    return [torch.tanh(x @ Wx + states[0] @ Wh + b)]


CASES = (
    LayerCase("rnn_step_forward", rnn_step_forward, rnn_step_backward, recurrent_make(1, False), bench=False,
              torch=lambda torch, t, p: _torch_rnn_step(torch, t["x"], [t["prev_h"]], t["Wx"], t["Wh"], t["b"])[0]),
    LayerCase("rnn_forward", rnn_forward, rnn_backward, recurrent_make(1, True), torch=torch_sequence(_torch_rnn_step)),
)
