"""Tests for data.digits: the shipped handwritten digits and the spiral toy set."""

import numpy as np
import pytest

import data.digits as digits_module
from data import DIGITS_SHA256, load_digits, make_spiral

pytestmark = pytest.mark.data

# The published class counts of this 1,797-sample set, digits 0 to 9.
CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
# float32 means of ~1,257 values in [-1, 1] are zero to within this.
MEAN_TOL = 1e-6


def test_digits_have_the_published_size_and_class_counts():
    """1,797 samples split 1,257/180/360, with the published per-class counts in total."""
    d = load_digits()
    assert d["X_train"].shape == (1257, 1, 8, 8) and d["X_val"].shape == (180, 1, 8, 8)
    assert d["X_test"].shape == (360, 1, 8, 8)
    y = np.concatenate([d["y_train"], d["y_val"], d["y_test"]])
    assert y.dtype == np.int64 and np.bincount(y).tolist() == CLASS_COUNTS


def test_digits_pixels_are_scaled_and_centered():
    """Without mean subtraction pixels lie in [0, 1] with both ends used; with it the train mean is 0."""
    raw = load_digits(subtract_mean=False)
    x = np.concatenate([raw["X_train"], raw["X_val"], raw["X_test"]])
    assert x.min() == 0.0 and x.max() == 1.0 and x.dtype == np.float32
    assert not np.any(raw["mean_image"])
    centered = load_digits()
    np.testing.assert_allclose(centered["X_train"].mean(axis=0), 0.0, atol=MEAN_TOL)
    np.testing.assert_allclose(centered["X_val"] + centered["mean_image"], raw["X_val"], atol=MEAN_TOL)


def test_digits_split_is_disjoint_and_seeded():
    """The splits never share a sample; one seed gives one split, another seed a different one."""
    a = load_digits(seed=1, subtract_mean=False, flatten=True)
    b, c = load_digits(seed=1, flatten=True), load_digits(seed=2, flatten=True)
    # All 1,797 images are distinct, so disjoint splits hold 1,797 distinct rows together.
    rows = np.concatenate([a["X_train"], a["X_val"], a["X_test"]])
    assert len(np.unique(rows, axis=0)) == 1797
    np.testing.assert_array_equal(a["y_train"], b["y_train"])
    assert not np.array_equal(a["y_train"], c["y_train"])
    assert a["X_train"].shape == (1257, 64)


def test_digits_file_checksum_is_verified(tmp_path, monkeypatch):
    """A damaged file is refused with its checksum, before any parsing."""
    bad = tmp_path / "digits.csv.gz"
    bad.write_bytes(digits_module.DIGITS_PATH.read_bytes()[:-10])
    monkeypatch.setattr(digits_module, "DIGITS_PATH", bad)
    with pytest.raises(ValueError, match=rf"load_digits: .*digits.csv.gz has SHA-256 [0-9a-f]{{64}}, expected {DIGITS_SHA256}"):
        load_digits()
    monkeypatch.setattr(digits_module, "DIGITS_PATH", tmp_path / "missing.csv.gz")
    with pytest.raises(FileNotFoundError, match=r"load_digits: cannot read the digits file"):
        load_digits()


def test_load_digits_rejects_bad_arguments():
    """Split sizes that leave no training data, negative sizes and integer dtypes are refused."""
    with pytest.raises(ValueError, match=r"load_digits: num_validation \+ num_test = 1797 leaves no training samples"):
        load_digits(num_validation=897, num_test=900)
    with pytest.raises(ValueError, match=r"load_digits: num_test must be an int >= 0, got -1"):
        load_digits(num_test=-1)
    with pytest.raises(ValueError, match=r"load_digits: dtype must be np.float32 or np.float64, got int64"):
        load_digits(dtype=np.int64)


def test_make_spiral_shapes_balance_and_reproducibility():
    """C arms of K points each, radius within [0, 1], balanced labels, seeded noise."""
    X, y = make_spiral(num_per_class=50, num_classes=4, noise=0.1, seed=0)
    assert X.shape == (200, 2) and X.dtype == np.float32 and np.bincount(y).tolist() == [50] * 4
    radius = np.hypot(X[:, 0], X[:, 1])
    assert radius.max() <= 1.0 + 1e-6 and radius.min() == 0.0
    X2, _ = make_spiral(num_per_class=50, num_classes=4, noise=0.1, seed=0)
    np.testing.assert_array_equal(X, X2)
    X3, _ = make_spiral(num_per_class=50, num_classes=4, noise=0.1, seed=1)
    assert not np.array_equal(X, X3)


def test_make_spiral_without_noise_follows_the_formula():
    """With noise 0 every point is r (sin theta, cos theta), theta = 4 r + 2 pi j / C."""
    X, y = make_spiral(num_per_class=5, num_classes=3, noise=0.0, dtype=np.float64)
    r = np.tile(np.linspace(0, 1, 5), 3)
    theta = 4 * r + 2 * np.pi * y / 3
    np.testing.assert_allclose(X, np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1), rtol=0, atol=1e-15)


def test_make_spiral_rejects_bad_arguments():
    """Too few points or classes and negative noise are refused by name."""
    with pytest.raises(ValueError, match=r"make_spiral: num_classes must be an int >= 2, got 1"):
        make_spiral(num_classes=1)
    with pytest.raises(ValueError, match=r"make_spiral: noise must be a finite number >= 0, got -0.1"):
        make_spiral(noise=-0.1)
