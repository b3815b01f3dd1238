"""Tests for solver.nets: TwoLayerNet and FullyConnectedNet."""

import math

import numpy as np
import pytest

from gradcheck import check_model
from solver import FullyConnectedNet, TwoLayerNet

pytestmark = pytest.mark.nets

# Small random weights make every class score ~0, so the loss is log(C) to within this.
UNIFORM_LOSS_TOL = 1e-2
# He and Xavier draws of a 400x300 matrix estimate their std to within a few percent.
INIT_STD_RTOL = 0.03


def _batch(N=4, D=6, C=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, D)), rng.integers(0, C, N)


def _check_grads(model, X, y):
    # Zero biases let a sample whose units all died feed exactly 0 into the next relu, its
    # kink, where centered differences straddle the corner; random biases rule that out.
    rng = np.random.default_rng(123)
    for name in model.params:
        if name.startswith("b"):
            model.params[name] = model.params[name] + rng.uniform(-0.3, 0.3, model.params[name].shape)
    report = check_model(model, X, y, mode="full")
    report.assert_ok()
    assert [r.name for r in report.inputs] == list(model.params)
    assert all(not r.kinks and r.checked == r.shape_size for r in report.inputs), str(report)


@pytest.mark.parametrize("reg", [0.0, 0.7])
@pytest.mark.parametrize("hidden_dims", [[], [7], [7, 5], [6, 5, 4]])
def test_fully_connected_net_gradients_match_numeric(hidden_dims, reg):
    """Every parameter's gradient matches centered differences in float64, with and without L2."""
    X, y = _batch()
    model = FullyConnectedNet(hidden_dims, input_dim=6, num_classes=5, reg=reg, weight_scale=5e-1,
                              dtype=np.float64, seed=1)
    _check_grads(model, X, y)


@pytest.mark.parametrize("reg", [0.0, 0.3])
def test_two_layer_net_gradients_match_numeric(reg):
    """TwoLayerNet's W1, b1, W2, b2 gradients match centered differences in float64."""
    X, y = _batch(N=3, D=2 * 3, C=4)
    model = TwoLayerNet(input_dim=6, hidden_dim=8, num_classes=4, weight_scale=0.5, reg=reg, seed=2)
    assert sorted(model.params) == ["W1", "W2", "b1", "b2"]
    _check_grads(model, X.reshape(3, 2, 3), y)


@pytest.mark.parametrize("model_cls", [TwoLayerNet, FullyConnectedNet])
def test_initial_loss_is_log_c_for_small_weights(model_cls):
    """With weights of std 1e-3 and no regularization the loss starts at log(C)."""
    X, y = _batch(N=50, D=30, C=10, seed=3)
    if model_cls is TwoLayerNet:
        model = TwoLayerNet(input_dim=30, hidden_dim=20, num_classes=10, weight_scale=1e-3, seed=0)
    else:
        model = FullyConnectedNet([20, 20], input_dim=30, num_classes=10, weight_scale=1e-3, seed=0)
    loss, _ = model.loss(X, y)
    assert loss == pytest.approx(math.log(10), abs=UNIFORM_LOSS_TOL)


def test_regularization_covers_weights_only():
    """loss(reg) - loss(0) is exactly 0.5 * reg * sum(W**2) over W1..WL, even with nonzero biases."""
    X, y = _batch()
    model = FullyConnectedNet([7, 5], input_dim=6, num_classes=5, dtype=np.float64, seed=4)
    for key in ("b1", "b2", "b3"):
        model.params[key] = model.params[key] + 0.5
    base, _ = model.loss(X, y)
    model.reg = 2.5
    regged, grads = model.loss(X, y)
    expected = 0.5 * 2.5 * sum(np.sum(model.params[f"W{i}"] ** 2) for i in (1, 2, 3))
    assert regged - base == pytest.approx(expected, rel=1e-12)


def test_loss_without_labels_returns_scores():
    """loss(X) returns (N, C) scores in the model's dtype; 4-D inputs are flattened."""
    model = FullyConnectedNet([10], input_dim=3 * 4 * 4, num_classes=7, seed=0)
    scores = model.loss(np.zeros((5, 3, 4, 4), dtype=np.float32))
    assert scores.shape == (5, 7) and scores.dtype == np.float32


def test_default_parameters_are_float32_with_course_names_and_shapes():
    """FullyConnectedNet([H1, H2]) has W1 (D, H1) ... W3 (H2, C), biases zero, all float32."""
    model = FullyConnectedNet([30, 20], input_dim=50, num_classes=4, seed=0)
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == {"W1": (50, 30), "b1": (30,), "W2": (30, 20), "b2": (20,), "W3": (20, 4), "b3": (4,)}
    assert all(v.dtype == np.float32 for v in model.params.values())
    assert all(not np.any(model.params[f"b{i}"]) for i in (1, 2, 3))


