"""Image captioning with a recurrent net: the course's CaptioningRNN (CS231n assignment 3).

The image's features set the first hidden state, h0 = features W_proj + b_proj; the caption's
words go in one step at a time as learned word vectors, and at each step an affine layer turns
the hidden state into scores over the vocabulary for the next word:

    captions_in  = <START> w1 w2 ... w_{T-1}       (captions[:, :-1])
    captions_out = w1 w2 ... w_{T-1} w_T           (captions[:, 1:], what each step should say)
    x = W_embed[captions_in];  h = rnn | lstm | gru (x, h0);  scores = h W_vocab + b_vocab
    loss = temporal softmax loss (scores, captions_out), <NULL> positions masked out

``loss`` returns the loss and the gradients of every parameter, by backpropagation through the
same layers in reverse; ``sample`` captions new images greedily, one word per step. The model
keeps gradcheck's model protocol (params and loss), so ``gradcheck.check_model`` checks it.

Shape letters: N images, D feature size (input_dim), W word-vector size (wordvec_dim), H hidden
units, V vocabulary size, T caption length.
"""

from __future__ import annotations

import numpy as np

from layers import (affine_backward, affine_forward, gru_backward, gru_forward, gru_step_forward, lstm_backward,
                    lstm_forward, lstm_step_forward, rnn_backward, rnn_forward, rnn_step_forward,
                    temporal_affine_backward, temporal_affine_forward, temporal_softmax_loss, word_embedding_backward,
                    word_embedding_forward)
from layers.validate import integer
from solver.net_common import FLOAT_DTYPES, _DtypeState, check_seed, normal_draws

__all__ = ["CaptioningRNN", "CELLS", "recurrent_step"]

# cell type -> (sequence forward, sequence backward, gate blocks of H columns in the weights)
CELLS = {"rnn": (rnn_forward, rnn_backward, 1), "lstm": (lstm_forward, lstm_backward, 4),
         "gru": (gru_forward, gru_backward, 3)}


def recurrent_step(cell_type, x, state, Wx, Wh, b):
    """One step of a recurrent cell, for sampling (no cache is kept).

    Args:
        cell_type: one of CELLS.
        x: this step's input; state: (h,) for rnn and gru, (h, c) for lstm.
        Wx, Wh, b: the cell's weights.

    Returns:
        (h, new state).

    Shape:
        x: (N, W); h, c: (N, H); Wx: (W, gH); Wh: (H, gH); b: (gH,)
    """
    if cell_type == "lstm":
        h, c, _ = lstm_step_forward(x, state[0], state[1], Wx, Wh, b)
        return h, (h, c)
    step = rnn_step_forward if cell_type == "rnn" else gru_step_forward
    h, _ = step(x, state[0], Wx, Wh, b)
    return h, (h,)


def _word_index(word_to_idx):
    """word_to_idx checked: a non-empty dict of str -> distinct int >= 0 that has <NULL>."""
    if not isinstance(word_to_idx, dict) or not word_to_idx:
        raise TypeError(f"CaptioningRNN: word_to_idx must be a non-empty dict word -> index, got "
                        f"{type(word_to_idx).__name__}.")
    checked = {}
    for word, index in word_to_idx.items():
        if not isinstance(word, str):
            raise TypeError(f"CaptioningRNN: word_to_idx keys must be str, got {word!r}.")
        checked[word] = integer("CaptioningRNN", f"word_to_idx[{word!r}]", index, low=0)
    if len(set(checked.values())) != len(checked):
        raise ValueError("CaptioningRNN: word_to_idx maps two words to one index.")
    if "<NULL>" not in checked:
        raise ValueError("CaptioningRNN: word_to_idx needs a '<NULL>' entry, the padding that the loss masks out.")
    return checked


