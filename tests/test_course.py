"""The course file: assignments from one library, released and graded one at a time."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest
from grading_support import ROOT, run_grading

from grading import manifest
from grading.course import COURSE_FILE, CourseError, ModelSpec, GradedSelection, load_course, solution_regions
from grading.markers import SOLUTION, enclosing_name, find_regions
from grading.release import ASSIGNMENT_TESTS, release, released_sources

COURSE = load_course()
NAMES = [a.name for a in COURSE.assignments]


def _document() -> dict:
    return json.loads((ROOT / COURSE_FILE).read_text("utf-8"))


def _load_altered(tmp_path, change) -> None:
    document = _document()
    change(document)
    path = tmp_path / "course.json"
    path.write_text(json.dumps(document))
    load_course(path)


def test_the_course_has_the_three_assignments_and_every_region_one_owner():
    """a1 (classifiers, backprop, fully connected), a2 (normalization, dropout, conv), a3 (recurrent,
    attention); their student files split STUDENT_FILES with no file in two assignments."""
    assert NAMES == ["a1", "a2", "a3"]
    files = [rel for a in COURSE.assignments for rel in a.student_files()]
    assert sorted(files) == sorted(manifest.STUDENT_FILES)
    for rel, function in solution_regions(ROOT):
        assert sum(a.owns(rel, function) for a in COURSE.assignments) == 1, (rel, function)
    assert COURSE.get("a3").complete == ("a1", "a2") and COURSE.get("a1").model is not None


@pytest.mark.parametrize("change, message", [
    (lambda d: d["assignments"][1]["solutions"].update({"layers/affine.py": "*"}), "belongs to ['a1', 'a2']"),
    (lambda d: d["assignments"][2]["solutions"].pop("layers/lstm.py"), "lstm_step_forward in layers/lstm.py belongs to no assignment"),
    (lambda d: d["assignments"][0]["solutions"].update({"layers/affine.py": ["affine_forward", "afine_backward"]}),
     "names afine_backward in layers/affine.py, which has no solution region"),
    (lambda d: d["assignments"][0]["solutions"].update({"layers/nope.py": "*"}), "not in grading.manifest"),
    (lambda d: d["assignments"][0].update({"complete": ["a2"]}), "not an earlier assignment"),
    (lambda d: d["assignments"][0]["tests"].append({"file": "test_nope.py"}), "is not a file of"),
    (lambda d: d["assignments"][0]["notebooks"].append("99_missing.ipynb"), "not in notebooks/"),
    (lambda d: d["assignments"][0].update({"extra": 1}), "unknown keys ['extra']"),
    (lambda d: d["assignments"][0]["model"].update({"thresholds": [[0.9, 3], [0.8, 4]]}), "must rise"),
    (lambda d: d["assignments"][0]["model"].update({"thresholds": [[1.5, 3]]}), "must lie in (0, 1]"),
    (lambda d: d["assignments"][0]["model"].update({"dataset": "cifar10"}), "dataset must be one of"),
    (lambda d: d["assignments"][1].update({"name": "a1"}), "two assignments are called 'a1'"),
])
def test_a_malformed_course_file_is_refused_naming_the_entry(tmp_path, change, message):
    with pytest.raises(CourseError) as caught:
        _load_altered(tmp_path, change)
    assert message in str(caught.value)


def test_unknown_assignment_names_the_ones_there_are():
    with pytest.raises(CourseError, match=r"no assignment 'a9'; it has \['a1', 'a2', 'a3'\]"):
        COURSE.get("a9")


def test_selections_and_thresholds():
    """A file entry selects all of it; cases narrow a parametrized test; worth keeps the cases' share."""
    entry = GradedSelection("test_nets.py", cases=("TwoLayerNet",))
    assert entry.selects("graded_tests/test_nets.py", "test_net_gradients_match_numeric_gradient", "TwoLayerNet")
    assert not entry.selects("graded_tests/test_nets.py", "test_net_gradients_match_numeric_gradient", "FullyConnectedNet")
    assert not entry.selects("graded_tests/test_layers.py", "test_relu", None)
    assert entry.worth(6.0, 1, 3) == 2.0 and GradedSelection("t.py", points=7.0).worth(6.0, 1, 3) == 7.0
    spec = ModelSpec("model.npz", "optdigits-heldout", 4096, ((0.85, 2.0), (0.9, 3.0), (0.95, 5.0)))
    assert [spec.points_for(a) for a in (0.5, 0.85, 0.899, 0.9, 0.96, 1.0)] == [0, 2, 2, 3, 5, 5]
    assert spec.points == 5.0


