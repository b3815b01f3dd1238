"""Graded: naive convolution and max pooling, spatial batch and group normalization.

The fast layers ship complete, so they serve as the public reference for the naive ones.
"""

from __future__ import annotations

import numpy as np
import pytest
from grading_checks import assert_matches

from gradcheck.registry import layer_case, run_case
from layers import (
    conv_backward_fast,
    conv_backward_naive,
    conv_forward_fast,
    conv_forward_naive,
    max_pool_backward_fast,
    max_pool_backward_naive,
    max_pool_forward_fast,
    max_pool_forward_naive,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)

SEEDS = (0, 1)
GEOMETRIES = [  # (x shape, w shape, stride, pad)
    ((2, 3, 7, 7), (4, 3, 3, 3), 1, 1),
    ((2, 2, 9, 7), (3, 2, 3, 5), 2, 2),
]


@pytest.mark.points(4)
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", GEOMETRIES)
def test_conv_naive_matches_fast(x_shape, w_shape, stride, pad):
    """conv_forward_naive and conv_backward_naive agree with the fast layers."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    param = {"stride": stride, "pad": pad}
    out, cache = conv_forward_naive(x, w, b, param)
    out_fast, cache_fast = conv_forward_fast(x, w, b, param)
    assert_matches("conv_forward_naive out", out, out_fast)
    dout = rng.standard_normal(out_fast.shape)
    for name, got, want in zip(("dx", "dw", "db"), conv_backward_naive(dout, cache), conv_backward_fast(dout, cache_fast)):
        assert_matches(f"conv_backward_naive {name}", got, want)


@pytest.mark.points(2)
@pytest.mark.parametrize("seed", SEEDS)
def test_conv_backward_naive_matches_numeric_gradient(seed):
    """conv_backward_naive agrees with centered differences."""
    run_case(layer_case("conv_forward_naive"), seed=seed, mode="full").assert_ok()


@pytest.mark.points(3)
@pytest.mark.parametrize("shape, pool", [((2, 3, 8, 8), (2, 2, 2)), ((2, 2, 7, 9), (3, 3, 2))])
def test_max_pool_naive_matches_fast(shape, pool):
    """max_pool naive forward and backward agree with the fast layers (tiling and overlapping windows)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape)
    param = {"pool_height": pool[0], "pool_width": pool[1], "stride": pool[2]}
    out, cache = max_pool_forward_naive(x, param)
    out_fast, cache_fast = max_pool_forward_fast(x, param)
    assert_matches("max_pool_forward_naive out", out, out_fast)
    dout = rng.standard_normal(out_fast.shape)
    assert_matches("max_pool_backward_naive dx", max_pool_backward_naive(dout, cache),
                   max_pool_backward_fast(dout, cache_fast))


@pytest.mark.points(2)
@pytest.mark.parametrize("seed", SEEDS)
def test_spatial_batchnorm_backward_matches_numeric_gradient(seed):
    """spatial_batchnorm_backward agrees with centered differences."""
    run_case(layer_case("spatial_batchnorm_forward"), seed=seed, mode="full").assert_ok()


@pytest.mark.points(1)
def test_spatial_batchnorm_forward_normalizes_each_channel():
    """Each channel of the output has mean beta and std gamma over N, H and W."""
    rng = np.random.default_rng(5)
    x = 4 + 2 * rng.standard_normal((6, 3, 5, 5))
    gamma, beta = np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, -1.0])
    out, _ = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    out = np.asarray(out, dtype=np.float64)
    var = x.var(axis=(0, 2, 3))
    assert_matches("spatial_batchnorm_forward channel means", out.mean(axis=(0, 2, 3)), beta)
    # eps = 1e-5 sits under the square root, so the std is gamma * sqrt(var / (var + eps)).
    assert_matches("spatial_batchnorm_forward channel stds", out.std(axis=(0, 2, 3)), gamma * np.sqrt(var / (var + 1e-5)))


@pytest.mark.points(2)
@pytest.mark.parametrize("seed", SEEDS)
def test_spatial_groupnorm_backward_matches_numeric_gradient(seed):
    """spatial_groupnorm_backward agrees with centered differences."""
    run_case(layer_case("spatial_groupnorm_forward"), seed=seed, mode="full").assert_ok()


# BEGIN HIDDEN TESTS
@pytest.mark.points(2)
def test_conv_naive_matches_reference(reference):
    """conv naive forward and backward match the reference at stride 2, pad 1."""
    ref = reference("conv")
    out, cache = conv_forward_naive(ref["x"], ref["w"], ref["b"], {"stride": 2, "pad": 1})
    assert_matches("conv_forward_naive out", out, ref["out"])
    for name, got in zip(("dx", "dw", "db"), conv_backward_naive(ref["dout"], cache)):
        assert_matches(f"conv_backward_naive {name}", got, ref[name])


@pytest.mark.points(1)
def test_max_pool_naive_matches_reference(reference):
    """max pool naive forward and backward match the reference."""
    ref = reference("max_pool")
    out, cache = max_pool_forward_naive(ref["x"], {"pool_height": 2, "pool_width": 2, "stride": 2})
    assert_matches("max_pool_forward_naive out", out, ref["out"])
    assert_matches("max_pool_backward_naive dx", max_pool_backward_naive(ref["dout"], cache), ref["dx"])


@pytest.mark.points(2)
@pytest.mark.parametrize("kind", ["spatial_batchnorm", "spatial_groupnorm"])
def test_spatial_norms_match_reference(reference, kind):
    """spatial batchnorm (train) and groupnorm (G = 2) match the reference."""
    ref = reference(kind)
    if kind == "spatial_batchnorm":
        out, cache = spatial_batchnorm_forward(ref["x"], ref["gamma"], ref["beta"], {"mode": "train"})
        grads = spatial_batchnorm_backward(ref["dout"], cache)
    else:
        out, cache = spatial_groupnorm_forward(ref["x"], ref["gamma"], ref["beta"], 2, {"eps": 1e-5})
        grads = spatial_groupnorm_backward(ref["dout"], cache)
    assert_matches(f"{kind}_forward out", out, ref["out"])
    for name, got in zip(("dx", "dgamma", "dbeta"), grads):
        assert_matches(f"{kind}_backward {name}", got, ref[name])
# END HIDDEN TESTS
