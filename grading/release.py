"""Write the student version of the library: solutions stubbed, hidden tests and reference data out.

    python -m grading release OUT_DIR [--force]

What goes in is listed in ``grading.manifest``. Python files and notebooks are cut along their
markers (``grading.markers``); notebooks also lose their outputs. The tree is built in a
temporary folder next to OUT_DIR and moved into place only when complete, so a failed release
leaves nothing half-written and an existing OUT_DIR is replaced only with --force.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile
from dataclasses import dataclass, field

from grading import manifest
from grading.markers import HIDDEN, SOLUTION, MarkerError, Region, enclosing_name, find_regions, strip_lines


class ReleaseError(RuntimeError):
    """The release cannot be written as asked (target exists, stub breaks the syntax, ...)."""


@dataclass
class Release:
    """What a release wrote."""

    out_dir: pathlib.Path
    files: list[str] = field(default_factory=list)
    # relative path -> names of the functions whose solution was stubbed
    stubbed: dict[str, list[str]] = field(default_factory=dict)
    hidden_regions: int = 0


def project_root() -> pathlib.Path:
    """The library's root: the folder holding the grading package."""
    return pathlib.Path(__file__).resolve().parent.parent


def released_sources(root: pathlib.Path) -> list[str]:
    """Relative paths of the library files that go into the student version, sorted.

    Args:
        root: the project root.
    """
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
    """Relative paths of the graded tests (and their helpers), sorted."""
    base = root / manifest.GRADED_TESTS_DIR
    return sorted(
        p.relative_to(root).as_posix()
        for p in base.rglob("*.py")
        if "__pycache__" not in p.parts
    )


def _split(text: str) -> tuple[list[str], bool]:
    return text.split("\n"), text.endswith("\n")


def strip_python(text: str, rel: str, allowed: tuple[str, ...]) -> tuple[str, list[Region], list[str]]:
    """The student version of a Python file's text.

    Args:
        text: the reference source.
        rel: its path relative to the root (named in stubs and errors).
        allowed: the region kinds this file may hold.

    Returns:
        (new text, regions, names of the stubbed functions).

    Raises:
        MarkerError: malformed markers, or a kind this file may not hold.
        ReleaseError: the stubbed file is no longer valid Python.
    """
    lines = text.split("\n")
    new_lines, regions = strip_lines(lines, rel)
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
    return new_text, regions, names


def strip_notebook(text: str, rel: str) -> tuple[str, list[Region], list[str]]:
    """The student version of a notebook: code cells cut along their markers, outputs cleared.

    Args:
        text: the notebook's JSON.
        rel: its path relative to the root.

    Returns:
        (new JSON text, regions, stubbed cell names like "cell 3").
    """
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


def build(root: pathlib.Path, dest: pathlib.Path) -> Release:
    """Write the student version into dest, an empty or missing folder (no atomicity here).

    Args:
        root: the project root holding the reference solution.
        dest: where to write.

    Returns:
        The Release summary.
    """
    result = Release(out_dir=dest)
    for rel in released_sources(root):
        raw = (root / rel).read_bytes()
        if rel.endswith((".py", ".ipynb")) or not _is_binary(raw):
            text = raw.decode("utf-8")
            if rel.endswith(".py"):
                text, regions, names = strip_python(text, rel, allowed=(SOLUTION,))
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
        text, regions, _ = strip_python((root / rel).read_text("utf-8"), rel, allowed=(HIDDEN,))
        result.hidden_regions += sum(r.kind == HIDDEN for r in regions)
        target = pathlib.PurePosixPath(manifest.STUDENT_TESTS_DIR) / pathlib.PurePosixPath(rel).relative_to(
            manifest.GRADED_TESTS_DIR
        )
        _write(dest / target, text.encode("utf-8"))
        result.files.append(target.as_posix())
    _write(dest / "README.md", (root / manifest.STUDENT_README).read_bytes())
    result.files.append("README.md")
    marked = {rel for rel in result.stubbed if rel.endswith(".py")}
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


def release(out_dir, *, root=None, force: bool = False) -> Release:
    """Write the student version to out_dir, atomically.

    Args:
        out_dir: the folder to create. It must not exist (or be empty) unless force is True,
            in which case it is replaced once the new tree is complete.
        root: the project root (default: the one this package lives in).
        force: replace an existing, non-empty out_dir.

    Returns:
        The Release summary, with out_dir pointing at the final folder.

    Raises:
        ReleaseError: out_dir exists and is not empty (without force), or is a file.
        MarkerError: malformed markers, naming the file and line.
    """
    root = pathlib.Path(root) if root is not None else project_root()
    out_dir = pathlib.Path(out_dir).absolute()
    if out_dir.exists() and not out_dir.is_dir():
        raise ReleaseError(f"release: OUT_DIR {out_dir} is a file, expected a folder to create.")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise ReleaseError(f"release: OUT_DIR {out_dir} exists and is not empty; pass --force to replace it.")
    copied = {root.resolve() / entry for entry in manifest.RELEASE_PATHS}
    if any(out_dir.resolve() == path or path in out_dir.resolve().parents for path in copied):
        raise ReleaseError(f"release: OUT_DIR {out_dir} lies inside {root}/{{{', '.join(manifest.RELEASE_PATHS)}}}, "
                           "which the release copies; pick another folder.")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        result = build(root, staging)
        if out_dir.exists():
            old = staging.with_name(staging.name + ".old")
            out_dir.rename(old)
            staging.rename(out_dir)
            shutil.rmtree(old)
        else:
            staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result.out_dir = out_dir
    return result
