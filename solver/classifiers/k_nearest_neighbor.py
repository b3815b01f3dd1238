"""k-nearest-neighbor classification with the L2 (Euclidean) distance.

Training only memorizes the data. A prediction computes the distance from each sample to
every memorized one, takes the k closest, and returns the label they vote for most often;
a tie between labels goes to the smaller label, as in the course.

The distance matrix is computed three ways that must agree: two Python loops, one loop over
the samples, and none. The loop-free version expands the square,

    ||x - t||^2 = ||x||^2 + ||t||^2 - 2 x . t,

so one matrix product does the work. Its rounding error is about eps * ||x||^2 on the squared
distance, so it agrees with the loops to ~1e-14 on well-separated points but only to ~1e-8
between points that (nearly) coincide; it never goes negative (clipped at 0).

Shape letters: N samples to classify (rows of X), N_train memorized samples (rows of
X_train), D features, C classes (the distinct labels of y_train, any ints >= 0).
"""

from __future__ import annotations

import numpy as np

from layers.validate import integer
from solver.classifiers._checks import class_labels, data_matrix, not_empty

__all__ = ["KNearestNeighbor"]


class KNearestNeighbor:
    """A kNN classifier with the L2 distance: ``train`` memorizes, ``predict`` votes.

    Attributes (set by train):
        X_train: the memorized samples, (N_train, D), stored as given (not copied).
        y_train: their labels, (N_train,).
    """

    def __init__(self):
        self.X_train = None
        self.y_train = None

    def __repr__(self):
        if self.X_train is None:
            return "KNearestNeighbor(untrained)"
        return (f"KNearestNeighbor(X_train={self.X_train.shape} {self.X_train.dtype}, "
                f"labels={np.unique(self.y_train).size})")

    def train(self, X, y):
        """Memorize the training data; kNN has nothing else to learn.

        Args:
            X: training samples, one per row, floating point.
            y: their integer labels, each >= 0.

        Returns:
            None.

        Shape:
            X: (N_train, D)
            y: (N_train,)
        """
        fn = "KNearestNeighbor.train"
        X = data_matrix(fn, "X", X)
        not_empty(fn, "X", X)
        y = class_labels(fn, "y", y, X.shape[0])
        self.X_train = X
        self.y_train = y

    def predict(self, X, k=1, num_loops=0):
        """Predict a label for each row of X from its k nearest training samples.

        Args:
            X: samples to classify, with X_train's dtype and number of features.
            k: how many neighbors vote, 1 <= k <= N_train.
            num_loops: which distance function to use: 0, 1 or 2 Python loops (same result).

        Returns:
            y_pred: the predicted labels, with y_train's dtype.

        Shape:
            X: (N, D)
            y_pred: (N,)
        """
        fn = "KNearestNeighbor.predict"
        self._check_trained(fn)
        if isinstance(num_loops, (bool, np.bool_)) or num_loops not in (0, 1, 2):
            raise ValueError(f"{fn}: num_loops must be 0, 1 or 2, got {num_loops!r}.")
        k = integer(fn, "k", k, low=1, high=self.X_train.shape[0])
        distances = {0: self.compute_distances_no_loops, 1: self.compute_distances_one_loop,
                     2: self.compute_distances_two_loops}[num_loops]
        return self.predict_labels(distances(X), k=k)

    def compute_distances_two_loops(self, X):
        """L2 distances from each row of X to each training sample, with a loop over both.

        Args:
            X: samples, with X_train's dtype and number of features.

        Returns:
            dists: dists[i, j] = ||X[i] - X_train[j]||, in X's dtype.

        Shape:
            X: (N, D)
            dists: (N, N_train)
        """
        X = self._check_samples("KNearestNeighbor.compute_distances_two_loops", X)
        num_test, num_train = X.shape[0], self.X_train.shape[0]
        dists = np.zeros((num_test, num_train), dtype=X.dtype)
        # BEGIN SOLUTION
        for i in range(num_test):
            for j in range(num_train):
                difference = X[i] - self.X_train[j]  # (D,)
                dists[i, j] = np.sqrt(np.sum(difference * difference))
        # END SOLUTION
        return dists

    def compute_distances_one_loop(self, X):
        """L2 distances from each row of X to each training sample, with a loop over X only.

        Args:
            X: samples, with X_train's dtype and number of features.

        Returns:
            dists: dists[i, j] = ||X[i] - X_train[j]||, in X's dtype.

        Shape:
            X: (N, D)
            dists: (N, N_train)
        """
        X = self._check_samples("KNearestNeighbor.compute_distances_one_loop", X)
        num_test, num_train = X.shape[0], self.X_train.shape[0]
        dists = np.zeros((num_test, num_train), dtype=X.dtype)
        # BEGIN SOLUTION
        for i in range(num_test):
            differences = self.X_train - X[i]  # (N_train, D): X[i] broadcast over the rows
            dists[i] = np.sqrt(np.sum(differences * differences, axis=1))
        # END SOLUTION
        return dists

    def compute_distances_no_loops(self, X):
        """L2 distances from each row of X to each training sample, without Python loops.

        Expands ||x - t||^2 into ||x||^2 + ||t||^2 - 2 x . t (see the module docstring for
        its precision).

        Args:
            X: samples, with X_train's dtype and number of features.

        Returns:
            dists: dists[i, j] = ||X[i] - X_train[j]||, in X's dtype.

        Shape:
            X: (N, D)
            dists: (N, N_train)
        """
        X = self._check_samples("KNearestNeighbor.compute_distances_no_loops", X)
        # BEGIN SOLUTION
        sample_norms = np.sum(X * X, axis=1)[:, None]  # (N, 1)
        train_norms = np.sum(self.X_train * self.X_train, axis=1)[None, :]  # (1, N_train)
        squared = sample_norms + train_norms - 2 * (X @ self.X_train.T)  # (N, N_train)
        # Rounding can leave tiny negative values where two points coincide.
        dists = np.sqrt(np.maximum(squared, 0))
        # END SOLUTION
        return dists

    def predict_labels(self, dists, k=1):
        """The label most common among each row's k nearest training samples.

        Neighbors at equal distance are taken in training order (a stable sort); among labels
        with equally many votes the smaller label wins.

        Args:
            dists: distances from each sample to each training sample, as computed above.
            k: how many neighbors vote, 1 <= k <= N_train.

        Returns:
            y_pred: y_pred[i] is the predicted label of sample i, with y_train's dtype.

        Shape:
            dists: (N, N_train)
            y_pred: (N,)
        """
        fn = "KNearestNeighbor.predict_labels"
        self._check_trained(fn)
        num_train = self.X_train.shape[0]
        dists = data_matrix(fn, "dists", dists, features=num_train)
        k = integer(fn, "k", k, low=1, high=num_train)
        num_test = dists.shape[0]
        # BEGIN SOLUTION
        # Votes are counted per distinct label; np.unique sorts them, so the first of the
        # tied maxima that argmax returns is the smallest label.
        classes, codes = np.unique(self.y_train, return_inverse=True)  # codes: (N_train,)
        nearest = np.argsort(dists, axis=1, kind="stable")[:, :k]  # (N, k) training indices
        votes = np.zeros((num_test, classes.size), dtype=np.int64)  # (N, number of distinct labels)
        np.add.at(votes, (np.arange(num_test)[:, None], codes[nearest]), 1)
        y_pred = classes[np.argmax(votes, axis=1)]  # (N,), y_train's dtype
        # END SOLUTION
        return y_pred

    def _check_trained(self, fn):
        if self.X_train is None:
            raise RuntimeError(f"{fn}: the classifier has no training data; call train(X, y) first.")

    def _check_samples(self, fn, X):
        self._check_trained(fn)
        return data_matrix(fn, "X", X, dtype=self.X_train.dtype, features=self.X_train.shape[1])
