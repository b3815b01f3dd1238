"""Tests for solver.solver: training, determinism, checkpoints and errors."""

import io
import os

import numpy as np
import pytest

from data import load_digits
from solver import CosineSchedule, FullyConnectedNet, Solver, TwoLayerNet, plot_history
from solver.solver import CheckpointMismatch
from solver.progress import Progress

pytestmark = pytest.mark.solver


@pytest.fixture(scope="module")
def digits():
    return load_digits(flatten=True)


def _small_data(digits, n_train=200, n_val=60):
    return {"X_train": digits["X_train"][:n_train], "y_train": digits["y_train"][:n_train],
            "X_val": digits["X_val"][:n_val], "y_val": digits["y_val"][:n_val]}


def _solver(digits, seed=0, model_seed=0, **options):
    model = FullyConnectedNet([32], input_dim=64, num_classes=10, weight_scale="he", seed=model_seed)
    settings = dict(update_rule="adam", optim_config={"learning_rate": 1e-3}, batch_size=32, num_epochs=3,
                    verbose=False, seed=seed)
    settings.update(options)
    return Solver(model, _small_data(digits), **settings)


class SpyModel:
    """A linear softmax model that records the first feature (the sample id) of every batch."""

    def __init__(self, num_features, num_classes=3, nan_at=None):
        self.params = {"W": np.zeros((num_features, num_classes)), "b": np.zeros(num_classes)}
        self.num_classes = num_classes
        self.batches, self.eval_batches = [], []
        self.calls, self.nan_at = 0, nan_at

    def loss(self, X, y=None):
        scores = X @ self.params["W"] + self.params["b"]
        if y is None:
            self.eval_batches.append(len(X))
            return scores
        self.calls += 1
        self.batches.append(X[:, 0].astype(int).tolist())
        if self.nan_at is not None and self.calls >= self.nan_at:
            return float("nan"), {k: np.zeros_like(v) for k, v in self.params.items()}
        return 0.0, {"W": np.full_like(self.params["W"], 0.01), "b": np.full_like(self.params["b"], 0.01)}


def _spy_data(n_train=23, n_val=5):
    X = np.arange(n_train, dtype=np.float64)[:, None] * np.ones((1, 2))
    return {"X_train": X, "y_train": np.arange(n_train) % 3,
            "X_val": np.ones((n_val, 2)), "y_val": np.zeros(n_val, dtype=np.int64)}


def test_each_epoch_visits_every_sample_once_and_keeps_the_last_partial_batch():
    """23 samples in batches of 5: 5 updates per epoch (the last of 3), covering all 23 once."""
    model = SpyModel(2)
    solver = Solver(model, _spy_data(), batch_size=5, num_epochs=3, verbose=False, seed=0)
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
    solver = _solver(digits, num_epochs=6, optim_config={"learning_rate": 1e-2}).train()
    assert solver.val_acc_history[0] < 0.3
    assert solver.best_val_acc > 0.7
    assert solver.loss_history[-1] < solver.loss_history[0]


def test_same_seed_same_loss_history_bit_for_bit(digits):
    """Two runs with one seed give identical histories; another seed gives a different one."""
    a = _solver(digits, seed=5).train()
    b = _solver(digits, seed=5).train()
    c = _solver(digits, seed=6).train()
    assert a.loss_history == b.loss_history and a.val_acc_history == b.val_acc_history
    assert a.loss_history != c.loss_history


def test_training_leaves_numpy_global_random_state_alone(digits):
    """The Solver draws only from its own generators."""
    state = np.random.get_state()
    _solver(digits).train()
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


def test_best_params_start_as_a_copy_and_end_in_the_model(digits):
    """best_params begins as a copy of the initial weights; after training the model holds them."""
    solver = _solver(digits)
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
    solver = Solver(model, _spy_data(), batch_size=5, num_epochs=3, verbose=False, seed=0)
    with pytest.raises(FloatingPointError, match=r"Solver: the loss became nan at iteration 4 \(epoch 1\)"):
        solver.train()
    assert all(np.all(np.isfinite(v)) for v in model.params.values())
    assert len(solver.loss_history) == 3


def test_non_finite_parameter_stops_training(digits):
    """An update rule that produces inf stops training at the first iteration, naming the parameter."""
    def explode(w, dw, config=None):
        return w + np.inf, config or {}

    solver = _solver(digits, update_rule=explode, optim_config={})
    with pytest.raises(FloatingPointError, match=r"Solver: parameter 'W1' became non-finite at iteration 1"):
        solver.train()
    assert all(np.all(np.isfinite(v)) for v in solver.model.params.values())


