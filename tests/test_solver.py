"""Tests for solver.solver: training, determinism, errors, progress and the dropout masks (checkpoints:
tests/test_resume.py)."""

import io
import os

import numpy as np
import pytest

from data import load_digits
from solver import CosineSchedule, FullyConnectedNet, Solver, TwoLayerNet, plot_history
from solver.progress import Progress
from solver_support import SpyModel, dropout_solver, make_solver, small_data, spy_data

pytestmark = pytest.mark.solver


@pytest.fixture(scope="module")
def digits():
    return load_digits(flatten=True)


def test_each_epoch_visits_every_sample_once_and_keeps_the_last_partial_batch():
    """23 samples in batches of 5: 5 updates per epoch (the last of 3), covering all 23 once."""
    model = SpyModel(2)
    solver = Solver(model, spy_data(), batch_size=5, num_epochs=3, verbose=False, seed=0)
    solver.train()
    assert solver.iterations_per_epoch == 5 and solver.iteration == 15 and len(solver.loss_history) == 15
    for epoch in range(3):
        batches = model.batches[5 * epoch: 5 * epoch + 5]
        assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
        assert sorted(i for b in batches for i in b) == list(range(23))
    assert model.batches[:5] != model.batches[5:10], "every epoch must be shuffled afresh"


def test_fifty_samples_overfit_to_full_train_accuracy(digits):
    """A three-layer net reaches 100% train accuracy on 50 samples within 20 epochs."""
    small = {"X_train": digits["X_train"][:50], "y_train": digits["y_train"][:50],
             "X_val": digits["X_val"], "y_val": digits["y_val"]}
    model = FullyConnectedNet([100, 100], input_dim=64, num_classes=10, weight_scale="he", seed=0)
    solver = Solver(model, small, update_rule="sgd_momentum", optim_config={"learning_rate": 5e-2}, batch_size=25,
                    num_epochs=20, verbose=False, seed=0)
    solver.train()
    assert len(solver.train_acc_history) == 21
    assert solver.train_acc_history[-1] == 1.0


def test_training_learns_the_digits(digits):
    """Six epochs on 200 digits lift validation accuracy from chance to above 70%."""
    solver = make_solver(digits, num_epochs=6, optim_config={"learning_rate": 1e-2}).train()
    assert solver.val_acc_history[0] < 0.3
    assert solver.best_val_acc > 0.7
    assert solver.loss_history[-1] < solver.loss_history[0]


def test_same_seed_same_loss_history_bit_for_bit(digits):
    """Two runs with one seed give identical histories; another seed gives a different one."""
    a = make_solver(digits, seed=5).train()
    b = make_solver(digits, seed=5).train()
    c = make_solver(digits, seed=6).train()
    assert a.loss_history == b.loss_history and a.val_acc_history == b.val_acc_history
    assert a.loss_history != c.loss_history


def test_training_leaves_numpy_global_random_state_alone(digits):
    """The Solver draws only from its own generators."""
    state = np.random.get_state()
    make_solver(digits).train()
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


def test_best_params_start_as_a_copy_and_end_in_the_model(digits):
    """best_params begins as a copy of the initial weights; after training the model holds them."""
    solver = make_solver(digits)
    initial = {k: v.copy() for k, v in solver.model.params.items()}
    for k in initial:
        np.testing.assert_array_equal(solver.best_params[k], initial[k])
        assert solver.best_params[k] is not solver.model.params[k]
    solver.train()
    assert solver.best_val_acc == max(solver.val_acc_history)
    for k, v in solver.best_params.items():
        np.testing.assert_array_equal(solver.model.params[k], v)
        assert np.all(np.isfinite(v))


def test_non_finite_loss_stops_training_naming_the_iteration():
    """A NaN loss at the 4th update raises FloatingPointError naming iteration 4; params stay finite."""
    model = SpyModel(2, nan_at=4)
    solver = Solver(model, spy_data(), batch_size=5, num_epochs=3, verbose=False, seed=0)
    with pytest.raises(FloatingPointError, match=r"Solver: the loss became nan at iteration 4 \(epoch 1\)"):
        solver.train()
    assert all(np.all(np.isfinite(v)) for v in model.params.values())
    assert len(solver.loss_history) == 3


def test_non_finite_parameter_stops_training(digits):
    """An update rule that produces inf stops training at the first iteration, naming the parameter."""
    def explode(w, dw, config=None):
        return w + np.inf, config or {}

    solver = make_solver(digits, update_rule=explode, optim_config={})
    with pytest.raises(FloatingPointError, match=r"Solver: parameter 'W1' became non-finite at iteration 1"):
        solver.train()
    assert all(np.all(np.isfinite(v)) for v in solver.model.params.values())


