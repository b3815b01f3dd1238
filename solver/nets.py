"""Fully connected classifiers built from the layers: TwoLayerNet and FullyConnectedNet.

Architecture, for L = len(hidden_dims) + 1 affine layers:

    {affine - [batchnorm | layernorm] - relu - [dropout]} x (L - 1) - affine - softmax

A model keeps its parameters in ``model.params`` (``W1, b1, ..., WL, bL``, and with a
normalization ``gamma1, beta1, ...``); ``model.loss(X)`` returns class scores (test mode),
``model.loss(X, y)`` returns ``(loss, grads)`` with ``grads`` keyed like ``params`` (train
mode). The loss adds L2 regularization 0.5 * reg * sum(W**2) over the weight matrices only,
never biases, gammas or betas.

Batchnorm's running averages are not parameters (nothing trains them) but are state the model
needs at test time: ``model.buffers()`` returns them and ``model.load_buffers(...)`` restores
them, so the Solver can keep them with the best parameters and in checkpoints.

The nets also keep gradcheck's model protocol (gradcheck/models.py), which check_model uses to
run them in float64 and leave them exactly as they were: ``model.state()`` snapshots everything
``loss`` may change besides params (the dtype, the normalization params with batchnorm's running
averages, the dropout generator's position), ``model.load_state(state)`` restores it, and
``model.set_dtype(dtype)`` switches the dtype the net computes in.
These methods, and the seed and initialization helpers that solver.cnn shares, live in
solver.net_common.

Randomness follows scikit-learn's ``random_state`` convention (see FullyConnectedNet for the
details): ``seed=None`` draws from numpy's global generator, in the course's order, so that
``np.random.seed(231)`` reproduces the course's numbers; an int seeds private generators and
also fixes the dropout masks, as the course's ``seed`` does, so the net can be gradient-checked.
The Solver lends the net its own generator for the masks while it trains (``model.dropout_rng``).

Shape letters: N batch, D input features (input_dim), H hidden units, C classes.
"""

from __future__ import annotations

import math

import numpy as np

from layers import (
    affine_backward,
    affine_forward,
    affine_norm_relu_backward,
    affine_norm_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
    dropout_backward,
    dropout_forward,
    softmax_loss,
)
from layers.validate import integer, labels, real_number
from layers.sandwich import NORMALIZATIONS
from solver.net_common import FLOAT_DTYPES, _NetState, check_seed, init_scale, normal_draws

__all__ = ["FullyConnectedNet", "TwoLayerNet"]


def _positive_int(cls: str, name: str, value) -> int:
    return integer(cls, name, value, low=1)


def _generator_from_global_state():
    """A Generator seeded by one draw from numpy's global generator, so np.random.seed fixes it."""
    return np.random.default_rng(np.random.randint(2**32, size=4, dtype=np.uint64))