def test_check_accuracy_runs_in_bounded_batches(digits):
    """check_accuracy never feeds more than batch_size samples at once and counts every sample."""
    model = SpyModel(2)
    data = _spy_data(n_train=23, n_val=5)
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
    solver = _solver(digits, lr_schedule="cosine", optim_config={"learning_rate": 2e-3}).train()
    last = solver.iteration - 1
    expected = 2e-3 * CosineSchedule().factor(last, solver.iterations_per_epoch, solver.num_epochs)
    for config in solver.optim_configs.values():
        assert config["learning_rate"] == pytest.approx(expected, rel=1e-12)


def test_lr_decay_decays_once_per_epoch(digits):
    """lr_decay=0.5 over 3 epochs: the last epoch's updates use base * 0.25, as in the course."""
    solver = _solver(digits, lr_decay=0.5, optim_config={"learning_rate": 1e-3}).train()
    assert all(c["learning_rate"] == pytest.approx(2.5e-4, rel=1e-12) for c in solver.optim_configs.values())


@pytest.mark.parametrize("rule, schedule", [("sgd_momentum", None), ("adam", "cosine"), ("rmsprop", "step")])
def test_resume_from_checkpoint_equals_training_straight_through(digits, tmp_path, rule, schedule):
    """Stopping after epoch 2 and resuming from its checkpoint reproduces the straight run exactly."""
    options = dict(update_rule=rule, optim_config={"learning_rate": 1e-3}, lr_schedule=schedule, num_epochs=4)
    straight = _solver(digits, seed=3, checkpoint_name=str(tmp_path / "run"), **options).train()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"run_epoch_{e}.npz" for e in (1, 2, 3, 4)]

    resumed = _solver(digits, seed=99, model_seed=42, **options)  # other seeds: all state comes from the file
    resumed.load_checkpoint(tmp_path / "run_epoch_2.npz")
    assert resumed.epoch == 2 and len(resumed.loss_history) == 2 * resumed.iterations_per_epoch
    resumed.train()
    assert resumed.loss_history == straight.loss_history
    assert resumed.val_acc_history == straight.val_acc_history
    for k, v in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[k], v)


def test_checkpoint_is_plain_npz_without_pickle(digits, tmp_path):
    """np.load(path, allow_pickle=False) reads every entry; no temporary files are left behind."""
    solver = _solver(digits, update_rule="adam").train()
    path = solver.save_checkpoint(tmp_path / "ck.npz")
    with np.load(path, allow_pickle=False) as f:
        names = set(f.files)
        for key in f.files:
            f[key]
    assert {"params/W1", "best_params/W1", "optim/W1/m", "optim/W1/v", "loss_history", "meta"} <= names
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_load_checkpoint_refuses_files_that_are_not_checkpoints(digits, tmp_path):
    """Text, a lone .npy, an unrelated .npz and a missing file are refused with the path named."""
    solver = _solver(digits)
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    np.save(tmp_path / "one.npy", np.ones(3))
    np.savez(tmp_path / "other.npz", a=np.ones(2))
    for name, message in [("notes.txt", "is not a chainrule-checkpoint file"), ("one.npy", "it holds a single array"),
                          ("other.npz", "its metadata does not say format='chainrule-checkpoint'")]:
        with pytest.raises(ValueError, match=rf"Solver.load_checkpoint: .*{name} .*{message}"):
            solver.load_checkpoint(tmp_path / name)
    with pytest.raises(FileNotFoundError, match=r"Solver.load_checkpoint: no such file"):
        solver.load_checkpoint(tmp_path / "missing.npz")


def test_load_checkpoint_refuses_a_different_model_or_run(digits, tmp_path):
    """Other hidden sizes, update rule or batch size are named; a model without get_config is checked by shapes."""
    path = _solver(digits, num_epochs=1).train().save_checkpoint(tmp_path / "ck.npz")
    other_model = Solver(FullyConnectedNet([16], input_dim=64, num_classes=10, weight_scale="he", seed=0),
                         _small_data(digits), update_rule="adam", optim_config={"learning_rate": 1e-3},
                         batch_size=32, verbose=False)
    with pytest.raises(CheckpointMismatch, match=r"ck.npz was written by a run with other settings, so resuming would "
                                                 r"not continue it: model.hidden_dims: \[32\] in the file, \[16\] here\.$"):
        other_model.load_checkpoint(path)
    with pytest.raises(CheckpointMismatch, match=r"update_rule: 'adam' in the file, 'sgd' here"):
        _solver(digits, update_rule="sgd").load_checkpoint(path)
    with pytest.raises(CheckpointMismatch, match=r"batch_size: 32 in the file, 16 here"):
        _solver(digits, batch_size=16).load_checkpoint(path)
    spy = SpyModel(2)
    Solver(spy, _spy_data(), batch_size=5, num_epochs=1, verbose=False).train().save_checkpoint(tmp_path / "spy.npz")
    spy.params["W"] = np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"spy.npz has params/W of shape \(2, 3\) and dtype float64, but the model's "
                                         r"is \(2, 4\) float64; it cannot be resumed"):
        Solver(spy, _spy_data(), batch_size=5, num_epochs=1, verbose=False).load_checkpoint(tmp_path / "spy.npz")


