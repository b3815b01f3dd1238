"""Tests for the graded tests' reference data and for the score table and results.json writer."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from grading_support import ROOT

import layers
from gradcheck.registry import check_inputs

from grading import manifest
from grading.grade import Grade, GradedTest
from grading.reference import (CASES, DECLARED, REGENERATE_RTOL, ReferenceError, build_case, build_declared, declared_inputs,
                               reference_files, split_file, verify, write_reference)
from grading.results import summary, table, to_gradescope, write_results

pytestmark = pytest.mark.grading

FILES = reference_files()


def test_shipped_reference_data_matches_its_hashes_and_loads_without_pickle():
    """Every file is stored, listed with its SHA-256, and readable with allow_pickle=False: one per
    hand-written case and one per family of declared graded cases."""
    directory = ROOT / manifest.REFERENCE_DIR
    families = {f"layers_{layers.family_of(case)}" for case in DECLARED}
    assert verify(directory) == len(FILES) == len(CASES) + len(families)
    assert len(CASES) == 21 and "layers_activations" in families
    for name in FILES:
        with np.load(directory / f"{name}.npz", allow_pickle=False) as stored:
            assert all(stored[key].dtype != object for key in stored.files)


def test_a_family_file_splits_into_its_declared_cases():
    """A family file's <case>/<array> names split back into one dict per declared case, with the
    inputs, out, dout and a gradient per input."""
    for stem, arrays in FILES.items():
        cases = split_file(stem, arrays)
        if not stem.startswith("layers_"):
            assert list(cases) == [stem]
            continue
        for name, case_arrays in cases.items():
            case = layers.case(name)
            assert case.graded and f"layers_{layers.family_of(case)}" == stem
            inputs = list(check_inputs(case)[0])
            wanted = {"loss", "dx"} if case.kind == "loss" else {"out", "dout", *(f"d{k}" for k in inputs)}
            assert set(inputs) | wanted <= set(case_arrays), (name, sorted(case_arrays))
    assert {name for stem, arrays in FILES.items() for name in split_file(stem, arrays)} >= {c.name for c in DECLARED}


def test_a_declared_case_is_built_from_its_own_seed_whatever_the_order():
    """build_case of a declared case is build_declared of it, from the case's own seed: the same arrays
    on every call, its inputs those declared_inputs gives the graded test."""
    case = layers.case("gelu_forward (tanh)")
    first, again = build_case(case.name), build_declared(case)
    assert sorted(first) == sorted(again) == ["dout", "dx", "out", "x"]
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    np.testing.assert_array_equal(declared_inputs(case)[0]["x"], first["x"])


@pytest.mark.parametrize("name", sorted(FILES))
def test_stored_reference_equals_what_the_reference_solution_computes_now(name):
    """The stored arrays are what the library computes today (the data is not stale)."""
    fresh = FILES[name]
    with np.load(ROOT / manifest.REFERENCE_DIR / f"{name}.npz", allow_pickle=False) as stored:
        assert sorted(stored.files) == sorted(fresh)
        for key in stored.files:
            np.testing.assert_allclose(stored[key], fresh[key], rtol=REGENERATE_RTOL, atol=0, err_msg=f"{name}[{key}]")


def test_verify_names_missing_extra_and_altered_files(tmp_path):
    """verify refuses a missing listed file, an unlisted .npz and a missing SHA256SUMS."""
    copy = shutil.copytree(ROOT / manifest.REFERENCE_DIR, tmp_path / "ref")
    (copy / "relu.npz").unlink()
    with pytest.raises(ReferenceError, match="relu.npz is listed in SHA256SUMS but missing"):
        verify(copy)
    write_reference(copy)
    assert verify(copy) == len(FILES)
    # Regenerating rewrote only the missing file: every hash is the shipped one (rounding noise keeps a file).
    assert (copy / "SHA256SUMS").read_text() == (ROOT / manifest.REFERENCE_HASHES).read_text()
    np.savez(copy / "sneaky.npz", a=np.zeros(1))
    with pytest.raises(ReferenceError, match=r"\['sneaky.npz'\] .* are not listed"):
        verify(copy)
    (copy / "SHA256SUMS").unlink()
    with pytest.raises(ReferenceError, match="SHA256SUMS is missing"):
        verify(copy)


def _grade():
    passed = GradedTest("test_a.py::test_one", "graded_tests/test_a.py", 2.0, False, {"n1": "passed"})
    partial = GradedTest("test_a.py::test_two", "graded_tests/test_a.py", 3.0, True,
                         {"n2[0]": "passed", "n2[1]": "AssertionError: off by 0.5", "n2[2]": "passed"})
    return Grade(tests=[passed, partial], notes=["layers/conv.py: not in the submission"], seconds=1.26)


def test_results_document_and_table():
    """Scores, partial credit, visibility and numbering go into results.json and the table."""
    grade = _grade()
    document = to_gradescope(grade)
    assert document["score"] == 4.0 and document["execution_time"] == 1.3
    first, second = document["tests"]
    assert (first["number"], first["visibility"], first["status"]) == ("1.1", "visible", "passed")
    assert (second["number"], second["score"], second["max_score"]) == ("1.2", 2.0, 3.0)
    assert second["visibility"] == manifest.HIDDEN_VISIBILITY
    assert second["output"] == "2 of 3 cases passed.\nn2[1]: AssertionError: off by 0.5"
    assert summary(grade).startswith("Public tests passed: 1 of 1.")
    text = table(grade)
    assert "test_a.py::test_two [hidden]" in text and "total" in text and "4/5" in text
    assert "[hidden]" not in table(grade, show_hidden=False)


def test_write_results_is_atomic_and_leaves_no_temporary(tmp_path):
    """write_results replaces the file whole and leaves nothing else in the folder."""
    target = tmp_path / "out" / "results.json"
    write_results(_grade(), target)
    write_results(_grade(), target)
    assert json.loads(target.read_text())["score"] == 4.0
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]