class FullyConnectedNet(_NetState):
    """A fully connected net with relu hidden layers and a softmax loss.

    Args:
        hidden_dims: sizes of the hidden layers (an empty list gives a softmax classifier).
        input_dim: D, features per sample (3 * 32 * 32 for CIFAR-10).
        num_classes: C.
        dropout_keep_ratio: the probability of keeping a unit, in (0, 1]; 1 means no dropout.
        normalization: None, "batchnorm" or "layernorm".
        reg: L2 regularization strength, >= 0.
        weight_scale: std of the initial weights: a number, "he" or "xavier" (see init_scale).
        dtype: np.float32 (fast) or np.float64 (for gradient checks); X is cast to it.
        seed: None or an int >= 0; see "Randomness" below.
        dropout_seed: retired (raises): ``seed`` now fixes the dropout masks.

    Randomness (scikit-learn's ``random_state`` convention, with the course's meaning of seed):
        initial weights: with seed=None, ``std * np.random.randn(fan_in, fan_out)`` from numpy's
            global generator, one draw per layer in the order W1, W2, ..., WL (biases are zeros,
            gammas ones, betas zeros: no draws), so ``np.random.seed(231)`` before the
            constructor gives the course's weights. With an int, the same draws from a private
            generator (SeedSequence(seed), first child); the global state is left alone.
        dropout masks of a train-mode ``loss(X, y)``, drawn layer by layer in order:
            - from ``model.dropout_rng`` when it is a numpy Generator: fresh masks every call.
              The Solver sets it to its own generator while it trains, so a seeded run is
              reproducible bit for bit and its masks change every step; in a training loop of
              your own, set ``model.dropout_rng = np.random.default_rng(s)`` for the same.
            - otherwise (dropout_rng is None, the default), with an int seed: the same masks on
              every call (from SeedSequence(seed), second child), as the course's ``seed`` makes
              dropout deterministic so that the net can be gradient-checked;
            - with seed=None: fresh masks every call, from a generator seeded by one draw from
              numpy's global generator.

    Shape:
        X: (N, d_1, ..., d_k) with d_1 * ... * d_k = D
        y: (N,)
        scores: (N, C)
        params: W1 (D, H_1), b1 (H_1,), ..., WL (H_{L-1}, C), bL (C,); gamma_i, beta_i (H_i,)
    """

    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10, dropout_keep_ratio=1,
                 normalization=None, reg=0.0, weight_scale=1e-2, dtype=np.float32, seed=None, dropout_seed=None):
        cls = type(self).__name__
        try:
            hidden_dims = [_positive_int(cls, "hidden_dims entries", h) for h in hidden_dims]
        except TypeError:
            raise TypeError(f"{cls}: hidden_dims must be a list of ints, got {hidden_dims!r}.") from None
        self.hidden_dims = hidden_dims
        self.input_dim = _positive_int(cls, "input_dim", input_dim)
        self.num_classes = _positive_int(cls, "num_classes", num_classes)
        try:
            keep = real_number(cls, "dropout_keep_ratio", dropout_keep_ratio, low=0.0, high=1.0)
        except ValueError:
            keep = 0.0  # out of range: reported below, in the one wording for (0, 1]
        if keep == 0:
            raise ValueError(f"{cls}: dropout_keep_ratio is the probability of keeping a unit and must be in "
                             f"(0, 1], got {float(dropout_keep_ratio)!r}.")
        if normalization is not None and normalization not in NORMALIZATIONS:
            raise ValueError(f"{cls}: normalization must be None, 'batchnorm' or 'layernorm', got {normalization!r}.")
        self.dropout_keep_ratio = keep
        self.normalization = normalization
        self.reg = real_number(cls, "reg", reg, low=0.0)
        if np.dtype(dtype) not in [np.dtype(d) for d in FLOAT_DTYPES]:
            raise ValueError(f"{cls}: dtype must be np.float32 or np.float64, got {np.dtype(dtype)}.")
        self.dtype = np.dtype(dtype)
        self.weight_scale = weight_scale
        if dropout_seed is not None:
            raise TypeError(f"{cls}: dropout_seed was retired; pass seed={dropout_seed!r} instead, which now fixes "
                            f"the dropout masks (the same masks on every call, as the course's seed does), while the "
                            f"Solver draws fresh masks every step from its own seed.")
        self.seed = check_seed(cls, seed)
        self.num_layers = len(hidden_dims) + 1

        init_seq, self._mask_seq = None, None
        if self.seed is not None:
            init_seq, self._mask_seq = np.random.SeedSequence(self.seed).spawn(2)
        draw = normal_draws(init_seq)
        self.dropout_rng = None  # a Generator here gives fresh masks every call (the Solver lends its own)
        dims = [self.input_dim, *hidden_dims, self.num_classes]
        # Check every scale before the first draw, so a bad one leaves numpy's global state alone.
        stds = [init_scale(weight_scale, dims[i], dims[i + 1], cls) for i in range(self.num_layers)]
        self.params = {}
        for i, std in enumerate(stds):
            fan_in, fan_out = dims[i], dims[i + 1]
            self.params[f"W{i + 1}"] = (std * draw((fan_in, fan_out))).astype(self.dtype)
            self.params[f"b{i + 1}"] = np.zeros(fan_out, dtype=self.dtype)
        # One bn_param (or ln_param) per hidden layer; batchnorm's running averages start at 0.
        self.norm_params = []
        if normalization is not None:
            for i, h in enumerate(hidden_dims, start=1):
                self.params[f"gamma{i}"] = np.ones(h, dtype=self.dtype)
                self.params[f"beta{i}"] = np.zeros(h, dtype=self.dtype)
                param = {}
                if normalization == "batchnorm":
                    param = {"mode": "train", "running_mean": np.zeros(h, self.dtype),
                             "running_var": np.zeros(h, self.dtype)}
                self.norm_params.append(param)

    def get_config(self):
        """The constructor's arguments, JSON-serializable (save_model stores them).

        Returns:
            dict.
        """
        return {"hidden_dims": list(self.hidden_dims), "input_dim": self.input_dim, "num_classes": self.num_classes,
                "dropout_keep_ratio": self.dropout_keep_ratio, "normalization": self.normalization, "reg": self.reg,
                "weight_scale": self.weight_scale, "dtype": self.dtype.name, "seed": self.seed}

    def __repr__(self):
        return (f"{type(self).__name__}(hidden_dims={self.hidden_dims}, input_dim={self.input_dim}, "
                f"num_classes={self.num_classes}, dropout_keep_ratio={self.dropout_keep_ratio}, "
                f"normalization={self.normalization!r}, reg={self.reg}, weight_scale={self.weight_scale!r}, "
                f"dtype={self.dtype.name}, seed={self.seed})")

    def dropout_param_for(self, mode):
        """The dropout_param of this pass, shared by every dropout layer (see "Randomness").

        Args:
            mode: "train" or "test".

        Returns:
            dict for dropout_forward: p, mode and, in train mode, the Generator the masks come
            from (the layers draw from it in order, so each layer gets its own mask).
        """
        param = {"p": self.dropout_keep_ratio, "mode": mode}
        if mode == "train":
            if self.dropout_rng is not None:
                param["rng"] = self.dropout_rng
            elif self._mask_seq is not None:
                param["rng"] = np.random.default_rng(self._mask_seq)  # a new one each pass: the same masks
            else:
                param["rng"] = _generator_from_global_state()
        return param

    def _inputs(self, X, y):
        cls = type(self).__name__
        if not isinstance(X, np.ndarray) or not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
            raise TypeError(f"{cls}.loss: X must be a numpy array of numbers, got "
                            f"{type(X).__name__}{' of dtype ' + str(X.dtype) if isinstance(X, np.ndarray) else ''}.")
        if X.ndim < 2 or math.prod(X.shape[1:]) != self.input_dim:
            raise ValueError(f"{cls}.loss: X must be (N, ...) with {self.input_dim} features per sample "
                             f"(input_dim), got shape {X.shape}.")
        X = X.astype(self.dtype, copy=False)  # documented: X is computed in the model's dtype
        if y is not None:
            y = labels(f"{cls}.loss", y, X.shape[0], self.num_classes)
        return X, y

    def loss(self, X, y=None):
        """Class scores, or the loss and its gradients.

        Args:
            X: input batch; cast to the model's dtype.
            y: integer labels in [0, C), or None for scores only.

        Returns:
            scores (N, C) if y is None, otherwise (loss, grads): loss a Python float including
            the L2 term, grads a dict keyed like params with arrays of their shapes and dtype.
            With dropout, every dropout layer of one pass takes the same
            ``self.dropout_param_for(mode)``.

        Shape:
            X: (N, d_1, ..., d_k)
            y: (N,)
            scores: (N, C)
        """
        X, y = self._inputs(X, y)
        # BEGIN SOLUTION
        mode = "test" if y is None else "train"
        L = self.num_layers
        caches, dropout_caches = [], []
        dropout_param = self.dropout_param_for(mode) if self.dropout_keep_ratio < 1 else None
        h = X
        for i in range(1, L):
            W, b = self.params[f"W{i}"], self.params[f"b{i}"]
            if self.normalization is None:
                h, cache = affine_relu_forward(h, W, b)
            else:
                norm_param = self.norm_params[i - 1]
                if self.normalization == "batchnorm":
                    norm_param["mode"] = mode
                h, cache = affine_norm_relu_forward(h, W, b, self.params[f"gamma{i}"], self.params[f"beta{i}"],
                                                    norm_param, self.normalization)
            caches.append(cache)
            if dropout_param is not None:
                h, dropout_cache = dropout_forward(h, dropout_param)
                dropout_caches.append(dropout_cache)
        scores, last_cache = affine_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])
        if y is None:
            return scores

        data_loss, dscores = softmax_loss(scores, y)
        reg_loss = 0.0
        if self.reg:
            # vdot of the flattened weights: sum(W**2) without a full-size temporary.
            reg_loss = 0.5 * self.reg * sum(float(np.vdot(W, W)) for W in
                                            (self.params[f"W{i}"] for i in range(1, L + 1)))

        grads = {}
        # The gradient of X is never needed: X is data. Skipping it saves a third of layer 1.
        dh, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, last_cache, need_dx=L > 1)
        for i in range(L - 1, 0, -1):
            if dropout_caches:
                dh = dropout_backward(dh, dropout_caches[i - 1])
            if self.normalization is None:
                dh, grads[f"W{i}"], grads[f"b{i}"] = affine_relu_backward(dh, caches[i - 1], need_dx=i > 1)
            else:
                (dh, grads[f"W{i}"], grads[f"b{i}"], grads[f"gamma{i}"],
                 grads[f"beta{i}"]) = affine_norm_relu_backward(dh, caches[i - 1], need_dx=i > 1)
        if self.reg:
            for i in range(1, L + 1):
                grads[f"W{i}"] += self.reg * self.params[f"W{i}"]
        return float(data_loss) + reg_loss, grads
        # END SOLUTION


