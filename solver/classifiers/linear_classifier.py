"""Linear classifiers trained by minibatch SGD: the base class and its SVM and softmax kinds.

A linear classifier scores a sample x with x W and predicts the class of the largest score.
Append a column of ones to X (the bias trick) to give it biases. ``train`` follows the course:

1. On the first call W is drawn as 0.001 * standard normal, from numpy's global generator
   (so ``np.random.seed`` makes runs repeat) unless the constructor got a ``seed``, in which
   case from a private generator that leaves the global state alone. W takes X's dtype.
2. Each iteration samples a minibatch of batch_size rows *with replacement*, computes the
   loss and its gradient, and steps W -= learning_rate * dW.

Later calls to ``train`` continue from the current W.

Shape letters: N samples, D features (the column of ones included), C classes.
"""

from __future__ import annotations

import numpy as np

from layers.validate import integer, real_number
from solver.classifiers._checks import class_labels, data_matrix, not_empty
from solver.classifiers.linear_svm import svm_loss_vectorized
from solver.classifiers.softmax import softmax_loss_vectorized

__all__ = ["LinearClassifier", "LinearSVM", "Softmax"]

# The standard deviation of the initial weights, the course's choice.
WEIGHT_SCALE = 0.001
# How often verbose training prints the loss, in iterations.
PRINT_EVERY = 100


