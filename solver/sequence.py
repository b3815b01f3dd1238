"""The Solver for sequence models: captioning (solver.captioning) and character language models
(solver.charlm).

    solver = SequenceSolver(model, {"X_train": features, "y_train": captions, "X_val": ..., "y_val": ...},
                            update_rule="adam", optim_config={"learning_rate": 5e-3}, grad_clip=5.0,
                            num_epochs=10, batch_size=100, seed=0, on_epoch=print_samples)

It is the Solver (solver.solver) with two differences: the targets ``y`` are integer sequences of
shape (N, T) rather than class labels, and accuracy is what the model's ``score(X, y)`` counts
((hits, count): exact captions for the captioner, next characters for a language model), summed
over batches. Everything else is the Solver's: shuffled epochs, update rules and schedules,
gradient clipping (``grad_clip``), the best parameters by validation accuracy, bit-for-bit
reproducibility from the seed, checkpoints and resuming, and progress.

Shape letters: N sequences (or images), T time steps.
"""

from __future__ import annotations

import numpy as np

from layers.validate import integer
from solver.solver import Solver

__all__ = ["SequenceSolver"]


class SequenceSolver(Solver):
    """Trains a sequence model; takes the Solver's options (solver.solver.OPTIONS) and ``on_epoch``.

    Args:
        model: has ``params``, ``loss(X, y) -> (loss, grads)`` and ``score(X, y) -> (hits, count)``.
        data: dict with X_train, y_train, X_val, y_val; y_* integer arrays of shape (N, T).
        on_epoch: None, or a callable(solver) run after each epoch's accuracies are recorded (and
            before the first epoch), e.g. to print samples.
        **options: any of the Solver's options.

    Shape:
        X_*: (N, ...); y_*: (N, T)
    """

    def __init__(self, model, data, on_epoch=None, **options):
        if not callable(getattr(model, "score", None)):
            raise TypeError(f"SequenceSolver: model must have a score(X, y) method returning (hits, count), got "
                            f"{type(model).__name__}.")
        if on_epoch is not None and not callable(on_epoch):
            raise TypeError(f"SequenceSolver: on_epoch must be None or a callable(solver), got {on_epoch!r}.")
        self.on_epoch = on_epoch
        super().__init__(model, data, **options)

    def _check_targets(self, split, X, y):
        """data['y_<split>'] checked against data['X_<split>']: one integer sequence per sample."""
        if not isinstance(y, np.ndarray) or not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"SequenceSolver: data['y_{split}'] must be an integer array of shape (N, T), got "
                            f"{getattr(y, 'dtype', type(y).__name__)}.")
        if y.ndim != 2 or y.shape[0] != X.shape[0]:
            raise ValueError(f"SequenceSolver: data['y_{split}'] must have shape ({X.shape[0]}, T), one "
                             f"sequence per row of data['X_{split}'], got {y.shape}.")

    def check_accuracy(self, X, y, num_samples=None, batch_size=100):
        """The fraction the model's score counts as hits, over a subset or all of (X, y), in batches.

        Args:
            X: inputs; y: target sequences.
            num_samples: if set and smaller than N, score a random subset of this size (from the
                Solver's private evaluation generator).
            batch_size: sequences per call of model.score.

        Returns:
            hits / count, a Python float in [0, 1].

        Shape:
            X: (N, ...); y: (N, T)
        """
        fn = "SequenceSolver.check_accuracy"
        if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray) or X.shape[:1] != y.shape[:1] or not len(X):
            raise ValueError(f"{fn}: X and y must be non-empty arrays with the same number of rows, got "
                             f"{getattr(X, 'shape', type(X).__name__)} and {getattr(y, 'shape', type(y).__name__)}.")
        num_samples = integer(fn, "num_samples", num_samples, low=1, allow_none=True)
        batch_size = integer(fn, "batch_size", batch_size, low=1)
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            idx = np.sort(self._eval_rng.choice(N, num_samples, replace=False))
            X, y, N = X[idx], y[idx], num_samples
        hits = count = 0
        for start in range(0, N, batch_size):
            h, c = self.model.score(X[start:start + batch_size], y[start:start + batch_size])
            hits, count = hits + h, count + c
        return hits / count

    def _record_accuracy(self, progress):
        super()._record_accuracy(progress)
        if self.on_epoch is not None:
            self.on_epoch(self)