class CaptioningRNN(_DtypeState):
    """A recurrent captioning model; see the module docstring for the computation.

    Args:
        word_to_idx: dict word -> index, with '<NULL>' (padding) and, for ``sample``, '<START>'
            and '<END>'; V = len(word_to_idx), as in the course.
        input_dim: D, the size of an image's feature vector.
        wordvec_dim: W, the size of a word vector.
        hidden_dim: H, the hidden units of the recurrent cell.
        cell_type: "rnn", "lstm" or "gru".
        dtype: np.float32 (training) or np.float64 (gradient checks).
        seed: None draws the initial weights from numpy's global generator in the course's order
            (W_embed, W_proj, Wx, Wh, W_vocab), so ``np.random.seed`` reproduces them; an int draws
            them from a private generator.

    Shape:
        params: W_embed (V, W), W_proj (D, H), b_proj (H,), Wx (W, gH), Wh (H, gH), b (gH,),
        W_vocab (H, V), b_vocab (V,); g = 1 (rnn), 4 (lstm), 3 (gru)
    """

    def __init__(self, word_to_idx, input_dim=512, wordvec_dim=128, hidden_dim=128, cell_type="rnn",
                 dtype=np.float32, seed=None):
        cls = "CaptioningRNN"
        if cell_type not in CELLS:
            raise ValueError(f"{cls}: cell_type must be one of {sorted(CELLS)}, got {cell_type!r}.")
        if np.dtype(dtype) not in [np.dtype(d) for d in FLOAT_DTYPES]:
            raise ValueError(f"{cls}: dtype must be np.float32 or np.float64, got {dtype!r}.")
        self.word_to_idx = _word_index(word_to_idx)
        self.idx_to_word = {i: w for w, i in self.word_to_idx.items()}
        self.input_dim = integer(cls, "input_dim", input_dim, low=1)
        self.wordvec_dim = integer(cls, "wordvec_dim", wordvec_dim, low=1)
        self.hidden_dim = integer(cls, "hidden_dim", hidden_dim, low=1)
        self.cell_type, self.dtype, self.seed = cell_type, np.dtype(dtype), check_seed(cls, seed)
        self._null = self.word_to_idx["<NULL>"]
        self._start = self.word_to_idx.get("<START>")
        self._end = self.word_to_idx.get("<END>")
        V, D, W, H, gates = len(self.word_to_idx), self.input_dim, self.wordvec_dim, self.hidden_dim, CELLS[cell_type][2]
        draw = normal_draws(self.seed)
        p = {"W_embed": draw((V, W)) / 100,
             "W_proj": draw((D, H)) / np.sqrt(D), "b_proj": np.zeros(H),
             "Wx": draw((W, gates * H)) / np.sqrt(W), "Wh": draw((H, gates * H)) / np.sqrt(H),
             "b": np.zeros(gates * H),
             "W_vocab": draw((H, V)) / np.sqrt(H), "b_vocab": np.zeros(V)}
        self.params = {k: v.astype(self.dtype) for k, v in p.items()}

    def get_config(self):
        """The constructor's arguments, JSON-serializable (save_model and checkpoints store them).

        Returns:
            dict.
        """
        return {"word_to_idx": dict(self.word_to_idx), "input_dim": self.input_dim, "wordvec_dim": self.wordvec_dim,
                "hidden_dim": self.hidden_dim, "cell_type": self.cell_type, "dtype": self.dtype.name,
                "seed": self.seed}

    def __repr__(self):
        return (f"CaptioningRNN(V={len(self.word_to_idx)}, input_dim={self.input_dim}, "
                f"wordvec_dim={self.wordvec_dim}, hidden_dim={self.hidden_dim}, cell_type={self.cell_type!r}, "
                f"dtype={self.dtype.name}, seed={self.seed})")

    def _features(self, fn, features):
        if not isinstance(features, np.ndarray) or not np.issubdtype(features.dtype, np.floating):
            raise TypeError(f"CaptioningRNN.{fn}: features must be a float array, got "
                            f"{type(features).__name__}{' of dtype ' + str(features.dtype) if isinstance(features, np.ndarray) else ''}.")
        if features.ndim != 2 or features.shape[1] != self.input_dim or features.shape[0] == 0:
            raise ValueError(f"CaptioningRNN.{fn}: features must have shape (N, {self.input_dim}) with N >= 1 "
                             f"(input_dim {self.input_dim}), got {features.shape}.")
        return features.astype(self.dtype, copy=False)  # documented: computed in the model's dtype

    def _captions(self, captions, N):
        if not isinstance(captions, np.ndarray) or not np.issubdtype(captions.dtype, np.integer):
            raise TypeError(f"CaptioningRNN.loss: captions must be an integer array of word indices, got "
                            f"{type(captions).__name__}{' of dtype ' + str(captions.dtype) if isinstance(captions, np.ndarray) else ''}.")
        if captions.ndim != 2 or captions.shape[0] != N or captions.shape[1] < 2:
            raise ValueError(f"CaptioningRNN.loss: captions must have shape ({N}, T) with T >= 2 for {N} images, "
                             f"got {captions.shape}.")
        V = len(self.word_to_idx)
        if captions.min() < 0 or captions.max() >= V:
            raise ValueError(f"CaptioningRNN.loss: captions hold word indices in [{captions.min()}, {captions.max()}], "
                             f"outside [0, {V}) of the vocabulary.")
        return captions

    def loss(self, features, captions):
        """The captioning loss and the gradient of every parameter.

        Args:
            features: image features, cast to the model's dtype.
            captions: word indices, <START> first; positions holding <NULL> are left out of the loss.

        Returns:
            (loss, grads): loss a Python float (summed over time, averaged over images, as
            temporal_softmax_loss does), grads keyed like params with their shapes and dtype.

        Shape:
            features: (N, D); captions: (N, T) with T >= 2
        """
        features = self._features("loss", features)
        captions = self._captions(captions, features.shape[0])
        p = self.params
        forward, backward, _ = CELLS[self.cell_type]
        captions_in, captions_out = captions[:, :-1], captions[:, 1:]
        mask = captions_out != self._null
        # BEGIN SOLUTION
        h0, proj_cache = affine_forward(features, p["W_proj"], p["b_proj"])  # (N, H)
        x, embed_cache = word_embedding_forward(captions_in, p["W_embed"])  # (N, T-1, W)
        h, cell_cache = forward(x, h0, p["Wx"], p["Wh"], p["b"])  # (N, T-1, H)
        scores, vocab_cache = temporal_affine_forward(h, p["W_vocab"], p["b_vocab"])  # (N, T-1, V)
        loss, dscores = temporal_softmax_loss(scores, captions_out, mask)
        # The chain in reverse: each backward takes the gradient of its output and returns its inputs'.
        grads = {}
        dh, grads["W_vocab"], grads["b_vocab"] = temporal_affine_backward(dscores, vocab_cache)
        dx, dh0, grads["Wx"], grads["Wh"], grads["b"] = backward(dh, cell_cache)
        grads["W_embed"] = word_embedding_backward(dx, embed_cache)
        _, grads["W_proj"], grads["b_proj"] = affine_backward(dh0, proj_cache)
        # END SOLUTION
        return float(loss), grads

    def sample(self, features, max_length=30):
        """Greedy captions: feed <START>, then at each step the highest-scoring word of the last.

        Args:
            features: image features, cast to the model's dtype.
            max_length: words to generate at most.

        Returns:
            captions: word indices, int64; once a caption has produced <END>, its later positions
            hold <NULL> (the course's sampler keeps writing words; decode_captions stops at <END>
            either way).

        Shape:
            features: (N, D); captions: (N, max_length)
        """
        features = self._features("sample", features)
        max_length = integer("CaptioningRNN.sample", "max_length", max_length, low=1)
        if self._start is None or self._end is None:
            raise ValueError("CaptioningRNN.sample: word_to_idx needs '<START>' and '<END>' entries to sample.")
        p, N = self.params, features.shape[0]
        captions = np.full((N, max_length), self._null, dtype=np.int64)
        # BEGIN SOLUTION
        h = features @ p["W_proj"] + p["b_proj"]  # (N, H)
        state = (h, np.zeros_like(h)) if self.cell_type == "lstm" else (h,)
        words = np.full(N, self._start, dtype=np.int64)
        done = np.zeros(N, dtype=bool)
        for t in range(max_length):
            h, state = recurrent_step(self.cell_type, p["W_embed"][words], state, p["Wx"], p["Wh"], p["b"])
            words = np.argmax(h @ p["W_vocab"] + p["b_vocab"], axis=1)  # (N,)
            captions[~done, t] = words[~done]
            done |= words == self._end
            if done.all():
                break
        # END SOLUTION
        return captions

    def score(self, features, captions, batch_size=500):
        """Exact-caption hits: images whose greedy caption equals the given one word for word (up to <END>).

        Args:
            features: image features; captions: the true captions, <START> first, <NULL> padded.
            batch_size: images per sampling pass.

        Returns:
            (hits, count): Python ints, count = N.

        Shape:
            features: (N, D); captions: (N, T)
        """
        features = self._features("score", features)
        captions = self._captions(captions, features.shape[0])
        batch_size = integer("CaptioningRNN.score", "batch_size", batch_size, low=1)
        truth = captions[:, 1:]
        hits = 0
        for start in range(0, features.shape[0], batch_size):
            want = truth[start:start + batch_size]
            got = self.sample(features[start:start + batch_size], max_length=want.shape[1])
            hits += int(np.sum(np.all(got == want, axis=1)))
        return hits, int(features.shape[0])
