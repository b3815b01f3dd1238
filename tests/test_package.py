"""Tests of the package itself: public names, docstrings, metadata and pytest markers."""

import configparser
import re
import inspect
import pathlib

import pytest

import data
import gradcheck
import layers
import solver
from solver import checkpoint, cnn, optim, plotting, schedules

pytestmark = pytest.mark.package

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _public_functions(module):
    return [getattr(module, name) for name in module.__all__ if inspect.isfunction(getattr(module, name))]


def test_every_layer_comes_in_forward_backward_pairs():
    """Each *_forward exported by layers has its *_backward, and the other way round."""
    names = set(layers.__all__)
    forwards = {n.replace("_forward", "") for n in names if "_forward" in n}
    backwards = {n.replace("_backward", "") for n in names if "_backward" in n and not n.endswith("_alt")}
    assert forwards == backwards
    assert {"add", "multiply", "max", "copy", "relu", "leaky_relu", "sigmoid", "tanh", "affine", "affine_relu",
            "batchnorm", "layernorm", "dropout", "conv_naive", "conv_fast", "max_pool_naive", "max_pool_fast",
            "spatial_batchnorm", "spatial_groupnorm", "conv_relu", "conv_relu_pool", "conv_bn_relu"} <= forwards


DOCUMENTED_MODULES = [layers, gradcheck, data, optim, schedules, checkpoint, plotting, cnn]


@pytest.mark.parametrize("module", DOCUMENTED_MODULES, ids=lambda m: m.__name__)
def test_public_functions_document_args_returns_and_shapes(module):
    """Every public function's docstring has Args, Returns and Shape blocks (DESIGN.md)."""
    missing = []
    for fn in _public_functions(module):
        doc = inspect.getdoc(fn) or ""
        for block in ("Args:", "Returns:", "Shape:"):
            if block not in doc:
                missing.append(f"{fn.__module__}.{fn.__name__} lacks {block}")
    assert not missing, "\n".join(missing)


def test_solver_exports_the_course_names():
    """`from solver import Solver, TwoLayerNet, FullyConnectedNet, optim` works, as in the course."""
    assert {"Solver", "TwoLayerNet", "FullyConnectedNet", "optim"} <= set(solver.__all__)
    assert solver.optim is optim


def test_setup_cfg_declares_the_core_dependencies_only():
    """Runtime dependencies are numpy, scipy and matplotlib; pytest is an extra."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["metadata"]["name"] == "chainrule"
    assert cfg["options"]["python_requires"] == ">=3.10"
    requires = [line.split(">")[0].split("=")[0].strip() for line in cfg["options"]["install_requires"].split("\n") if line.strip()]
    assert sorted(requires) == ["matplotlib", "numpy", "scipy"]
    assert "pytest" in cfg["options.extras_require"]["test"]


def test_every_marker_used_in_tests_is_registered():
    """Each pytest.mark.<topic> used under tests/ is registered in setup.cfg, so -m works."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    registered = {line.split(":")[0].strip() for line in cfg["tool:pytest"]["markers"].split("\n") if line.strip()}

    used = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        used |= set(re.findall(r"pytest\.mark\.([a-z_]+)", path.read_text()))
    used -= {"parametrize", "skipif", "xfail", "filterwarnings", "usefixtures", "skip"}
    assert used <= registered, f"unregistered markers: {sorted(used - registered)}"


def test_readme_python_examples_run():
    """Every ```python block in README.md executes without error, in order."""

    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README.md has no python examples"
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md python block {i}", "exec"), {})
