"""Package the autograder for Gradescope.

    python -m grading autograder-zip OUT.zip

The zip holds, at its top level: setup.sh (installs Python and the requirements), run_autograder
(grades /autograder/submission into /autograder/results/results.json), requirements.txt, the
grading package with the full graded tests and the reference data, the reference solution's
library (layers, solver, gradcheck, data: the trusted side computes some expected values and the
nets' stand-in layers with it), and base/, the student version that each submission's files are
copied over. Gradescope runs the autograder as root, so the worker runs as nobody in its own
namespaces and sees none of /autograder (grading.sandbox).
"""

from __future__ import annotations

import pathlib
import tempfile
import zipfile

from data.files import atomic_write, project_root
from grading import manifest
from grading.grade import AUTOGRADER_MARKER
from grading.model_grade import HELDOUT_DIR
from grading.reference import verify
from grading.release import build

REQUIREMENTS = "numpy>=2.0\nscipy>=1.11\nmatplotlib>=3.7\npytest>=7.4\n"

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image.
set -euo pipefail
if ! command -v python3 >/dev/null 2>&1 || ! python3 -m venv --help >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip
fi
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --quiet -r /autograder/source/requirements.txt
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission. The AUTOGRADER_* variables exist for local trials.
set -euo pipefail
SOURCE="${AUTOGRADER_SOURCE:-/autograder/source}"
[ -d "$SOURCE/grading" ] || SOURCE="$(cd "$(dirname "$0")" && pwd)"
SUBMISSION="${AUTOGRADER_SUBMISSION:-/autograder/submission}"
RESULTS="${AUTOGRADER_RESULTS:-/autograder/results/results.json}"
PYTHON="${AUTOGRADER_PYTHON:-/autograder/venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
cd "$SOURCE"
exec "$PYTHON" -m grading grade "$SUBMISSION" --results "$RESULTS"@ASSIGNMENT@
"""

# The trusted library the grader imports (the reference solution, complete).
LIBRARY_FOLDERS = ("layers", "solver", "gradcheck", "data")


def _add(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o755 if executable else 0o644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def autograder_zip(out_path, *, root=None, assignment: str | None = None) -> list[str]:
    """Write the Gradescope autograder zip atomically; returns the names it holds.

    Args:
        out_path: the .zip to write (its folder must exist).
        root: the project root (default: this package's).
        assignment: None for the whole library, or an assignment of grading/course.json: its
            release is the base and run_autograder grades that assignment (one zip per assignment).

    Raises:
        ValueError: out_path does not end in .zip or its folder is missing.
        grading.reference.ReferenceError: the reference data does not match its hashes.
    """
    root = pathlib.Path(root) if root is not None else project_root()
    out_path = pathlib.Path(out_path)
    if out_path.suffix != ".zip":
        raise ValueError(f"autograder-zip: OUT.zip must end in .zip, got {out_path}.")
    if not out_path.parent.is_dir():
        raise ValueError(f"autograder-zip: the folder {out_path.parent} of OUT.zip does not exist.")
    verify(root / manifest.REFERENCE_DIR)
    names = []
    with atomic_write(out_path) as out, tempfile.TemporaryDirectory() as staging, zipfile.ZipFile(out, "w") as archive:
        base = pathlib.Path(staging) / "base"
        build(root, base, assignment)
        run = RUN_AUTOGRADER.replace("@ASSIGNMENT@", "" if assignment is None else f" --assignment {assignment}")
        entries = [("setup.sh", SETUP_SH.encode(), True), ("run_autograder", run.encode(), True),
                   ("requirements.txt", REQUIREMENTS.encode(), False), (AUTOGRADER_MARKER, b"", False)]
        entries += [(f"grading/{path.name}", path.read_bytes(), False)
                    for path in sorted((root / "grading").iterdir()) if path.is_file() and path.suffix in (".py", ".json")]
        for folder in LIBRARY_FOLDERS:
            for path in sorted((root / folder).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".gz", ".md"):
                    entries.append((path.relative_to(root).as_posix(), path.read_bytes(), False))
        for folder in (manifest.GRADED_TESTS_DIR, manifest.REFERENCE_DIR, HELDOUT_DIR):
            for path in sorted((root / folder).iterdir()):
                if path.is_file():
                    entries.append((f"{folder}/{path.name}", path.read_bytes(), False))
        entries.append((manifest.STUDENT_README, (root / manifest.STUDENT_README).read_bytes(), False))
        for path in sorted(base.rglob("*")):
            if path.is_file():
                entries.append((f"base/{path.relative_to(base).as_posix()}", path.read_bytes(), False))
        for name, data, executable in entries:
            _add(archive, name, data, executable)
            names.append(name)
    return names