class TwoLayerNet(FullyConnectedNet):
    """The course's two-layer net: affine - relu - affine - softmax.

    A FullyConnectedNet with one hidden layer and the course's defaults (weights drawn with
    std 1e-3, computed in float64).

    Args:
        input_dim: D.
        hidden_dim: H.
        num_classes: C.
        weight_scale: std of the initial weights (a number, "he" or "xavier").
        reg: L2 regularization strength.
        dtype: np.float64 (default) or np.float32.
        seed: None draws W1 then W2 with np.random.randn from numpy's global generator (the
            course's order); an int draws them from a private generator.

    Shape:
        params: W1 (D, H), b1 (H,), W2 (H, C), b2 (C,)
    """

    def __init__(self, input_dim=3 * 32 * 32, hidden_dim=100, num_classes=10, weight_scale=1e-3,
                 reg=0.0, dtype=np.float64, seed=None):
        super().__init__([hidden_dim], input_dim=input_dim, num_classes=num_classes, reg=reg,
                         weight_scale=weight_scale, dtype=dtype, seed=seed)
        self.hidden_dim = self.hidden_dims[0]

    def get_config(self):
        """The constructor's arguments, JSON-serializable (save_model stores them).

        Returns:
            dict.
        """
        return {"input_dim": self.input_dim, "hidden_dim": self.hidden_dim, "num_classes": self.num_classes,
                "weight_scale": self.weight_scale, "reg": self.reg, "dtype": self.dtype.name, "seed": self.seed}

    def __repr__(self):
        return (f"TwoLayerNet(input_dim={self.input_dim}, hidden_dim={self.hidden_dim}, "
                f"num_classes={self.num_classes}, weight_scale={self.weight_scale!r}, reg={self.reg}, "
                f"dtype={self.dtype.name}, seed={self.seed})")
