"""Tests for data.mnist: the IDX format, MNIST and Fashion-MNIST loaders, and the real Fashion-MNIST."""

import gzip
import os
import struct

import numpy as np
import pytest

from data import get_fashion_mnist_data, get_mnist_data, load_fashion_mnist, load_mnist, read_idx
from data.mnist import DEBIAN_FASHION_MNIST
from datagen import MNIST_STEMS, idx_bytes, write_mnist

pytestmark = pytest.mark.data

HAVE_DEBIAN_FASHION = (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file()
# CI installs Debian's dataset-fashion-mnist (.ci/run); there its absence is a failure, not a skip.
needs_fashion = pytest.mark.skipif(not HAVE_DEBIAN_FASHION and not os.environ.get("CI"),
                                   reason="apt-get install dataset-fashion-mnist to test on the real Fashion-MNIST")


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_load_mnist_reads_gzip_and_raw_idx(tmp_path, gz):
    """The four files load with their shapes, values and int64 labels, compressed or not."""
    X_train, y_train, X_test, y_test = write_mnist(tmp_path, gz=gz)
    a = load_mnist(tmp_path)
    np.testing.assert_array_equal(a[0], X_train)
    np.testing.assert_array_equal(a[1], y_train)
    np.testing.assert_array_equal(a[2], X_test)
    np.testing.assert_array_equal(a[3], y_test)
    assert a[0].shape == (12, 28, 28) and a[0].dtype == np.uint8 and a[1].dtype == np.int64


def test_read_idx_checks_magic_numbers(tmp_path):
    """A label file read as images, a wrong type byte, and a bad dimension count are refused."""
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.arange(5, dtype=np.uint8)))
    with pytest.raises(ValueError, match=r"read_idx: .*labels has magic number 0x00000801, expected 0x00000803"):
        read_idx(path, 3)
    path.write_bytes(idx_bytes(np.zeros((2, 2, 2), np.uint8), magic=0x00000D03))  # 0x0D = float
    with pytest.raises(ValueError, match=r"has magic number 0x00000d03, expected 0x00000803"):
        read_idx(path, 3)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match=r"too short for an IDX header \(2 bytes\)"):
        read_idx(path, 1)


def test_read_idx_checks_sizes(tmp_path):
    """A file cut short, one with extra bytes, and one cut inside its header each say so."""
    raw = idx_bytes(np.ones((3, 28, 28), np.uint8))
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(ValueError, match=r"images.gz is truncated: the header declares shape \(3, 28, 28\) = 2352 values, the file holds 2342"):
        read_idx(path, 3)
    path.write_bytes(gzip.compress(raw + b"\x00"))
    with pytest.raises(ValueError, match=r"is longer than its header says"):
        read_idx(path, 3)
    path.write_bytes(gzip.compress(raw[:9]))
    with pytest.raises(ValueError, match=r"is truncated inside its header \(9 of 16 bytes\)"):
        read_idx(path, 3)
    path.write_bytes(gzip.compress(raw)[:-20])
    with pytest.raises(ValueError, match=r"images.gz is a damaged gzip file"):
        read_idx(path, 3)


def test_mismatched_counts_and_bad_labels_are_refused(tmp_path):
    """Images and labels of different lengths, or labels above 9, name the files."""
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(4, np.uint8))))
    with pytest.raises(ValueError, match=r"load_mnist: the test images hold 5 samples but the labels 4"):
        load_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.full(5, 12, np.uint8))))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz has labels up to 12; expected 0..9"):
        load_mnist(tmp_path)


