"""Every layer and net of chainrule with a small float64 case to check: what
``python -m gradcheck`` runs, and what the tests run through check_layer / check_model.

A LayerCase builds its inputs from a seeded generator; inputs of layers with kinks (ReLU, the
max gate, max pooling, the SVM hinge) are drawn clear of them with draw_clear_of_kinks.

Shape letters: N batch, D features in, M features out, C channels or classes, H W image,
F HH WW filters, G groups.
"""

from __future__ import annotations

import dataclasses

import numpy as np

import layers as L
from gradcheck.kinks import (
    draw_clear_of_kinks,
    max_kink_distance,
    max_pool_kink_distance,
    relu_kink_distance,
    svm_kink_distance,
)

__all__ = ["LayerCase", "ModelCase", "LAYER_CASES", "MODEL_CASES", "layer_case", "model_case", "run_case"]


@dataclasses.dataclass(frozen=True)
class LayerCase:
    """A layer pair and how to make a small case for it.

    Attributes:
        name: the case's name (the forward function's, plus a variant when there are several).
        forward, backward: the pair.
        make: callable(rng) -> (inputs dict, params dict).
        kind: "layer" or "loss" (a loss returns (loss, dx) and is checked with check_loss).
    """

    name: str
    forward: object
    backward: object
    make: object
    kind: str = "layer"


@dataclasses.dataclass(frozen=True)
class ModelCase:
    """A net and a small batch: make(rng) -> (model, X, y)."""

    name: str
    make: object


def _n(rng, *shape):
    return rng.standard_normal(shape)


def _relu_like(rng):
    inputs = draw_clear_of_kinks(lambda r: {"x": _n(r, 4, 5)}, lambda inp: relu_kink_distance(inp["x"]),
                                 seed=int(rng.integers(2**31)))
    return inputs, {}


def _max_gate(rng):
    inputs = draw_clear_of_kinks(lambda r: {"x": _n(r, 3, 4), "y": _n(r, 3, 4)},
                                 lambda inp: max_kink_distance(inp["x"], inp["y"]), seed=int(rng.integers(2**31)))
    return inputs, {}


def _pool(rng, shape=(2, 3, 6, 6), pool=None):
    pool = pool or {"pool_height": 2, "pool_width": 2, "stride": 2}
    inputs = draw_clear_of_kinks(lambda r: {"x": _n(r, *shape)},
                                 lambda inp: max_pool_kink_distance(inp["x"], pool), seed=int(rng.integers(2**31)))
    return inputs, {"pool_param": pool}


def _svm(rng):
    y = rng.integers(0, 4, 6)
    inputs = draw_clear_of_kinks(lambda r: {"x": _n(r, 6, 4)}, lambda inp: svm_kink_distance(inp["x"], y),
                                 seed=int(rng.integers(2**31)))
    return inputs, {"y": y}


def _conv(rng, stride=1, pad=1):
    return ({"x": _n(rng, 2, 3, 5, 5), "w": _n(rng, 4, 3, 3, 3), "b": _n(rng, 4)},
            {"conv_param": {"stride": stride, "pad": pad}})


def _bn(rng, shape=(6, 4), key="bn_param"):
    C = shape[1]
    return ({"x": 2 * _n(rng, *shape) + 1, "gamma": 1 + 0.1 * _n(rng, C), "beta": _n(rng, C)},
            {key: {"mode": "train"} if key == "bn_param" else {}})


