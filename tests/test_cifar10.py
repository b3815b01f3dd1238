"""Tests for data.cifar10: the official batch format, safe unpickling, memory, errors."""

import io
import pickle
import tracemalloc

import numpy as np
import pytest

from data import get_CIFAR10_data, get_cifar10_data, load_CIFAR10, load_cifar10
from datagen import cifar_batch_bytes, labels_only_batch_bytes, write_cifar10

pytestmark = pytest.mark.data


@pytest.fixture
def cifar_dir(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    arrays = write_cifar10(folder, rows_per_batch=4)
    return folder, arrays


def test_generated_batch_is_what_plain_pickle_reads_too():
    """The fixture is a genuine batch: the standard pickle module (encoding='bytes') reads it alike."""
    x = np.random.default_rng(0).integers(0, 256, (3, 3072), dtype=np.uint8)
    batch = pickle.loads(cifar_batch_bytes(x, [1, 2, 3]), encoding="bytes")
    np.testing.assert_array_equal(batch[b"data"], x)
    assert batch[b"labels"] == [1, 2, 3] and batch[b"batch_label"] == b"training batch 1 of 5"


def test_load_cifar10_returns_hwc_images_and_labels(cifar_dir):
    """Train holds the five batches in order, test the test batch; images are (N, 32, 32, 3) uint8."""
    folder, (train_x, train_y, test_x, test_y) = cifar_dir
    X_train, y_train, X_test, y_test = load_cifar10(folder)
    assert X_train.shape == (20, 32, 32, 3) and X_test.shape == (4, 32, 32, 3) and X_train.dtype == np.uint8
    np.testing.assert_array_equal(y_train, train_y)
    np.testing.assert_array_equal(y_test, test_y)
    # Row layout: 1024 red, then green, then blue values, each 32x32 in row order.
    assert X_train[0, 5, 7, 0] == train_x[0, 0 * 1024 + 5 * 32 + 7]
    assert X_train[0, 5, 7, 2] == train_x[0, 2 * 1024 + 5 * 32 + 7]
    assert X_test[3, 31, 0, 1] == test_x[3, 1024 + 31 * 32]


def test_root_may_be_the_parent_folder_and_course_names_are_aliases(cifar_dir):
    """load_cifar10 finds cifar-10-batches-py inside root; load_CIFAR10/get_CIFAR10_data are the same functions."""
    folder, _ = cifar_dir
    a = load_cifar10(folder.parent)
    np.testing.assert_array_equal(a[0], load_cifar10(folder)[0])
    assert load_CIFAR10 is load_cifar10 and get_CIFAR10_data is get_cifar10_data


def test_get_cifar10_data_gives_the_course_dict(cifar_dir):
    """Splits as in the course, float32 (N, 3, 32, 32), training mean subtracted from every split."""
    folder, (train_x, train_y, test_x, _) = cifar_dir
    data = get_cifar10_data(num_training=15, num_validation=5, num_test=3, root=folder)
    assert data["X_train"].shape == (15, 3, 32, 32) and data["X_val"].shape == (5, 3, 32, 32)
    assert data["X_test"].shape == (3, 3, 32, 32) and data["X_train"].dtype == np.float32
    assert data["X_train"].flags.c_contiguous
    np.testing.assert_array_equal(data["y_val"], train_y[15:20])
    mean = train_x[:15].reshape(15, 3, 32, 32).mean(axis=0)
    np.testing.assert_allclose(data["mean_image"], mean, rtol=1e-6)
    np.testing.assert_allclose(data["X_val"][2] + data["mean_image"], train_x[17].reshape(3, 32, 32), atol=1e-4)
    raw = get_cifar10_data(num_training=15, num_validation=5, num_test=3, subtract_mean=False, root=folder)
    np.testing.assert_array_equal(raw["X_test"][1], test_x[1].reshape(3, 32, 32).astype(np.float32))


def test_crafted_pickle_fails_without_running_its_call(tmp_path):
    """A batch whose pickle calls os.system is refused naming the file, and the command never runs."""
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder)
    marker = tmp_path / "pwned"
    evil = (b"\x80\x02cos\nsystem\n" + b"U" + bytes([len(f"touch {marker}")]) + f"touch {marker}".encode()
            + b"\x85R.")
    # The payload is real: plain pickle would run the command.
    pickle.loads(evil)
    assert marker.exists()
    marker.unlink()
    (folder / "data_batch_3").write_bytes(evil)
    with pytest.raises(ValueError, match=r"load_cifar10: .*data_batch_3: refusing to load global os.system"):
        load_cifar10(folder)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    pickle.dumps({b"labels": [1]}, protocol=2),  # Python 3 pickles bytes through _codecs.encode
    b"\x80\x02cbuiltins\neval\nU\x041+1q\x85R.",
    b"\x80\x02cnumpy\nload\nU\x01x\x85R.",
    b"\x80\x02csubprocess\nPopen\n.",
])
def test_only_numpy_array_globals_are_admitted(tmp_path, payload):
    """eval, numpy.load and subprocess are refused just like os.system."""
    folder = tmp_path / "c"
    write_cifar10(folder)
    (folder / "test_batch").write_bytes(payload)
    with pytest.raises(ValueError, match=r"test_batch: refusing to load global"):
        load_cifar10(folder)


