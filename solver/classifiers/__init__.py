"""Assignment 1's classifiers: k-nearest neighbors, and linear classifiers on the SVM and softmax losses.

The modules mirror the course's, so only the package name changes in an import:

    from solver.classifiers import KNearestNeighbor, LinearSVM, Softmax
    from solver.classifiers.linear_svm import svm_loss_naive, svm_loss_vectorized
    from solver.classifiers.softmax import softmax_loss_naive, softmax_loss_vectorized

Here the losses regularize with reg * sum(W * W), as the course's assignment 1 does
(the nets use 0.5 * reg * sum(W * W)).
"""

from solver.classifiers.k_nearest_neighbor import KNearestNeighbor
from solver.classifiers.linear_classifier import LinearClassifier, LinearSVM, Softmax
from solver.classifiers.linear_svm import svm_loss_naive, svm_loss_vectorized
from solver.classifiers.softmax import softmax_loss_naive, softmax_loss_vectorized

__all__ = [
    "KNearestNeighbor", "LinearClassifier", "LinearSVM", "Softmax",
    "svm_loss_naive", "svm_loss_vectorized", "softmax_loss_naive", "softmax_loss_vectorized",
]