def test_resuming_with_other_hyperparameters_lists_every_difference_and_loads_nothing(digits, tmp_path):
    """A new learning rate, schedule or accuracy subsample is refused (not silently replaced by the file's), all named at once."""
    path = _solver(digits, num_epochs=2).train().save_checkpoint(tmp_path / "ck.npz")
    other = _solver(digits, num_epochs=2, optim_config={"learning_rate": 0.1}, lr_schedule="cosine",
                    num_train_samples=50)
    with pytest.raises(CheckpointMismatch) as info:
        other.load_checkpoint(path)
    assert [name for name, _, _ in info.value.differences] == ["lr_schedule", "num_train_samples",
                                                                "optim_config.learning_rate"]
    assert "optim_config.learning_rate: 0.001 in the file, 0.1 here" in str(info.value)
    assert "lr_schedule: None in the file, 'CosineSchedule(min_factor=0.0, warmup_epochs=0.0)' here" in str(info.value)
    assert other.epoch == 0 and other.loss_history == [] and other.optim_configs["W1"]["learning_rate"] == 0.1
    with pytest.raises(CheckpointMismatch, match=r"lr_schedule: None in the file, 'ConstantSchedule\(decay=0.5"):
        _solver(digits, num_epochs=2, lr_decay=0.5).load_checkpoint(path)


def test_resuming_may_train_longer_but_not_shorter(digits, tmp_path):
    """num_epochs may grow on resume (the run continues to the new length); below the epochs done it is refused."""
    straight = _solver(digits, num_epochs=2, checkpoint_name=str(tmp_path / "run")).train()
    longer = _solver(digits, num_epochs=4).load_checkpoint(tmp_path / "run_epoch_2.npz").train()
    assert longer.epoch == 4 and len(longer.val_acc_history) == 5
    assert longer.loss_history[:len(straight.loss_history)] == straight.loss_history
    with pytest.raises(CheckpointMismatch, match=r"num_epochs: at least 2 \(the epochs it has done\) in the file, 1 here"):
        _solver(digits, num_epochs=1).load_checkpoint(tmp_path / "run_epoch_2.npz")


def _tampered(tmp_path, change):
    """A copy of a 2-epoch checkpoint (of _solver's run) with change(arrays, meta) applied."""
    from solver.checkpoint import read_npz, write_npz

    source = tmp_path / "good.npz"
    if not source.exists():
        _solver(load_digits(flatten=True), num_epochs=2, checkpoint_name=str(tmp_path / "run")).train()
        (tmp_path / "run_epoch_2.npz").rename(source)
    arrays, meta = read_npz(source, "test", "chainrule-checkpoint")
    change(arrays, meta)
    write_npz(tmp_path / "bad.npz", arrays, meta)
    return tmp_path / "bad.npz"


def _set(mapping, key, value):
    mapping[key] = value