def test_missing_files_give_the_download_command(tmp_path, monkeypatch):
    """With a file missing, FileNotFoundError lists the folder and the exact command."""
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "store"))
    write_mnist(tmp_path / "store" / "mnist")
    (tmp_path / "store" / "mnist" / f"{MNIST_STEMS['test_labels']}.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"(?s)load_mnist: the four IDX files .* not found \(looked in .*store/mnist\)"
                                                r".*python -m data\.download mnist --dir .*store"):
        load_mnist()
    with pytest.raises(FileNotFoundError, match=r"(?s)python -m data\.download fashion-mnist.*apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "empty")


def test_get_mnist_data_scales_centers_and_splits(tmp_path):
    """float32 (N, 1, 28, 28) in [0, 1] before centering; the mean image is the training mean."""
    X_train, y_train, X_test, _ = write_mnist(tmp_path, n_train=12, n_test=5)
    data = get_mnist_data(num_training=9, num_validation=3, num_test=5, root=tmp_path)
    assert data["X_train"].shape == (9, 1, 28, 28) and data["X_train"].dtype == np.float32
    np.testing.assert_array_equal(data["y_val"], y_train[9:12])
    np.testing.assert_allclose(data["mean_image"][0], X_train[:9].mean(axis=0) / 255, rtol=1e-6)
    np.testing.assert_allclose(data["X_test"][2, 0] + data["mean_image"][0], X_test[2] / 255, atol=1e-6)
    raw = get_mnist_data(num_training=9, num_validation=3, num_test=5, subtract_mean=False, root=tmp_path)
    assert raw["X_train"].min() >= 0 and raw["X_train"].max() <= 1
    with pytest.raises(ValueError, match=r"get_mnist_data: asked for 59000 \+ 1000 training"):
        get_mnist_data(root=tmp_path)


@needs_fashion
def test_real_fashion_mnist_from_the_debian_package():
    """Debian's files are the real set: 60,000 + 10,000 images, 6,000 / 1,000 of each class."""
    X_train, y_train, X_test, y_test = load_fashion_mnist()
    assert X_train.shape == (60000, 28, 28) and X_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10 and np.bincount(y_test).tolist() == [1000] * 10
    data = get_fashion_mnist_data()
    assert data["X_train"].shape == (59000, 1, 28, 28) and data["X_test"].shape == (10000, 1, 28, 28)


def test_read_idx_sizes_do_not_wrap_around(tmp_path):
    """Dimensions whose product is 2**64 (0 in int64) are not taken for an empty array."""
    path = tmp_path / "wrap"
    path.write_bytes(struct.pack(">I", 0x803) + struct.pack(">3I", 2**31, 2**31, 4))
    with pytest.raises(ValueError, match=r"wrap is truncated: the header declares shape \(2147483648, 2147483648, 4\) "
                                         r"= 18446744073709551616 values, the file holds 0"):
        read_idx(path, 3)


def test_a_gzip_that_inflates_far_beyond_its_header_is_refused_in_bounded_memory(tmp_path):
    """64 MiB of zeros after a (2, 28, 28) header: refused as too long while holding under 4 MiB."""
    import tracemalloc
    import zlib

    path = tmp_path / "bomb.gz"
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    with open(path, "wb") as f:
        f.write(packer.compress(idx_bytes(np.zeros((2, 28, 28), np.uint8))))
        zeros = bytes(1 << 20)
        for _ in range(64):
            f.write(packer.compress(zeros))
        f.write(packer.flush())
    assert path.stat().st_size < (1 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"bomb.gz is longer than its header says"):
            read_idx(path, 3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak


def test_loaders_refuse_headers_larger_than_the_official_set_before_reading(tmp_path):
    """A training image file declaring 60,001 images is refused from its header, naming the official shape."""
    write_mnist(tmp_path / "store" / "mnist")
    header = struct.pack(">I", 0x803) + struct.pack(">3I", 60001, 28, 28)
    (tmp_path / "store" / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header))
    with pytest.raises(ValueError, match=r"declares shape \(60001, 28, 28\), larger than this dataset's \(60000, 28, 28\)"):
        load_mnist(tmp_path / "store")


def test_a_damaged_file_error_gives_the_force_command_for_the_data_folder(tmp_path):
    """A damaged gzip in <store>/mnist names the file and `python -m data.download mnist --dir <store> --force`."""
    write_mnist(tmp_path / "store" / "mnist")
    path = tmp_path / "store" / "mnist" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match=rf"(?s)t10k-images-idx3-ubyte.gz is a damaged gzip file.*"
                                         rf"python -m data\.download mnist --dir {tmp_path / 'store'} --force"):
        load_mnist(tmp_path / "store")


def test_root_is_the_data_folder_as_data_download_writes_it(tmp_path):
    """load_mnist(DIR) reads DIR/mnist (the download layout) and still reads a folder holding the files."""
    X_train = write_mnist(tmp_path / "store" / "mnist")[0]
    np.testing.assert_array_equal(load_mnist(tmp_path / "store")[0], X_train)
    np.testing.assert_array_equal(load_mnist(tmp_path / "store" / "mnist")[0], X_train)
    with pytest.raises(FileNotFoundError, match=rf"(?s)looked in {tmp_path / 'none' / 'mnist'}, {tmp_path / 'none'}\).*"
                                                rf"python -m data\.download mnist --dir {tmp_path / 'none'}\n"):
        load_mnist(tmp_path / "none")