@pytest.mark.parametrize("scheme, expected_std", [
    ("he", math.sqrt(2 / 400)), ("xavier", math.sqrt(2 / (400 + 300))), (0.05, 0.05)])
def test_weight_scale_schemes(scheme, expected_std):
    """'he' draws std sqrt(2/fan_in), 'xavier' sqrt(2/(fan_in+fan_out)), a number is used as is."""
    model = FullyConnectedNet([300], input_dim=400, num_classes=10, weight_scale=scheme, seed=0)
    assert float(np.std(model.params["W1"])) == pytest.approx(expected_std, rel=INIT_STD_RTOL)


def test_seed_makes_initialization_reproducible():
    """The same seed gives identical weights; a different one does not."""
    a = FullyConnectedNet([8], input_dim=5, num_classes=3, seed=7)
    b = FullyConnectedNet([8], input_dim=5, num_classes=3, seed=7)
    c = FullyConnectedNet([8], input_dim=5, num_classes=3, seed=8)
    np.testing.assert_array_equal(a.params["W1"], b.params["W1"])
    assert not np.array_equal(a.params["W1"], c.params["W1"])


def test_nets_show_their_settings():
    """repr lists the settings, so notebook output reads well."""
    assert repr(TwoLayerNet(input_dim=6, hidden_dim=8, num_classes=4, seed=1)) == (
        "TwoLayerNet(input_dim=6, hidden_dim=8, num_classes=4, weight_scale=0.001, reg=0.0, dtype=float64, seed=1)")
    assert repr(FullyConnectedNet([8, 4], input_dim=6, num_classes=3, weight_scale="he")).startswith(
        "FullyConnectedNet(hidden_dims=[8, 4], input_dim=6, num_classes=3, dropout_keep_ratio=1.0, "
        "normalization=None, reg=0.0, weight_scale='he', dtype=float32")


def test_nets_reject_bad_settings_and_inputs():
    """Bad constructor arguments and bad X or y are refused, naming the class and the argument."""
    with pytest.raises(ValueError, match=r"FullyConnectedNet: hidden_dims entries must be a positive int, got 0"):
        FullyConnectedNet([10, 0])
    with pytest.raises(ValueError, match=r"FullyConnectedNet: weight_scale must be a positive number, 'he' or 'xavier', got 'kaiming'"):
        FullyConnectedNet([10], weight_scale="kaiming")
    with pytest.raises(ValueError, match=r"FullyConnectedNet: weight_scale must be > 0"):
        FullyConnectedNet([10], weight_scale=0)
    with pytest.raises(ValueError, match=r"FullyConnectedNet: normalization must be None, 'batchnorm' or 'layernorm', got 'groupnorm'"):
        FullyConnectedNet([10], normalization="groupnorm")
    with pytest.raises(ValueError, match=r"FullyConnectedNet: dropout_keep_ratio is the probability of keeping a unit and must be in \(0, 1\], got 0.0"):
        FullyConnectedNet([10], dropout_keep_ratio=0)
    with pytest.raises(ValueError, match=r"FullyConnectedNet: dtype must be np.float32 or np.float64, got int32"):
        FullyConnectedNet([10], dtype=np.int32)
    with pytest.raises(ValueError, match=r"TwoLayerNet: reg must be a finite number in \[0.0, inf\)"):
        TwoLayerNet(reg=-1.0)
    model = FullyConnectedNet([4], input_dim=6, num_classes=3)
    with pytest.raises(ValueError, match=r"FullyConnectedNet.loss: X must be \(N, ...\) with 6 features per sample \(input_dim\), got shape \(2, 5\)"):
        model.loss(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"FullyConnectedNet.loss: labels must lie in \[0, 3\)"):
        model.loss(np.zeros((2, 6)), np.array([0, 3]))
    with pytest.raises(TypeError, match=r"FullyConnectedNet.loss: X must be a numpy array of numbers, got list"):
        model.loss([[0.0] * 6])


def test_init_scale_values():
    """init_scale gives sqrt(2/fan_in) for 'he', sqrt(2/(fan_in+fan_out)) for 'xavier', numbers as is."""
    from solver.nets import init_scale

    assert init_scale("he", 50, 10) == pytest.approx(math.sqrt(2 / 50), rel=1e-15)
    assert init_scale("xavier", 50, 10) == pytest.approx(math.sqrt(2 / 60), rel=1e-15)
    assert init_scale(0.25, 50, 10) == 0.25
    with pytest.raises(ValueError, match=r"Net: weight_scale must be a positive number, 'he' or 'xavier', got 'lecun'"):
        init_scale("lecun", 5, 5, cls="Net")


@pytest.mark.parametrize("reg", [0.0, 0.5])
@pytest.mark.parametrize("normalization, keep", [("batchnorm", 1.0), ("layernorm", 1.0), (None, 0.6),
                                                 ("batchnorm", 0.7)])
