"""Training curves as a PNG, drawn headless (no display or pyplot state needed)."""

from __future__ import annotations

import pathlib

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from solver.checkpoint import atomic_write

__all__ = ["plot_history"]


def plot_history(solver, path):
    """Plot the loss per iteration and train/val accuracy per epoch, and save it as a PNG.

    Args:
        solver: a Solver that has trained (its loss_history and accuracy histories are read).
        path: destination .png file, written atomically.

    Returns:
        The path written, as a pathlib.Path.

    Shape:
        (no arrays)
    """
    for name in ("loss_history", "train_acc_history", "val_acc_history"):
        if not hasattr(solver, name):
            raise TypeError(f"plot_history: solver must be a Solver (it has no {name}), got {type(solver).__name__}.")
    if not solver.loss_history:
        raise ValueError("plot_history: the solver has no loss history yet; call solver.train() first.")
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
