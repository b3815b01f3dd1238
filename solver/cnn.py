"""ThreeLayerConvNet: conv - relu - 2x2 max pool - affine - relu - affine - softmax.

Same model interface as solver.nets: ``model.params`` (W1, b1 for the convolution, W2, b2 and
W3, b3 for the affine layers), ``model.loss(X)`` for scores and ``model.loss(X, y)`` for
``(loss, grads)``, L2 regularization 0.5 * reg * sum(W**2) on W1, W2, W3 only; and gradcheck's
model protocol (gradcheck/models.py): ``state()``, ``load_state(state)``, ``set_dtype(dtype)``.

The convolution keeps the spatial size (stride 1, zero padding (filter_size - 1) / 2), so the
pooled maps are (F, H / 2, W / 2) and W2 is (F * H/2 * W/2, hidden_dim).

Shape letters: N batch, C channels, H W image, F filters, HH = WW = filter_size.
"""

from __future__ import annotations


import numpy as np

from layers import affine_backward, affine_forward, affine_relu_backward, affine_relu_forward, softmax_loss
from layers.validate import integer, labels, real_number
from layers.sandwich import conv_relu_pool_backward, conv_relu_pool_forward
from solver.net_common import FLOAT_DTYPES, _DtypeState, check_seed, init_scale, normal_draws

__all__ = ["ThreeLayerConvNet"]

POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


def _positive_int(name, value):
    return integer("ThreeLayerConvNet", name, value, low=1)


