"""Write the student version of the library: solutions stubbed, hidden tests and reference data out.

    python -m grading release OUT_DIR [--force]

What goes in is listed in ``grading.manifest``. Python files and notebooks are cut along their
markers (``grading.markers``); notebooks also lose their outputs; the README files and the
Makefile are written from student templates; a graded test file left without tests once its
hidden regions are cut is not written. The tree is built in a temporary folder next to OUT_DIR
and moved into place only when complete, so a failed release leaves nothing half-written.

A release never deletes what it did not write. OUT_DIR may not be the project, lie inside it or
contain it. Its top holds a marker file (``manifest.RELEASE_MARKER``) listing the SHA-256 of
every file written; ``--force`` replaces an existing OUT_DIR only when that marker is there and
every file in the folder is one it lists, unchanged (Python caches excepted). Anything else
(a folder of your own, a release someone edited or ran ``make venv`` in) is refused, saying why.
The marker and those checks live in ``grading.release_folder``; their names are importable here.
"""

from __future__ import annotations

import ast
import json
import os
import pathlib
import shutil
from dataclasses import dataclass, field

from data.files import project_root
from grading import manifest
from grading.course import load_course
from grading.markers import HIDDEN, KINDS, SOLUTION, MarkerError, Region, enclosing_name, find_regions, strip_lines
from grading.release_folder import (CACHE_DIRS, CACHE_SUFFIXES, MARKER_HEADER, MARKER_NOTE, ReleaseError,
                                    check_replaceable, make_staging, refuse_project_folders, write_marker)

__all__ = ["MARKER_HEADER", "MARKER_NOTE", "CACHE_DIRS", "CACHE_SUFFIXES", "STUDENT_FILES_SLOT", "ReleaseError",
           "Release", "released_sources", "graded_test_sources", "strip_python", "strip_notebook", "has_tests",
           "build", "release"]

# The list of an assignment's graded tests in its release (read by the graded tests' conftest).
ASSIGNMENT_TESTS = "assignment.json"
# Where the Makefile template takes the list of student files.
STUDENT_FILES_SLOT = "@STUDENT_FILES@"


@dataclass
class Release:
    """What a release wrote."""

    out_dir: pathlib.Path
    files: list[str] = field(default_factory=list)
    # relative path -> names of the functions whose solution was stubbed
    stubbed: dict[str, list[str]] = field(default_factory=dict)
    hidden_regions: int = 0
    # graded test files not written because no test is left in them once hidden regions are cut
    skipped_tests: list[str] = field(default_factory=list)


