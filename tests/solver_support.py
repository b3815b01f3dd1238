"""What tests/test_solver.py and tests/test_resume.py share: small digit sets, Solvers built the
same way, and SpyModel, a model that records the batches it is given.

Shape letters: N samples, D features, C classes.
"""

import numpy as np

from solver import FullyConnectedNet, Solver


def small_data(digits, n_train=200, n_val=60):
    """The first n_train training and n_val validation digits."""
    return {"X_train": digits["X_train"][:n_train], "y_train": digits["y_train"][:n_train],
            "X_val": digits["X_val"][:n_val], "y_val": digits["y_val"][:n_val]}


def make_solver(digits, seed=0, model_seed=0, **options):
    """A Solver training a 64-32-10 FullyConnectedNet with Adam on small_data(digits); options override."""
    model = FullyConnectedNet([32], input_dim=64, num_classes=10, weight_scale="he", seed=model_seed)
    settings = dict(update_rule="adam", optim_config={"learning_rate": 1e-3}, batch_size=32, num_epochs=3,
                    verbose=False, seed=seed)
    settings.update(options)
    return Solver(model, small_data(digits), **settings)


class SpyModel:
    """A linear softmax model that records the first feature (the sample id) of every batch."""

    def __init__(self, num_features, num_classes=3, nan_at=None):
        self.params = {"W": np.zeros((num_features, num_classes)), "b": np.zeros(num_classes)}
        self.num_classes = num_classes
        self.batches, self.eval_batches = [], []
        self.calls, self.nan_at = 0, nan_at

    def loss(self, X, y=None):
        scores = X @ self.params["W"] + self.params["b"]
        if y is None:
            self.eval_batches.append(len(X))
            return scores
        self.calls += 1
        self.batches.append(X[:, 0].astype(int).tolist())
        if self.nan_at is not None and self.calls >= self.nan_at:
            return float("nan"), {k: np.zeros_like(v) for k, v in self.params.items()}
        return 0.0, {"W": np.full_like(self.params["W"], 0.01), "b": np.full_like(self.params["b"], 0.01)}


def spy_data(n_train=23, n_val=5):
    """n_train samples whose features are their ids (for SpyModel) and n_val constant ones."""
    X = np.arange(n_train, dtype=np.float64)[:, None] * np.ones((1, 2))
    return {"X_train": X, "y_train": np.arange(n_train) % 3,
            "X_val": np.ones((n_val, 2)), "y_val": np.zeros(n_val, dtype=np.int64)}


def dropout_solver(digits, seed, model_seed=0, **options):
    """A Solver training a 64-32-10 net with dropout_keep_ratio=0.5 on 96 digits, for 2 epochs."""
    model = FullyConnectedNet([32], input_dim=64, num_classes=10, dropout_keep_ratio=0.5, weight_scale="he",
                              seed=model_seed)
    return Solver(model, small_data(digits, n_train=96), update_rule="adam", batch_size=32, num_epochs=2,
                  verbose=False, seed=seed, **options)
