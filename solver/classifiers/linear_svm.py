"""The multiclass SVM (hinge) loss of a linear classifier and its gradient with respect to W.

For scores s = x W of one sample with label y and a margin of 1,

    L_i = sum over j != y of max(0, s_j - s_y + 1),

and the loss is the mean of L_i over the minibatch plus reg * sum(W * W). This is the
course's assignment-1 convention (its gradient is 2 * reg * W); chainrule's nets use
0.5 * reg * sum(W * W) instead (DESIGN.md), and so did the course before 2018.

Each class j whose margin is positive adds x to column j of the gradient and takes it from
column y. The naive version loops over samples and classes; the vectorized one does the same
with one matrix product and no Python loop.

Shape letters: N samples in the minibatch, D features (the bias trick's column of ones
included), C classes.
"""

from __future__ import annotations

import numpy as np

from solver.classifiers._checks import loss_inputs

__all__ = ["svm_loss_naive", "svm_loss_vectorized"]


def svm_loss_naive(W, X, y, reg):
    """Multiclass SVM loss and gradient, with loops over samples and classes.

    Args:
        W: weights.
        X: a minibatch of samples, in W's dtype.
        y: integer labels; y[i] = c means X[i] belongs to class c, 0 <= c < C.
        reg: regularization strength (the loss adds reg * sum(W * W)).

    Returns:
        loss: a scalar of W's dtype.
        dW: gradient of the loss with respect to W, in W's dtype.

    Shape:
        W: (D, C)
        X: (N, D)
        y: (N,)
        dW: (D, C)
    """
    W, X, y, reg = loss_inputs("svm_loss_naive", W, X, y, reg)
    num_train, num_classes = X.shape[0], W.shape[1]
    loss = W.dtype.type(0)
    dW = np.zeros_like(W)
    # BEGIN SOLUTION
    for i in range(num_train):
        scores = X[i] @ W  # (C,)
        for j in range(num_classes):
            if j == y[i]:
                continue
            margin = scores[j] - scores[y[i]] + 1
            if margin > 0:
                loss += margin
                dW[:, j] += X[i]
                dW[:, y[i]] -= X[i]
    loss /= num_train
    dW /= num_train
    loss += reg * np.sum(W * W)
    dW += 2 * reg * W
    # END SOLUTION
    return W.dtype.type(loss), dW


def svm_loss_vectorized(W, X, y, reg):
    """Multiclass SVM loss and gradient, without Python loops; equal to svm_loss_naive.

    Args:
        W: weights.
        X: a minibatch of samples, in W's dtype.
        y: integer labels; y[i] = c means X[i] belongs to class c, 0 <= c < C.
        reg: regularization strength (the loss adds reg * sum(W * W)).

    Returns:
        loss: a scalar of W's dtype.
        dW: gradient of the loss with respect to W, in W's dtype.

    Shape:
        W: (D, C)
        X: (N, D)
        y: (N,)
        dW: (D, C)
    """
    W, X, y, reg = loss_inputs("svm_loss_vectorized", W, X, y, reg)
    num_train = X.shape[0]
    # BEGIN SOLUTION
    rows = np.arange(num_train)
    scores = X @ W  # (N, C)
    margins = np.maximum(scores - scores[rows, y][:, None] + 1, 0)  # (N, C)
    margins[rows, y] = 0  # the true class is not its own competitor
    loss = np.sum(margins) / num_train + reg * np.sum(W * W)
    # dL/dscores: +1 for each class over the margin, minus their count at the true class.
    dscores = (margins > 0).astype(W.dtype)  # (N, C)
    dscores[rows, y] = -np.sum(dscores, axis=1)
    dW = X.T @ dscores / num_train + 2 * reg * W  # (D, N) @ (N, C) -> (D, C)
    # END SOLUTION
    return W.dtype.type(loss), dW
