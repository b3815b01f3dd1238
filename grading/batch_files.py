"""What grade-all reads and writes: the submissions it finds, complete results.json files, the gradebook.

SUBMISSIONS is a folder of one folder or .zip per student (the student is the entry's name without
.zip; hidden entries and ``__MACOSX`` are ignored, links refused with a note), or a Gradescope
export (a folder holding ``submission_metadata.yml`` and ``submission_<id>/`` folders; the
students are named by grading.gradescope_export.student_key). The gradebook has one row per
submission, sorted by student: student, name and email (for an export), total, max, the points of
each graded test, status ("graded" or "error"), seconds (the grading's own execution_time) and
the reason of an error.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
from dataclasses import dataclass

from data.files import write_atomically
from grading.gradescope_export import METADATA_NAME, is_export, read_metadata, student_key

__all__ = ["BOOK_NAME", "BatchError", "Entry", "path_argument", "find_submissions", "complete_results",
           "write_gradebook"]

BOOK_NAME = "gradebook.csv"
# results.json files larger than this are not read (45 tests stay under 100 kB).
MAX_RESULTS_BYTES = 50_000_000


class BatchError(RuntimeError):
    """The batch cannot start: unreadable SUBMISSIONS, a bad export, clashing names, a foreign DIR."""


@dataclass(frozen=True)
class Entry:
    """One submission to grade: the student key (DIR/<student>/), its absolute path, who handed it in."""

    student: str
    path: str
    name: str | None = None
    email: str | None = None
    problem: str | None = None  # why it cannot be graded at all (e.g. missing from an export)


def path_argument(fn: str, name: str, value) -> pathlib.Path:
    """value as an absolute path, or a TypeError naming fn and the argument.

    Args:
        fn: the public function checking its argument.
        name: the argument's name.
        value: what was passed (str or os.PathLike).

    Returns:
        An absolute pathlib.Path (links not resolved).
    """
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise TypeError(f"{fn}: {name} must be a path (str or os.PathLike), got {type(value).__name__} {value!r}.")
    return pathlib.Path(os.path.abspath(os.fspath(value)))


def _from_folder(root: pathlib.Path, entries: list, notes: list) -> None:
    with os.scandir(root) as listing:
        for item in sorted(listing, key=lambda e: e.name):
            if item.name.startswith(".") or item.name == "__MACOSX":
                continue
            if item.is_symlink():
                notes.append(f"refused {item.name}: a symbolic link (links are not followed).")
            elif item.is_dir():
                if is_export(item.path):
                    raise BatchError(f"find_submissions: {item.path} is a Gradescope export (it holds "
                                     f"{METADATA_NAME}): pass that folder as SUBMISSIONS.")
                entries.append(Entry(item.name, item.path))
            elif item.is_file() and item.name.lower().endswith(".zip") and len(item.name) > 4:
                entries.append(Entry(item.name[:-4], item.path))
            else:
                notes.append(f"ignored {item.name}: neither a folder nor a .zip.")


def _from_export(root: pathlib.Path, entries: list, notes: list) -> None:
    metadata = read_metadata(root)
    for folder, people in metadata.items():
        path = root / folder
        problem = None if path.is_dir() and not path.is_symlink() else f"{folder}/ is not a folder of the export"
        names = "; ".join(p.name for p in people if p.name) or None
        emails = "; ".join(p.email for p in people if p.email) or None
        entries.append(Entry(student_key(folder, people), str(path), names, emails, problem))
    for item in sorted(os.listdir(root)):
        if item not in metadata and not item.startswith(".") and item != METADATA_NAME:
            notes.append(f"ignored {item}: not a submission listed in submission_metadata.yml.")


def find_submissions(submissions) -> tuple[list[Entry], list[str]]:
    """The submissions in a folder of per-student folders and zips, or in a Gradescope export.

    Args:
        submissions: the folder (str or path-like).

    Returns:
        (entries sorted by student, notes on what was ignored or refused).

    Raises:
        TypeError: submissions is not a path.
        BatchError: not a folder, a malformed export, no submission, two submissions with one student name.
    """
    root = path_argument("find_submissions", "submissions", submissions)
    if not root.is_dir():
        raise BatchError(f"find_submissions: SUBMISSIONS {root} is not a folder.")
    entries: list[Entry] = []
    notes: list[str] = []
    try:
        (_from_export if is_export(root) else _from_folder)(root, entries, notes)
    except ValueError as error:  # MetadataError
        raise BatchError(str(error)) from None
    seen: dict[str, str] = {}
    for entry in entries:
        if entry.student in seen:
            raise BatchError(f"find_submissions: {seen[entry.student]} and {entry.path} would both be graded as "
                             f"student {entry.student!r}; rename one.")
        if entry.student == BOOK_NAME:
            raise BatchError(f"find_submissions: {entry.path}: a student may not be called {BOOK_NAME}.")
        seen[entry.student] = entry.path
    if not entries:
        raise BatchError(f"find_submissions: no submission (folder or .zip) in {root}.")
    return sorted(entries, key=lambda e: e.student), notes


def complete_results(path) -> dict | None:
    """A results.json as a dict when it is complete (a numeric score and a list of scored tests).

    Args:
        path: the results.json file (a link is never read).

    Returns:
        The document, or None when it is missing, unreadable, too large or incomplete.
    """
    path = path_argument("complete_results", "path", path)
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_RESULTS_BYTES:
            return None
        document = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(document, dict) and _is_number(document.get("score"))
            and isinstance(document.get("tests"), list)):
        return None
    for test in document["tests"]:
        if not (isinstance(test, dict) and isinstance(test.get("name"), str)
                and _is_number(test.get("score")) and _is_number(test.get("max_score"))):
            return None
    return document


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value) -> str:
    return f"{value:g}" if _is_number(value) else ""


def write_gradebook(path, entries, errors: dict) -> list[dict]:
    """Write the gradebook CSV atomically: a row per entry, from its complete results.json or its error.

    Args:
        path: the CSV file; each entry's results are read from path's folder / student / results.json.
        entries: the Entry list, sorted by student.
        errors: student -> one-line reason, for the gradings that failed in this run.

    Returns:
        The rows written (dicts keyed by column).
    """
    path = path_argument("write_gradebook", "path", path)
    if not (isinstance(entries, (list, tuple)) and all(isinstance(e, Entry) for e in entries)):
        raise TypeError(f"write_gradebook: entries must be a list of Entry, got {type(entries).__name__}.")
    if not isinstance(errors, dict):
        raise TypeError(f"write_gradebook: errors must be a dict student -> reason, got {type(errors).__name__}.")
    rows, tests = [], []
    with_people = any(e.name or e.email for e in entries)
    for entry in entries:
        row = {"student": entry.student}
        if with_people:
            row.update(name=entry.name or "", email=entry.email or "")
        document = None if entry.student in errors else complete_results(path.parent / entry.student / "results.json")
        if document is None:
            row.update(total="", max="", status="error", seconds="",
                       reason=errors.get(entry.student, "no results.json"))
        else:
            row.update(total=_number(document["score"]),
                       max=_number(sum(t["max_score"] for t in document["tests"])), status="graded",
                       seconds=_number(document.get("execution_time")), reason="")
            for test in document["tests"]:
                row[test["name"]] = _number(test["score"])
                if test["name"] not in tests:
                    tests.append(test["name"])
        rows.append(row)
    columns = ["student"] + (["name", "email"] if with_people else []) + ["total", "max", *tests,
                                                                         "status", "seconds", "reason"]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, text.getvalue(), parents=True)
    return rows
