"""The course file (grading/course.json): several assignments from one library.

Each assignment names the solution regions it stubs (by file, and by function or "*" for every
region of the file), its notebooks, the graded tests it runs (by file, optionally narrowed to
some functions and to some parametrized cases, optionally with points of its own), the earlier
assignments whose solutions it ships complete, and optionally a trained model the student hands
in (``model``: the file name, the held-out set, a size cap and accuracy thresholds with points).

Every solution region of the library belongs to exactly one assignment. In the release of an
assignment the regions of the assignments it lists as complete keep their solution; every other
region, the later assignments' included, is a stub. ``load_course`` checks all of this against
the library's markers, so a typo in the course file is an error naming the entry, never a leak.

A selected parametrized test keeps the share of its points its selected cases carry (a test of
10 points with 5 cases, 2 of them selected, is worth 4 in that assignment) unless the entry
gives points; ``GradedSelection.worth`` computes it.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass

from data.files import project_root
from grading import manifest
from grading.markers import SOLUTION, enclosing_name, find_regions

COURSE_FILE = "grading/course.json"
ALL = "*"
# Held-out sets a model entry may name (grading.model_grade holds them).
MODEL_DATASETS = ("optdigits-heldout",)


class CourseError(ValueError):
    """The course file is malformed or disagrees with the library (names the entry)."""


@dataclass(frozen=True)
class GradedSelection:
    """Graded tests of one file: all, or some functions, or some parametrized cases."""

    file: str
    functions: tuple[str, ...] | None = None
    cases: tuple[str, ...] | None = None
    points: float | None = None

    def selects(self, file: str, function: str, case: str | None) -> bool:
        """Whether the test function (and case id, None when not parametrized) is selected."""
        if pathlib.PurePosixPath(file).name != self.file:
            return False
        if self.functions is not None and function not in self.functions:
            return False
        return self.cases is None or case in self.cases

    def worth(self, marked: float, selected: int, total: int) -> float:
        """Points of a test this entry selects: its own points, else the selected cases' share of marked."""
        return self.points if self.points is not None else marked * selected / total


@dataclass(frozen=True)
class ModelSpec:
    """A model file handed in and scored by the grader on a held-out set."""

    file: str
    dataset: str
    max_bytes: int
    thresholds: tuple[tuple[float, float], ...]  # (accuracy at least, points), increasing

    @property
    def points(self) -> float:
        return self.thresholds[-1][1]

    def points_for(self, accuracy: float) -> float:
        """The points of the highest threshold the accuracy reaches (0 below the first)."""
        earned = 0.0
        for least, points in self.thresholds:
            if accuracy >= least:
                earned = points
        return earned


@dataclass(frozen=True)
class Assignment:
    """One assignment of the course (see the module docstring)."""

    name: str
    title: str
    solutions: dict  # file -> tuple of function names, or ALL
    notebooks: tuple[str, ...]
    tests: tuple[GradedSelection, ...]
    complete: tuple[str, ...]
    model: ModelSpec | None = None

    def student_files(self) -> tuple[str, ...]:
        """The files students edit in this assignment, in grading.manifest.STUDENT_FILES order."""
        return tuple(rel for rel in manifest.STUDENT_FILES if rel in self.solutions)

    def owns(self, rel: str, function: str) -> bool:
        """Whether the solution region of `function` in file `rel` belongs to this assignment."""
        names = self.solutions.get(rel)
        return names is not None and (names == ALL or function in names)

    def selection(self, file: str, function: str, case: str | None) -> GradedSelection | None:
        """The entry that selects a graded test, or None."""
        return next((s for s in self.tests if s.selects(file, function, case)), None)


