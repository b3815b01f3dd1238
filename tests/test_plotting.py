"""Tests for solver.plotting: the course's visualize_grid (plot_history is tested with the Solver)."""

import numpy as np
import pytest

import solver
from solver.plotting import visualize_grid

pytestmark = pytest.mark.solver

# Rescaling a tile to [0, ubound] is a subtraction and one multiplication: a few ulps.
RESCALE_RTOL = 1e-6


def test_visualize_grid_places_rescaled_tiles_row_by_row():
    """Three 2x2 tiles fill a 2x2 grid with 1 pixel of padding; each spans [0, ubound]; the rest is 0."""
    Xs = np.array([[[1.0, 3.0], [2.0, 5.0]], [[-1.0, 0.0], [1.0, 3.0]], [[7.0, 7.0], [7.0, 7.0]]])[..., None]
    grid = visualize_grid(Xs, ubound=8.0, padding=1)
    expected = np.zeros((5, 5, 1))
    expected[0:2, 0:2, 0] = [[0.0, 4.0], [2.0, 8.0]]
    expected[0:2, 3:5, 0] = [[0.0, 2.0], [4.0, 8.0]]
    # The third tile is constant: 0, where the course's code divides by zero.
    np.testing.assert_allclose(grid, expected, rtol=RESCALE_RTOL, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_visualize_grid_shows_conv_filters_in_their_dtype_without_touching_them(dtype):
    """32 filters (F, C, HH, WW) as (F, HH, WW, C): a 6x6 grid of tiles in [0, 255], in Xs's dtype."""
    W1 = np.random.default_rng(0).standard_normal((32, 3, 7, 7)).astype(dtype)
    tiles = W1.transpose(0, 2, 3, 1)
    before = tiles.copy()
    grid = visualize_grid(tiles)
    assert grid.shape == (6 * 7 + 5, 6 * 7 + 5, 3) and grid.dtype == dtype
    assert grid.min() == 0 and grid.max() == pytest.approx(255.0, rel=RESCALE_RTOL)
    np.testing.assert_array_equal(tiles, before)
    assert solver.visualize_grid is visualize_grid


def test_visualize_grid_rejects_bad_arguments():
    """Xs must be a non-empty (N, H, W, C) float array; ubound > 0; padding an int >= 0."""
    with pytest.raises(ValueError, match=r"visualize_grid: Xs must be 4-D, got shape \(3, 4, 4\)"):
        visualize_grid(np.zeros((3, 4, 4)))
    with pytest.raises(TypeError, match=r"visualize_grid: Xs must have a floating-point dtype, got uint8"):
        visualize_grid(np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"visualize_grid: Xs holds no images"):
        visualize_grid(np.zeros((0, 4, 4, 3)))
    with pytest.raises(ValueError, match=r"visualize_grid: ubound must be > 0, got 0.0"):
        visualize_grid(np.ones((2, 4, 4, 3)), ubound=0)
    with pytest.raises(ValueError, match=r"visualize_grid: padding must be an int >= 0, got -1"):
        visualize_grid(np.ones((2, 4, 4, 3)), padding=-1)
