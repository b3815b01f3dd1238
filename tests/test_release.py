"""Tests for python -m grading release: the student version, its stubs, and that nothing leaks."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile

import pytest
from grading_support import ROOT, copy_project, edit, run_grading

from grading import manifest
from grading.grade import hidden_test_names
from grading.markers import SOLUTION, find_regions
from grading.release import (MARKER_HEADER, Release, ReleaseError, graded_test_sources, has_tests, release,
                             released_sources, strip_notebook)

pytestmark = pytest.mark.grading


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """The student version, written by the real command line."""
    out = tmp_path_factory.mktemp("release") / "student"
    done = run_grading("release", out)
    assert done.returncode == 0, done.stderr
    assert "solution regions stubbed in 23 files" in done.stdout  # 21 student files and notebooks 01 and 00
    return out


def _text_files(tree: pathlib.Path):
    for path in sorted(tree.rglob("*")):
        if path.is_file() and b"\0" not in path.read_bytes()[:8192] and path.suffix != ".gz":
            yield path


def _lines_of(path: pathlib.Path) -> list[str]:
    text = path.read_text("utf-8")
    if path.suffix == ".ipynb":
        cells = json.loads(text)["cells"]
        return [line for cell in cells for line in "".join(cell["source"]).split("\n")]
    return text.split("\n")


def test_every_student_file_is_stubbed_and_still_compiles(released):
    """Each listed student file holds stubs naming its functions and is valid Python."""
    for rel in manifest.STUDENT_FILES:
        text = (released / rel).read_text()
        assert 'raise NotImplementedError("' in text, rel
        assert "# BEGIN SOLUTION" not in text and "# END SOLUTION" not in text, rel
        compile(text, rel, "exec")
    assert 'raise NotImplementedError("affine_backward is not implemented yet: write it in layers/affine.py")' in (
        released / "layers/affine.py").read_text()
    assert 'raise NotImplementedError("FullyConnectedNet.loss is not implemented yet' in (
        released / "solver/nets.py").read_text()
    activations, optim = (released / "layers/activations.py").read_text(), (released / "solver/optim.py").read_text()
    assert 'raise NotImplementedError("leaky_relu_backward is not implemented yet' in activations
    assert 'raise NotImplementedError("nesterov is not implemented yet' in optim


def test_no_line_from_a_solution_region_appears_in_the_release(released):
    """A line that the reference has only inside solution regions appears nowhere in the student tree."""
    inside, outside = set(), set()
    for rel in released_sources(ROOT):
        path = ROOT / rel
        if not rel.endswith((".py", ".ipynb")):
            continue
        lines = _lines_of(path)
        regions = [r for r in find_regions(lines, rel) if r.kind == SOLUTION]
        covered = {i for r in regions for i in range(r.begin, r.end + 1)}
        for i, line in enumerate(lines):
            (inside if i in covered else outside).add(line.strip())
    secret = {line for line in inside - outside if line and not line.startswith("# ")}
    assert len(secret) > 150, f"only {len(secret)} secret lines: the markers cover less than expected"
    # relu's mask and sgd_momentum's velocity update also sat in complete code (leaky_relu, nesterov)
    assert {"mask = x > 0", 'v -= config["learning_rate"] * dw'} <= secret
    leaks = []
    for path in _text_files(released):
        for number, line in enumerate(_lines_of(path), start=1):
            if line.strip() in secret:
                leaks.append(f"{path.relative_to(released)}:{number}: {line.strip()}")
    assert not leaks, "solution lines in the student version:\n" + "\n".join(leaks[:20])


def test_hidden_tests_reference_data_and_grader_are_left_out(released):
    """No hidden test name, no .npz, no grading package and no SHA256SUMS reach the student tree."""
    hidden = set()
    for rel in graded_test_sources(ROOT):
        hidden |= {name for name in hidden_test_names(ROOT / rel) if name.startswith("test_")}
    assert len(hidden) >= 10
    files = list(released.rglob("*"))
    assert not [p for p in files if p.suffix in (".npz", ".pkl") or p.name == "SHA256SUMS"]
    assert not (released / "grading").exists() and not (released / ".ci").exists()
    public_tests = "\n".join(p.read_text() for p in (released / "tests").glob("*.py"))
    assert not [name for name in hidden if re.search(rf"\b{name}\b", public_tests)]
    assert "test_affine_backward_matches_numeric_gradient" in public_tests
    assert "HIDDEN TESTS" not in public_tests


def test_student_tree_builds_and_imports(released, tmp_path):
    """The student tree builds a wheel with its packages, and its packages import."""
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(released)], capture_output=True, text=True, timeout=300,
                           cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    wheels = list(tmp_path.glob("chainrule-*.whl"))
    assert len(wheels) == 1
    import zipfile

    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "layers/affine.py" in names and "solver/optim.py" in names and "data/digits.csv.gz" in names
    done = subprocess.run([sys.executable, "-c", "import layers, solver, gradcheck, data; print(layers.__file__)"],
                          cwd=released, env=dict(os.environ, PYTHONPATH=str(released)), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert pathlib.Path(done.stdout.strip()).resolve().is_relative_to(released.resolve())


def test_public_tests_fail_with_not_implemented_messages(released, tmp_path):
    """In the untouched student tree every public test fails, each with NotImplementedError naming a function."""
    report = tmp_path / "junit.xml"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
                          cwd=released, env=dict(os.environ, PYTHONPATH=str(released)), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1, done.stdout[-2000:]
    cases = ET.parse(report).getroot().iter("testcase")
    outcomes = {}
    for case in cases:
        failure = case.find("failure")
        outcomes[case.get("name")] = None if failure is None else failure.get("message", "")
    assert len(outcomes) >= 30
    assert all(message and message.startswith("NotImplementedError: ") and "is not implemented yet" in message
               for message in outcomes.values()), outcomes


def test_released_notebooks_have_stubbed_exercises_and_no_outputs(released):
    """The backprop notebook's exercise cell is a stub in the student version; no cell has outputs."""
    notebook = json.loads((released / "notebooks/01_backprop_graphs.ipynb").read_text())
    sources = ["".join(cell["source"]) for cell in notebook["cells"]]
    assert any("raise NotImplementedError(" in source and "(cell 4)" in source for source in sources)
    assert not any("multiply_backward(1.0, mul_cache)" in source for source in sources)
    assert all(cell.get("outputs", []) == [] for cell in notebook["cells"])