@dataclass(frozen=True)
class Course:
    """The assignments in order."""

    name: str
    assignments: tuple[Assignment, ...]

    def get(self, name: str) -> Assignment:
        """The assignment called name, or CourseError listing the names there are."""
        for assignment in self.assignments:
            if assignment.name == name:
                return assignment
        raise CourseError(f"the course has no assignment {name!r}; it has {[a.name for a in self.assignments]}.")

    def keeps_solution(self, assignment: Assignment, rel: str, function: str) -> bool:
        """Whether the release of `assignment` ships this region's solution (its owner is listed complete)."""
        return any(self.get(done).owns(rel, function) for done in assignment.complete)


def solution_regions(root: pathlib.Path) -> list[tuple[str, str]]:
    """(file, enclosing function) of every solution region of the student files, in order."""
    found = []
    for rel in manifest.STUDENT_FILES:
        lines = (root / rel).read_text("utf-8").split("\n")
        for region in find_regions(lines, rel):
            if region.kind == SOLUTION:
                found.append((rel, enclosing_name(lines, region.begin, region.indent) or rel))
    return found


def _strings(where: str, value, what: str) -> tuple[str, ...]:
    if not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
        raise CourseError(f"{where} must be a list of {what} (non-empty strings), got {value!r}.")
    if len(set(value)) != len(value):
        raise CourseError(f"{where} lists an entry twice: {value!r}.")
    return tuple(value)