class ThreeLayerConvNet(_DtypeState):
    """A three-layer convolutional net for (C, H, W) images.

    Args:
        input_dim: (C, H, W); H and W must be even (for the 2x2 pooling).
        num_filters: F.
        filter_size: HH = WW, odd (so the padding keeps the size).
        hidden_dim: units of the hidden affine layer.
        num_classes: classes.
        weight_scale: std of the initial weights: a number, "he" or "xavier".
        reg: L2 regularization strength.
        dtype: np.float32 or np.float64; X is cast to it.
        seed: None draws W1 (F, C, HH, WW), then W2, then W3 with ``std * np.random.randn(...)``
            from numpy's global generator (the course's order; biases are zeros), so
            ``np.random.seed(231)`` gives the course's weights; an int draws them in the same
            order from a private generator, np.random.default_rng(seed).

    Shape:
        X: (N, C, H, W); scores: (N, num_classes)
        W1: (F, C, HH, WW); b1: (F,); W2: (F * H/2 * W/2, hidden_dim); W3: (hidden_dim, num_classes)
    """

    def __init__(self, input_dim=(3, 32, 32), num_filters=32, filter_size=7, hidden_dim=100, num_classes=10,
                 weight_scale=1e-3, reg=0.0, dtype=np.float32, seed=None):
        if not isinstance(input_dim, (tuple, list)) or len(input_dim) != 3:
            raise ValueError(f"ThreeLayerConvNet: input_dim must be (C, H, W), got {input_dim!r}.")
        C, H, W = (_positive_int("input_dim entries", d) for d in input_dim)
        if H % 2 or W % 2:
            raise ValueError(f"ThreeLayerConvNet: the 2x2 pooling needs even H and W, got input_dim {tuple(input_dim)}.")
        self.input_dim = (C, H, W)
        self.num_filters = _positive_int("num_filters", num_filters)
        self.filter_size = _positive_int("filter_size", filter_size)
        if self.filter_size % 2 == 0:
            raise ValueError(f"ThreeLayerConvNet: filter_size must be odd so the padding keeps H and W, got {filter_size}.")
        self.hidden_dim = _positive_int("hidden_dim", hidden_dim)
        self.num_classes = _positive_int("num_classes", num_classes)
        self.reg = real_number("ThreeLayerConvNet", "reg", reg, low=0.0)
        if np.dtype(dtype) not in [np.dtype(d) for d in FLOAT_DTYPES]:
            raise ValueError(f"ThreeLayerConvNet: dtype must be np.float32 or np.float64, got {np.dtype(dtype)}.")
        self.dtype = np.dtype(dtype)
        self.weight_scale = weight_scale
        self.seed = check_seed("ThreeLayerConvNet", seed)
        self.conv_param = {"stride": 1, "pad": (self.filter_size - 1) // 2}

        F, k = self.num_filters, self.filter_size
        pooled = F * (H // 2) * (W // 2)
        shapes = {"W1": (F, C, k, k), "W2": (pooled, self.hidden_dim), "W3": (self.hidden_dim, self.num_classes)}
        fans = {"W1": (C * k * k, F * k * k), "W2": (pooled, self.hidden_dim), "W3": (self.hidden_dim, self.num_classes)}
        # Every scale is checked before the first draw, so a bad one leaves numpy's global state alone.
        stds = {name: init_scale(weight_scale, *fans[name], cls="ThreeLayerConvNet") for name in shapes}
        draw = normal_draws(self.seed)
        self.params = {}
        for i, name in enumerate(("W1", "W2", "W3"), start=1):
            self.params[name] = (stds[name] * draw(shapes[name])).astype(self.dtype)
            self.params[f"b{i}"] = np.zeros(shapes[name][0] if i == 1 else shapes[name][1], dtype=self.dtype)

    def get_config(self):
        """The constructor's arguments, JSON-serializable (save_model stores them).

        Returns:
            dict.
        """
        return {"input_dim": list(self.input_dim), "num_filters": self.num_filters, "filter_size": self.filter_size,
                "hidden_dim": self.hidden_dim, "num_classes": self.num_classes, "weight_scale": self.weight_scale,
                "reg": self.reg, "dtype": self.dtype.name, "seed": self.seed}

    def __repr__(self):
        return (f"ThreeLayerConvNet(input_dim={self.input_dim}, num_filters={self.num_filters}, "
                f"filter_size={self.filter_size}, hidden_dim={self.hidden_dim}, num_classes={self.num_classes}, "
                f"weight_scale={self.weight_scale!r}, reg={self.reg}, dtype={self.dtype.name}, seed={self.seed})")

    def loss(self, X, y=None):
        """Class scores, or the loss and its gradients.

        Args:
            X: images; cast to the model's dtype.
            y: integer labels in [0, num_classes), or None for scores only.

        Returns:
            scores (N, num_classes) if y is None, else (loss, grads) with grads keyed like params.

        Shape:
            X: (N, C, H, W); y: (N,); scores: (N, num_classes)
        """
        if not isinstance(X, np.ndarray) or X.ndim != 4 or X.shape[1:] != self.input_dim:
            got = X.shape if isinstance(X, np.ndarray) else type(X).__name__
            raise ValueError(f"ThreeLayerConvNet.loss: X must have shape (N, {', '.join(map(str, self.input_dim))}) "
                             f"(input_dim), got {got}.")
        X = X.astype(self.dtype, copy=False)
        if y is not None:
            y = labels("ThreeLayerConvNet.loss", y, X.shape[0], self.num_classes)
        p = self.params
        # BEGIN SOLUTION
        pooled, cache1 = conv_relu_pool_forward(X, p["W1"], p["b1"], self.conv_param, POOL)
        hidden, cache2 = affine_relu_forward(pooled, p["W2"], p["b2"])
        scores, cache3 = affine_forward(hidden, p["W3"], p["b3"])
        if y is None:
            return scores

        data_loss, dscores = softmax_loss(scores, y)
        reg_loss = 0.5 * self.reg * sum(float(np.vdot(p[k], p[k])) for k in ("W1", "W2", "W3")) if self.reg else 0.0
        grads = {}
        dhidden, grads["W3"], grads["b3"] = affine_backward(dscores, cache3)
        dpooled, grads["W2"], grads["b2"] = affine_relu_backward(dhidden, cache2)
        _, grads["W1"], grads["b1"] = conv_relu_pool_backward(dpooled, cache1, need_dx=False)  # X is data
        if self.reg:
            for k in ("W1", "W2", "W3"):
                grads[k] += self.reg * p[k]
        return float(data_loss) + reg_loss, grads
        # END SOLUTION

