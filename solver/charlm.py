"""Character language models: predict each next character of a text from the ones before it.

Two kinds, one interface (``loss(x, y)``, ``score(x, y)``, ``bits_per_char(x, y)``, ``sample``):

- recurrent (``cell_type`` "rnn", "lstm" or "gru"): characters go in as learned vectors, the
  cell carries the past in its hidden state (h0 = 0), and an affine layer scores the next
  character at every step:
      x = W_embed[chars];  h = cell(x, 0);  scores = h W_vocab + b_vocab
- "transformer": a small decoder. Character vectors plus the sinusoidal positional encoding go
  through ``num_layers`` pre-LN transformer blocks with causal self-attention (position t sees
  positions 0..t only), a final layer norm and the same affine scoring.

The loss is the mean cross-entropy per character in nats (temporal_softmax_loss summed over
time and averaged over sequences, divided by T); ``bits_per_char`` is the same in bits.

Shape letters: N sequences, T time steps, V characters in the vocabulary, E character-vector
size (wordvec_dim), H hidden units.
"""

from __future__ import annotations

import math

import numpy as np

from layers import (temporal_affine_backward, temporal_affine_forward, temporal_softmax_loss, word_embedding_backward,
                    word_embedding_forward)
from layers.validate import integer, real_number
from solver.captioning import CELLS, recurrent_step
from solver.net_common import FLOAT_DTYPES, _DtypeState, check_seed, normal_draws
from solver import transformer_lm

__all__ = ["CharLM", "CELL_TYPES"]

CELL_TYPES = (*CELLS, "transformer")


def _vocabulary(idx_to_char):
    if not isinstance(idx_to_char, (list, tuple)) or not idx_to_char:
        raise TypeError(f"CharLM: idx_to_char must be a non-empty list of characters, got {type(idx_to_char).__name__}.")
    bad = [c for c in idx_to_char if not (isinstance(c, str) and len(c) == 1)]
    if bad:
        raise ValueError(f"CharLM: idx_to_char must hold one-character strings, got {bad[0]!r}.")
    if len(set(idx_to_char)) != len(idx_to_char):
        raise ValueError("CharLM: idx_to_char lists a character twice.")
    return list(idx_to_char)