def _points(where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise CourseError(f"{where} must be a positive number of points, got {value!r}.")
    return float(value)


def _check_keys(where: str, entry, required: set, optional: set) -> None:
    if not isinstance(entry, dict):
        raise CourseError(f"{where} must be an object, got {type(entry).__name__}.")
    missing, unknown = required - set(entry), set(entry) - required - optional
    if missing or unknown:
        raise CourseError(f"{where}: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}; "
                          f"expected {sorted(required)} and optionally {sorted(optional)}.")


def _model(where: str, entry) -> ModelSpec:
    _check_keys(where, entry, {"file", "dataset", "max_bytes", "thresholds"}, set())
    if not (isinstance(entry["file"], str) and entry["file"].endswith(".npz") and "/" not in entry["file"]):
        raise CourseError(f"{where}.file must be a file name ending in .npz, got {entry['file']!r}.")
    if entry["dataset"] not in MODEL_DATASETS:
        raise CourseError(f"{where}.dataset must be one of {MODEL_DATASETS}, got {entry['dataset']!r}.")
    cap = entry["max_bytes"]
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1024:
        raise CourseError(f"{where}.max_bytes must be an int of at least 1024, got {cap!r}.")
    steps = entry["thresholds"]
    if not (isinstance(steps, list) and steps and all(isinstance(s, list) and len(s) == 2 for s in steps)):
        raise CourseError(f"{where}.thresholds must be a non-empty list of [accuracy, points], got {steps!r}.")
    pairs = []
    for least, points in steps:
        if isinstance(least, bool) or not isinstance(least, (int, float)) or not 0 < least <= 1:
            raise CourseError(f"{where}.thresholds: an accuracy must lie in (0, 1], got {least!r}.")
        pairs.append((float(least), _points(f"{where}.thresholds", points)))
    if any(b[0] <= a[0] or b[1] <= a[1] for a, b in zip(pairs, pairs[1:])):
        raise CourseError(f"{where}.thresholds must rise in both accuracy and points, got {steps!r}.")
    return ModelSpec(entry["file"], entry["dataset"], cap, tuple(pairs))


def _assignment(where: str, entry, root: pathlib.Path, earlier: list[str]) -> Assignment:
    _check_keys(where, entry, {"name", "title", "solutions", "notebooks", "tests", "complete"}, {"model"})
    name = entry["name"]
    if not (isinstance(name, str) and name.isidentifier()):
        raise CourseError(f"{where}.name must be a simple name (letters, digits, _), got {name!r}.")
    where = f"assignment {name}"
    solutions = {}
    if not isinstance(entry["solutions"], dict) or not entry["solutions"]:
        raise CourseError(f"{where}: solutions must be a non-empty object of file -> functions or \"*\".")
    for rel, names in entry["solutions"].items():
        if rel not in manifest.STUDENT_FILES:
            raise CourseError(f"{where}: solutions names {rel}, which is not in grading.manifest.STUDENT_FILES.")
        solutions[rel] = ALL if names == ALL else _strings(f"{where}: solutions[{rel!r}]", names, "function names")
    notebooks = _strings(f"{where}.notebooks", entry["notebooks"], "notebook names") if entry["notebooks"] else ()
    for notebook in notebooks:
        if not (root / "notebooks" / notebook).is_file():
            raise CourseError(f"{where}: notebook {notebook} is not in notebooks/.")
    if not isinstance(entry["tests"], list) or not entry["tests"]:
        raise CourseError(f"{where}: tests must be a non-empty list of {{\"file\": ...}} entries.")
    tests = []
    for number, test in enumerate(entry["tests"], start=1):
        spot = f"{where}: tests entry {number}"
        _check_keys(spot, test, {"file"}, {"functions", "cases", "points"})
        if not (isinstance(test["file"], str) and (root / manifest.GRADED_TESTS_DIR / test["file"]).is_file()):
            raise CourseError(f"{spot}: file {test['file']!r} is not a file of {manifest.GRADED_TESTS_DIR}.")
        tests.append(GradedSelection(
            test["file"],
            _strings(f"{spot}.functions", test["functions"], "test functions") if "functions" in test else None,
            _strings(f"{spot}.cases", test["cases"], "case ids") if "cases" in test else None,
            _points(f"{spot}.points", test["points"]) if "points" in test else None))
    complete = _strings(f"{where}.complete", entry["complete"], "assignment names") if entry["complete"] else ()
    for done in complete:
        if done not in earlier:
            raise CourseError(f"{where}: complete lists {done!r}, which is not an earlier assignment {earlier}.")
    model = _model(f"{where}.model", entry["model"]) if "model" in entry else None
    return Assignment(name, str(entry["title"]), solutions, notebooks, tuple(tests), complete, model)


def load_course(path=None, root=None) -> Course:
    """Read and check the course file against the library's solution regions.

    Args:
        path: the course file (default: grading/course.json under root).
        root: the project root holding the reference solution (default: this project).

    Returns:
        The Course.

    Raises:
        CourseError: unreadable JSON, a malformed entry, a file, function, notebook, test file or
            earlier assignment that does not exist, a solution region claimed by no assignment or by two.
    """
    root = project_root() if root is None else pathlib.Path(root)
    path = root / COURSE_FILE if path is None else pathlib.Path(path)
    try:
        document = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CourseError(f"cannot read the course file {path}: {exc}") from None
    _check_keys(f"the course file {path}", document, {"name", "assignments"}, {"about"})
    entries = document["assignments"]
    if not isinstance(entries, list) or not entries:
        raise CourseError(f"{path}: assignments must be a non-empty list.")
    assignments: list[Assignment] = []
    for number, entry in enumerate(entries, start=1):
        assignment = _assignment(f"{path}: assignment {number}", entry, root, [a.name for a in assignments])
        if assignment.name in [a.name for a in assignments]:
            raise CourseError(f"{path}: two assignments are called {assignment.name!r}.")
        assignments.append(assignment)
    regions = solution_regions(root)
    present = set(regions)
    for assignment in assignments:
        for rel, names in assignment.solutions.items():
            for function in () if names == ALL else names:
                if (rel, function) not in present:
                    raise CourseError(f"{path}: assignment {assignment.name} names {function} in {rel}, "
                                      f"which has no solution region there.")
    for rel, function in regions:
        owners = [a.name for a in assignments if a.owns(rel, function)]
        if len(owners) != 1:
            raise CourseError(f"{path}: the solution region of {function} in {rel} belongs to "
                              f"{owners or 'no assignment'}; it must belong to exactly one.")
    return Course(str(document["name"]), tuple(assignments))
