"""Tests for solver.cnn: ThreeLayerConvNet."""

import math

import numpy as np
import pytest

from data import load_digits
from gradcheck import check_model
from solver import Solver, ThreeLayerConvNet, load_model, save_model

pytestmark = pytest.mark.cnn


def _small_net(reg=0.0, dtype=np.float64, seed=0):
    return ThreeLayerConvNet(input_dim=(2, 6, 6), num_filters=3, filter_size=3, hidden_dim=5, num_classes=4,
                             weight_scale=0.5, reg=reg, dtype=dtype, seed=seed)


@pytest.mark.parametrize("reg", [0.0, 0.4])
def test_three_layer_convnet_gradients_match_numeric(reg):
    """Every parameter's gradient matches centered differences in float64, with and without L2."""
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((3, 2, 6, 6)), rng.integers(0, 4, 3)
    model = _small_net(reg)
    for k in ("b1", "b2", "b3"):  # nonzero biases keep pre-activations off relu's kink
        model.params[k] = model.params[k] + rng.uniform(-0.3, 0.3, model.params[k].shape)
    report = check_model(model, X, y, mode="full").assert_ok()
    assert all(not r.kinks and r.checked == r.shape_size for r in report.inputs), str(report)


def test_shapes_defaults_and_initial_loss():
    """Course defaults give W1 (32, 3, 7, 7) and W2 (32*16*16, 100); small weights give loss ~ log(10)."""
    model = ThreeLayerConvNet(seed=0)
    assert model.params["W1"].shape == (32, 3, 7, 7) and model.params["W2"].shape == (32 * 16 * 16, 100)
    assert model.params["W3"].shape == (100, 10) and model.params["b1"].shape == (32,)
    assert all(v.dtype == np.float32 for v in model.params.values())
    X = np.random.default_rng(0).standard_normal((10, 3, 32, 32)).astype(np.float32)
    loss, _ = model.loss(X, np.arange(10))
    assert loss == pytest.approx(math.log(10), abs=1e-2)
    assert model.loss(X).shape == (10, 10)


def test_small_net_overfits_100_samples():
    """100 digits images are fitted to 100% training accuracy."""
    d = load_digits()
    small = {"X_train": d["X_train"][:100], "y_train": d["y_train"][:100], "X_val": d["X_val"], "y_val": d["y_val"]}
    model = ThreeLayerConvNet(input_dim=(1, 8, 8), num_filters=16, filter_size=3, hidden_dim=64,
                              weight_scale="he", seed=0)
    solver = Solver(model, small, update_rule="adam", optim_config={"learning_rate": 2e-3}, batch_size=25,
                    num_epochs=25, verbose=False, seed=0).train()
    assert max(solver.train_acc_history) == 1.0


def test_config_repr_and_save_load_round_trip(tmp_path):
    """get_config rebuilds an equal net; repr lists the settings; a saved net gives the same scores."""
    model = _small_net(reg=0.1, dtype=np.float32, seed=3)
    assert repr(model) == ("ThreeLayerConvNet(input_dim=(2, 6, 6), num_filters=3, filter_size=3, hidden_dim=5, "
                           "num_classes=4, weight_scale=0.5, reg=0.1, dtype=float32, seed=3)")
    save_model(model, tmp_path / "cnn.npz")
    loaded = load_model(tmp_path / "cnn.npz")
    assert type(loaded) is ThreeLayerConvNet and repr(loaded) == repr(model)
    X = np.random.default_rng(4).standard_normal((2, 2, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(loaded.loss(X), model.loss(X))


def test_bad_settings_and_inputs_are_refused():
    """Odd image sizes, even filters, and X of the wrong shape are refused with the numbers."""
    with pytest.raises(ValueError, match=r"ThreeLayerConvNet: the 2x2 pooling needs even H and W, got input_dim \(3, 31, 32\)"):
        ThreeLayerConvNet(input_dim=(3, 31, 32))
    with pytest.raises(ValueError, match=r"ThreeLayerConvNet: filter_size must be odd so the padding keeps H and W, got 4"):
        ThreeLayerConvNet(filter_size=4)
    with pytest.raises(ValueError, match=r"ThreeLayerConvNet: input_dim must be \(C, H, W\), got 3072"):
        ThreeLayerConvNet(input_dim=3072)
    with pytest.raises(ValueError, match=r"ThreeLayerConvNet.loss: X must have shape \(N, 2, 6, 6\) \(input_dim\), got \(3, 2, 6, 5\)"):
        _small_net().loss(np.zeros((3, 2, 6, 5)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unseeded_net_draws_the_course_weights_from_the_global_generator(dtype):
    """After np.random.seed: W1 (F, C, HH, WW), W2, W3 = weight_scale * randn in that order; biases zero."""
    np.random.seed(231)
    model = ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=4, filter_size=5, hidden_dim=6, num_classes=3,
                              weight_scale=1e-3, dtype=dtype)
    after_model = np.random.randint(2**31)
    np.random.seed(231)
    expected = {"W1": 1e-3 * np.random.randn(4, 3, 5, 5), "W2": 1e-3 * np.random.randn(4 * 4 * 4, 6),
                "W3": 1e-3 * np.random.randn(6, 3)}
    assert np.random.randint(2**31) == after_model, "the net made other draws than the three weight tensors"
    for name, W in expected.items():
        assert model.params[name].dtype == dtype
        np.testing.assert_array_equal(model.params[name], W.astype(dtype), err_msg=name)
    for name, size in (("b1", 4), ("b2", 6), ("b3", 3)):
        np.testing.assert_array_equal(model.params[name], np.zeros(size, dtype))


def test_seeded_net_leaves_numpys_global_state_alone_and_repeats():
    """An int seed draws from a private generator: the global state is untouched and the weights repeat."""
    state = np.random.get_state()
    a, b = _small_net(seed=5), _small_net(seed=5)
    after = np.random.get_state()
    assert np.array_equal(state[1], after[1]) and state[2:] == after[2:]
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    with pytest.raises(ValueError, match=r"ThreeLayerConvNet: seed must be an int >= 0 or None, got -1; None draws"):
        _small_net(seed=-1)
