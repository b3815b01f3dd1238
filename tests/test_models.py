"""Tests for gradcheck.models: check_model leaves a model as it was through the model protocol,
checks a model with only params and loss, refuses half a protocol; the nets keep the protocol;
the model side checks return structured SideChecks."""

import numpy as np
import pytest

from gradcheck import GradcheckWarning, check_model, contract
from gradcheck.models import (
    grads_have_the_keys_of_params,
    loss_is_deterministic,
    loss_leaves_params_and_data_alone,
    model_protocol,
)
from layers import softmax_loss
from test_check import SoftmaxRegression

pytestmark = pytest.mark.gradcheck


def test_check_model_leaves_state_dropout_generator_and_params_as_they_were():
    """Through state()/load_state()/set_dtype(): the same params dict, dtype, batchnorm mode and running
    averages, and the same dropout generator object at the same position, after a float32 check."""
    from solver import FullyConnectedNet

    model = FullyConnectedNet([5, 4], input_dim=4, num_classes=3, normalization="batchnorm", dropout_keep_ratio=0.8,
                              weight_scale="he", seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    model.loss(X)  # test mode: batchnorm's mode is "test" now
    model.dropout_rng = generator = np.random.default_rng(7)
    params, state = model.params, model.state()
    with pytest.warns(GradcheckWarning):
        check_model(model, X, y, mode="fast")  # fresh masks every call: the result does not matter here
    assert model.params is params and model.dtype == np.float32 and model.dropout_rng is generator
    assert generator.random() == np.random.default_rng(7).random()
    assert contract.differences(state["norm_params"], model.norm_params, "norm_params") == []
    assert model.norm_params[0]["mode"] == "test" and model.norm_params[0]["running_mean"].dtype == np.float32


def test_a_model_with_only_params_and_loss_is_checked_with_a_warning():
    """Without set_dtype, float32 params are checked on float64 copies, with a second warning; the model passes."""
    class Plain:
        def __init__(self):
            self.params = {"W": np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32)}

        def loss(self, X, y):
            loss, dscores = softmax_loss(X @ self.params["W"], y)
            return loss, {"W": X.T @ dscores}

    model = Plain()
    with pytest.warns(GradcheckWarning) as caught:
        check_model(model, np.random.default_rng(1).standard_normal((4, 3)), np.array([0, 1, 1, 0])).assert_ok()
    assert ["W not float64" in str(w.message) for w in caught] == [True, False]
    assert "Plain has no set_dtype(), so its loss may still compute in its own dtype" in str(caught[1].message)
    assert model.params["W"].dtype == np.float32
    assert model_protocol(model) == (False, False)


def test_half_a_model_protocol_is_refused():
    """state() without load_state(), or set_dtype() without state(), is a TypeError naming what is missing."""
    class StateOnly(SoftmaxRegression):
        def state(self):
            return {}

    class DtypeOnly(SoftmaxRegression):
        def set_dtype(self, dtype):
            pass

    X, y = np.ones((2, 3)), np.array([0, 1])
    with pytest.raises(TypeError, match=r"check_model: StateOnly has state\(\) but no load_state\(\)"):
        check_model(StateOnly(3, 2, 0.0), X, y)
    with pytest.raises(TypeError, match=r"check_model: DtypeOnly has set_dtype\(\) but no state\(\)/load_state\(\)"):
        check_model(DtypeOnly(3, 2, 0.0), X, y)
    with pytest.raises(TypeError, match="check_model: model must have a params dict and a loss"):
        check_model(object(), X, y)


@pytest.mark.parametrize("kind", ["FullyConnectedNet", "ThreeLayerConvNet"])
def test_nets_keep_the_model_protocol(kind):
    """set_dtype casts into a new params dict; load_state(state()) brings the dtype back; bad values are refused."""
    from solver import FullyConnectedNet, ThreeLayerConvNet

    if kind == "FullyConnectedNet":
        model = FullyConnectedNet([3], input_dim=4, num_classes=2, normalization="batchnorm", seed=0)
    else:
        model = ThreeLayerConvNet(input_dim=(1, 4, 4), num_filters=2, filter_size=3, hidden_dim=3, num_classes=2,
                                  seed=0)
    assert model_protocol(model) == (True, True)
    params, state = model.params, model.state()
    model.set_dtype(np.float64)
    assert model.dtype == np.float64 and all(v.dtype == np.float64 for v in model.params.values())
    assert all(v.dtype == np.float32 for v in params.values())  # the old dict and arrays are left alone
    model.load_state(state)
    assert model.dtype == np.float32
    with pytest.raises(ValueError, match=rf"{kind}.set_dtype: dtype must be np.float32 or np.float64, got int32"):
        model.set_dtype(np.int32)
    with pytest.raises(ValueError, match=rf"{kind}.load_state: state must be what {kind}.state\(\) returned"):
        model.load_state({"dtype": np.float32, "extra": 1})


def test_model_side_checks_return_structured_results():
    """The model checks compare what they are given: loss results, grads keys, params and data before and after."""
    x = np.ones((2, 3))
    first, second = (1.0, {"W": x}), (1.0, {"W": x + 1})
    assert loss_is_deterministic(first, second).code == contract.LOSS_DETERMINISTIC
    assert not loss_is_deterministic(first, second).passed and loss_is_deterministic(first, first).passed
    keys = grads_have_the_keys_of_params({"W": x}, {"W": x, "b": x})
    assert not keys.passed and keys.detail == "missing ['b'], extra []"
    changed = loss_leaves_params_and_data_alone({"W": x}, {"W": x + 1}, x, x, np.zeros(2), np.ones(2))
    assert not changed.passed and changed.detail == "changed: params['W'], y"