class CharLM(_DtypeState):
    """A character language model; see the module docstring.

    Args:
        idx_to_char: the vocabulary, character of each index (data.text's idx_to_char).
        wordvec_dim: E, the size of a character vector (the model width for "transformer").
        hidden_dim: H, the recurrent cell's hidden units, or the feed-forward width of a
            transformer block.
        cell_type: "rnn", "lstm", "gru" or "transformer".
        num_layers, num_heads, max_length: the transformer's blocks, attention heads (dividing E)
            and longest context (the positional table's length); ignored by the recurrent cells.
        dtype: np.float32 (training) or np.float64 (gradient checks).
        seed: None draws the initial weights from numpy's global generator, an int from a private one.

    Shape:
        recurrent params: W_embed (V, E), Wx (E, gH), Wh (H, gH), b (gH,), W_vocab (H, V), b_vocab (V,)
        transformer params: W_embed (V, E), block i's (see solver.transformer_lm), gamma_f, beta_f (E,),
        W_vocab (E, V), b_vocab (V,)
    """

    def __init__(self, idx_to_char, wordvec_dim=64, hidden_dim=256, cell_type="lstm", num_layers=2, num_heads=4,
                 max_length=256, dtype=np.float32, seed=None):
        cls = "CharLM"
        if cell_type not in CELL_TYPES:
            raise ValueError(f"{cls}: cell_type must be one of {list(CELL_TYPES)}, got {cell_type!r}.")
        if np.dtype(dtype) not in [np.dtype(d) for d in FLOAT_DTYPES]:
            raise ValueError(f"{cls}: dtype must be np.float32 or np.float64, got {dtype!r}.")
        self.idx_to_char = _vocabulary(idx_to_char)
        self.char_to_idx = {c: i for i, c in enumerate(self.idx_to_char)}
        self.wordvec_dim = integer(cls, "wordvec_dim", wordvec_dim, low=1)
        self.hidden_dim = integer(cls, "hidden_dim", hidden_dim, low=1)
        self.num_layers = integer(cls, "num_layers", num_layers, low=1)
        self.num_heads = integer(cls, "num_heads", num_heads, low=1)
        self.max_length = integer(cls, "max_length", max_length, low=1)
        if cell_type == "transformer" and self.wordvec_dim % self.num_heads:
            raise ValueError(f"{cls}: num_heads ({self.num_heads}) must divide wordvec_dim ({self.wordvec_dim}), "
                             f"which the heads split into equal blocks.")
        self.cell_type, self.dtype, self.seed = cell_type, np.dtype(dtype), check_seed(cls, seed)
        V, E, H = len(self.idx_to_char), self.wordvec_dim, self.hidden_dim
        draw = normal_draws(self.seed)
        if cell_type == "transformer":
            p = transformer_lm.init_params(draw, V, E, H, self.num_layers)
        else:
            gates = CELLS[cell_type][2]
            p = {"W_embed": draw((V, E)) / math.sqrt(E),
                 "Wx": draw((E, gates * H)) / math.sqrt(E), "Wh": draw((H, gates * H)) / math.sqrt(H),
                 "b": np.zeros(gates * H), "W_vocab": draw((H, V)) / math.sqrt(H), "b_vocab": np.zeros(V)}
            if cell_type == "lstm":
                p["b"][H:2 * H] = 1.0  # forget gates start open: early gradients reach far back
        self.params = {k: v.astype(self.dtype) for k, v in p.items()}

    def get_config(self):
        """The constructor's arguments, JSON-serializable (save_model and checkpoints store them).

        Returns:
            dict.
        """
        return {"idx_to_char": list(self.idx_to_char), "wordvec_dim": self.wordvec_dim, "hidden_dim": self.hidden_dim,
                "cell_type": self.cell_type, "num_layers": self.num_layers, "num_heads": self.num_heads,
                "max_length": self.max_length, "dtype": self.dtype.name, "seed": self.seed}

    def __repr__(self):
        extra = (f", num_layers={self.num_layers}, num_heads={self.num_heads}, max_length={self.max_length}"
                 if self.cell_type == "transformer" else "")
        return (f"CharLM(V={len(self.idx_to_char)}, wordvec_dim={self.wordvec_dim}, hidden_dim={self.hidden_dim}, "
                f"cell_type={self.cell_type!r}{extra}, dtype={self.dtype.name}, seed={self.seed})")

    def _ids(self, fn, name, ids, shape=None):
        V = len(self.idx_to_char)
        if not isinstance(ids, np.ndarray) or not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"CharLM.{fn}: {name} must be an integer array of character indices, got "
                            f"{type(ids).__name__}{' of dtype ' + str(ids.dtype) if isinstance(ids, np.ndarray) else ''}.")
        if ids.ndim != 2 or 0 in ids.shape or (shape is not None and ids.shape != shape):
            raise ValueError(f"CharLM.{fn}: {name} must have shape {shape or '(N, T)'} with N, T >= 1, got {ids.shape}.")
        if ids.min() < 0 or ids.max() >= V:
            raise ValueError(f"CharLM.{fn}: {name} holds indices in [{ids.min()}, {ids.max()}], outside [0, {V}).")
        if self.cell_type == "transformer" and ids.shape[1] > self.max_length:
            raise ValueError(f"CharLM.{fn}: {name} has T = {ids.shape[1]} steps, more than max_length "
                             f"{self.max_length} of the transformer's positional table.")
        return ids

    def _scores(self, x, keep_caches=True):
        """Scores of the next character at every step, and the caches for backward."""
        p = self.params
        if self.cell_type == "transformer":
            return transformer_lm.forward(p, x, self.num_layers, self.num_heads)
        forward = CELLS[self.cell_type][0]
        emb, embed_cache = word_embedding_forward(x, p["W_embed"])  # (N, T, E)
        h0 = np.zeros((x.shape[0], self.hidden_dim), dtype=self.dtype)
        h, cell_cache = forward(emb, h0, p["Wx"], p["Wh"], p["b"])  # (N, T, H)
        scores, vocab_cache = temporal_affine_forward(h, p["W_vocab"], p["b_vocab"])  # (N, T, V)
        return scores, (embed_cache, cell_cache, vocab_cache)

    def loss(self, x, y):
        """The mean cross-entropy per character (nats) and the gradient of every parameter.

        Args:
            x: input characters; y: the characters that follow (x shifted by one).

        Returns:
            (loss, grads): loss a Python float, grads keyed like params with their shapes and dtype.

        Shape:
            x, y: (N, T)
        """
        x = self._ids("loss", "x", x)
        y = self._ids("loss", "y", y, x.shape)
        N, T = x.shape
        scores, caches = self._scores(x)
        loss, dscores = temporal_softmax_loss(scores, y, np.ones((N, T), dtype=bool))
        dscores = dscores / T  # temporal_softmax_loss sums over time; per character is 1 / T of it
        if self.cell_type == "transformer":
            grads = transformer_lm.backward(dscores, caches, self.num_layers)
        else:
            embed_cache, cell_cache, vocab_cache = caches
            grads = {}
            dh, grads["W_vocab"], grads["b_vocab"] = temporal_affine_backward(dscores, vocab_cache)
            demb, _, grads["Wx"], grads["Wh"], grads["b"] = CELLS[self.cell_type][1](dh, cell_cache)
            grads["W_embed"] = word_embedding_backward(demb, embed_cache)
        return float(loss) / T, grads

    def bits_per_char(self, x, y, batch_size=64):
        """The mean cross-entropy per character in bits, over all of (x, y), in batches.

        Args:
            x, y: input characters and the characters that follow.
            batch_size: sequences per forward pass.

        Returns:
            A Python float.

        Shape:
            x, y: (N, T)
        """
        x = self._ids("bits_per_char", "x", x)
        y = self._ids("bits_per_char", "y", y, x.shape)
        batch_size = integer("CharLM.bits_per_char", "batch_size", batch_size, low=1)
        total = 0.0
        for start in range(0, x.shape[0], batch_size):
            scores, _ = self._scores(x[start:start + batch_size])
            s = scores.astype(np.float64) - scores.max(axis=2, keepdims=True)
            log_probs = s - np.log(np.exp(s).sum(axis=2, keepdims=True))
            total -= np.take_along_axis(log_probs, y[start:start + batch_size, :, None], axis=2).sum()
        return total / (x.size * math.log(2))

    def score(self, x, y):
        """Next-character hits: steps whose highest-scoring character is the one that follows.

        Args:
            x, y: input characters and the characters that follow.

        Returns:
            (hits, count): Python ints, count = N T.

        Shape:
            x, y: (N, T)
        """
        x = self._ids("score", "x", x)
        y = self._ids("score", "y", y, x.shape)
        scores, _ = self._scores(x)
        return int(np.sum(np.argmax(scores, axis=2) == y)), int(y.size)

    def sample(self, prefix, length, temperature=1.0, seed=None):
        """Continue a text: draw ``length`` characters one at a time from the model.

        Args:
            prefix: the text to continue (at least one character, each in the vocabulary).
            length: characters to draw.
            temperature: > 0; the scores are divided by it before the softmax (below 1 sharper,
                above 1 flatter).
            seed: None or an int, the generator of the draws.

        Returns:
            prefix followed by the drawn characters, a str.
        """
        fn = "CharLM.sample"
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"{fn}: prefix must be a non-empty str, got {prefix!r}.")
        unknown = sorted(set(prefix) - set(self.char_to_idx))
        if unknown:
            raise ValueError(f"{fn}: prefix has characters outside the vocabulary: {unknown[:5]}.")
        length = integer(fn, "length", length, low=0)
        temperature = real_number(fn, "temperature", temperature, low=0.0, low_open=True)
        rng = np.random.default_rng(integer(fn, "seed", seed, low=0, allow_none=True))
        ids = [self.char_to_idx[c] for c in prefix]
        p = self.params
        if self.cell_type != "transformer":
            h = np.zeros((1, self.hidden_dim), dtype=self.dtype)
            state = (h, np.zeros_like(h)) if self.cell_type == "lstm" else (h,)
            for i in ids[:-1]:  # read the prefix: its last character goes in with the first draw
                _, state = recurrent_step(self.cell_type, p["W_embed"][[i]], state, p["Wx"], p["Wh"], p["b"])
        for _ in range(length):
            if self.cell_type == "transformer":
                context = np.asarray([ids[-self.max_length:]])
                scores = self._scores(context)[0][0, -1]
            else:
                h, state = recurrent_step(self.cell_type, p["W_embed"][[ids[-1]]], state, p["Wx"], p["Wh"], p["b"])
                scores = (h @ p["W_vocab"] + p["b_vocab"])[0]
            s = scores.astype(np.float64) / temperature
            probs = np.exp(s - s.max())
            ids.append(int(rng.choice(len(probs), p=probs / probs.sum())))
        return "".join(self.idx_to_char[i] for i in ids)
