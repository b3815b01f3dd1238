"""chainrule datasets.

Shipped, no download: ``load_digits`` (real 8x8 handwritten digits; see data/README.md) and
``make_spiral`` (the classic toy set). From the official formats: ``load_cifar10`` /
``get_cifar10_data`` (course names ``load_CIFAR10`` / ``get_CIFAR10_data``), ``load_mnist`` /
``get_mnist_data`` and ``load_fashion_mnist`` / ``get_fashion_mnist_data``; fetch them with
``python -m data.download NAME``. Sequences, offline: ``load_digit_captions`` (strips of the
shipped digits captioned with their names, data.captions) and ``load_python_text`` (the Python
standard library's own sources as a character corpus, data.text).

The names below load their module on first use (``from data import load_digits`` works as
usual), so that ``data.files``, which solver, grading and benchmarks import for atomic writes
and the project root, costs no numpy import.
"""

import importlib

# Each public name and the module that defines it.
_HOMES = {
    "DIGITS_PATH": "data.digits", "DIGITS_SHA256": "data.digits", "load_digits": "data.digits",
    "make_spiral": "data.digits",
    "CIFAR10_CLASSES": "data.cifar10", "load_cifar10": "data.cifar10", "get_cifar10_data": "data.cifar10",
    "load_CIFAR10": "data.cifar10", "get_CIFAR10_data": "data.cifar10",
    "FASHION_MNIST_CLASSES": "data.mnist", "read_idx": "data.mnist", "load_mnist": "data.mnist",
    "get_mnist_data": "data.mnist", "load_fashion_mnist": "data.mnist", "get_fashion_mnist_data": "data.mnist",
    "data_dir": "data.paths",
    "load_digit_captions": "data.captions", "decode_captions": "data.captions",
    "load_python_text": "data.text", "unigram_bits_per_char": "data.text", "random_windows": "data.text",
    "consecutive_windows": "data.text",
}

__all__ = list(_HOMES)


def __getattr__(name):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'data' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