def test_truncated_and_malformed_batches_name_the_file(cifar_dir):
    """A cut-off file, a dict without data, and images of the wrong width are each refused with the path."""
    folder, _ = cifar_dir
    good = (folder / "data_batch_2").read_bytes()
    (folder / "data_batch_2").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"load_cifar10: .*data_batch_2 is truncated or not a CIFAR-10 batch"):
        load_cifar10(folder)
    (folder / "data_batch_2").write_bytes(labels_only_batch_bytes([1]))
    with pytest.raises(ValueError, match=r"data_batch_2 is not a CIFAR-10 batch: expected a dict with b'data'"):
        load_cifar10(folder)
    narrow = np.zeros((2, 100), dtype=np.uint8)
    (folder / "data_batch_2").write_bytes(cifar_batch_bytes(narrow, [0, 1]))
    with pytest.raises(ValueError, match=r"data_batch_2: b'data' must be a uint8 array of shape \(N, 3072\), got \(2, 100\)"):
        load_cifar10(folder)


def test_missing_dataset_error_gives_the_download_command(tmp_path, monkeypatch):
    """No batches: FileNotFoundError listing the folders searched and the exact command."""
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "store"))
    with pytest.raises(FileNotFoundError, match=r"(?s)load_cifar10: CIFAR-10 \(data_batch_1\) not found.*"
                                                r"python -m data\.download cifar10 --dir .*store"):
        load_cifar10()
    folder = tmp_path / "partial"
    write_cifar10(folder)
    (folder / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match=r"CIFAR-10 batch data_batch_4 not found"):
        load_cifar10(folder)


def test_get_cifar10_data_memory_stays_within_twice_raw_plus_result(tmp_path):
    """Peak traced memory is at most 2 x the raw uint8 set + the float32 result (+ 5% slack), no float64 copy."""
    folder = tmp_path / "c"
    write_cifar10(folder, rows_per_batch=400)
    raw = 6 * 400 * 3072  # bytes of uint8 data in all six batches
    tracemalloc.start()
    try:
        data = get_cifar10_data(num_training=1900, num_validation=100, num_test=400, root=folder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    result = sum(data[k].nbytes for k in ("X_train", "X_val", "X_test"))
    assert result == 2400 * 3072 * 4
    assert peak <= 1.05 * (2 * raw + result), f"peak {peak / 1e6:.1f} MB vs bound {(2 * raw + result) / 1e6:.1f} MB"
    # A float64 copy of the training images alone would push the peak past the bound.
    assert 1900 * 3072 * 8 > 1.05 * (2 * raw + result) - result - raw


def test_get_cifar10_data_rejects_bad_sizes(cifar_dir):
    """Split sizes beyond the set or negative are refused with the numbers."""
    folder, _ = cifar_dir
    with pytest.raises(ValueError, match=r"get_cifar10_data: asked for 49000 \+ 1000 training and 1000 test images, but the set has 20 and 4"):
        get_cifar10_data(root=folder)
    with pytest.raises(ValueError, match=r"get_cifar10_data: num_test must be an int >= 0 or None, got -1"):
        get_cifar10_data(num_test=-1, root=folder)


def test_unpickler_refuses_persistent_ids():
    """Persistent references (another way a pickle reaches outside itself) are refused."""
    from data.cifar10 import SafeUnpickler

    with pytest.raises(pickle.UnpicklingError, match=r"persistent references are not part of a CIFAR-10 batch"):
        SafeUnpickler(io.BytesIO(b"\x80\x02U\x01xQ."), "f").load()


def test_none_sizes_take_the_rest_and_all_test_images(cifar_dir):
    """num_training=None uses every training image not held out; num_test=None the whole test set."""
    folder, _ = cifar_dir
    data = get_cifar10_data(num_training=None, num_validation=6, num_test=None, root=folder)
    assert [len(data[k]) for k in ("y_train", "y_val", "y_test")] == [14, 6, 4]


def test_a_damaged_or_missing_batch_gives_the_force_command_for_the_data_folder(cifar_dir):
    """In <store>/cifar-10-batches-py, a cut-off or missing batch names it and the --force download for <store>."""
    folder, _ = cifar_dir
    command = rf"python -m data\.download cifar10 --dir {folder.parent} --force"
    good = (folder / "test_batch").read_bytes()
    (folder / "test_batch").write_bytes(good[:100])
    with pytest.raises(ValueError, match=rf"(?s)test_batch is truncated or not a CIFAR-10 batch.*{command}"):
        load_cifar10(folder.parent)
    (folder / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match=rf"(?s)CIFAR-10 batch test_batch not found in .*{command}"):
        load_cifar10(folder)


def test_a_missing_set_names_the_data_folder_it_was_given(tmp_path):
    """load_cifar10(DIR) without the batches gives the download command for DIR itself, not the default folder."""
    with pytest.raises(FileNotFoundError, match=rf"python -m data\.download cifar10 --dir {tmp_path / 'mine'}\n"):
        load_cifar10(tmp_path / "mine")