def _path(fn: str, name: str, value) -> pathlib.Path:
    """value as a Path, or TypeError naming the function and the argument."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{fn}: {name} must be a path (str or os.PathLike), got {type(value).__name__} {value!r}.")
    if isinstance(os.fspath(value), bytes):
        raise TypeError(f"{fn}: {name} must be a text path, got bytes {value!r}.")
    return pathlib.Path(value)


def _text(fn: str, name: str, value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{fn}: {name} must be a str, got {type(value).__name__}.")
    return value


def released_sources(root: pathlib.Path) -> list[str]:
    """Relative paths of the library files that go into the student version, sorted.

    Args:
        root: the project root.

    Returns:
        Paths relative to root, posix style, of every released file (templated ones included).
    """
    root = _path("released_sources", "root", root)
    found: list[str] = []
    for entry in manifest.RELEASE_PATHS:
        path = root / entry
        if path.is_file():
            found.append(entry)
            continue
        if not path.is_dir():
            raise ReleaseError(f"release: {entry!r} listed in grading.manifest.RELEASE_PATHS is missing under {root}.")
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if d not in manifest.EXCLUDE_NAMES)
            for name in sorted(filenames):
                if name in manifest.EXCLUDE_NAMES or name.endswith(manifest.EXCLUDE_SUFFIXES):
                    continue
                found.append(pathlib.Path(dirpath, name).relative_to(root).as_posix())
    return sorted(found)


def graded_test_sources(root: pathlib.Path) -> list[str]:
    """Relative paths of the graded tests (and their helpers), sorted.

    Args:
        root: the project root.

    Returns:
        Paths relative to root, posix style, of every .py file under manifest.GRADED_TESTS_DIR.
    """
    root = _path("graded_test_sources", "root", root)
    base = root / manifest.GRADED_TESTS_DIR
    return sorted(
        p.relative_to(root).as_posix()
        for p in base.rglob("*.py")
        if "__pycache__" not in p.parts
    )


def strip_python(text: str, rel: str, allowed: tuple[str, ...], keep=None) -> tuple[str, list[Region], list[str]]:
    """The student version of a Python file's text.

    Args:
        text: the reference source.
        rel: its path relative to the root (named in stubs and errors).
        allowed: the region kinds this file may hold.
        keep: None, or a function of a region's enclosing name, True for a solution region that
            keeps its solution (grading.markers.strip_lines).

    Returns:
        (new text, regions, names of the stubbed functions; kept ones are not named).

    Raises:
        MarkerError: malformed markers, or a kind this file may not hold.
        ReleaseError: the stubbed file is no longer valid Python.
    """
    _text("strip_python", "text", text)
    _text("strip_python", "rel", rel)
    if not isinstance(allowed, tuple) or not all(kind in KINDS for kind in allowed):
        raise TypeError(f"strip_python: allowed must be a tuple of region kinds from {KINDS}, got {allowed!r}.")
    lines = text.split("\n")
    new_lines, regions = strip_lines(lines, rel, keep)
    for region in regions:
        if region.kind not in allowed:
            raise MarkerError(rel, region.begin + 1, f"{region.kind} regions are not allowed in this file.")
    new_text = "\n".join(new_lines)
    try:
        compile(new_text, rel, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise ReleaseError(
            f"release: {rel} is not valid Python once its solutions are stubbed (line {exc.lineno}: "
            f"{exc.msg}); a solution region must hold whole statements."
        ) from exc
    names = [enclosing_name(lines, r.begin, r.indent) or rel for r in regions if r.kind == SOLUTION]
    if keep is not None:
        names = [name for name in names if not keep(name)]
    return new_text, regions, names


def strip_notebook(text: str, rel: str) -> tuple[str, list[Region], list[str]]:
    """The student version of a notebook: code cells cut along their markers, outputs cleared.

    Args:
        text: the notebook's JSON.
        rel: its path relative to the root.

    Returns:
        (new JSON text, regions, stubbed cell names like "cell 3").
    """
    _text("strip_notebook", "text", text)
    _text("strip_notebook", "rel", rel)
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReleaseError(f"release: {rel} is not valid notebook JSON ({exc}).") from exc
    regions: list[Region] = []
    names: list[str] = []
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        source = cell.get("source", "")
        joined = "".join(source) if isinstance(source, list) else source
        where = f"{rel} (cell {number})"
        if cell.get("cell_type") != "code":
            _check_plain_file(joined, where)
            continue
        new_lines, found = strip_lines(joined.split("\n"), where)
        for region in found:
            if region.kind != SOLUTION:
                raise MarkerError(where, region.begin + 1, f"{region.kind} regions are not allowed in notebooks.")
        regions.extend(found)
        names.extend(f"cell {number}" for _ in found)
        new_source = "\n".join(new_lines)
        cell["source"] = new_source.splitlines(keepends=True)
        cell["outputs"] = []
        cell["execution_count"] = None
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", regions, names


def _check_plain_file(text: str, rel: str) -> None:
    """Refuse markers in files the release copies verbatim (they would ship the solution)."""
    regions = find_regions(text.split("\n"), rel)
    if regions:
        raise MarkerError(rel, regions[0].begin + 1, "markers only work in .py files and notebook code cells.")


def _write(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def has_tests(text: str, rel: str) -> bool:
    """Whether a test module's text defines a test pytest would collect (test_* function or Test* method).

    Args:
        text: the module's source.
        rel: its path, named in errors.

    Returns:
        True when some module-level ``test*`` function, or ``test*`` method of a ``Test*`` class, is defined.
    """
    _text("has_tests", "text", text)
    _text("has_tests", "rel", rel)
    try:
        tree = ast.parse(text, rel)
    except SyntaxError as exc:
        raise ReleaseError(f"release: {rel} is not valid Python (line {exc.lineno}: {exc.msg}).") from exc
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in tree.body:
        if isinstance(node, functions) and node.name.startswith("test"):
            return True
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            if any(isinstance(item, functions) and item.name.startswith("test") for item in node.body):
                return True
    return False


def assignment_tests(assignment) -> str:
    """tests/assignment.json of an assignment's release: the graded tests it runs (the conftest reads it)."""
    entries = [{key: value for key, value in (("file", t.file), ("functions", t.functions), ("cases", t.cases))
                if value is not None} for t in assignment.tests]
    return json.dumps({"assignment": assignment.name, "tests": entries}, indent=1) + "\n"


