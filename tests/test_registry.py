"""Tests for gradcheck.registry and ``python -m gradcheck``: every layer and net is registered
and passes, and the command prints its table and exit status."""

import copy
import functools
import pathlib
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from data.files import project_root

import layers
from gradcheck.registry import LAYER_CASES, MODEL_CASES, ModelCase, check_inputs, layer_case, model_case, run_case
from harness import as_tuple, assert_dtype_preserved, assert_pure
from layers.cases import SIZES, LayerCase

pytestmark = pytest.mark.gradcheck

ROOT = project_root()


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


def test_command_refuses_a_negative_seed_in_one_line():
    """--seed -1 is a usage error (exit 2) with the reason, not a traceback."""
    proc = _gradcheck("--seed", "-1", "--only", "relu_forward")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == "python -m gradcheck: error: argument --seed: must be an int >= 0, got -1"


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

    stub = LayerCase("stub_forward", stub_forward, lambda dout, cache: dout,
                     lambda rng, size, dtype: ({"x": rng.normal(size=3).astype(dtype)}, {}))
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

    case = LayerCase("broken relu", layers.relu_forward, broken_backward,
                     lambda rng, size, dtype: ({"x": rng.uniform(0.5, 1.0, (3, 4)).astype(dtype)}, {}))
    monkeypatch.setattr(registry, "LAYER_CASES", [case])
    monkeypatch.setattr(registry, "MODEL_CASES", [])
    assert command.main([]) == 1
    out = capsys.readouterr().out
    assert "broken relu" in out and "FAIL" in out and "sign flipped" in out
    assert "0 of 1 passed" in out


# -- Properties every layer pair shares, checked over every registered case.

LAYER_PAIRS = [c for c in LAYER_CASES if c.kind == "layer"]


def _name(case):
    return case.name


def _forward(case, seed=0):
    """(inputs, params, out, cache) of one run of the case's forward pass."""
    inputs, params = check_inputs(case, seed)
    out, cache = case.forward(*inputs.values(), **params)
    return inputs, params, out, cache


@functools.cache
def _cache_of(name):
    return _forward(layer_case(name))[3]


def _dout_like(out, seed=1):
    if isinstance(out, tuple):
        return tuple(_dout_like(o, seed + k) for k, o in enumerate(out))
    return np.random.default_rng(seed).standard_normal(np.shape(out)).astype(np.asarray(out).dtype)


def _arrays_in(value, path=""):
    """(path, array) for every array inside a cache (tuples, lists and dicts, recursively)."""
    if isinstance(value, np.ndarray):
        yield path, value
    elif isinstance(value, (tuple, list)):
        for k, item in enumerate(value):
            yield from _arrays_in(item, f"{path}[{k}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _arrays_in(item, f"{path}[{key!r}]")


def _assert_same_grads(case, got, want, what):
    assert len(got) == len(want), f"{case.name}: {what}: {len(got)} gradients, expected {len(want)}"
    for k, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g, w, err_msg=f"{case.name}: {what}: gradient {k} differs")


@pytest.mark.parametrize("case", LAYER_PAIRS, ids=_name)
def test_every_backward_refuses_every_other_forwards_cache(case):
    """Given the cache of any other registered forward pass, backward raises TypeError naming the
    forward whose cache it expected and the one it got, before reading dout."""
    backward, forward = case.backward.__name__, case.forward.__name__
    dout = _dout_like(_forward(case)[2])
    wrong = []
    for other in LAYER_PAIRS:
        if other.forward is case.forward:
            continue  # the same forward pass (another variant of the case): its cache is the right one
        want = (f"{backward}: cache is not from {forward} (got a cache from {other.forward.__name__}); "
                f"pass the cache returned by {forward}.")
        try:
            case.backward(dout, _cache_of(other.name))
        except TypeError as error:
            if str(error) != want:
                wrong.append(f"{other.name}: {type(error).__name__}: {error}")
        except Exception as error:  # noqa: BLE001 -- any other failure is what the test reports
            wrong.append(f"{other.name}: {type(error).__name__}: {error}")
        else:
            wrong.append(f"{other.name}: accepted")
    assert not wrong, f"{backward} with other caches:\n" + "\n".join(wrong)


@pytest.mark.parametrize("case", LAYER_PAIRS, ids=_name)
def test_backward_refuses_an_untagged_cache_saying_what_it_got(case):
    """The right items as a plain tuple or list, None, or an array: refused, naming what was received."""
    _, _, out, cache = _forward(case)
    backward, forward = case.backward.__name__, case.forward.__name__
    n = len(cache)
    for bad, got in ((tuple(cache), f"a tuple of {n} items"), (list(cache), f"a list of {n} items"),
                     (None, "NoneType"), (np.zeros(3), "array of shape (3,) and dtype float64")):
        with pytest.raises(TypeError, match=re.escape(f"{backward}: cache is not from {forward} (got {got}); "
                                                      f"pass the cache returned by {forward}.")):
            case.backward(_dout_like(out), bad)