def test_check_accuracy_runs_in_bounded_batches(digits):
    """check_accuracy never feeds more than batch_size samples at once and counts every sample."""
    model = SpyModel(2)
    data = spy_data(n_train=23, n_val=5)
    solver = Solver(model, data, verbose=False, seed=0)
    model.params["b"] = np.array([1.0, 0.0, 0.0])  # always predicts class 0
    acc = solver.check_accuracy(data["X_train"], data["y_train"], batch_size=4)
    assert model.eval_batches == [4, 4, 4, 4, 4, 3]
    assert acc == pytest.approx(np.mean(data["y_train"] == 0), abs=0)
    model.eval_batches.clear()
    solver.check_accuracy(data["X_train"], data["y_train"], num_samples=10, batch_size=4)
    assert model.eval_batches == [4, 4, 2]


def test_schedule_sets_the_learning_rate_of_every_step(digits):
    """With a cosine schedule the last update used base * factor(last step)."""
    solver = make_solver(digits, lr_schedule="cosine", optim_config={"learning_rate": 2e-3}).train()
    last = solver.iteration - 1
    expected = 2e-3 * CosineSchedule().factor(last, solver.iterations_per_epoch, solver.num_epochs)
    for config in solver.optim_configs.values():
        assert config["learning_rate"] == pytest.approx(expected, rel=1e-12)


def test_lr_decay_decays_once_per_epoch(digits):
    """lr_decay=0.5 over 3 epochs: the last epoch's updates use base * 0.25, as in the course."""
    solver = make_solver(digits, lr_decay=0.5, optim_config={"learning_rate": 1e-3}).train()
    assert all(c["learning_rate"] == pytest.approx(2.5e-4, rel=1e-12) for c in solver.optim_configs.values())


@pytest.mark.parametrize("options, error, message", [
    ({"learning_rate": 1e-3}, ValueError, r"Solver: unknown option\(s\) \['learning_rate'\]; valid options are \['batch_size'"),
    ({"batch_size": 0}, ValueError, r"Solver: batch_size must be an int >= 1, got 0"),
    ({"num_epochs": 2.5}, ValueError, r"Solver: num_epochs must be an int >= 1, got 2.5"),
    ({"update_rule": "adagrad"}, ValueError, r"update_rule must be one of"),
    ({"optim_config": {"learning_rate": -1.0}}, ValueError, r"adam: config\['learning_rate'\] must be"),
    ({"lr_decay": 0}, ValueError, r"Solver: lr_decay must be in \(0, 1\]"),
    ({"lr_decay": 0.9, "lr_schedule": "cosine"}, ValueError, r"Solver: give lr_decay or lr_schedule, not both"),
    ({"lr_schedule": "warm"}, ValueError, r"make_schedule: name must be one of"),
    ({"lr_schedule": 0.5}, TypeError, r"Solver: lr_schedule must be a Schedule"),
])
def test_bad_options_raise(digits, options, error, message):
    """Unknown options and invalid values are refused when the Solver is built."""
    with pytest.raises(error, match=message):
        make_solver(digits, **options)


def test_bad_data_raises(digits):
    """Missing keys, float labels and labels beyond the model's classes are refused."""
    model = TwoLayerNet(input_dim=64, hidden_dim=10, num_classes=10)
    data = small_data(digits)
    with pytest.raises(ValueError, match=r"Solver: data is missing \['y_val'\]"):
        Solver(model, {k: v for k, v in data.items() if k != "y_val"})
    with pytest.raises(TypeError, match=r"Solver \(data\['y_train'\]\): y must hold integer class labels"):
        Solver(model, {**data, "y_train": data["y_train"].astype(float)})
    with pytest.raises(ValueError, match=r"Solver \(data\['y_val'\]\): labels must lie in \[0, 10\)"):
        Solver(model, {**data, "y_val": data["y_val"] + 10})
    with pytest.raises(TypeError, match=r"Solver: model must have a params dict and a loss method"):
        Solver(object(), data)


def test_verbose_prints_the_course_log_lines(digits, capsys):
    """verbose prints '(Iteration i / n) loss: ...' every print_every and one line per epoch."""
    make_solver(digits, verbose=True, print_every=5, num_epochs=2).train()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("(Epoch 0 / 2) train acc: ")
    assert any(line.startswith("(Iteration 5 / 14) loss: ") for line in lines)
    assert lines[-1].startswith("(Epoch 2 / 2) train acc: ") and "val_acc: " in lines[-1]


