"""Graded: naive convolution and max pooling, spatial batch and group normalization.

The fast layers ship complete, so they serve as the public reference for the naive ones.
"""

from __future__ import annotations

import numpy as np
import pytest
from grading_checks import as_float64, assert_matches, check_layer_case

from layers import conv_backward_fast, conv_forward_fast, max_pool_backward_fast, max_pool_forward_fast

SEEDS = (0, 1)
GEOMETRIES = [  # (x shape, w shape, stride, pad)
    ((2, 3, 7, 7), (4, 3, 3, 3), 1, 1),
    ((2, 2, 9, 7), (3, 2, 3, 5), 2, 2),
]


@pytest.mark.points(4)
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", GEOMETRIES)
def test_conv_naive_matches_fast(student, x_shape, w_shape, stride, pad):
    """conv_forward_naive and conv_backward_naive agree with the fast layers."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    param = {"stride": stride, "pad": pad}
    out, cache = student.call("layers.conv_forward_naive", x, w, b, param)
    out_fast, cache_fast = conv_forward_fast(x, w, b, param)
    assert_matches("conv_forward_naive out", out, out_fast)
    dout = rng.standard_normal(out_fast.shape)
    grads = student.call("layers.conv_backward_naive", dout, cache)
    assert isinstance(grads, tuple) and len(grads) == 3, "conv_backward_naive: expected (dx, dw, db)"
    for name, got, want in zip(("dx", "dw", "db"), grads, conv_backward_fast(dout, cache_fast)):
        assert_matches(f"conv_backward_naive {name}", got, want)


@pytest.mark.points(2)
@pytest.mark.parametrize("seed", SEEDS)
def test_conv_backward_naive_matches_numeric_gradient(student, seed):
    """conv_backward_naive agrees with centered differences."""
    check_layer_case(student, "conv_forward_naive", seed).assert_ok()


@pytest.mark.points(3)
@pytest.mark.parametrize("shape, pool", [((2, 3, 8, 8), (2, 2, 2)), ((2, 2, 7, 9), (3, 3, 2))])
def test_max_pool_naive_matches_fast(student, shape, pool):
    """max_pool naive forward and backward agree with the fast layers (tiling and overlapping windows)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape)
    param = {"pool_height": pool[0], "pool_width": pool[1], "stride": pool[2]}
    out, cache = student.call("layers.max_pool_forward_naive", x, param)
    out_fast, cache_fast = max_pool_forward_fast(x, param)
    assert_matches("max_pool_forward_naive out", out, out_fast)
    dout = rng.standard_normal(out_fast.shape)
    assert_matches("max_pool_backward_naive dx", student.call("layers.max_pool_backward_naive", dout, cache),
                   max_pool_backward_fast(dout, cache_fast))


@pytest.mark.points(2)
@pytest.mark.parametrize("seed", SEEDS)
def test_spatial_batchnorm_backward_matches_numeric_gradient(student, seed):
    """spatial_batchnorm_backward agrees with centered differences."""
    check_layer_case(student, "spatial_batchnorm_forward", seed).assert_ok()


@pytest.mark.points(1)
def test_spatial_batchnorm_forward_normalizes_each_channel(student):
    """Each channel of the output has mean beta and std gamma over N, H and W."""
    rng = np.random.default_rng(5)
    x = 4 + 2 * rng.standard_normal((6, 3, 5, 5))
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, -1.0])
    out, _ = student.call("layers.spatial_batchnorm_forward", x, gamma, beta, {"mode": "train"})
    out = as_float64("spatial_batchnorm_forward out", out)
    assert out.shape == x.shape, f"spatial_batchnorm_forward out: shape {out.shape}, expected {x.shape}"
    var = x.var(axis=(0, 2, 3))
    assert_matches("spatial_batchnorm_forward channel means", out.mean(axis=(0, 2, 3)), beta)
    # eps = 1e-5 sits under the square root, so the std is gamma * sqrt(var / (var + eps)).
    assert_matches("spatial_batchnorm_forward channel stds", out.std(axis=(0, 2, 3)), gamma * np.sqrt(var / (var + 1e-5)))


@pytest.mark.points(2)
@pytest.mark.parametrize("seed", SEEDS)
def test_spatial_groupnorm_backward_matches_numeric_gradient(student, seed):
    """spatial_groupnorm_backward agrees with centered differences."""
    check_layer_case(student, "spatial_groupnorm_forward", seed).assert_ok()


# BEGIN HIDDEN TESTS
@pytest.mark.points(2)
def test_conv_naive_matches_reference(student, reference):
    """conv naive forward and backward match the reference at stride 2, pad 1."""
    ref = reference("conv")
    out, cache = student.call("layers.conv_forward_naive", ref["x"], ref["w"], ref["b"], {"stride": 2, "pad": 1})
    assert_matches("conv_forward_naive out", out, ref["out"])
    grads = student.call("layers.conv_backward_naive", ref["dout"], cache)
    assert isinstance(grads, tuple) and len(grads) == 3, "conv_backward_naive: expected (dx, dw, db)"
    for name, got in zip(("dx", "dw", "db"), grads):
        assert_matches(f"conv_backward_naive {name}", got, ref[name])


@pytest.mark.points(1)
def test_max_pool_naive_matches_reference(student, reference):
    """max pool naive forward and backward match the reference."""
    ref = reference("max_pool")
    out, cache = student.call("layers.max_pool_forward_naive", ref["x"], {"pool_height": 2, "pool_width": 2, "stride": 2})
    assert_matches("max_pool_forward_naive out", out, ref["out"])
    assert_matches("max_pool_backward_naive dx", student.call("layers.max_pool_backward_naive", ref["dout"], cache),
                   ref["dx"])


@pytest.mark.points(2)
@pytest.mark.parametrize("kind", ["spatial_batchnorm", "spatial_groupnorm"])
def test_spatial_norms_match_reference(student, reference, kind):
    """spatial batchnorm (train) and groupnorm (G = 2) match the reference."""
    ref = reference(kind)
    if kind == "spatial_batchnorm":
        out, cache = student.call("layers.spatial_batchnorm_forward", ref["x"], ref["gamma"], ref["beta"],
                                  {"mode": "train"})
    else:
        out, cache = student.call("layers.spatial_groupnorm_forward", ref["x"], ref["gamma"], ref["beta"], 2,
                                  {"eps": 1e-5})
    grads = student.call(f"layers.{kind}_backward", ref["dout"], cache)
    assert_matches(f"{kind}_forward out", out, ref["out"])
    assert isinstance(grads, tuple) and len(grads) == 3, f"{kind}_backward: expected (dx, dgamma, dbeta)"
    for name, got in zip(("dx", "dgamma", "dbeta"), grads):
        assert_matches(f"{kind}_backward {name}", got, ref[name])
# END HIDDEN TESTS