def _template(root: pathlib.Path, target: str, source: str, student_files=manifest.STUDENT_FILES) -> bytes:
    """The student version's file `target`, from the template `source` under root."""
    path = root / source
    if not path.is_file():
        raise ReleaseError(f"release: the template {source} for the student {target} is missing under {root}.")
    text = path.read_text("utf-8")
    _check_plain_file(text, source)
    if target == "Makefile":
        if text.count(STUDENT_FILES_SLOT) != 1:
            raise ReleaseError(f"release: {source} must hold {STUDENT_FILES_SLOT} exactly once (the files "
                               f"`make submission` packs); found it {text.count(STUDENT_FILES_SLOT)} times.")
        awkward = [rel for rel in student_files if any(c.isspace() or c in "$#\\'\"" for c in rel)]
        if awkward:
            raise ReleaseError(f"release: grading.manifest.STUDENT_FILES {awkward} hold spaces or characters "
                               "a Makefile cannot list; rename those files.")
        text = text.replace(STUDENT_FILES_SLOT, " \\\n    ".join(student_files))
    return text.encode("utf-8")


def build(root: pathlib.Path, dest: pathlib.Path, assignment: str | None = None) -> Release:
    """Write the student version into dest, an empty or missing folder (no atomicity, no marker here).

    Args:
        root: the project root holding the reference solution.
        dest: where to write.
        assignment: None for the whole library (every solution stubbed, every graded test), or
            the name of an assignment of the course file (grading.course): the solutions of the
            assignments it lists as complete kept, every other one stubbed, only its notebooks,
            only its public graded tests (tests/assignment.json says which).

    Returns:
        The Release summary.
    """
    root = _path("build", "root", root)
    dest = _path("build", "dest", dest)
    result = Release(out_dir=dest)
    course = chosen = None
    if assignment is not None:
        course = load_course(root=root)
        chosen = course.get(_text("build", "assignment", assignment))
    marked: set[str] = set()
    for rel in released_sources(root):
        if rel in manifest.STUDENT_TEMPLATES:
            continue
        if chosen is not None and rel.endswith(".ipynb") and pathlib.PurePosixPath(rel).name not in chosen.notebooks:
            continue
        raw = (root / rel).read_bytes()
        if rel.endswith((".py", ".ipynb")) or not _is_binary(raw):
            text = raw.decode("utf-8")
            if rel.endswith(".py"):
                keep = None if chosen is None else (lambda name, rel=rel: course.keeps_solution(chosen, rel, name))
                text, regions, names = strip_python(text, rel, allowed=(SOLUTION,), keep=keep)
                if any(r.kind == SOLUTION for r in regions):
                    marked.add(rel)
            elif rel.endswith(".ipynb"):
                text, regions, names = strip_notebook(text, rel)
            else:
                _check_plain_file(text, rel)
                names = []
            if names:
                result.stubbed[rel] = names
            raw = text.encode("utf-8")
        _write(dest / rel, raw)
        result.files.append(rel)
    for rel in graded_test_sources(root):
        name = pathlib.PurePosixPath(rel).name
        if chosen is not None and name.startswith("test") and not any(t.file == name for t in chosen.tests):
            continue
        text, regions, _ = strip_python((root / rel).read_text("utf-8"), rel, allowed=(HIDDEN,))
        result.hidden_regions += sum(r.kind == HIDDEN for r in regions)
        target = pathlib.PurePosixPath(manifest.STUDENT_TESTS_DIR) / pathlib.PurePosixPath(rel).relative_to(
            manifest.GRADED_TESTS_DIR
        )
        if target.name.startswith("test") and not has_tests(text, rel):
            result.skipped_tests.append(rel)  # all hidden: an empty file would only puzzle students
            continue
        _write(dest / target, text.encode("utf-8"))
        result.files.append(target.as_posix())
    if chosen is not None:
        target = f"{manifest.STUDENT_TESTS_DIR}/{ASSIGNMENT_TESTS}"
        _write(dest / target, assignment_tests(chosen).encode("utf-8"))
        result.files.append(target)
    student_files = manifest.STUDENT_FILES if chosen is None else chosen.student_files()
    for target, source in manifest.STUDENT_TEMPLATES.items():
        _write(dest / target, _template(root, target, source, student_files))
        result.files.append(target)
    missing = sorted(set(manifest.STUDENT_FILES) - marked)
    extra = sorted(marked - set(manifest.STUDENT_FILES))
    if missing or extra:
        raise ReleaseError(
            "release: grading.manifest.STUDENT_FILES and the files with solution markers disagree: "
            f"listed without markers {missing}, marked but not listed {extra}."
        )
    return result


