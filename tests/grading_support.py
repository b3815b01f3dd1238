"""Helpers for the grading tests: a scratch copy of the project, submissions, running the CLI."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

from grading import manifest
from data.files import project_root

ROOT = project_root()
COPIED = (*manifest.RELEASE_PATHS, "grading", "README.md")


def copy_project(dest: pathlib.Path) -> pathlib.Path:
    """A copy of what the release and the grader read, to alter without touching the project."""
    for entry in COPIED:
        source = ROOT / entry
        if source.is_dir():
            shutil.copytree(source, dest / entry, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, dest / entry)
    return dest


def fill_with_reference(student_tree: pathlib.Path) -> pathlib.Path:
    """Put the reference solution's student files into a released tree."""
    for rel in manifest.STUDENT_FILES:
        shutil.copyfile(ROOT / rel, student_tree / rel)
    return student_tree


def edit(path: pathlib.Path, old: str, new: str) -> None:
    """Replace the one occurrence of old in a file (fails loudly when old is absent or repeated)."""
    text = path.read_text()
    assert text.count(old) == 1, f"{path}: expected exactly one {old!r}"
    path.write_text(text.replace(old, new))


def run_grading(*args, cwd=None, timeout=600, env=None) -> subprocess.CompletedProcess:
    """python -m grading ARGS in a real subprocess."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "grading", *map(str, args)], cwd=cwd or ROOT, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def grade_cli(submission, results: pathlib.Path, *extra) -> dict:
    """Grade through the command line; returns results.json as a dict (asserting exit code 0)."""
    done = run_grading("grade", submission, "--results", results, *extra)
    assert done.returncode == 0, f"grade failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return json.loads(results.read_text())


def failed_tests(results: dict) -> dict[str, float]:
    """name -> points lost, for the tests that did not pass."""
    return {t["name"]: t["max_score"] - t["score"] for t in results["tests"] if t["status"] != "passed"}