def test_progress_bar_shows_on_a_terminal_only():
    """A terminal gets a redrawn bar with an ETA; a pipe gets none."""
    class FakeTTY(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = FakeTTY(), io.StringIO()
    for stream in (tty, pipe):
        p = Progress(10, stream=stream)
        for i in range(1, 11):
            p.update(i, 1, 1, 0.5)
        p.log("done")
        p.close()
    assert "\r" in tty.getvalue() and "ETA" in tty.getvalue() and "it 10/10" in tty.getvalue()
    assert pipe.getvalue() == "done\n"


def test_solver_shows_its_settings(digits):
    """repr lists the update rule, its config, the schedule and the progress."""
    text = repr(make_solver(digits, lr_schedule=CosineSchedule(warmup_epochs=1)))
    assert text.startswith("Solver(model=FullyConnectedNet, update_rule='adam', optim_config={'learning_rate': 0.001}")
    assert "lr_schedule=CosineSchedule(min_factor=0.0, warmup_epochs=1.0)" in text and "epoch=0" in text


def test_plot_history_writes_a_png(digits, tmp_path):
    """plot_history writes a PNG file headless, and refuses a Solver that has not trained."""
    solver = make_solver(digits, num_epochs=1)
    with pytest.raises(ValueError, match=r"plot_history: the solver has no loss history yet"):
        plot_history(solver, tmp_path / "h.png")
    solver.train()
    path = plot_history(solver, tmp_path / "h.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(tmp_path) == ["h.png"]


def test_batchnorm_makes_a_six_layer_net_train_faster(digits):
    """Six layers, weights of std 2e-2, 2 epochs of Adam: batchnorm ends at under half the loss."""
    losses = {}
    for norm in (None, "batchnorm"):
        model = FullyConnectedNet([100] * 5, input_dim=64, num_classes=10, weight_scale=2e-2, normalization=norm,
                                  seed=0)
        solver = Solver(model, digits, update_rule="adam", optim_config={"learning_rate": 1e-3}, batch_size=50,
                        num_epochs=2, verbose=False, seed=0).train()
        losses[norm] = float(np.mean(solver.loss_history[-10:]))
    assert losses["batchnorm"] < 0.5 * losses[None], losses


def test_model_ends_with_the_buffers_of_its_best_epoch(digits):
    """After training, the running averages are those saved with the best parameters."""
    model = FullyConnectedNet([32], input_dim=64, num_classes=10, normalization="batchnorm", seed=0)
    solver = Solver(model, small_data(digits), update_rule="adam", batch_size=32, num_epochs=3, verbose=False,
                    seed=0).train()
    assert solver.best_buffers and sorted(solver.best_buffers) == sorted(model.buffers())
    for k, v in solver.best_buffers.items():
        np.testing.assert_array_equal(model.buffers()[k], v)
    assert solver.check_accuracy(solver.X_val, solver.y_val) == solver.best_val_acc


def _record_masks(monkeypatch):
    """Record every train-mode dropout mask the nets draw (a spy around solver.nets.dropout_forward)."""
    import solver.nets

    masks, real = [], solver.nets.dropout_forward

    def spy(x, dropout_param):
        out, cache = real(x, dropout_param)
        if dropout_param["mode"] == "train":
            masks.append(cache[1].copy())
        return out, cache

    monkeypatch.setattr(solver.nets, "dropout_forward", spy)
    return masks


def test_seeded_dropout_training_changes_masks_every_step_and_repeats_bit_for_bit(digits, monkeypatch):
    """A seeded net's masks are fixed for gradient checks, yet under the Solver each step draws new ones, reproducibly."""
    masks = _record_masks(monkeypatch)
    a = dropout_solver(digits, seed=4).train()
    first_run = list(masks)
    masks.clear()
    b = dropout_solver(digits, seed=4).train()
    assert len(first_run) == a.iteration == 6
    assert all(not np.array_equal(m, n) for m, n in zip(first_run, first_run[1:])), "a step reused its mask"
    assert all(np.array_equal(m, n) for m, n in zip(first_run, masks))
    assert a.loss_history == b.loss_history
    masks.clear()
    c = dropout_solver(digits, seed=5).train()
    assert not np.array_equal(masks[0], first_run[0]) and c.loss_history != a.loss_history


def test_the_solver_lends_its_dropout_generator_only_while_training(digits):
    """model.dropout_rng is the Solver's during train() and the model's own again afterwards."""
    solver = dropout_solver(digits, seed=0)
    seen = []
    real_loss = solver.model.loss

    def loss(X, y=None):
        seen.append(solver.model.dropout_rng)
        return real_loss(X, y)

    solver.model.loss = loss
    solver.train()
    assert seen and all(rng is solver._dropout_rng for rng in seen)
    assert solver.model.dropout_rng is None


def test_unseeded_dropout_net_trains_without_touching_numpys_global_state(digits):
    """With seed=None only the constructor draws from the global generator; training draws masks from the Solver."""
    np.random.seed(231)
    solver = dropout_solver(digits, seed=0, model_seed=None)
    state = np.random.get_state()
    solver.train()
    after = np.random.get_state()
    assert np.array_equal(state[1], after[1]) and state[2:] == after[2:]