@pytest.mark.parametrize("change, message", [
    (lambda a, m: a["best_params/W2"].__setitem__((0, 0), np.nan), r"has non-finite values in best_params/W2"),
    (lambda a, m: _set(a, "best_params/W1", a["best_params/W1"][:10]),
     r"has best_params/W1 of shape \(10, 32\) and dtype float32, but the model's is \(64, 32\) float32"),
    (lambda a, m: _set(a, "best_params/W1", a["best_params/W1"].astype(np.int64)),
     r"has best_params/W1 of shape \(64, 32\) and dtype int64"),
    (lambda a, m: _set(m, "epoch", 99), r"is at epoch 99, outside 0..2 \(its num_epochs\)"),
    (lambda a, m: _set(m, "epoch", -3), r"is at epoch -3, outside 0..2"),
    (lambda a, m: m.pop("rng"), r"lacks the setting 'rng'"),
    (lambda a, m: m.pop("optim_settings"), r"lacks the setting 'optim_settings'"),
    (lambda a, m: a.pop("best_params/b1"), r"lacks best_params/b1"),
    (lambda a, m: a.pop("loss_history"), r"lacks a finite 1-D float array loss_history"),
    (lambda a, m: _set(m, "iteration", 3), r"has iteration=3 after 2 epochs; at 7 updates per epoch that must be 14"),
    (lambda a, m: _set(m, "best_val_acc", 1.5), r"has best_val_acc=1.5, but the best of its val_acc_history is"),
    (lambda a, m: _set(a, "optim/W1/m", a["optim/W1/m"][:3]), r"has optimizer state for 'W1' that the update rule refuses: adam: config\['m'\] must be an array of w's shape"),
    (lambda a, m: m["optim_settings"].__setitem__("W1", None), r"lacks a valid optimizer setting or base learning rate for 'W1'"),
    (lambda a, m: _set(m, "eval_rng", {"bit_generator": "PCG64", "state": "x"}), r"has an invalid generator state 'eval_rng'"),
])
def test_damaged_or_inconsistent_checkpoints_are_refused_naming_file_and_entry(tmp_path, change, message):
    """Each corruption is a ValueError naming the file and the entry, and leaves the Solver untouched."""
    path = _tampered(tmp_path, change)
    solver = _solver(load_digits(flatten=True), num_epochs=2)
    before = {k: v.copy() for k, v in solver.model.params.items()}
    with pytest.raises(ValueError, match=rf"Solver.load_checkpoint: .*bad.npz {message}") as info:
        solver.load_checkpoint(path)
    assert not isinstance(info.value, CheckpointMismatch)
    assert solver.epoch == 0 and all(np.array_equal(before[k], v) for k, v in solver.model.params.items())


def test_flipped_byte_and_huge_member_header_are_value_errors_naming_the_file(digits, tmp_path):
    """A bad CRC and a member declaring a (1e6, 1e6) array are refused without allocating, naming the member."""
    import zipfile

    solver = _solver(digits, num_epochs=1).train()
    path = solver.save_checkpoint(tmp_path / "ck.npz")
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("optim/W2/m.npy")
    raw[info.header_offset + 30 + len(info.filename) + 200] ^= 0xFF  # a byte of the array data
    (tmp_path / "flipped.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"Solver.load_checkpoint: .*flipped.npz is damaged or not a "
                                         r"chainrule-checkpoint file .*Bad CRC-32 for file 'optim/W2/m.npy'"):
        solver.load_checkpoint(tmp_path / "flipped.npz")
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                      "shape": (1000000, 1000000)})
        archive.writestr("params/W1.npy", header.getvalue() + b"\0" * 64)  # the header starts with the magic
    with pytest.raises(ValueError, match=r"huge.npz is damaged: member 'params/W1.npy' declares shape "
                                         r"\(1000000, 1000000\) float64 \(8000000000000 bytes\) but holds 64 bytes"):
        solver.load_checkpoint(tmp_path / "huge.npz")


def test_checkpoint_folder_is_checked_when_built_and_created_when_training(digits, tmp_path, monkeypatch):
    """checkpoint_name under a missing folder works (train() makes it); under a file it is refused at once."""
    monkeypatch.chdir(tmp_path)
    solver = _solver(digits, num_epochs=1, checkpoint_name="runs/x")
    assert not (tmp_path / "runs").exists()
    solver.train()
    assert os.listdir(tmp_path / "runs") == ["x_epoch_1.npz"]
    (tmp_path / "afile").write_text("")
    with pytest.raises(ValueError, match=r"Solver: checkpoint_name 'afile/x' cannot be written: afile is a file, "
                                         r"not a folder"):
        _solver(digits, checkpoint_name="afile/x")


def test_best_epoch_names_the_epoch_of_the_kept_parameters(digits, tmp_path):
    """best_epoch is the first epoch reaching best_val_acc, in training and after resuming."""
    solver = _solver(digits, num_epochs=4, checkpoint_name=str(tmp_path / "run")).train()
    assert solver.val_acc_history[solver.best_epoch] == solver.best_val_acc
    assert solver.best_epoch == solver.val_acc_history.index(max(solver.val_acc_history))
    resumed = _solver(digits, num_epochs=4).load_checkpoint(tmp_path / "run_epoch_4.npz")
    assert resumed.best_epoch == solver.best_epoch


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
        _solver(digits, **options)