def _lines_of(path: pathlib.Path) -> list[str]:
    text = path.read_text("utf-8")
    if path.suffix == ".ipynb":
        return [line for cell in json.loads(text)["cells"] for line in "".join(cell["source"]).split("\n")]
    return text.split("\n")


def _secret_and_kept(name: str) -> tuple[set, set]:
    """Lines found only in the regions the release of `name` stubs, and the kept regions' lines."""
    assignment = COURSE.get(name)
    stubbed, public, kept = set(), set(), set()
    for rel in released_sources(ROOT):
        if not rel.endswith((".py", ".ipynb")):
            continue
        lines = _lines_of(ROOT / rel)
        covered = {}
        for region in find_regions(lines, rel):
            if region.kind != SOLUTION:
                continue
            function = enclosing_name(lines, region.begin, region.indent) or rel
            keep = rel.endswith(".py") and COURSE.keeps_solution(assignment, rel, function)
            for i in range(region.begin, region.end + 1):
                covered[i] = keep
        for i, line in enumerate(lines):
            if covered.get(i) is True and not _is_marker(line):
                kept.add(line.strip())
            (stubbed if covered.get(i) is False else public).add(line.strip())
    return {line for line in stubbed - public if line and not line.startswith("#")}, kept - {""}


def _is_marker(line: str) -> bool:
    return line.strip() in ("# BEGIN SOLUTION", "# END SOLUTION")


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """The release of every assignment, written by the real command line."""
    out = {}
    for name in NAMES:
        folder = tmp_path_factory.mktemp(name) / "student"
        done = run_grading("release", "--assignment", name, folder)
        assert done.returncode == 0, done.stderr
        out[name] = folder
    return out


@pytest.mark.grading
@pytest.mark.parametrize("name", NAMES)
def test_an_assignment_release_leaks_no_solution_it_stubs_and_keeps_the_earlier_ones(releases, name):
    """The per-assignment leak test: no line only found in a stubbed region appears anywhere in the
    release; every line of the complete assignments' regions does."""
    tree = releases[name]
    secret, kept = _secret_and_kept(name)
    assert len(secret) > 40, f"{name}: only {len(secret)} secret lines"
    everything = set()
    for path in sorted(tree.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".ipynb", ".md", ".json", ".cfg", ".toml", ""):
            lines = path.read_text("utf-8", errors="replace").split("\n")
            leaks = [f"{path.relative_to(tree)}:{n}" for n, line in enumerate(lines, 1) if line.strip() in secret]
            assert not leaks, f"{name}: solution lines in the release: {leaks[:10]}"
            everything.update(line.strip() for line in lines)
    assert kept <= everything, f"{name}: kept solution lines missing: {sorted(kept - everything)[:5]}"
    assert bool(kept) == bool(COURSE.get(name).complete)


