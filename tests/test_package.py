"""Tests of the package itself: public names, docstrings, metadata, pytest markers, the Makefile and the docs."""

import configparser
import inspect
import os
import pathlib
import re
import subprocess

import pytest

from data.files import project_root

import data
import gradcheck
import layers
import solver
from solver import checkpoint, cnn, optim, plotting, schedules

pytestmark = pytest.mark.package

ROOT = project_root()


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


# A docstring section that says only this informs no one: the section is left out instead.
PLACEHOLDERS = re.compile(r"^\s*(Shape|Args|Returns):\n\s*\((no arrays|none|shapes only|whatever[^)]*)\)\s*$",
                          re.MULTILINE)
# Words that say a function takes or returns arrays, so its docstring needs a Shape block.
ARRAY_WORDS = re.compile(r"\b(arrays?|ndarray|matrix|batch)\b|\(N, ", re.IGNORECASE)


def _section(doc, name):
    """The text of one Google-style section of a docstring ("" when absent)."""
    match = re.search(rf"^{name}:\n((?:[ \t]+.*\n?|\n)*)", doc, re.MULTILINE)
    return match.group(1) if match else ""


@pytest.mark.parametrize("module", DOCUMENTED_MODULES, ids=lambda m: m.__name__)
def test_public_functions_document_args_returns_and_shapes(module):
    """Every public function documents Returns, its Args when it takes any, and Shape when it takes
    or returns arrays (DESIGN.md): every layer pair, and whatever its Args or Returns call an array."""
    missing = []
    for fn in _public_functions(module):
        doc = inspect.getdoc(fn) or ""
        name = f"{fn.__module__}.{fn.__name__}"
        takes = [p for p in inspect.signature(fn).parameters if p not in ("self", "cls")]
        wanted = ["Returns:"] + (["Args:"] if takes else [])
        arrays = module is layers or ARRAY_WORDS.search(_section(doc, "Args") + _section(doc, "Returns"))
        wanted += ["Shape:"] if arrays else []
        missing += [f"{name} lacks {block}" for block in wanted if block not in doc]
    assert not missing, "\n".join(missing)


def test_no_docstring_section_is_a_placeholder():
    """No docstring in the project has a section that says only "(no arrays)", "(none)" or the like."""
    found = []
    for path in sorted(ROOT.glob("**/*.py")):
        if ".venv" in path.parts or "build" in path.parts:
            continue
        for match in PLACEHOLDERS.finditer(path.read_text()):
            line = path.read_text()[:match.start()].count("\n") + 1
            found.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0).strip()!r}")
    assert not found, "\n".join(found)


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
    assert "jupyterlab" in cfg["options.extras_require"]["notebooks"]


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


def _python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


# docs/grading.md quotes code that only runs inside the grader (the student fixture) or the library.
DOCS_NOT_RUN = {"grading.md"}


@pytest.mark.parametrize("page", sorted(p.name for p in (ROOT / "docs").glob("*.md") if p.name not in DOCS_NOT_RUN))
def test_docs_python_examples_run(page):
    """Every ```python block of each docs/ page (grading.md aside) executes without error, in order."""
    for i, block in enumerate(_python_blocks(ROOT / "docs" / page)):
        exec(compile(block, f"docs/{page} python block {i}", "exec"), {})