def test_malformed_marker_stops_the_release_with_file_and_line(tmp_path):
    """A nested BEGIN stops the release naming file and line, and leaves no folder behind."""
    root = copy_project(tmp_path / "project")
    edit(root / "layers/affine.py", "    # BEGIN SOLUTION\n    dx = ", "    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    dx = ")
    lines = (root / "layers/affine.py").read_text().split("\n")
    # the nested (second) marker of the doubled pair, 1-based
    line = next(i for i in range(len(lines) - 1) if lines[i] == lines[i + 1] == "    # BEGIN SOLUTION") + 2
    out = tmp_path / "out"
    with pytest.raises(Exception, match=f"layers/affine.py:{line}: .*do not nest"):
        release(out, root=root)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]


def test_unclosed_marker_through_the_command_line_exits_2(tmp_path):
    """The CLI turns a marker error into exit code 2 with the file and line on stderr."""
    root = copy_project(tmp_path / "project")
    path = root / "solver/optim.py"
    text = path.read_text()
    path.write_text(text.replace("    # END SOLUTION\n", "", 1))
    done = subprocess.run([sys.executable, "-m", "grading", "release", str(tmp_path / "out")], cwd=root,
                          env=dict(os.environ, PYTHONPATH=str(root)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "solver/optim.py:" in done.stderr and "do not nest" in done.stderr


def test_a_folder_without_the_release_marker_is_refused_even_with_force(tmp_path):
    """A non-empty OUT_DIR that no release wrote is kept whole, with or without --force, saying why."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ReleaseError, match=r"holds no \.chainrule-release written by an earlier release"):
        release(out)
    with pytest.raises(ReleaseError, match=r"not even with --force\): release never deletes what it did not write"):
        release(out, force=True)
    (out / ".chainrule-release").write_text("")  # a marker that release did not write proves nothing
    with pytest.raises(ReleaseError, match="not even with --force"):
        release(out, force=True)
    assert sorted(p.name for p in out.iterdir()) == [".chainrule-release", "notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_force_replaces_an_unchanged_earlier_release_and_only_that(tmp_path):
    """An earlier release (caches aside) is replaced with --force; one added to or edited is refused."""
    out = tmp_path / "out"
    first = release(out)
    marker = (out / ".chainrule-release").read_text().splitlines()
    assert marker[0] == MARKER_HEADER and "python -m grading release" in marker[0]
    assert ".chainrule-release" in first.files and any(line.endswith("  layers/affine.py") for line in marker)
    with pytest.raises(ReleaseError, match="holds an earlier release; pass --force to replace it"):
        release(out)
    (out / "layers/__pycache__").mkdir()
    (out / "layers/__pycache__/affine.cpython-312.pyc").write_bytes(b"cache")
    release(out, force=True)
    assert not (out / "layers/__pycache__").exists() and (out / "layers/affine.py").is_file()

    (out / "notes.txt").write_text("mine")
    edited = (out / "layers/affine.py").read_text() + "# my attempt\n"
    (out / "layers/affine.py").write_text(edited)
    with pytest.raises(ReleaseError, match=r"2 entries in it are not as that release wrote them: "
                                           r"layers/affine.py \(changed\), notes.txt \(added\)"):
        release(out, force=True)
    assert (out / "notes.txt").read_text() == "mine" and (out / "layers/affine.py").read_text() == edited
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_release_refuses_the_project_any_folder_inside_it_or_around_it(tmp_path):
    """OUT_DIR equal to, inside (also through a symlink) or containing the project root is refused, forced or not."""
    root = copy_project(tmp_path / "project")
    link = tmp_path / "link"
    link.symlink_to(root / "solver", target_is_directory=True)
    cases = [(root, "is the project root"), (root / "student", "lies inside the project root"),
             (link / "student", "lies inside the project root"), (tmp_path, "contains the project root")]
    for out, why in cases:
        for force in (False, True):
            with pytest.raises(ReleaseError, match=why):
                release(out, root=root, force=force)
    assert not (root / "student").exists() and not (root / "solver/student").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "project"]


def test_cli_release_dot_force_in_the_project_exits_2_and_deletes_nothing(tmp_path):
    """`python -m grading release . --force` run in a project copy exits 2 with one line and leaves it whole."""
    root = copy_project(tmp_path / "project")
    (root / ".git").mkdir()
    (root / ".git/HEAD").write_text("ref: refs/heads/main\n")
    before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run([sys.executable, "-m", "grading", "release", ".", "--force"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "is the project root" in done.stderr, done.stderr
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == before


def test_release_rejects_arguments_of_the_wrong_type(tmp_path):
    """out_dir, root and force of the wrong type raise TypeError naming release and the argument."""
    with pytest.raises(TypeError, match=r"release: out_dir must be a path \(str or os.PathLike\), got int 3"):
        release(3)
    with pytest.raises(TypeError, match="release: root must be a path"):
        release(tmp_path / "out", root=1.5)
    with pytest.raises(TypeError, match="release: force must be True or False, got str 'yes'"):
        release(tmp_path / "out", force="yes")
    assert not (tmp_path / "out").exists()


def test_student_makefile_has_only_targets_that_work_in_the_student_tree(released):
    """The released Makefile has no instructor target, and each of its targets dry-runs there."""
    text = (released / "Makefile").read_text()
    rules = re.sub(r"^define .*?^endef$", "", text, flags=re.MULTILINE | re.DOTALL)  # not the embedded Python
    targets = set(re.findall(r"^([A-Za-z][\w-]*):(?!=)", rules, flags=re.MULTILINE))
    assert {"test", "train", "gradcheck", "submission", "venv", "clean"} <= targets
    assert not targets & {"release", "grade", "autograder-zip", "make-reference"}
    assert "grading" not in re.sub(r"^#.*$", "", text, flags=re.MULTILINE)
    for target in sorted(targets):
        done = subprocess.run(["make", "-n", target], cwd=released, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"make -n {target}: {done.stderr}"


def test_make_submission_zips_exactly_the_student_files(released, tmp_path):
    """`make submission` in a released tree writes submission.zip holding STUDENT_FILES, paths kept, nothing else."""
    tree = shutil.copytree(released, tmp_path / "student")
    (tree / "notes.txt").write_text("not handed in")
    done = subprocess.run(["make", "submission", f"PYTHON={sys.executable}"], cwd=tree, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"wrote submission.zip with {len(manifest.STUDENT_FILES)} files: layers/affine.py" in done.stdout
    with zipfile.ZipFile(tree / "submission.zip") as archive:
        assert archive.namelist() == list(manifest.STUDENT_FILES)
        assert archive.read("solver/optim.py") == (tree / "solver/optim.py").read_bytes()
    assert not list(tree.glob(".submission.*"))


def test_no_test_file_in_the_release_lacks_a_test(released):
    """Every tests/test_*.py of the student version defines a test; none is an empty shell."""
    test_files = sorted((released / "tests").glob("test_*.py"))
    assert test_files
    assert [p.name for p in test_files if not has_tests(p.read_text(), p.name)] == []


def test_a_graded_test_file_that_is_all_hidden_is_not_released(tmp_path):
    """A graded test file whose tests are all hidden is left out of the release and reported as skipped."""
    root = copy_project(tmp_path / "project")
    (root / manifest.GRADED_TESTS_DIR / "test_all_hidden.py").write_text(
        '"""Graded: nothing public."""\n\n# BEGIN HIDDEN TESTS\ndef test_secret():\n    assert True\n'
        "# END HIDDEN TESTS\n")
    result = release(tmp_path / "out", root=root)
    assert not (tmp_path / "out/tests/test_all_hidden.py").exists()
    assert f"{manifest.GRADED_TESTS_DIR}/test_all_hidden.py" in result.skipped_tests
    assert (tmp_path / "out/tests/conftest.py").is_file()  # helpers without tests stay


def test_has_tests_sees_functions_and_test_class_methods_only():
    """has_tests is true for a test_ function or a Test class method, false for imports and helpers alone."""
    assert has_tests("def test_one():\n    pass\n", "t.py")
    assert has_tests("class TestThing:\n    def test_it(self):\n        pass\n", "t.py")
    assert not has_tests('"""Doc."""\nimport numpy\n\ndef helper():\n    pass\n', "t.py")
    assert not has_tests("class Helper:\n    def test_it(self):\n        pass\n", "t.py")


def test_student_notebooks_readme_speaks_to_students(released):
    """The released notebooks/README.md is the student one: every notebook named, no instructor workflow."""
    text = (released / "notebooks/README.md").read_text()
    assert text == (ROOT / manifest.STUDENT_TEMPLATES["notebooks/README.md"]).read_text()
    for notebook in sorted((released / "notebooks").glob("*.ipynb")):
        assert f"`{notebook.name}`" in text, notebook.name
    assert not re.search(r"grading release|BEGIN SOLUTION|pytest -m notebooks|before committing", text)


def test_gradcheck_in_the_student_tree_shows_stubs_as_not_implemented_rows(released):
    """`python -m gradcheck` on the untouched release prints a todo row per stubbed case, no traceback, exit 1."""
    done = subprocess.run([sys.executable, "-m", "gradcheck", "--mode", "fast"], cwd=released,
                          env=dict(os.environ, PYTHONPATH=str(released)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr
    rows = {line.split("  ")[0]: line for line in done.stdout.splitlines()}
    assert re.search(r"\btodo\s+not implemented yet: relu_forward \(in layers/activations.py\)$", rows["relu_forward"])
    assert "not implemented yet: FullyConnectedNet.loss (in solver/nets.py)" in rows["FullyConnectedNet"]
    assert re.search(r"\bok\b", rows["sigmoid_forward"])  # complete layers are still checked
    assert re.search(r"\n\d+ of \d+ passed; \d+ not implemented yet \(mode fast, seed 0\)\.", done.stdout)


def test_student_files_list_must_match_the_marked_files(tmp_path):
    """Removing every marker from a listed student file stops the release, naming the file."""
    root = copy_project(tmp_path / "project")
    path = root / "layers/dropout.py"
    path.write_text("\n".join(l for l in path.read_text().split("\n") if "SOLUTION" not in l))
    with pytest.raises(ReleaseError, match=r"listed without markers \['layers/dropout.py'\]"):
        release(tmp_path / "out", root=root)


def test_a_region_that_splits_a_statement_is_refused(tmp_path):
    """A region that leaves broken syntax behind stops the release with the file and line."""
    root = copy_project(tmp_path / "project")
    edit(root / "layers/affine.py", "    # BEGIN SOLUTION\n    out = x.reshape(N, D) @ w + b  # (N, M)\n",
         "    out = (\n    # BEGIN SOLUTION\n    x.reshape(N, D) @ w + b\n")
    edit(root / "layers/affine.py", "    # END SOLUTION\n    return out, (x, w)", "    # END SOLUTION\n    )\n    return out, (x, w)")
    with pytest.raises(ReleaseError, match="layers/affine.py is not valid Python once its solutions are stubbed"):
        release(tmp_path / "out", root=root)


def test_notebooks_lose_outputs_and_solution_lines(tmp_path):
    """A notebook's solution cell is stubbed, its outputs and counts cleared, markdown untouched."""
    notebook = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Affine\n", "Write the layer."]},
            {"cell_type": "code", "metadata": {}, "execution_count": 3,
             "outputs": [{"output_type": "stream", "name": "stdout", "text": ["42\n"]}],
             "source": ["x = 1\n", "# BEGIN SOLUTION\n", "answer = x * 42\n", "# END SOLUTION\n", "print(answer)"]},
        ],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }
    text, regions, names = strip_notebook(json.dumps(notebook), "notebooks/demo.ipynb")
    out = json.loads(text)
    code = out["cells"][1]
    assert code["outputs"] == [] and code["execution_count"] is None
    assert "answer = x * 42" not in "".join(code["source"])
    assert "notebooks/demo.ipynb (cell 2)" in "".join(code["source"])
    assert out["cells"][0]["source"] == ["# Affine\n", "Write the layer."]
    assert names == ["cell 2"] and len(regions) == 1

    root = copy_project(tmp_path / "project")
    (root / "notebooks/demo.ipynb").write_text(json.dumps(notebook))
    result = release(tmp_path / "out", root=root)
    shipped = json.loads((tmp_path / "out/notebooks/demo.ipynb").read_text())
    assert shipped["cells"][1]["outputs"] == [] and result.stubbed["notebooks/demo.ipynb"] == ["cell 2"]
    assert isinstance(result, Release) and "README.md" in result.files and "notebooks/demo.ipynb" in result.files


def test_release_refuses_an_out_dir_inside_what_it_copies():
    """Writing the release into layers/ (or any released folder) is refused before anything is written."""
    with pytest.raises(ReleaseError, match="lies inside"):
        release(ROOT / "layers" / "student")
    assert not (ROOT / "layers" / "student").exists()