@pytest.mark.grading
@pytest.mark.parametrize("name", NAMES)
def test_an_assignment_release_holds_its_notebooks_tests_and_student_files_only(releases, name):
    assignment, tree = COURSE.get(name), releases[name]
    notebooks = sorted(p.name for p in (tree / "notebooks").glob("*.ipynb"))
    assert notebooks == sorted(assignment.notebooks)
    listing = json.loads((tree / manifest.STUDENT_TESTS_DIR / ASSIGNMENT_TESTS).read_text())
    assert listing["assignment"] == name
    assert [t["file"] for t in listing["tests"]] == [t.file for t in assignment.tests]
    shipped = {p.name for p in (tree / manifest.STUDENT_TESTS_DIR).glob("test_*.py")}
    assert shipped <= {t.file for t in assignment.tests}
    makefile = (tree / "Makefile").read_text()
    block = makefile[makefile.index("STUDENT_FILES :="):].split("\n")
    listed = []
    for line in block:
        listed += [word for word in line.removeprefix("STUDENT_FILES :=").split() if word != "\\"]
        if not line.rstrip().endswith("\\"):
            break
    assert tuple(listed) == assignment.student_files()


def test_release_of_an_unknown_assignment_exits_2_with_one_line(tmp_path):
    done = run_grading("release", "--assignment", "a9", tmp_path / "out")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "no assignment 'a9'" in done.stderr
    assert not (tmp_path / "out").exists()


def test_release_rejects_an_assignment_of_the_wrong_type(tmp_path):
    with pytest.raises(TypeError, match="build: assignment must be a str"):
        release(tmp_path / "out", assignment=1)


@pytest.fixture(scope="module")
def whole_library_points(reference_results):
    """Points per graded test of the whole library's grading of the reference solution."""
    return {t["name"]: t["max_score"] for t in reference_results["tests"]}


@pytest.mark.grading
def test_the_assignments_split_the_graded_tests_and_their_points_exactly(tmp_path, whole_library_points):
    """Graded with the reference solution, each assignment earns full marks on its tests, with
    its later assignments' regions stubbed in the base tree (so no assignment's tests need a later
    one's solution); together the three hold every graded test once, at the same total points."""
    totals: dict[str, float] = {}
    gradings = {name: subprocess.Popen(  # the three at once: each grading is mostly one core's work
        [sys.executable, "-m", "grading", "grade", str(ROOT), "--assignment", name, "--results",
         str(tmp_path / f"{name}.json")], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for name in NAMES}
    for name, grading in gradings.items():
        _, err = grading.communicate(timeout=600)
        assert grading.returncode == 0, f"{name}: {err.decode()}"
    for name in NAMES:
        results = json.loads((tmp_path / f"{name}.json").read_text())
        tests = [t for t in results["tests"] if not t["name"].startswith("model:")]
        lost = {t["name"]: t["output"] for t in tests if t["score"] != t["max_score"]}
        assert not lost, f"{name}: the reference solution lost points: {lost}"
        for t in tests:
            totals[t["name"]] = totals.get(t["name"], 0.0) + t["max_score"]
    assert sorted(totals) == sorted(whole_library_points)
    for test, points in whole_library_points.items():
        assert totals[test] == pytest.approx(points, rel=1e-12), test


@pytest.mark.grading
def test_the_autograder_of_an_assignment_grades_that_assignment_with_its_heldout_set(tmp_path):
    """autograder-zip --assignment a1: run_autograder passes --assignment a1, its base is a1's release
    (tests/assignment.json says so) and the held-out digits ride along for the model test; the
    release itself never holds them."""
    import zipfile

    archive = tmp_path / "a1.zip"
    done = run_grading("autograder-zip", archive, "--assignment", "a1")
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        assert z.read("run_autograder").decode().rstrip().endswith('--results "$RESULTS" --assignment a1')
        assert json.loads(z.read(f"base/{manifest.STUDENT_TESTS_DIR}/{ASSIGNMENT_TESTS}"))["assignment"] == "a1"
    assert {"grading/course.json", "grading/heldout/optdigits_train.csv.gz", "grading/heldout/SHA256SUMS"} <= names
    assert not any("heldout" in name for name in names if name.startswith("base/"))


@pytest.mark.grading
def test_no_release_holds_the_heldout_digits(releases):
    for name, tree in releases.items():
        assert not [p for p in tree.rglob("*") if "heldout" in p.name or "optdigits" in p.name], name
