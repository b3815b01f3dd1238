"""chainrule datasets.

Shipped, no download: ``load_digits`` (real 8x8 handwritten digits; see data/README.md) and
``make_spiral`` (the classic toy set). From the official formats: ``load_cifar10`` /
``get_cifar10_data`` (course names ``load_CIFAR10`` / ``get_CIFAR10_data``), ``load_mnist`` /
``get_mnist_data`` and ``load_fashion_mnist`` / ``get_fashion_mnist_data``; fetch them with
``python -m data.download NAME``.
"""

from data.cifar10 import CIFAR10_CLASSES, get_CIFAR10_data, get_cifar10_data, load_CIFAR10, load_cifar10
from data.digits import DIGITS_PATH, DIGITS_SHA256, load_digits, make_spiral
from data.mnist import (
    FASHION_MNIST_CLASSES,
    get_fashion_mnist_data,
    get_mnist_data,
    load_fashion_mnist,
    load_mnist,
    read_idx,
)
from data.paths import data_dir

__all__ = [
    "DIGITS_PATH", "DIGITS_SHA256", "load_digits", "make_spiral",
    "CIFAR10_CLASSES", "load_cifar10", "get_cifar10_data", "load_CIFAR10", "get_CIFAR10_data",
    "FASHION_MNIST_CLASSES", "read_idx", "load_mnist", "get_mnist_data", "load_fashion_mnist",
    "get_fashion_mnist_data", "data_dir",
]