class LinearClassifier:
    """A linear classifier trained with SGD; subclasses supply ``loss``.

    Args:
        seed: None (the course's convention) draws the initial W and the minibatches from
            numpy's global generator; an int >= 0 or a numpy SeedSequence draws them from a
            private generator instead, so that runs repeat whatever else uses np.random.

    Attributes:
        W: the weights, (D, C); None until the first call to train.
    """

    def __init__(self, seed=None):
        name = type(self).__name__
        if seed is not None and not isinstance(seed, np.random.SeedSequence):
            seed = integer(name, "seed", seed, low=0)
        self.seed = seed
        self.W = None
        self._rng = None if seed is None else np.random.default_rng(seed)

    def __repr__(self):
        weights = "None" if self.W is None else f"{self.W.shape} {self.W.dtype}"
        return f"{type(self).__name__}(seed={self.seed!r}, W={weights})"

    def train(self, X, y, learning_rate=1e-3, reg=1e-5, num_iters=100, batch_size=200, verbose=False):
        """Train W with minibatch stochastic gradient descent.

        Args:
            X: training samples, one per row, floating point (W's dtype once W exists).
            y: integer labels; y[i] = c means X[i] belongs to class c, 0 <= c < C. C is
                max(y) + 1 on the first call and W's column count afterwards.
            learning_rate: the SGD step size, > 0.
            reg: regularization strength, >= 0.
            num_iters: the number of SGD steps, >= 0.
            batch_size: samples per step, drawn with replacement (so it may exceed N).
            verbose: print the loss every 100 iterations.

        Returns:
            loss_history: the minibatch loss of each iteration, a list of num_iters floats.

        Shape:
            X: (N, D)
            y: (N,)
        """
        fn = f"{type(self).__name__}.train"
        if self.W is None:
            X = data_matrix(fn, "X", X)
        else:
            X = data_matrix(fn, "X", X, dtype=self.W.dtype, features=self.W.shape[0])
        not_empty(fn, "X", X)
        num_train, dim = X.shape
        y = class_labels(fn, "y", y, num_train, None if self.W is None else self.W.shape[1])
        learning_rate = real_number(fn, "learning_rate", learning_rate, low=0)
        if learning_rate == 0:
            raise ValueError(f"{fn}: learning_rate must be > 0, got 0.0.")
        reg = real_number(fn, "reg", reg, low=0)
        num_iters = integer(fn, "num_iters", num_iters, low=0)
        batch_size = integer(fn, "batch_size", batch_size, low=1)
        if not isinstance(verbose, (bool, np.bool_)):
            raise TypeError(f"{fn}: verbose must be True or False, got {type(verbose).__name__} {verbose!r}.")
        # np.random (the module) and a Generator share standard_normal and choice.
        rng = np.random if self._rng is None else self._rng
        if self.W is None:
            num_classes = int(np.max(y)) + 1
            self.W = (WEIGHT_SCALE * rng.standard_normal((dim, num_classes))).astype(X.dtype, copy=False)

        loss_history = []
        for it in range(num_iters):
            # Sample batch_size rows with replacement, with rng.choice.
            # BEGIN SOLUTION
            indices = rng.choice(num_train, batch_size, replace=True)  # (batch_size,)
            X_batch, y_batch = X[indices], y[indices]
            # END SOLUTION
            loss, grad = self.loss(X_batch, y_batch, reg)
            loss_history.append(float(loss))
            # Update W with the gradient and the learning rate.
            # BEGIN SOLUTION
            self.W -= learning_rate * grad
            # END SOLUTION
            if verbose and it % PRINT_EVERY == 0:
                print(f"iteration {it} / {num_iters}: loss {loss:f}")
        return loss_history

    def predict(self, X):
        """Predict the class of the largest score x W for each row of X.

        Args:
            X: samples, in W's dtype.

        Returns:
            y_pred: predicted labels in [0, C), int64.

        Shape:
            X: (N, D)
            y_pred: (N,)
        """
        fn = f"{type(self).__name__}.predict"
        if self.W is None:
            raise RuntimeError(f"{fn}: W is not set yet; call train(X, y) first.")
        X = data_matrix(fn, "X", X, dtype=self.W.dtype, features=self.W.shape[0])
        # BEGIN SOLUTION
        y_pred = np.argmax(X @ self.W, axis=1).astype(np.int64)  # (N, C) -> (N,)
        # END SOLUTION
        return y_pred

    def loss(self, X_batch, y_batch, reg):
        """The loss of a minibatch and its gradient with respect to W; subclasses define it.

        Args:
            X_batch: a minibatch of samples, in W's dtype.
            y_batch: their labels.
            reg: regularization strength.

        Returns:
            loss: a scalar of W's dtype.
            dW: gradient with respect to self.W.

        Shape:
            X_batch: (N, D)
            y_batch: (N,)
            dW: (D, C)
        """
        raise NotImplementedError(
            f"{type(self).__name__}.loss: LinearClassifier has no loss of its own; use LinearSVM or "
            f"Softmax, or subclass it and define loss(X_batch, y_batch, reg)."
        )


class LinearSVM(LinearClassifier):
    """A linear classifier trained on the multiclass SVM loss (svm_loss_vectorized)."""

    def loss(self, X_batch, y_batch, reg):
        """The SVM loss of a minibatch and its gradient with respect to W.

        Args:
            X_batch: a minibatch of samples, in W's dtype.
            y_batch: their labels.
            reg: regularization strength.

        Returns:
            loss: a scalar of W's dtype.
            dW: gradient with respect to self.W.

        Shape:
            X_batch: (N, D)
            y_batch: (N,)
            dW: (D, C)
        """
        return svm_loss_vectorized(self.W, X_batch, y_batch, reg)


class Softmax(LinearClassifier):
    """A linear classifier trained on the softmax loss (softmax_loss_vectorized)."""

    def loss(self, X_batch, y_batch, reg):
        """The softmax loss of a minibatch and its gradient with respect to W.

        Args:
            X_batch: a minibatch of samples, in W's dtype.
            y_batch: their labels.
            reg: regularization strength.

        Returns:
            loss: a scalar of W's dtype.
            dW: gradient with respect to self.W.

        Shape:
            X_batch: (N, D)
            y_batch: (N,)
            dW: (D, C)
        """
        return softmax_loss_vectorized(self.W, X_batch, y_batch, reg)
