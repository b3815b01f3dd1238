"""Every declared layer case and every net, with a small float64 case to check: what
``python -m gradcheck`` runs, and what the tests run through check_layer / check_model.

The layer cases are the families' own declarations (layers.CASES, see layers/cases.py); this
module adds only how to check one: its "check"-size inputs in float64, drawn clear of its kinks
(draw_clear_of_kinks) when it declares some. The nets are declared here.

Shape letters: N batch, D features in, C channels or classes, H W image.
"""

from __future__ import annotations

import dataclasses

import numpy as np

import layers
from gradcheck.kinks import draw_clear_of_kinks
from layers.cases import LayerCase

__all__ = ["LayerCase", "ModelCase", "LAYER_CASES", "MODEL_CASES", "check_inputs", "layer_case", "model_case",
           "run_case"]


@dataclasses.dataclass(frozen=True)
class ModelCase:
    """A net and a small batch: make(rng) -> (model, X, y)."""

    name: str
    make: object


LAYER_CASES = list(layers.CASES)


def check_inputs(case: LayerCase, seed: int = 0):
    """The (inputs, params) a check of case runs on: its "check" size in float64 from seed, redrawn
    until clear of its kinks when it declares them.

    Args:
        case: a declared LayerCase.
        seed: seeds the draw.

    Returns:
        (inputs dict of float64 arrays, params dict).

    Shape:
        inputs: as the case's make returns them at the "check" size
    """
    def draw(rng):
        return case.validated(*case.make(rng, "check", np.dtype(np.float64)), np.dtype(np.float64))

    if case.kinks is None:
        return draw(np.random.default_rng(seed))
    return draw_clear_of_kinks(draw, lambda drawn: case.kinks(*drawn), seed=seed)


def _n(rng, *shape):
    return rng.standard_normal(shape)


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
        case: a declared LayerCase (its check settings apply, under those given here) or a ModelCase.
        seed: seeds the case's inputs and the check.
        **settings: for check_layer / check_model (mode, rtol, ...).

    Returns:
        CheckReport.
    """
    from gradcheck.check import check_layer, check_loss, check_model

    if isinstance(case, ModelCase):
        model, X, y = case.make(np.random.default_rng(seed))
        report = check_model(model, X, y, seed=seed, **settings)
    else:
        inputs, params = check_inputs(case, seed)
        settings = {**case.check, **settings}
        if case.kind == "loss":
            report = check_loss(case.forward, inputs, params=params, seed=seed, **settings)
        else:
            report = check_layer(case.forward, case.backward, inputs, params=params, seed=seed, **settings)
    report.target = case.name
    return report