LAYER_CASES = [
    LayerCase("add_forward", L.add_forward, L.add_backward,
              lambda rng: ({"x": _n(rng, 3, 4), "y": _n(rng, 4)}, {})),
    LayerCase("multiply_forward", L.multiply_forward, L.multiply_backward,
              lambda rng: ({"x": _n(rng, 3, 1), "y": _n(rng, 3, 4)}, {})),
    LayerCase("max_forward", L.max_forward, L.max_backward, _max_gate),
    LayerCase("copy_forward", L.copy_forward, L.copy_backward, lambda rng: ({"x": _n(rng, 3, 4)}, {"n": 3})),
    LayerCase("relu_forward", L.relu_forward, L.relu_backward, _relu_like),
    LayerCase("leaky_relu_forward", L.leaky_relu_forward, L.leaky_relu_backward,
              lambda rng: (_relu_like(rng)[0], {"negative_slope": 0.1})),
    LayerCase("sigmoid_forward", L.sigmoid_forward, L.sigmoid_backward, lambda rng: ({"x": 3 * _n(rng, 4, 5)}, {})),
    LayerCase("tanh_forward", L.tanh_forward, L.tanh_backward, lambda rng: ({"x": 2 * _n(rng, 4, 5)}, {})),
    LayerCase("affine_forward", L.affine_forward, L.affine_backward,
              lambda rng: ({"x": _n(rng, 4, 2, 3), "w": _n(rng, 6, 5), "b": _n(rng, 5)}, {})),
    LayerCase("affine_relu_forward", L.affine_relu_forward, L.affine_relu_backward,
              lambda rng: ({"x": _n(rng, 4, 6), "w": _n(rng, 6, 5), "b": _n(rng, 5)}, {})),
    LayerCase("softmax_loss", L.softmax_loss, None,
              lambda rng: ({"x": 3 * _n(rng, 6, 4)}, {"y": rng.integers(0, 4, 6)}), kind="loss"),
    LayerCase("svm_loss", L.svm_loss, None, _svm, kind="loss"),
    LayerCase("batchnorm_forward", L.batchnorm_forward, L.batchnorm_backward, _bn),
    LayerCase("batchnorm_forward (alt backward)", L.batchnorm_forward, L.batchnorm_backward_alt, _bn),
    LayerCase("layernorm_forward", L.layernorm_forward, L.layernorm_backward,
              lambda rng: _bn(rng, (4, 6), key="ln_param")),
    LayerCase("dropout_forward", L.dropout_forward, L.dropout_backward,
              lambda rng: ({"x": _n(rng, 5, 6)}, {"dropout_param": {"p": 0.7, "mode": "train", "seed": 3}})),
    LayerCase("affine_norm_relu_forward (batchnorm)", L.affine_norm_relu_forward, L.affine_norm_relu_backward,
              lambda rng: ({"x": _n(rng, 6, 5), "w": _n(rng, 5, 4), "b": _n(rng, 4), "gamma": 1 + 0.1 * _n(rng, 4),
                            "beta": _n(rng, 4)}, {"norm_param": {"mode": "train"}, "normalization": "batchnorm"})),
    LayerCase("affine_norm_relu_forward (layernorm)", L.affine_norm_relu_forward, L.affine_norm_relu_backward,
              lambda rng: ({"x": _n(rng, 3, 5), "w": _n(rng, 5, 6), "b": _n(rng, 6), "gamma": 1 + 0.1 * _n(rng, 6),
                            "beta": _n(rng, 6)}, {"norm_param": {}, "normalization": "layernorm"})),
    LayerCase("conv_forward_naive", L.conv_forward_naive, L.conv_backward_naive, _conv),
    LayerCase("conv_forward_fast", L.conv_forward_fast, L.conv_backward_fast, _conv),
    LayerCase("conv_forward_fast (stride 2)", L.conv_forward_fast, L.conv_backward_fast,
              lambda rng: _conv(rng, stride=2, pad=1)),
    LayerCase("max_pool_forward_naive", L.max_pool_forward_naive, L.max_pool_backward_naive, _pool),
    LayerCase("max_pool_forward_fast", L.max_pool_forward_fast, L.max_pool_backward_fast, _pool),
    LayerCase("max_pool_forward_fast (overlapping 3x3/2)", L.max_pool_forward_fast, L.max_pool_backward_fast,
              lambda rng: _pool(rng, (2, 2, 7, 7), {"pool_height": 3, "pool_width": 3, "stride": 2})),
    LayerCase("spatial_batchnorm_forward", L.spatial_batchnorm_forward, L.spatial_batchnorm_backward,
              lambda rng: ({"x": 2 * _n(rng, 3, 4, 3, 3) + 1, "gamma": 1 + 0.1 * _n(rng, 4), "beta": _n(rng, 4)},
                           {"bn_param": {"mode": "train"}})),
    LayerCase("spatial_groupnorm_forward", L.spatial_groupnorm_forward, L.spatial_groupnorm_backward,
              lambda rng: ({"x": 2 * _n(rng, 2, 6, 3, 3) + 1, "gamma": 1 + 0.1 * _n(rng, 1, 6, 1, 1),
                            "beta": _n(rng, 1, 6, 1, 1)}, {"G": 3, "gn_param": {}})),
    LayerCase("conv_relu_forward", L.conv_relu_forward, L.conv_relu_backward, _conv),
    LayerCase("conv_relu_pool_forward", L.conv_relu_pool_forward, L.conv_relu_pool_backward,
              lambda rng: ({"x": _n(rng, 2, 3, 4, 4), "w": _n(rng, 3, 3, 3, 3), "b": _n(rng, 3)},
                           {"conv_param": {"stride": 1, "pad": 1},
                            "pool_param": {"pool_height": 2, "pool_width": 2, "stride": 2}})),
    LayerCase("conv_bn_relu_forward", L.conv_bn_relu_forward, L.conv_bn_relu_backward,
              lambda rng: ({"x": _n(rng, 2, 3, 4, 4), "w": _n(rng, 3, 3, 3, 3), "b": _n(rng, 3),
                            "gamma": 1 + 0.1 * _n(rng, 3), "beta": _n(rng, 3)},
                           {"conv_param": {"stride": 1, "pad": 1}, "bn_param": {"mode": "train"}})),
]


