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
    with pytest.raises(ValueError, match=r"FullyConnectedNet: hidden_dims entries must be an int >= 1, got 0"):
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
                              dropout_keep_ratio=keep, reg=reg, weight_scale=0.5, dtype=np.float64, seed=2)
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


def test_dropout_masks_are_fixed_by_seed_and_fresh_from_dropout_rng():
    """An int seed gives the same masks on every call; a Generator in model.dropout_rng gives new ones."""
    X, y = _batch(N=10, D=6, C=3, seed=5)
    model = FullyConnectedNet([20], input_dim=6, num_classes=3, dropout_keep_ratio=0.5, dtype=np.float64, seed=1)
    fixed = model.loss(X, y)[0]
    assert model.loss(X, y)[0] == fixed
    model.dropout_rng = np.random.default_rng(3)
    first, second = model.loss(X, y)[0], model.loss(X, y)[0]
    assert first != second
    model.dropout_rng = None
    assert model.loss(X, y)[0] == fixed


def test_unseeded_dropout_masks_follow_numpys_global_seed():
    """With seed=None each call draws new masks, and np.random.seed makes the sequence repeat."""
    X, y = _batch(N=10, D=6, C=3, seed=5)

    def two_losses():
        np.random.seed(231)
        model = FullyConnectedNet([20], input_dim=6, num_classes=3, dropout_keep_ratio=0.5, dtype=np.float64)
        return model.loss(X, y)[0], model.loss(X, y)[0]

    first = two_losses()
    assert first[0] != first[1]
    assert two_losses() == first


def test_dropout_seed_is_retired_with_a_clear_message():
    """dropout_seed=3 is refused with a message pointing to seed; dropout_seed=None is accepted."""
    with pytest.raises(TypeError, match=r"FullyConnectedNet: dropout_seed was retired; pass seed=3 instead, which now fixes the dropout masks"):
        FullyConnectedNet([4], input_dim=3, num_classes=2, dropout_keep_ratio=0.5, dropout_seed=3)
    assert FullyConnectedNet([4], input_dim=3, num_classes=2, seed=0, dropout_seed=None).seed == 0


def test_seed_must_be_none_or_a_non_negative_int():
    """Negative, boolean and fractional seeds are refused, naming the class."""
    for bad in (-1, True, 1.5, "0"):
        with pytest.raises(ValueError, match=rf"FullyConnectedNet: seed must be an int >= 0 or None, got {bad!r}; None "
                                             r"draws from numpy's global generator, in the course's order\.$"):
            FullyConnectedNet([4], input_dim=3, num_classes=2, seed=bad)
    with pytest.raises(ValueError, match=r"TwoLayerNet: seed must be an int >= 0 or None, got -5"):
        TwoLayerNet(input_dim=3, hidden_dim=2, num_classes=2, seed=-5)
    assert FullyConnectedNet([4], input_dim=3, num_classes=2, seed=np.int64(4)).get_config()["seed"] == 4


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


# The course's dropout check: relative errors of 1e-6 or less (1e-5 tolerated for W2 without dropout).
COURSE_DROPOUT_GRAD_TOL = 1e-4


@pytest.mark.parametrize("normalization", [None, "batchnorm", "layernorm"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_unseeded_net_draws_the_course_weights_from_the_global_generator(normalization, dtype):
    """After np.random.seed, W1, W2, W3 are weight_scale * randn in that order; biases 0, gammas 1, betas 0."""
    np.random.seed(231)
    model = FullyConnectedNet([20, 30], input_dim=15, num_classes=10, normalization=normalization,
                              weight_scale=5e-2, dtype=dtype)
    after_model = np.random.randint(2**31)
    np.random.seed(231)
    expected = {"W1": 5e-2 * np.random.randn(15, 20), "W2": 5e-2 * np.random.randn(20, 30),
                "W3": 5e-2 * np.random.randn(30, 10)}
    assert np.random.randint(2**31) == after_model, "the net made other draws than the three weight matrices"
    for name, W in expected.items():
        assert model.params[name].dtype == dtype
        np.testing.assert_array_equal(model.params[name], W.astype(dtype), err_msg=name)
    for i, size in ((1, 20), (2, 30), (3, 10)):
        np.testing.assert_array_equal(model.params[f"b{i}"], np.zeros(size, dtype))
    if normalization:
        for i, size in ((1, 20), (2, 30)):
            np.testing.assert_array_equal(model.params[f"gamma{i}"], np.ones(size, dtype))
            np.testing.assert_array_equal(model.params[f"beta{i}"], np.zeros(size, dtype))


def test_unseeded_two_layer_net_draws_w1_then_w2_from_the_global_generator():
    """TwoLayerNet without seed: W1 = weight_scale * randn(D, H), then W2 = weight_scale * randn(H, C)."""
    np.random.seed(0)
    model = TwoLayerNet(input_dim=12, hidden_dim=7, num_classes=4, weight_scale=1e-2)
    np.random.seed(0)
    W1, W2 = 1e-2 * np.random.randn(12, 7), 1e-2 * np.random.randn(7, 4)
    np.testing.assert_array_equal(model.params["W1"], W1)
    np.testing.assert_array_equal(model.params["W2"], W2)


def test_seeded_nets_leave_numpys_global_state_alone():
    """An int seed draws the weights and the fixed dropout masks from private generators only."""
    state = np.random.get_state()
    model = FullyConnectedNet([8], input_dim=5, num_classes=3, dropout_keep_ratio=0.5, seed=7)
    model.loss(np.ones((4, 5)), np.arange(4) % 3)
    TwoLayerNet(input_dim=5, hidden_dim=4, num_classes=3, seed=7)
    after = np.random.get_state()
    assert np.array_equal(state[1], after[1]) and state[2:] == after[2:]


@pytest.mark.slow
@pytest.mark.parametrize("keep", [1, 0.75, 0.5])
def test_seeded_dropout_net_passes_the_courses_numeric_gradient_check(keep):
    """Built as the course's dropout check builds it (seed=123), every gradient matches eval_numerical_gradient."""
    from gradcheck import eval_numerical_gradient, rel_error

    np.random.seed(231)
    X, y = np.random.randn(2, 15), np.random.randint(10, size=(2,))
    model = FullyConnectedNet([20, 30], input_dim=15, num_classes=10, weight_scale=5e-2, dtype=np.float64,
                              dropout_keep_ratio=keep, seed=123)
    loss, grads = model.loss(X, y)
    assert loss == pytest.approx(math.log(10), abs=UNIFORM_LOSS_TOL)
    for name in sorted(grads):
        numeric = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name], verbose=False, h=1e-5)
        error = rel_error(numeric, grads[name])
        assert error < COURSE_DROPOUT_GRAD_TOL, f"{name}: relative error {error:.2e} with keep ratio {keep}"
