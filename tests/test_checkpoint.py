"""Tests for solver.checkpoint: pickle-free .npz writes and reads, saving and loading models.

The atomic writes underneath are tested in test_files.py."""

import numpy as np
import pytest

from solver import FullyConnectedNet, TwoLayerNet, load_model, save_model
from solver.checkpoint import read_npz, write_npz

pytestmark = pytest.mark.solver


def test_read_npz_round_trips_and_checks_the_format(tmp_path):
    """write_npz then read_npz gives the arrays and meta back; a wrong format is refused."""
    path = tmp_path / "a.npz"
    write_npz(path, {"x/y": np.arange(3.0)}, {"format": "thing", "n": 3})
    arrays, meta = read_npz(path, "test", "thing")
    np.testing.assert_array_equal(arrays["x/y"], [0.0, 1.0, 2.0])
    assert meta == {"format": "thing", "n": 3}
    with pytest.raises(ValueError, match=r"test: .*a.npz is not a other file"):
        read_npz(path, "test", "other")


@pytest.mark.parametrize("model", [
    FullyConnectedNet([7, 5], input_dim=6, num_classes=3, reg=0.1, seed=0),
    TwoLayerNet(input_dim=6, hidden_dim=4, num_classes=3, seed=0),
], ids=["fc", "two_layer"])
def test_save_and_load_model_round_trip(tmp_path, model):
    """A saved net loads as the same class with identical parameters and identical scores."""
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert type(loaded) is type(model) and repr(loaded).split("seed")[0] == repr(model).split("seed")[0]
    X = np.random.default_rng(0).standard_normal((4, 6)).astype(model.dtype)
    np.testing.assert_array_equal(loaded.loss(X), model.loss(X))


def test_load_model_refuses_other_files(tmp_path):
    """A checkpoint-less npz or a model file with wrong shapes is refused by name."""
    np.savez(tmp_path / "x.npz", a=np.ones(1))
    with pytest.raises(ValueError, match=r"load_model: .*x.npz is not a chainrule-model file"):
        load_model(tmp_path / "x.npz")
    model = FullyConnectedNet([4], input_dim=3, num_classes=2)
    save_model(model, tmp_path / "m.npz")
    arrays, meta = read_npz(tmp_path / "m.npz", "t", "chainrule-model")
    arrays["params/W1"] = np.ones((2, 2), np.float32)
    write_npz(tmp_path / "bad.npz", arrays, meta)
    with pytest.raises(ValueError, match=r"load_model: .*bad.npz has no parameter W1 of shape \(3, 4\)"):
        load_model(tmp_path / "bad.npz")
    with pytest.raises(TypeError, match=r"save_model: model must be one of \['CaptioningRNN', 'CharLM', 'FullyConnectedNet', 'ThreeLayerConvNet', 'TwoLayerNet'\], got object"):
        save_model(object(), tmp_path / "o.npz")


def test_saved_batchnorm_model_keeps_its_running_averages(tmp_path):
    """A loaded batchnorm net gives the same test-mode scores: its running averages were saved."""
    model = FullyConnectedNet([6], input_dim=4, num_classes=3, normalization="batchnorm", dropout_keep_ratio=0.9,
                              dtype=np.float64, seed=0)
    X = np.random.default_rng(1).standard_normal((8, 4))
    model.loss(X, np.arange(8) % 3)
    save_model(model, tmp_path / "bn.npz")
    loaded = load_model(tmp_path / "bn.npz")
    assert loaded.normalization == "batchnorm" and loaded.dropout_keep_ratio == 0.9
    np.testing.assert_array_equal(loaded.loss(X), model.loss(X))


@pytest.mark.parametrize("seed", [None, 5])
def test_config_round_trips_the_seed_and_loading_leaves_numpys_global_state_alone(tmp_path, seed):
    """save_model/load_model keep seed (None or an int) and its dropout meaning, and never move the global state."""
    X, y = np.random.default_rng(2).standard_normal((6, 4)), np.arange(6) % 3
    np.random.seed(0)
    model = FullyConnectedNet([5], input_dim=4, num_classes=3, dropout_keep_ratio=0.5, dtype=np.float64, seed=seed)
    save_model(model, tmp_path / "m.npz")
    state = np.random.get_state()
    loaded = load_model(tmp_path / "m.npz")
    after = np.random.get_state()
    assert np.array_equal(state[1], after[1]) and state[2:] == after[2:]
    assert loaded.get_config() == model.get_config() and loaded.seed == seed
    if seed is not None:  # the same fixed masks, so the same training loss
        assert loaded.loss(X, y)[0] == model.loss(X, y)[0]


def test_model_files_with_the_retired_dropout_seed_still_load(tmp_path):
    """A file saved with dropout_seed in its config loads: the key only chose masks, never parameters."""
    model = FullyConnectedNet([5], input_dim=4, num_classes=3, dropout_keep_ratio=0.5, seed=1)
    save_model(model, tmp_path / "m.npz")
    arrays, meta = read_npz(tmp_path / "m.npz", "t", "chainrule-model")
    meta["config"]["dropout_seed"] = 11
    write_npz(tmp_path / "old.npz", arrays, meta)
    loaded = load_model(tmp_path / "old.npz")
    assert "dropout_seed" not in loaded.get_config()
    for name, value in model.params.items():
        np.testing.assert_array_equal(loaded.params[name], value)


def test_read_npz_refuses_pickled_and_misdeclared_members_by_name(tmp_path):
    """A member holding objects, and a stored member whose sizes disagree, are ValueErrors naming file and member."""
    np.savez(tmp_path / "objects.npz", meta=np.array('{"format": "thing"}'), x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"t: .*objects.npz is damaged: member 'x.npy' holds Python objects"):
        read_npz(tmp_path / "objects.npz", "t", "thing")
    write_npz(tmp_path / "a.npz", {"x": np.arange(4.0)}, {"format": "thing"})
    (tmp_path / "cut.npz").write_bytes((tmp_path / "a.npz").read_bytes()[:200])
    with pytest.raises(ValueError, match=r"t: .*cut.npz is not a thing file"):
        read_npz(tmp_path / "cut.npz", "t", "thing")
    with pytest.raises(ValueError, match=r"t: .* is a folder, not a thing file"):
        read_npz(tmp_path, "t", "thing")


def test_folder_problem_names_what_is_in_the_way(tmp_path):
    """A missing folder is fine (it will be created); one under a file names the file."""
    from solver.checkpoint import folder_problem

    assert folder_problem(tmp_path / "new" / "deeper") is None
    (tmp_path / "f").write_text("")
    assert folder_problem(tmp_path / "f" / "x") == f"{tmp_path / 'f'} is a file, not a folder"
    assert folder_problem(tmp_path / "f") == f"{tmp_path / 'f'} is a file, not a folder"
