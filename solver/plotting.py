"""Pictures of training: the curves as a PNG, drawn headless (no display or pyplot state
needed), and the course's grid of first-layer weights or conv filters.

Shape letters: N tiles (filters or units), H W tile size, C colour channels.
"""

from __future__ import annotations

import math
import pathlib

import numpy as np

from data.files import atomic_write
from layers.validate import float_array, integer, real_number

__all__ = ["plot_history", "visualize_grid"]


def visualize_grid(Xs, ubound=255.0, padding=1):
    """Lay N images out as one image: a square grid of tiles, each rescaled to [0, ubound].

    The course's picture of what a net learned: conv filters ``W1.transpose(0, 2, 3, 1)``, or the
    first affine layer's columns ``W1.reshape(3, 32, 32, -1).transpose(3, 1, 2, 0)``; show it with
    ``plt.imshow(grid.astype("uint8"))``. The grid has ceil(sqrt(N)) tiles a side, filled row by
    row; padding and unused tiles are 0. Each tile is stretched on its own, its minimum to 0 and
    its maximum to ubound; a constant tile (where the course's code divides by zero) is all 0.

    Args:
        Xs: the images, a floating-point array (not modified).
        ubound: the top of the range each tile is stretched to, > 0.
        padding: pixels of 0 between neighbouring tiles, an int >= 0.

    Returns:
        grid: a new array of Xs's dtype.

    Shape:
        Xs: (N, H, W, C)
        grid: (g * H + (g - 1) * padding, g * W + (g - 1) * padding, C) with g = ceil(sqrt(N))
    """
    fn = "visualize_grid"
    Xs = float_array(fn, "Xs", Xs, ndim=4)
    N, H, W, C = Xs.shape
    if N == 0:
        raise ValueError(f"{fn}: Xs holds no images (shape {Xs.shape}); it must be (N, H, W, C) with N >= 1.")
    ubound = real_number(fn, "ubound", ubound, low=0.0)
    if ubound == 0:
        raise ValueError(f"{fn}: ubound must be > 0, got 0.0.")
    padding = integer(fn, "padding", padding, low=0)
    g = math.ceil(math.sqrt(N))
    step_h, step_w = H + padding, W + padding
    grid = np.zeros((g * H + (g - 1) * padding, g * W + (g - 1) * padding, C), dtype=Xs.dtype)
    low = Xs.min(axis=(1, 2, 3), keepdims=True)                  # (N, 1, 1, 1)
    span = Xs.max(axis=(1, 2, 3), keepdims=True) - low
    scale = np.divide(ubound, span, out=np.zeros_like(span), where=span > 0)
    tiles = (Xs - low) * scale                                    # (N, H, W, C), each in [0, ubound]
    for n in range(N):
        row, col = divmod(n, g)
        grid[row * step_h:row * step_h + H, col * step_w:col * step_w + W] = tiles[n]
    return grid


def plot_history(solver, path):
    """Plot the loss per iteration and train/val accuracy per epoch, and save it as a PNG.

    Args:
        solver: a Solver that has trained (its loss_history and accuracy histories are read).
        path: destination .png file, written atomically.

    Returns:
        The path written, as a pathlib.Path.
    """
    for name in ("loss_history", "train_acc_history", "val_acc_history"):
        if not hasattr(solver, name):
            raise TypeError(f"plot_history: solver must be a Solver (it has no {name}), got {type(solver).__name__}.")
    if not solver.loss_history:
        raise ValueError("plot_history: the solver has no loss history yet; call solver.train() first.")
    # matplotlib is imported here, not with the module: importing solver (the grader does, for its
    # reference layers) then costs no matplotlib import (0.75 s)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(range(1, len(solver.loss_history) + 1), solver.loss_history, ".", markersize=2, alpha=0.6)
    ax_loss.set(title="Training loss", xlabel="iteration", ylabel="loss")
    epochs = range(len(solver.train_acc_history))
    ax_acc.plot(epochs, solver.train_acc_history, "o-", label="train")
    ax_acc.plot(epochs, solver.val_acc_history, "o-", label="val")
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    ax_acc.legend(loc="lower right")
    path = pathlib.Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100)
    return path