def _fc(**kw):
    def make(rng):
        from solver import FullyConnectedNet

        model = FullyConnectedNet([6, 5], input_dim=8, num_classes=4, weight_scale="he", dtype=np.float64,
                                  seed=int(rng.integers(2**31)), **kw)
        return model, _n(rng, 5, 8), rng.integers(0, 4, 5)
    return make


def _two_layer(rng):
    from solver import TwoLayerNet

    model = TwoLayerNet(input_dim=7, hidden_dim=6, num_classes=3, weight_scale=0.5, reg=0.1,
                        seed=int(rng.integers(2**31)))
    return model, _n(rng, 4, 7), rng.integers(0, 3, 4)


def _cnn(rng):
    from solver import ThreeLayerConvNet

    model = ThreeLayerConvNet(input_dim=(2, 6, 6), num_filters=3, filter_size=3, hidden_dim=5, num_classes=4,
                              weight_scale="he", reg=0.05, dtype=np.float64, seed=int(rng.integers(2**31)))
    return model, _n(rng, 2, 2, 6, 6), rng.integers(0, 4, 2)


MODEL_CASES = [
    ModelCase("TwoLayerNet", _two_layer),
    ModelCase("FullyConnectedNet", _fc(reg=0.1)),
    ModelCase("FullyConnectedNet (batchnorm)", _fc(normalization="batchnorm")),
    # An int seed fixes the dropout masks, so the loss is a fixed function to check.
    ModelCase("FullyConnectedNet (layernorm, dropout)", _fc(normalization="layernorm", dropout_keep_ratio=0.8)),
    ModelCase("ThreeLayerConvNet", _cnn),
]


def layer_case(name):
    """The LayerCase called name (KeyError listing the names otherwise)."""
    for case in LAYER_CASES:
        if case.name == name:
            return case
    raise KeyError(f"layer_case: no case {name!r}; cases are {[c.name for c in LAYER_CASES]}.")


def model_case(name):
    """The ModelCase called name (KeyError listing the names otherwise)."""
    for case in MODEL_CASES:
        if case.name == name:
            return case
    raise KeyError(f"model_case: no case {name!r}; cases are {[c.name for c in MODEL_CASES]}.")


def run_case(case, seed=0, **settings):
    """Check one LayerCase or ModelCase; returns its CheckReport.

    Args:
        case: a LayerCase or ModelCase.
        seed: seeds the case's inputs and the check.
        **settings: for check_layer / check_model (mode, rtol, ...).

    Returns:
        CheckReport.
    """
    from gradcheck.check import check_layer, check_loss, check_model

    rng = np.random.default_rng(seed)
    if isinstance(case, ModelCase):
        model, X, y = case.make(rng)
        report = check_model(model, X, y, seed=seed, **settings)
    else:
        inputs, params = case.make(rng)
        if case.kind == "loss":
            report = check_loss(case.forward, inputs, params=params, seed=seed, **settings)
        else:
            report = check_layer(case.forward, case.backward, inputs, params=params, seed=seed, **settings)
    report.target = case.name
    return report
