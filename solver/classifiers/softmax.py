"""The softmax (cross-entropy) loss of a linear classifier and its gradient with respect to W.

For scores s = x W of one sample with label y,

    L_i = -log( exp(s_y) / sum_j exp(s_j) ) = log(sum_j exp(s_j)) - s_y,

and the loss is the mean of L_i over the minibatch plus reg * sum(W * W), the course's
assignment-1 convention (gradient 2 * reg * W). The gradient of L_i with respect to column j
of W is (p_j - [j == y]) x, with p the softmax probabilities.

Both versions subtract each sample's largest score before exponentiating: the probabilities
do not change, and exp never overflows (a score of 1000 would otherwise give inf / inf).

Shape letters: N samples in the minibatch, D features (the bias trick's column of ones
included), C classes.
"""

from __future__ import annotations

import numpy as np

from solver.classifiers._checks import loss_inputs

__all__ = ["softmax_loss_naive", "softmax_loss_vectorized"]


def softmax_loss_naive(W, X, y, reg):
    """Softmax loss and gradient, with loops over samples and classes.

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
    W, X, y, reg = loss_inputs("softmax_loss_naive", W, X, y, reg)
    num_train, num_classes = X.shape[0], W.shape[1]
    loss = W.dtype.type(0)
    dW = np.zeros_like(W)
    # BEGIN SOLUTION
    for i in range(num_train):
        scores = X[i] @ W  # (C,)
        scores = scores - np.max(scores)  # the max shift: exp(scores) <= 1
        exp_scores = np.exp(scores)
        normalizer = np.sum(exp_scores)
        loss += np.log(normalizer) - scores[y[i]]
        for j in range(num_classes):
            probability = exp_scores[j] / normalizer
            dW[:, j] += (probability - 1 if j == y[i] else probability) * X[i]
    loss /= num_train
    dW /= num_train
    loss += reg * np.sum(W * W)
    dW += 2 * reg * W
    # END SOLUTION
    return W.dtype.type(loss), dW


def softmax_loss_vectorized(W, X, y, reg):
    """Softmax loss and gradient, without Python loops; equal to softmax_loss_naive.

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
    W, X, y, reg = loss_inputs("softmax_loss_vectorized", W, X, y, reg)
    num_train = X.shape[0]
    # BEGIN SOLUTION
    rows = np.arange(num_train)
    scores = X @ W  # (N, C)
    shifted = scores - np.max(scores, axis=1, keepdims=True)  # the max shift, per sample
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))  # (N, C)
    loss = -np.sum(log_probs[rows, y]) / num_train + reg * np.sum(W * W)
    dscores = np.exp(log_probs)  # (N, C) probabilities
    dscores[rows, y] -= 1
    dW = X.T @ dscores / num_train + 2 * reg * W  # (D, N) @ (N, C) -> (D, C)
    # END SOLUTION
    return W.dtype.type(loss), dW
