"""Tests for data.paths: the data folder, the missing-dataset message, split sizes."""

import io
import pathlib

import pytest

from data.cifar10 import RefusedGlobal, SafeUnpickler
from data.paths import damaged_dataset, data_dir, missing_dataset, split_sizes

pytestmark = pytest.mark.data


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    """$CHAINRULE_DATA wins (with ~ expanded); without it, ~/.cache/chainrule."""
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.setenv("CHAINRULE_DATA", "~/elsewhere")
    assert data_dir() == pathlib.Path.home() / "elsewhere"
    monkeypatch.delenv("CHAINRULE_DATA")
    assert data_dir() == pathlib.Path.home() / ".cache" / "chainrule"


def test_missing_dataset_names_places_and_command(monkeypatch, tmp_path):
    """The error lists every folder searched and the download command for the data folder."""
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path))
    err = missing_dataset("load_x", "X files", [tmp_path / "a", tmp_path / "b"], "mnist", "\nor ask a friend")
    assert isinstance(err, FileNotFoundError)
    text = str(err)
    assert text.startswith(f"load_x: X files not found (looked in {tmp_path / 'a'}, {tmp_path / 'b'})")
    assert f"python -m data.download mnist --dir {tmp_path}" in text and text.endswith("or ask a friend")


def test_split_sizes_resolve_none_and_check_bounds():
    """None takes the rest (training) or everything (test); sizes beyond the set are refused."""
    assert split_sizes("f", None, 100, None, 1000, 50) == (900, 100, 50)
    assert split_sizes("f", 10, 5, 3, 1000, 50) == (10, 5, 3)
    with pytest.raises(ValueError, match=r"f: asked for 996 \+ 5 training and 3 test images, but the set has 1000 and 50"):
        split_sizes("f", 996, 5, 3, 1000, 50)
    with pytest.raises(ValueError, match=r"f: asked for -1 \+ 1001 training"):
        split_sizes("f", None, 1001, None, 1000, 50)
    with pytest.raises(ValueError, match=r"f: num_validation must be an int >= 0, got None"):
        split_sizes("f", 1, None, 1, 1000, 50)


def test_refused_global_is_an_unpickling_error_naming_the_file():
    """SafeUnpickler raises RefusedGlobal (a pickle.UnpicklingError) with the path and the global."""
    import pickle

    with pytest.raises(RefusedGlobal, match=r"batch.bin: refusing to load global posix.system") as info:
        SafeUnpickler(io.BytesIO(b"\x80\x02cposix\nsystem\n."), "batch.bin").load()
    assert isinstance(info.value, pickle.UnpicklingError)


def test_missing_dataset_gives_the_data_folder_the_caller_was_given(monkeypatch, tmp_path):
    """With store=DIR the command downloads into DIR, whatever $CHAINRULE_DATA says."""
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "default"))
    text = str(missing_dataset("load_x", "X", [tmp_path / "mine" / "mnist"], "mnist", store=tmp_path / "mine"))
    assert f"python -m data.download mnist --dir {tmp_path / 'mine'}\n" in text and "default" not in text


def test_damaged_dataset_repairs_in_place_in_the_download_layout(tmp_path):
    """A file in <store>/mnist gives --dir <store> --force; a file in another folder F gives --dir F (F/mnist is searched first)."""
    err = damaged_dataset("read_idx: x is damaged.", tmp_path / "store" / "mnist", "mnist", "mnist")
    assert isinstance(err, ValueError) and str(err).startswith("read_idx: x is damaged.\n")
    assert str(err).endswith(f"python -m data.download mnist --dir {tmp_path / 'store'} --force")
    err = damaged_dataset("bad", tmp_path / "loose", "mnist", "mnist")
    assert str(err).endswith(f"python -m data.download mnist --dir {tmp_path / 'loose'} --force")