def test_bad_data_raises(digits):
    """Missing keys, float labels and labels beyond the model's classes are refused."""
    model = TwoLayerNet(input_dim=64, hidden_dim=10, num_classes=10)
    data = _small_data(digits)
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
    _solver(digits, verbose=True, print_every=5, num_epochs=2).train()
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
    text = repr(_solver(digits, lr_schedule=CosineSchedule(warmup_epochs=1)))
    assert text.startswith("Solver(model=FullyConnectedNet, update_rule='adam', optim_config={'learning_rate': 0.001}")
    assert "lr_schedule=CosineSchedule(min_factor=0.0, warmup_epochs=1.0)" in text and "epoch=0" in text


def test_plot_history_writes_a_png(digits, tmp_path):
    """plot_history writes a PNG file headless, and refuses a Solver that has not trained."""
    solver = _solver(digits, num_epochs=1)
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


def test_resume_with_batchnorm_and_dropout_equals_straight_through(digits, tmp_path):
    """Running averages and the dropout generator travel in the checkpoint, so resuming is exact."""
    def make(seed):
        model = FullyConnectedNet([32, 16], input_dim=64, num_classes=10, normalization="batchnorm",
                                  dropout_keep_ratio=0.8, weight_scale="he", seed=seed)
        return Solver(model, _small_data(digits), update_rule="adam", batch_size=32, num_epochs=4, verbose=False,
                      seed=3, checkpoint_name=str(tmp_path / "bn"))

    straight = make(0).train()
    resumed = make(7)
    resumed.load_checkpoint(tmp_path / "bn_epoch_2.npz")
    resumed.train()
    assert resumed.loss_history == straight.loss_history
    for k, v in straight.model.buffers().items():
        np.testing.assert_array_equal(resumed.model.buffers()[k], v)


def test_model_ends_with_the_buffers_of_its_best_epoch(digits):
    """After training, the running averages are those saved with the best parameters."""
    model = FullyConnectedNet([32], input_dim=64, num_classes=10, normalization="batchnorm", seed=0)
    solver = Solver(model, _small_data(digits), update_rule="adam", batch_size=32, num_epochs=3, verbose=False,
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


def _dropout_solver(digits, seed, model_seed=0, **options):
    model = FullyConnectedNet([32], input_dim=64, num_classes=10, dropout_keep_ratio=0.5, weight_scale="he",
                              seed=model_seed)
    return Solver(model, _small_data(digits, n_train=96), update_rule="adam", batch_size=32, num_epochs=2,
                  verbose=False, seed=seed, **options)


def test_seeded_dropout_training_changes_masks_every_step_and_repeats_bit_for_bit(digits, monkeypatch):
    """A seeded net's masks are fixed for gradient checks, yet under the Solver each step draws new ones, reproducibly."""
    masks = _record_masks(monkeypatch)
    a = _dropout_solver(digits, seed=4).train()
    first_run = list(masks)
    masks.clear()
    b = _dropout_solver(digits, seed=4).train()
    assert len(first_run) == a.iteration == 6
    assert all(not np.array_equal(m, n) for m, n in zip(first_run, first_run[1:])), "a step reused its mask"
    assert all(np.array_equal(m, n) for m, n in zip(first_run, masks))
    assert a.loss_history == b.loss_history
    masks.clear()
    c = _dropout_solver(digits, seed=5).train()
    assert not np.array_equal(masks[0], first_run[0]) and c.loss_history != a.loss_history


def test_the_solver_lends_its_dropout_generator_only_while_training(digits):
    """model.dropout_rng is the Solver's during train() and the model's own again afterwards."""
    solver = _dropout_solver(digits, seed=0)
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
    solver = _dropout_solver(digits, seed=0, model_seed=None)
    state = np.random.get_state()
    solver.train()
    after = np.random.get_state()
    assert np.array_equal(state[1], after[1]) and state[2:] == after[2:]


def test_checkpoints_from_before_the_solver_owned_the_masks_still_resume_exactly(digits, tmp_path):
    """A checkpoint whose mask generator is stored as model_rng (the older key) resumes like the new key."""
    from solver.checkpoint import read_npz, write_npz

    straight = _dropout_solver(digits, seed=2, checkpoint_name=str(tmp_path / "run")).train()
    arrays, meta = read_npz(tmp_path / "run_epoch_1.npz", "test", "chainrule-checkpoint")
    meta["model_rng"] = meta.pop("dropout_rng")
    write_npz(tmp_path / "old.npz", arrays, meta)
    resumed = _dropout_solver(digits, seed=9, model_seed=3).load_checkpoint(tmp_path / "old.npz").train()
    assert resumed.loss_history == straight.loss_history