def test_normalized_and_dropout_nets_gradients_match_numeric(normalization, keep, reg):
    """With each normalization and with dropout (fixed masks), every gradient matches centered differences."""
    X, y = _batch(N=6, D=5, C=4, seed=10)
    model = FullyConnectedNet([7, 6], input_dim=5, num_classes=4, normalization=normalization,
                              dropout_keep_ratio=keep, reg=reg, weight_scale=0.5, dtype=np.float64, seed=2,
                              dropout_seed=11)
    for i in (1, 2):  # non-trivial gammas and betas
        if normalization:
            model.params[f"gamma{i}"] = model.params[f"gamma{i}"] + np.linspace(-0.3, 0.3, 7 if i == 1 else 6)
            model.params[f"beta{i}"] = model.params[f"beta{i}"] + 0.1
    _check_grads(model, X, y)


def test_norm_params_start_as_ones_and_zeros_and_are_not_regularized():
    """gamma_i = 1, beta_i = 0 for each hidden layer; the L2 term covers the W's only."""
    X, y = _batch()
    model = FullyConnectedNet([7, 5], input_dim=6, num_classes=5, normalization="layernorm", dtype=np.float64, seed=0)
    assert sorted(k for k in model.params if k[0] in "gb") == ["b1", "b2", "b3", "beta1", "beta2", "gamma1", "gamma2"]
    np.testing.assert_array_equal(model.params["gamma2"], np.ones(5))
    np.testing.assert_array_equal(model.params["beta1"], np.zeros(7))
    model.params["gamma1"] = model.params["gamma1"] * 3.0
    base, _ = model.loss(X, y)
    model.reg = 1.5
    regged, grads = model.loss(X, y)
    expected = 0.5 * 1.5 * sum(np.sum(model.params[f"W{i}"] ** 2) for i in (1, 2, 3))
    assert regged - base == pytest.approx(expected, rel=1e-12)


def test_scores_run_in_test_mode():
    """loss(X) uses the running averages, leaves them unchanged, and applies no dropout."""
    X, y = _batch(N=20, D=6, C=3, seed=4)
    model = FullyConnectedNet([8], input_dim=6, num_classes=3, normalization="batchnorm", dropout_keep_ratio=0.5,
                              dtype=np.float64, seed=0)
    model.loss(X, y)  # one training pass moves the running averages off zero
    before = {k: v.copy() for k, v in model.buffers().items()}
    a, b = model.loss(X), model.loss(X)
    np.testing.assert_array_equal(a, b)
    for k, v in model.buffers().items():
        np.testing.assert_array_equal(v, before[k])
    h = X @ model.params["W1"] + model.params["b1"]
    h = (h - before["running_mean1"]) / np.sqrt(before["running_var1"] + 1e-5)
    h = np.maximum(0, model.params["gamma1"] * h + model.params["beta1"])
    np.testing.assert_allclose(a, h @ model.params["W2"] + model.params["b2"], rtol=1e-12)


def test_dropout_masks_change_per_step_unless_dropout_seed_is_set():
    """Training passes draw new masks from model.dropout_rng; dropout_seed fixes them."""
    X, y = _batch(N=10, D=6, C=3, seed=5)
    free = FullyConnectedNet([20], input_dim=6, num_classes=3, dropout_keep_ratio=0.5, dtype=np.float64, seed=1)
    assert free.loss(X, y)[0] != free.loss(X, y)[0]
    fixed = FullyConnectedNet([20], input_dim=6, num_classes=3, dropout_keep_ratio=0.5, dtype=np.float64, seed=1,
                              dropout_seed=3)
    assert fixed.loss(X, y)[0] == fixed.loss(X, y)[0]


def test_buffers_round_trip_and_reject_mismatches():
    """buffers() lists running_mean_i/running_var_i; load_buffers restores them and checks keys and shapes."""
    model = FullyConnectedNet([4, 3], input_dim=5, num_classes=2, normalization="batchnorm", seed=0)
    bufs = model.buffers()
    assert sorted(bufs) == ["running_mean1", "running_mean2", "running_var1", "running_var2"]
    new = {k: np.full_like(v, 2.0) for k, v in bufs.items()}
    model.load_buffers(new)
    np.testing.assert_array_equal(model.buffers()["running_var2"], np.full(3, 2.0, np.float32))
    with pytest.raises(ValueError, match=r"FullyConnectedNet.load_buffers: expected buffers \['running_mean1'"):
        model.load_buffers({"running_mean1": new["running_mean1"]})
    with pytest.raises(ValueError, match=r"FullyConnectedNet.load_buffers: running_var1 must be an array of shape \(4,\)"):
        model.load_buffers({**new, "running_var1": np.ones(5, np.float32)})
    assert FullyConnectedNet([4], input_dim=5, num_classes=2, normalization="layernorm").buffers() == {}