def _table_after(text, heading):
    """The rows of the first Markdown table after `heading`, as lists of cells (header and rule dropped)."""
    lines = text[text.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_training_flag_table_lists_exactly_the_flags_of_the_parser():
    """docs/training.md's `python -m solver` table names every flag build_parser() defines, and no other."""
    from solver.cli import build_parser

    parser = build_parser()
    parsed = {option for action in parser._actions for option in action.option_strings}
    rows = _table_after((ROOT / "docs" / "training.md").read_text(), "## `python -m solver` flags")
    documented = set()
    for first, *_ in rows:
        documented |= {code.split()[0] for code in re.findall(r"`([^`]+)`", first) if code.startswith("-")}
    assert rows and not parsed - documented, f"flags missing from docs/training.md: {sorted(parsed - documented)}"
    assert not documented - parsed, f"docs/training.md lists flags the parser lacks: {sorted(documented - parsed)}"


def test_layers_table_names_every_public_layer_function():
    """docs/layers.md's table names each function layers exports, by its real name, and nothing that is not one."""
    rows = _table_after((ROOT / "docs" / "layers.md").read_text(), "# Layers")
    named = {name for _, functions in rows for name in re.findall(r"`([a-z_]+)[(`]", functions)}
    layer_like = {name for name in named if re.search(r"_(forward|backward|backward_alt|loss)(_naive|_fast)?$", name)}
    assert set(layers.__all__) <= named, f"not in docs/layers.md: {sorted(set(layers.__all__) - named)}"
    assert layer_like <= set(layers.__all__), f"not in layers: {sorted(layer_like - set(layers.__all__))}"


def test_grading_marker_example_is_an_excerpt_of_affine_py():
    """The marker example in docs/grading.md is layers/affine.py's affine_forward, lines elided as `...`."""
    block = next(b for b in _python_blocks(ROOT / "docs" / "grading.md") if "# BEGIN SOLUTION" in b)
    source = (ROOT / "layers" / "affine.py").read_text().splitlines()
    position = 0
    for line in block.splitlines():
        if line.strip().startswith("..."):
            continue
        assert line in source[position:], f"docs/grading.md line not found in order in layers/affine.py: {line!r}"
        position = source.index(line, position) + 1


def _make_dry_run(target, venv):
    # Under `make test` the outer make's settings would make this one print "Entering directory".
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    proc = subprocess.run(["make", "--no-print-directory", "-n", target, f"VENV={venv}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_make_train_installs_the_runtime_dependencies_only(tmp_path):
    """On a fresh .venv, `make train` creates it and installs chainrule without any extra."""
    plan = _make_dry_run("train", tmp_path / "venv")
    assert "-m venv" in plan and "pip install --quiet -e .\n" in plan
    assert "[test]" not in plan and "[notebooks]" not in plan
    assert plan.rstrip().endswith("-m solver")


def test_make_test_adds_the_test_extras_after_make_train(tmp_path):
    """`make test` on a fresh .venv installs runtime then the test and cluster extras; after `make train` only the extras."""
    venv = tmp_path / "venv"
    fresh = _make_dry_run("test", venv)
    assert fresh.index("pip install --quiet -e .\n") < fresh.index("pip install --quiet -e '.[test,cluster]'")
    (venv / "bin").mkdir(parents=True)
    (venv / ".installed-runtime").touch()  # what `make train` leaves, newer than setup.cfg
    after_train = _make_dry_run("test", venv)
    assert "-m venv" not in after_train and "pip install --quiet -e .\n" not in after_train
    assert "pip install --quiet -e '.[test,cluster]'" in after_train and after_train.rstrip().endswith("-m pytest")


def test_make_notebook_installs_jupyterlab_and_serves_the_notebooks(tmp_path):
    """`make -n notebook` shows the notebooks extra, the kernel registered in .venv, and JupyterLab on notebooks/."""
    plan = _make_dry_run("notebook", tmp_path / "venv").splitlines()
    install = next(i for i, line in enumerate(plan) if "pip install --quiet -e '.[notebooks]'" in line)
    kernel = next(i for i, line in enumerate(plan) if "-m ipykernel install --sys-prefix --name python3" in line)
    assert install < kernel < len(plan) - 1
    assert re.search(r"/bin/python -m jupyterlab --ServerApp\.root_dir=notebooks\s*$", plan[-1]), plan[-1]
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "jupyterlab" in cfg["options.extras_require"]["notebooks"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_stays_a_short_guide_that_links_the_reference():
    """README.md is at most about 300 lines and links every docs/ page."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"(docs/{page.name})" in text, f"README.md does not link docs/{page.name}"
