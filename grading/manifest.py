"""What the student version holds and what students may change: the one place these lists live.

STUDENT_FILES are the files with solution regions; the autograder copies exactly these from a
submission and nothing else (a test checks that this list and the marked files agree).
"""

from __future__ import annotations

# Files students edit, relative to the project root.
STUDENT_FILES = (
    "layers/affine.py",
    "layers/activations.py",
    "layers/losses.py",
    "layers/normalization.py",
    "layers/dropout.py",
    "layers/conv.py",
    "layers/pooling.py",
    "layers/spatial_norm.py",
    "layers/rnn.py",
    "layers/lstm.py",
    "layers/temporal.py",
    "layers/attention.py",
    "layers/transformer.py",
    "solver/captioning.py",
    "solver/optim.py",
    "solver/nets.py",
    "solver/cnn.py",
    "solver/classifiers/k_nearest_neighbor.py",
    "solver/classifiers/linear_classifier.py",
    "solver/classifiers/linear_svm.py",
    "solver/classifiers/softmax.py",
)

# What the student version is made of (directories are copied recursively).
RELEASE_PATHS = (
    "layers",
    "solver",
    "gradcheck",
    "data",
    "notebooks",
    "benchmarks",
    "setup.cfg",
    "pyproject.toml",
)

# Never copied, wherever they appear under RELEASE_PATHS.
EXCLUDE_NAMES = ("__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".DS_Store")
EXCLUDE_SUFFIXES = (".pyc", ".pyo", ".npz", ".pkl", ".pickle")

# The graded tests (points-marked, some hidden) and the reference data they compare against.
GRADED_TESTS_DIR = "grading/graded_tests"
REFERENCE_DIR = "grading/reference"
REFERENCE_HASHES = "grading/reference/SHA256SUMS"
# Where the graded tests' public part goes in the student version.
STUDENT_TESTS_DIR = "tests"
STUDENT_README = "grading/student_README.md"
# Files of the student version written from a template instead of copied: path there -> template here.
# The Makefile's @STUDENT_FILES@ becomes the list above, for `make submission`.
STUDENT_TEMPLATES = {
    "README.md": STUDENT_README,
    "Makefile": "grading/student_Makefile",
    "notebooks/README.md": "grading/student_notebooks_README.md",
}
# The file at the top of every release; `release --force` replaces only a folder holding it.
RELEASE_MARKER = ".chainrule-release"

# Gradescope visibility of public and hidden tests.
PUBLIC_VISIBILITY = "visible"
HIDDEN_VISIBILITY = "after_published"

# Limits for each graded test run (overridable on the command line).
TEST_TIMEOUT_S = 30.0
MEMORY_LIMIT_MB = 4096
