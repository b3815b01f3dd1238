"""The layers that work on every time step alike, around the recurrent cells of the course's image
captioning (CS231n assignment 3): word embedding (word ids to vectors), temporal affine (scores
from hidden states) and the temporal softmax loss (cross-entropy over the masked-in steps).

Each treats the N T positions of a sequence batch as N T independent rows, so backward is the
one-step rule applied to every row at once: no loop over time. The recurrent cells themselves
are in layers/rnn.py and layers/lstm.py.

Shape letters: N batch, T time steps, D features in (word vector or hidden size), M features
out, V words in the vocabulary (or scores per step).
"""

from __future__ import annotations

import numpy as np

from layers.cases import LayerCase, normal
from layers.validate import _empty_batch, cache_type, check_cache, float_array, param_array, returns_cache, upstream

__all__ = ["word_embedding_forward", "word_embedding_backward", "temporal_affine_forward", "temporal_affine_backward",
           "temporal_softmax_loss"]

WordEmbeddingCache = cache_type("word_embedding_forward", "x W_shape dtype")
TemporalAffineCache = cache_type("temporal_affine_forward", "x w")


def _integer_array(fn, name, value, *, what, shape=None, ndim=None, high=None):
    """Check an integer array (word ids, labels): its dtype, shape and, given high, values in [0, high).

    An empty leading axis (N = 0) is refused as an empty batch when ndim is given.

    Args:
        fn, name: the calling function and the argument, for messages.
        what: what the values are, e.g. "word ids"; shape / ndim: the exact shape / dimensions.
        high: the exclusive upper bound of the values, with its reason: (bound, reason) or None.

    Returns:
        value, unchanged.

    Shape:
        value: shape, or any shape of ndim dimensions
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy array of integer {what}, got {type(value).__name__}.")
    if value.dtype.kind not in "iu":
        raise TypeError(f"{fn}: {name} must hold integer {what}, got dtype {value.dtype}; convert it with "
                        f"{name}.astype(np.int64) if the values are whole numbers.")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D, got shape {value.shape}.")
    if ndim is not None and value.shape[0] == 0:
        raise _empty_batch(fn, name, value.shape)
    if shape is not None and value.shape != tuple(shape):
        raise ValueError(f"{fn}: {name} must have shape {tuple(shape)}, one per position of x, got {value.shape}.")
    if high is not None and value.size and (value.min() < 0 or value.max() >= high[0]):
        bad = value[(value < 0) | (value >= high[0])]
        raise ValueError(f"{fn}: {name} must hold {what} in [0, {high[0]}) ({high[1]}), got {bad.size} out of range "
                         f"(first: {bad[0]}).")
    return value


@returns_cache(WordEmbeddingCache)
def word_embedding_forward(x, W):
    """Word embedding: each word id of x picks its row of W, out[n, t] = W[x[n, t]].

    Args:
        x: word ids, integers in [0, V) (anything else is refused, negative ids included).
        W: the word vectors, one row per word.

    Returns:
        out: the vector of every word.
        cache: (x, W_shape, dtype), all that backward reads.

    Shape:
        x: (N, T); W: (V, D); out: (N, T, D)
    """
    fn = "word_embedding_forward"
    x = _integer_array(fn, "x", x, what="word ids", ndim=2)
    W = float_array(fn, "W", W, ndim=2)
    _integer_array(fn, "x", x, what="word ids", high=(W.shape[0], f"W has shape {W.shape}: V = {W.shape[0]} words"))
    # BEGIN SOLUTION
    out = W[x]  # (N, T, D): indexing with an array copies the rows, so out never shares memory with W
    # END SOLUTION
    return out, (x, W.shape, W.dtype)


def word_embedding_backward(dout, cache):
    """Backward pass of the word embedding: each row of dW sums the upstream gradients of its word's uses.

    Args:
        dout: upstream gradient; cache: from word_embedding_forward.

    Returns:
        dW, the gradient of W (x, the word ids, has none).

    Shape:
        dout: (N, T, D); dW: (V, D)
    """
    x, W_shape, dtype = check_cache("word_embedding_backward", cache, WordEmbeddingCache)
    dout = upstream("word_embedding_backward", dout, (*x.shape, W_shape[1]), dtype)
    # BEGIN SOLUTION
    dW = np.zeros(W_shape, dtype=dtype)
    # A word used k times gets the sum of its k upstream gradients (the copy gate's rule). np.add.at
    # adds at repeated indices, where dW[x] += dout would keep one of them.
    np.add.at(dW, x.reshape(-1), dout.reshape(-1, W_shape[1]))  # (N T,) ids, (N T, D) rows
    # END SOLUTION
    return dW


@returns_cache(TemporalAffineCache)
def temporal_affine_forward(x, w, b):
    """The affine layer applied at every time step: out[:, t] = x[:, t] w + b.

    Args:
        x: the input sequences; w: weights; b: biases, exactly of shape (M,).

    Returns:
        out: the outputs of every step.
        cache: (x, w), all that backward reads.

    Shape:
        x: (N, T, D); w: (D, M); b: (M,); out: (N, T, M)
    """
    fn = "temporal_affine_forward"
    x = float_array(fn, "x", x, ndim=3, batch=True)
    w = param_array(fn, "w", w, x.dtype, ndim=2)
    b = param_array(fn, "b", b, x.dtype)
    N, T, D = x.shape
    if w.shape[0] != D:
        raise ValueError(f"{fn}: x has {D} features per step (shape {x.shape}) but w has shape {w.shape}; "
                         f"w must be ({D}, M).")
    if b.shape != (w.shape[1],):
        raise ValueError(f"{fn}: b must have shape ({w.shape[1]},) to match w of shape {w.shape}, got {b.shape}.")
    # BEGIN SOLUTION
    out = (x.reshape(N * T, D) @ w + b).reshape(N, T, -1)  # (N T, D) @ (D, M) -> (N, T, M)
    # END SOLUTION
    return out, (x, w)


def temporal_affine_backward(dout, cache):
    """Backward pass of the temporal affine layer: affine_backward with the N T steps as the rows.

    Args:
        dout: upstream gradient; cache: from temporal_affine_forward.

    Returns:
        dx, dw, db: the gradients of forward's inputs, in its order.

    Shape:
        dout: (N, T, M); dx: (N, T, D); dw: (D, M); db: (M,)
    """
    x, w = check_cache("temporal_affine_backward", cache, TemporalAffineCache)
    N, T, D = x.shape
    M = w.shape[1]
    dout = upstream("temporal_affine_backward", dout, (N, T, M), x.dtype)
    # BEGIN SOLUTION
    rows = dout.reshape(N * T, M)
    dx = (rows @ w.T).reshape(N, T, D)  # (N T, M) @ (M, D) -> (N, T, D)
    dw = x.reshape(N * T, D).T @ rows  # (D, N T) @ (N T, M) -> (D, M)
    db = rows.sum(axis=0)  # (M,)
    # END SOLUTION
    return dx, dw, db


def _mask(fn, mask, shape):
    """The mask as booleans: a bool array, or numbers that are all 0 or 1, of the given shape."""
    if not isinstance(mask, np.ndarray) or mask.dtype.kind not in "biuf":
        got = f"dtype {mask.dtype}" if isinstance(mask, np.ndarray) else type(mask).__name__
        raise TypeError(f"{fn}: mask must be a numpy array of booleans (or of 0 and 1), got {got}.")
    if mask.shape != tuple(shape):
        raise ValueError(f"{fn}: mask must have shape {tuple(shape)}, one per position of x, got {mask.shape}.")
    if mask.dtype.kind == "b":
        return mask
    keep = mask != 0
    if np.any(keep & (mask != 1)):
        raise ValueError(f"{fn}: mask must hold only 0 and 1 (or True and False), got {mask[keep & (mask != 1)][0]}.")
    return keep


def temporal_softmax_loss(x, y, mask):
    """Softmax cross-entropy at every masked-in time step, summed and divided by N (as the course).

    L = -(1/N) sum over n, t with mask[n, t] of log softmax(x[n, t])[y[n, t]];
    dL/dx[n, t] = mask[n, t] (softmax(x[n, t]) - onehot(y[n, t])) / N. Masked-out positions (padding
    after a caption's end) add nothing to the loss and get zero gradient.

    Args:
        x: scores over the vocabulary at every step.
        y: integer labels in [0, V), at every position (masked-out ones included).
        mask: which positions count: booleans, or numbers that are all 0 or 1.

    Returns:
        loss: a scalar of x's dtype.
        dx: gradient of the loss with respect to x.

    Shape:
        x, dx: (N, T, V); y, mask: (N, T)
    """
    fn = "temporal_softmax_loss"
    x = float_array(fn, "x", x, ndim=3, batch=True)
    N, T, V = x.shape
    if V == 0:
        raise ValueError(f"{fn}: x must hold at least one score per step, got shape {x.shape}.")
    y = _integer_array(fn, "y", y, what="labels", shape=(N, T), high=(V, f"x has V = {V} scores per step"))
    mask = _mask(fn, mask, (N, T))
    # BEGIN SOLUTION
    scores, rows, labels, keep = x.reshape(N * T, V), np.arange(N * T), y.reshape(N * T), mask.reshape(N * T)
    # Shifting each row by its max leaves softmax unchanged and keeps exp() from overflowing.
    shifted = scores - scores.max(axis=1, keepdims=True)  # (N T, V), a new array
    correct = shifted[rows, labels]  # (N T,), taken before shifted is exponentiated in place
    sums = np.exp(shifted, out=shifted).sum(axis=1)  # (N T,); shifted now holds exp(shifted)
    loss = (np.log(sums) - correct)[keep].sum() / N  # -log p[y] = log(sum exp) - shifted[y], kept positions only
    dx = shifted
    dx /= sums[:, None]  # softmax
    dx[rows, labels] -= 1
    dx *= (keep.astype(x.dtype) / N)[:, None]  # masked-out rows become exact zeros
    # END SOLUTION
    return x.dtype.type(loss), dx.reshape(N, T, V)


# ----------------------------------------------------------------------------- declarations
# What gradcheck, the tests, the grader and the benchmarks run for this family (layers/cases.py).

def _word_embedding_of_W(W, x):
    """word_embedding_forward(x, W) with W, its one differentiable input, first (a declaration's inputs
    are forward's leading arguments; x, the word ids, goes in params)."""
    return word_embedding_forward(x, W)


# The generic tests name a case's forward in the cache messages they expect: the adapter takes its name.
_word_embedding_of_W.__name__ = _word_embedding_of_W.__qualname__ = "word_embedding_forward"
# (N, T, V, D) of the word embedding at each size. N == V at the check size: the empty-batch test cuts
# every array as long as the first input's leading axis (W's V), so x is cut to N = 0 with it.
_EMBEDDING = {"check": (5, 3, 5, 4), "course": (10, 20, 100, 30), "training": (64, 32, 1004, 256)}
# (N, T, D, M) of the temporal affine layer and (N, T, V) of the loss at each size.
_TEMPORAL = {"check": (2, 3, 4, 5), "course": (10, 20, 40, 100), "training": (64, 32, 256, 1004)}
_LOSS = {"check": (3, 4, 5), "course": (10, 20, 100), "training": (64, 32, 1004)}


def _make_embedding(rng, size, dtype):
    N, T, V, D = _EMBEDDING[size]
    return {"W": normal(rng, (V, D), dtype)}, {"x": rng.integers(0, V, (N, T))}


def _make_temporal_affine(rng, size, dtype):
    N, T, D, M = _TEMPORAL[size]
    return {"x": normal(rng, (N, T, D), dtype), "w": normal(rng, (D, M), dtype, scale=D**-0.5),
            "b": normal(rng, (M,), dtype)}, {}


def _make_loss(rng, size, dtype):
    N, T, V = _LOSS[size]
    mask = rng.random((N, T)) < 0.7
    mask[0, 0], mask[-1, -1] = True, False  # some positions in, some out, at every size
    return {"x": normal(rng, (N, T, V), dtype, scale=2.0)}, {"y": rng.integers(0, V, (N, T)), "mask": mask}


def _torch_loss(torch, t, p):
    N, T, V = t["x"].shape
    losses = torch.nn.functional.cross_entropy(t["x"].reshape(N * T, V), torch.from_numpy(p["y"]).reshape(N * T),
                                               reduction="none")
    return losses[torch.from_numpy(p["mask"]).reshape(N * T)].sum() / N


CASES = (
    LayerCase("word_embedding_forward", _word_embedding_of_W, word_embedding_backward, _make_embedding,
              graded=False, bench=False, torch=lambda torch, t, p: t["W"][torch.from_numpy(p["x"])]),
    LayerCase("temporal_affine_forward", temporal_affine_forward, temporal_affine_backward, _make_temporal_affine,
              bench=False, torch=lambda torch, t, p: t["x"] @ t["w"] + t["b"]),
    LayerCase("temporal_softmax_loss", temporal_softmax_loss, None, _make_loss, kind="loss", torch=_torch_loss),
)
