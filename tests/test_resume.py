"""Tests for solver.resume: Solver.save_checkpoint and load_checkpoint, resuming exactly, and the
files and settings a resume refuses."""

import io
import os

import numpy as np
import pytest

from data import load_digits
from solver import FullyConnectedNet, Solver
from solver.solver import CheckpointMismatch
from solver_support import SpyModel, dropout_solver, make_solver, small_data, spy_data

pytestmark = pytest.mark.solver


@pytest.fixture(scope="module")
def digits():
    return load_digits(flatten=True)


@pytest.mark.parametrize("rule, schedule", [("sgd_momentum", None), ("adam", "cosine"), ("rmsprop", "step")])
def test_resume_from_checkpoint_equals_training_straight_through(digits, tmp_path, rule, schedule):
    """Stopping after epoch 2 and resuming from its checkpoint reproduces the straight run exactly."""
    options = dict(update_rule=rule, optim_config={"learning_rate": 1e-3}, lr_schedule=schedule, num_epochs=4)
    straight = make_solver(digits, seed=3, checkpoint_name=str(tmp_path / "run"), **options).train()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"run_epoch_{e}.npz" for e in (1, 2, 3, 4)]

    resumed = make_solver(digits, seed=99, model_seed=42, **options)  # other seeds: all state comes from the file
    resumed.load_checkpoint(tmp_path / "run_epoch_2.npz")
    assert resumed.epoch == 2 and len(resumed.loss_history) == 2 * resumed.iterations_per_epoch
    resumed.train()
    assert resumed.loss_history == straight.loss_history
    assert resumed.val_acc_history == straight.val_acc_history
    for k, v in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[k], v)


def test_checkpoint_is_plain_npz_without_pickle(digits, tmp_path):
    """np.load(path, allow_pickle=False) reads every entry; no temporary files are left behind."""
    solver = make_solver(digits, update_rule="adam").train()
    path = solver.save_checkpoint(tmp_path / "ck.npz")
    with np.load(path, allow_pickle=False) as f:
        names = set(f.files)
        for key in f.files:
            f[key]
    assert {"params/W1", "best_params/W1", "optim/W1/m", "optim/W1/v", "loss_history", "meta"} <= names
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_load_checkpoint_refuses_files_that_are_not_checkpoints(digits, tmp_path):
    """Text, a lone .npy, an unrelated .npz and a missing file are refused with the path named."""
    solver = make_solver(digits)
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
    path = make_solver(digits, num_epochs=1).train().save_checkpoint(tmp_path / "ck.npz")
    other_model = Solver(FullyConnectedNet([16], input_dim=64, num_classes=10, weight_scale="he", seed=0),
                         small_data(digits), update_rule="adam", optim_config={"learning_rate": 1e-3},
                         batch_size=32, verbose=False)
    with pytest.raises(CheckpointMismatch, match=r"ck.npz was written by a run with other settings, so resuming would "
                                                 r"not continue it: model.hidden_dims: \[32\] in the file, \[16\] here\.$"):
        other_model.load_checkpoint(path)
    with pytest.raises(CheckpointMismatch, match=r"update_rule: 'adam' in the file, 'sgd' here"):
        make_solver(digits, update_rule="sgd").load_checkpoint(path)
    with pytest.raises(CheckpointMismatch, match=r"batch_size: 32 in the file, 16 here"):
        make_solver(digits, batch_size=16).load_checkpoint(path)
    spy = SpyModel(2)
    Solver(spy, spy_data(), batch_size=5, num_epochs=1, verbose=False).train().save_checkpoint(tmp_path / "spy.npz")
    spy.params["W"] = np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"spy.npz has params/W of shape \(2, 3\) and dtype float64, but the model's "
                                         r"is \(2, 4\) float64; it cannot be resumed"):
        Solver(spy, spy_data(), batch_size=5, num_epochs=1, verbose=False).load_checkpoint(tmp_path / "spy.npz")


def test_resuming_with_other_hyperparameters_lists_every_difference_and_loads_nothing(digits, tmp_path):
    """A new learning rate, schedule or accuracy subsample is refused (not silently replaced by the file's), all named at once."""
    path = make_solver(digits, num_epochs=2).train().save_checkpoint(tmp_path / "ck.npz")
    other = make_solver(digits, num_epochs=2, optim_config={"learning_rate": 0.1}, lr_schedule="cosine",
                    num_train_samples=50)
    with pytest.raises(CheckpointMismatch) as info:
        other.load_checkpoint(path)
    assert [name for name, _, _ in info.value.differences] == ["lr_schedule", "num_train_samples",
                                                                "optim_config.learning_rate"]
    assert "optim_config.learning_rate: 0.001 in the file, 0.1 here" in str(info.value)
    assert "lr_schedule: None in the file, 'CosineSchedule(min_factor=0.0, warmup_epochs=0.0)' here" in str(info.value)
    assert other.epoch == 0 and other.loss_history == [] and other.optim_configs["W1"]["learning_rate"] == 0.1
    with pytest.raises(CheckpointMismatch, match=r"lr_schedule: None in the file, 'ConstantSchedule\(decay=0.5"):
        make_solver(digits, num_epochs=2, lr_decay=0.5).load_checkpoint(path)