def _is_binary(raw: bytes) -> bool:
    return b"\0" in raw[:8192] or raw[:2] == b"\x1f\x8b"


def release(out_dir, *, root=None, force: bool = False, assignment: str | None = None) -> Release:
    """Write the student version to out_dir, atomically, with the release marker at its top.

    Args:
        out_dir: the folder to create: new, empty, or (with force) an unchanged earlier release.
            It may not be, lie inside or contain the project root (compared through symlinks).
        root: the project root (default: the one this package lives in).
        force: replace an earlier release in out_dir once the new tree is complete.
        assignment: None for the whole library, or an assignment of the course file (see build).

    Returns:
        The Release summary, with out_dir pointing at the final folder (symlinks resolved).

    Raises:
        ReleaseError: out_dir is a file, is or holds or sits in the project, is not empty and
            not an earlier release (even with force), is an earlier release and force is not set,
            or is one whose files were changed or added to.
        MarkerError: malformed markers, naming the file and line.
    """
    target = _path("release", "out_dir", out_dir).absolute().resolve()
    root = project_root() if root is None else _path("release", "root", root)
    if not isinstance(force, bool):
        raise TypeError(f"release: force must be True or False, got {type(force).__name__} {force!r}.")
    if not root.is_dir():
        raise ReleaseError(f"release: root {root} is not a folder; expected the project root.")
    protected = sorted({root.resolve(), project_root()})
    refuse_project_folders(target, protected)
    if target.exists() and not target.is_dir():
        raise ReleaseError(f"release: OUT_DIR {target} is a file, expected a folder to create.")
    replacing = target.is_dir() and any(target.iterdir())
    if replacing:
        check_replaceable(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = make_staging(target)
    try:
        result = build(root, staging, assignment)
        write_marker(staging, result.files)
        result.files.append(manifest.RELEASE_MARKER)
        if replacing:
            old = staging.with_name(staging.name + ".old")
            target.rename(old)
            try:
                staging.rename(target)
            except BaseException:
                old.rename(target)
                raise
            shutil.rmtree(old)
        elif target.is_dir():
            target.rmdir()  # empty: nothing of anyone's is lost
            staging.rename(target)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result.out_dir = target
    return result