@pytest.mark.parametrize("case", LAYER_PAIRS, ids=_name)
def test_editing_out_in_place_leaves_backward_unchanged(case):
    """out shares no memory with the cache, so overwriting out after forward changes no gradient."""
    _, _, out, cache = _forward(case)
    dout = _dout_like(out)
    want = as_tuple(case.backward(dout, cache))
    _, _, out, cache = _forward(case)
    for leaf in (out if isinstance(out, tuple) else (out,)):
        assert isinstance(leaf, np.ndarray) and leaf.flags.writeable, f"{case.name}: out is {type(leaf).__name__}"
        for path, array in _arrays_in(cache):
            assert not np.shares_memory(leaf, array), f"{case.name}: out shares memory with cache{path}"
        leaf[...] = 1234.5
    _assert_same_grads(case, as_tuple(case.backward(dout, cache)), want, "after editing out")


@pytest.mark.parametrize("case", LAYER_PAIRS, ids=_name)
def test_caches_deepcopy_and_pickle_as_their_own_type(case):
    """A cache copied or pickled keeps its tagged type, and backward gives the same gradients from it."""
    _, _, out, cache = _forward(case)
    dout = _dout_like(out)
    want = as_tuple(case.backward(dout, cache))
    for how, again in (("deepcopy", copy.deepcopy(cache)), ("pickle", pickle.loads(pickle.dumps(cache)))):
        assert type(again) is type(cache), f"{case.name}: {how} gave {type(again).__name__}"
        _assert_same_grads(case, as_tuple(case.backward(dout, again)), want, f"from a {how} of the cache")


def _empty_batch(case):
    """The case's inputs and params with N = 0: arrays whose leading axis is as long as x's are cut to [:0]
    (the registered cases keep their weights and per-feature parameters at other lengths)."""
    inputs, params = check_inputs(case, 0)
    N = next(iter(inputs.values())).shape[0]

    def cut(value):
        return value[:0] if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == N else value

    return {k: cut(v) for k, v in inputs.items()}, {k: cut(v) for k, v in params.items()}


@pytest.mark.parametrize("case", LAYER_CASES, ids=_name)
def test_every_forward_refuses_an_empty_batch(case):
    """N = 0 is refused with a ValueError naming a layer function and saying the batch is empty."""
    inputs, params = _empty_batch(case)
    with pytest.raises(ValueError, match=r"holds no samples \(shape \(0[,)][^)]*\)?, N = 0\); layers refuse empty "
                                         r"batches") as info:
        case.forward(*inputs.values(), **params)
    named = str(info.value).split(":")[0]
    assert named in layers.__all__, f"{case.name}: the message names {named!r}, not a layer function"


@pytest.mark.parametrize("case", LAYER_CASES, ids=_name)
def test_every_forward_refuses_float16(case):
    """float16 inputs are refused at the boundary with the cast to use, rather than computed or upcast."""
    inputs, params = check_inputs(case, 0)
    inputs = {k: v.astype(np.float16) for k, v in inputs.items()}
    with pytest.raises(TypeError, match=r"^\w+: \w+ is float16, but chainrule computes in float32 or float64 only "
                                        r".*astype\(np.float32\)"):
        case.forward(*inputs.values(), **params)


def test_a_forward_whose_cache_has_the_wrong_length_is_told_the_fields():
    """returns_cache refuses a cache tuple of another length, naming the forward and the fields it must hold."""
    from layers.validate import cache_type, returns_cache

    kind = cache_type("thing_forward", "mask dtype")
    thing_forward = returns_cache(kind)(lambda x: (x, (x,)))
    with pytest.raises(TypeError, match=r"thing_forward: its cache must be a tuple of 2 items \(mask, dtype\), "
                                        r"got a tuple of 1 items"):
        thing_forward(1.0)
    assert type(returns_cache(kind)(lambda x: (x, (x, None)))(1.0)[1]) is kind


# -- The declarations themselves (layers/cases.py): what every consumer relies on.

def test_every_family_declares_its_cases_and_names_are_unique():
    """layers.CASES is every family's CASES in family order, each name once, each forward a layer function."""
    from_families = [c for family in layers.FAMILIES for c in family.CASES]
    assert list(layers.CASES) == from_families == LAYER_CASES
    names = [c.name for c in LAYER_CASES]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert {c.forward.__name__ for c in LAYER_CASES} <= set(layers.__all__)
    assert layers.case("relu_forward") is layer_case("relu_forward")
    assert layers.family_of(layers.case("affine_forward")) == "affine"