def test_resuming_may_train_longer_but_not_shorter(digits, tmp_path):
    """num_epochs may grow on resume (the run continues to the new length); below the epochs done it is refused."""
    straight = make_solver(digits, num_epochs=2, checkpoint_name=str(tmp_path / "run")).train()
    longer = make_solver(digits, num_epochs=4).load_checkpoint(tmp_path / "run_epoch_2.npz").train()
    assert longer.epoch == 4 and len(longer.val_acc_history) == 5
    assert longer.loss_history[:len(straight.loss_history)] == straight.loss_history
    with pytest.raises(CheckpointMismatch, match=r"num_epochs: at least 2 \(the epochs it has done\) in the file, 1 here"):
        make_solver(digits, num_epochs=1).load_checkpoint(tmp_path / "run_epoch_2.npz")


def _tampered(tmp_path, change):
    """A copy of a 2-epoch checkpoint (of make_solver's run) with change(arrays, meta) applied."""
    from solver.checkpoint import read_npz, write_npz

    source = tmp_path / "good.npz"
    if not source.exists():
        make_solver(load_digits(flatten=True), num_epochs=2, checkpoint_name=str(tmp_path / "run")).train()
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
    solver = make_solver(load_digits(flatten=True), num_epochs=2)
    before = {k: v.copy() for k, v in solver.model.params.items()}
    with pytest.raises(ValueError, match=rf"Solver.load_checkpoint: .*bad.npz {message}") as info:
        solver.load_checkpoint(path)
    assert not isinstance(info.value, CheckpointMismatch)
    assert solver.epoch == 0 and all(np.array_equal(before[k], v) for k, v in solver.model.params.items())


def test_flipped_byte_and_huge_member_header_are_value_errors_naming_the_file(digits, tmp_path):
    """A bad CRC and a member declaring a (1e6, 1e6) array are refused without allocating, naming the member."""
    import zipfile

    solver = make_solver(digits, num_epochs=1).train()
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
    solver = make_solver(digits, num_epochs=1, checkpoint_name="runs/x")
    assert not (tmp_path / "runs").exists()
    solver.train()
    assert os.listdir(tmp_path / "runs") == ["x_epoch_1.npz"]
    (tmp_path / "afile").write_text("")
    with pytest.raises(ValueError, match=r"Solver: checkpoint_name 'afile/x' cannot be written: afile is a file, "
                                         r"not a folder"):
        make_solver(digits, checkpoint_name="afile/x")


def test_best_epoch_names_the_epoch_of_the_kept_parameters(digits, tmp_path):
    """best_epoch is the first epoch reaching best_val_acc, in training and after resuming."""
    solver = make_solver(digits, num_epochs=4, checkpoint_name=str(tmp_path / "run")).train()
    assert solver.val_acc_history[solver.best_epoch] == solver.best_val_acc
    assert solver.best_epoch == solver.val_acc_history.index(max(solver.val_acc_history))
    resumed = make_solver(digits, num_epochs=4).load_checkpoint(tmp_path / "run_epoch_4.npz")
    assert resumed.best_epoch == solver.best_epoch


def test_resume_with_batchnorm_and_dropout_equals_straight_through(digits, tmp_path):
    """Running averages and the dropout generator travel in the checkpoint, so resuming is exact."""
    def make(seed):
        model = FullyConnectedNet([32, 16], input_dim=64, num_classes=10, normalization="batchnorm",
                                  dropout_keep_ratio=0.8, weight_scale="he", seed=seed)
        return Solver(model, small_data(digits), update_rule="adam", batch_size=32, num_epochs=4, verbose=False,
                      seed=3, checkpoint_name=str(tmp_path / "bn"))

    straight = make(0).train()
    resumed = make(7)
    resumed.load_checkpoint(tmp_path / "bn_epoch_2.npz")
    resumed.train()
    assert resumed.loss_history == straight.loss_history
    for k, v in straight.model.buffers().items():
        np.testing.assert_array_equal(resumed.model.buffers()[k], v)


def test_checkpoints_from_before_the_solver_owned_the_masks_still_resume_exactly(digits, tmp_path):
    """A checkpoint whose mask generator is stored as model_rng (the older key) resumes like the new key."""
    from solver.checkpoint import read_npz, write_npz

    straight = dropout_solver(digits, seed=2, checkpoint_name=str(tmp_path / "run")).train()
    arrays, meta = read_npz(tmp_path / "run_epoch_1.npz", "test", "chainrule-checkpoint")
    meta["model_rng"] = meta.pop("dropout_rng")
    write_npz(tmp_path / "old.npz", arrays, meta)
    resumed = dropout_solver(digits, seed=9, model_seed=3).load_checkpoint(tmp_path / "old.npz").train()
    assert resumed.loss_history == straight.loss_history
