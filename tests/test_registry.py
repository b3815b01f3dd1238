"""Tests for gradcheck.registry and ``python -m gradcheck``: every layer and net is registered
and passes, and the command prints its table and exit status."""

import pathlib
import re
import subprocess
import sys

import pytest

import layers
from gradcheck.registry import LAYER_CASES, MODEL_CASES, ModelCase, layer_case, model_case, run_case

pytestmark = pytest.mark.gradcheck

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_backward_in_layers_has_a_case():
    """Each *_backward exported by layers (and both losses) is checked by some registered case."""
    covered = {c.backward.__name__ for c in LAYER_CASES if c.backward is not None}
    covered |= {c.forward.__name__ for c in LAYER_CASES if c.kind == "loss"}
    wanted = {n for n in layers.__all__ if n.endswith("_backward") or n.endswith("_backward_alt")
              or n.endswith("_backward_naive") or n.endswith("_backward_fast")} | {"softmax_loss", "svm_loss"}
    assert wanted - covered == set()


@pytest.mark.parametrize("case", LAYER_CASES + MODEL_CASES, ids=lambda c: c.name)
def test_registered_case_passes_in_full_mode(case):
    """Every registered layer and net passes check_layer / check_model in full mode."""
    report = run_case(case, mode="full")
    report.assert_ok()
    assert all(r.checked == r.shape_size for r in report.inputs)


def test_lookup_by_name():
    """layer_case and model_case find cases by name and list the names when they do not."""
    assert layer_case("relu_forward").forward is layers.relu_forward
    assert isinstance(model_case("ThreeLayerConvNet"), ModelCase)
    with pytest.raises(KeyError, match="no case 'nope'"):
        layer_case("nope")


def _gradcheck(*args):
    return subprocess.run([sys.executable, "-m", "gradcheck", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_command_checks_the_cases_and_exits_0():
    """python -m gradcheck --only 'max_pool*' prints a row per matching case and exits 0."""
    proc = _gradcheck("--only", "max_pool*", "--mode", "fast")
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("max_pool")]
    assert len(rows) == 3 and all(" ok " in row for row in rows)
    assert "3 of 3 passed (mode fast, seed 0)." in proc.stdout


def test_command_lists_cases_and_refuses_unknown_names():
    """--list prints every case name; --only with no match exits 2 with the reason."""
    proc = _gradcheck("--list")
    assert proc.returncode == 0 and proc.stdout.splitlines() == [c.name for c in LAYER_CASES + MODEL_CASES]
    proc = _gradcheck("--only", "nothing-like-this")
    assert proc.returncode == 2 and "'nothing-like-this' matches no case name" in proc.stderr


def test_only_selects_whole_case_names_not_substrings():
    """--only relu_forward picks that case alone, not leaky_relu_forward or the sandwiches that contain the words."""
    from gradcheck.__main__ import select_cases

    cases = LAYER_CASES + MODEL_CASES
    assert [c.name for c in select_cases(cases, ["relu_forward"])] == ["relu_forward"]
    assert [c.name for c in select_cases(cases, ["ThreeLayerConvNet", "relu_forward"])] == [
        "relu_forward", "ThreeLayerConvNet"]
    assert [c.name for c in select_cases(cases, ["max_pool*"])] == [
        c.name for c in LAYER_CASES if c.name.startswith("max_pool")]
    with pytest.raises(ValueError, match=r"--only 'relu' \(did you mean 'relu_forward'.*\) matches no case name"):
        select_cases(cases, ["relu", "affine_forward"])
    with pytest.raises(TypeError, match="select_cases: names must be a list of str"):
        select_cases(cases, "relu_forward")


def test_command_shows_a_not_implemented_case_as_a_todo_row(monkeypatch, capsys):
    """A case whose layer raises NotImplementedError gets a todo row naming it, the others still run, exit 1."""
    from gradcheck import __main__ as command
    from gradcheck import registry

    def stub_forward(x):
        raise NotImplementedError("stub_forward is not implemented yet: write it in layers/stub.py")

    stub = registry.LayerCase("stub_forward", stub_forward, lambda dout, cache: dout,
                              lambda rng: ({"x": rng.normal(size=3)}, {}))
    monkeypatch.setattr(registry, "LAYER_CASES", [stub, registry.layer_case("sigmoid_forward")])
    monkeypatch.setattr(registry, "MODEL_CASES", [])
    assert command.main(["--mode", "fast"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(re.fullmatch(r"stub_forward\s+todo\s+not implemented yet: stub_forward \(in layers/stub.py\)", line)
               for line in lines), lines
    assert any(line.startswith("sigmoid_forward") and " ok " in line for line in lines), lines
    assert "1 of 2 passed; 1 not implemented yet (mode fast, seed 0)." in lines


def test_command_exits_1_and_prints_the_failing_report(monkeypatch, capsys):
    """A broken registered layer makes the command print its full report and return 1."""
    from gradcheck import __main__ as command
    from gradcheck import registry

    def broken_backward(dout, cache):
        return -layers.relu_backward(dout, cache)

    case = registry.LayerCase("broken relu", layers.relu_forward, broken_backward,
                              lambda rng: ({"x": rng.uniform(0.5, 1.0, (3, 4))}, {}))
    monkeypatch.setattr(registry, "LAYER_CASES", [case])
    monkeypatch.setattr(registry, "MODEL_CASES", [])
    assert command.main([]) == 1
    out = capsys.readouterr().out
    assert "broken relu" in out and "FAIL" in out and "sign flipped" in out
    assert "0 of 1 passed" in out