@pytest.mark.parametrize("case", LAYER_CASES, ids=_name)
def test_declared_inputs_are_the_forwards_leading_arguments_in_order(case):
    """make's inputs are forward's first positional parameters, in order; its params are other parameters."""
    import inspect

    inputs, params = check_inputs(case)
    parameters = list(inspect.signature(case.forward).parameters)
    assert parameters[:len(inputs)] == list(inputs), f"{case.name}: inputs {list(inputs)}, forward takes {parameters}"
    assert set(params) <= set(parameters[len(inputs):]), f"{case.name}: params {sorted(params)} vs {parameters}"


@pytest.mark.parametrize("case", [c for c in LAYER_CASES if c.bench], ids=_name)
@pytest.mark.parametrize("size", SIZES)
def test_benchmarked_cases_build_at_every_size_in_float32(case, size):
    """A benchmarked case builds float32 inputs at every size, the training size at least the course size."""
    inputs, _ = case.build(size, np.float32)
    assert all(v.dtype == np.float32 for v in inputs.values())
    if size == "training":
        course, _ = case.build("course", np.float32)
        assert sum(v.size for v in inputs.values()) >= sum(v.size for v in course.values()), case.name


def test_a_declaration_refuses_inconsistent_fields():
    """A loss with a backward, an unknown kind or size, or a bad target is refused with the case's name."""
    def make(rng, size, dtype):
        return {"x": np.zeros(3, dtype)}, {}

    with pytest.raises(ValueError, match=r"LayerCase\('l'\): a loss has no backward"):
        LayerCase("l", layers.softmax_loss, layers.relu_backward, make, kind="loss")
    with pytest.raises(ValueError, match=r"LayerCase\('r'\): kind must be one of"):
        LayerCase("r", layers.relu_forward, layers.relu_backward, make, kind="gate")
    with pytest.raises(ValueError, match=r"target must be a positive number"):
        LayerCase("r", layers.relu_forward, layers.relu_backward, make, target={"huge": 1.0})
    with pytest.raises(ValueError, match=r"r.build: size must be one of"):
        LayerCase("r", layers.relu_forward, layers.relu_backward, make).build("huge")
    with pytest.raises(ValueError, match=r"r: make returned inputs \{'x': 'float64'\}, expected float32"):
        LayerCase("r", layers.relu_forward, layers.relu_backward,
                  lambda rng, size, dtype: ({"x": np.zeros(3)}, {})).build("check", np.float32)


# The copy gate returns n outputs (a tuple); tests/test_gates.py checks its purity and dtypes.
SINGLE_OUTPUT_PAIRS = [c for c in LAYER_PAIRS if c.name != "copy_forward"]


@pytest.mark.parametrize("case", SINGLE_OUTPUT_PAIRS, ids=_name)
def test_every_declared_pair_is_pure_and_keeps_float32(case):
    """Forward and backward leave inputs, dout and cache alone; float32 in gives float32 out and gradients."""
    inputs, params = check_inputs(case)
    assert_pure(case.forward, case.backward, inputs, params)
    assert_dtype_preserved(case.forward, case.backward, *case.build("check", np.float32))


# Float64 forward outputs and gradients agree with PyTorch's to this relative accuracy.
TORCH_RTOL = 1e-10


@pytest.mark.parametrize("case", [c for c in LAYER_CASES if c.torch is not None and c.torch_exact], ids=_name)
def test_declared_pair_agrees_with_pytorch_autograd(case):
    """out (or the loss) and every gradient equal PyTorch's forward and autograd in float64."""
    torch = pytest.importorskip("torch", reason="PyTorch is an optional extra (pip install chainrule[bench])")
    inputs, params = check_inputs(case)
    tensors = {k: torch.from_numpy(v.copy()).requires_grad_(True) for k, v in inputs.items()}
    theirs = case.torch(torch, tensors, params)
    if case.kind == "loss":
        loss, dx = case.forward(*inputs.values(), **params)
        theirs.backward()
        np.testing.assert_allclose(loss, theirs.item(), rtol=TORCH_RTOL)
        grads = (dx,)
    else:
        out, cache = case.forward(*inputs.values(), **params)
        dout = _dout_like(out)
        theirs.backward(torch.from_numpy(dout))
        np.testing.assert_allclose(out, theirs.detach().numpy(), rtol=TORCH_RTOL, atol=1e-12)
        grads = as_tuple(case.backward(dout, cache))
    for (name, tensor), grad in zip(tensors.items(), grads):
        np.testing.assert_allclose(grad, tensor.grad.numpy(), rtol=TORCH_RTOL, atol=1e-12, err_msg=f"d{name}")
