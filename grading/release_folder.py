"""Where a release may write and what it may replace: the marker file listing every file a
release wrote, and the checks run before OUT_DIR is created or replaced.

A release never deletes what it did not write (see grading.release): OUT_DIR may not be, lie in
or contain the project, and ``--force`` replaces only an earlier release that the marker shows
unchanged. ReleaseError lives here so that these checks and grading.release raise the same one.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import secrets
import stat

from grading import manifest

# The first line of the marker file: what wrote the folder.
MARKER_HEADER = "# written by `python -m grading release` (chainrule): the student version"
MARKER_NOTE = ("# `release --force` replaces this folder only while it holds exactly the files below, "
               "unchanged (sha256, path)")
# Written by Python when the tree is used, never by hand: a forced release may delete these.
CACHE_DIRS = ("__pycache__", ".pytest_cache")
CACHE_SUFFIXES = (".pyc", ".pyo")


class ReleaseError(RuntimeError):
    """The release cannot be written as asked (target exists, stub breaks the syntax, ...)."""


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_marker(tree: pathlib.Path, files: list[str]) -> None:
    """Write the marker at the top of tree: the header, the note, and each of files with its SHA-256."""
    lines = [MARKER_HEADER, MARKER_NOTE] + [f"{_sha256(tree / rel)}  {rel}" for rel in sorted(files)]
    (tree / manifest.RELEASE_MARKER).write_text("\n".join(lines) + "\n", "utf-8")


def _recorded_files(marker: pathlib.Path) -> dict[str, str] | None:
    """path -> sha256 from a marker file, or None when it is not one release wrote."""
    try:
        lines = marker.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if not lines or lines[0] != MARKER_HEADER:
        return None
    recorded = {}
    for line in lines[1:]:
        if line.startswith("#"):
            continue
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64 or not rel:
            return None
        recorded[rel] = digest
    return recorded


def _not_written_by_release(tree: pathlib.Path, recorded: dict[str, str]) -> list[str]:
    """Entries of tree that the release recorded in its marker did not write as they are now."""
    found = []
    for dirpath, dirnames, filenames in os.walk(tree):
        here = pathlib.Path(dirpath)
        for name in list(dirnames):
            if (here / name).is_symlink():
                found.append(f"{(here / name).relative_to(tree).as_posix()} (a link)")
                dirnames.remove(name)
            elif name in CACHE_DIRS:
                dirnames.remove(name)
        dirnames.sort()
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(tree).as_posix()
            if rel == manifest.RELEASE_MARKER or name.endswith(CACHE_SUFFIXES):
                continue
            if not stat.S_ISREG(path.lstat().st_mode):
                found.append(f"{rel} (not a regular file)")
            elif rel not in recorded:
                found.append(f"{rel} (added)")
            elif _sha256(path) != recorded[rel]:
                found.append(f"{rel} (changed)")
    return sorted(found)


def refuse_project_folders(out_dir: pathlib.Path, roots: list[pathlib.Path]) -> None:
    """ReleaseError when out_dir (resolved) is, lies inside or contains one of the (resolved) roots."""
    for root in roots:
        if out_dir == root:
            where = "is the project root"
        elif root in out_dir.parents:
            where = "lies inside the project root"
        elif out_dir in root.parents:
            where = "contains the project root"
        else:
            continue
        raise ReleaseError(f"release: OUT_DIR {out_dir} {where} {root}; write the student version outside "
                           "the project (e.g. ../student), so replacing it can never touch the project.")


def check_replaceable(out_dir: pathlib.Path, force: bool) -> None:
    """ReleaseError unless out_dir, non-empty, is an unchanged earlier release and force is set."""
    marker = out_dir / manifest.RELEASE_MARKER
    recorded = _recorded_files(marker) if marker.is_file() and not marker.is_symlink() else None
    if recorded is None:
        even = " (not even with --force)" if force else ""
        raise ReleaseError(f"release: OUT_DIR {out_dir} is not empty and holds no {manifest.RELEASE_MARKER} "
                           f"written by an earlier release, so it is not one and release will not replace "
                           f"it{even}: release never deletes what it did not write; pick a new or empty folder.")
    if not force:
        raise ReleaseError(f"release: OUT_DIR {out_dir} holds an earlier release; pass --force to replace it.")
    foreign = _not_written_by_release(out_dir, recorded)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        count = f"{len(foreign)} entries in it are" if len(foreign) > 1 else "1 entry in it is"
        them = "them" if len(foreign) > 1 else "it"
        raise ReleaseError(f"release: OUT_DIR {out_dir} holds an earlier release, but {count} not as that "
                           f"release wrote {them}: {shown}; --force replaces only an "
                           "unchanged release, so move those away first (`make clean` there removes .venv, "
                           "*.egg-info and submission.zip).")


def make_staging(target: pathlib.Path) -> pathlib.Path:
    """A new, empty folder beside target, with the permissions the umask gives (mkdtemp's are private)."""
    for _ in range(100):
        staging = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
        try:
            staging.mkdir()
        except FileExistsError:
            continue
        return staging
    raise ReleaseError(f"release: could not create a temporary folder beside {target}.")
