"""Files on disk: the project's root folder, and writes that never leave half a file behind.

Every package that writes files (solver's checkpoints, plots and metrics; grading's results,
gathered submissions, reference data and autograder zip; the benchmarks' reports) writes
through ``atomic_write`` or ``write_atomically``, and every one that needs the project's own
folders finds them through ``project_root``.

Why here: ``data`` is the lowest package that deals with the disk (``layers`` and ``gradcheck``
never write files, and ``layers`` must not import upward), and this module imports nothing but
the standard library, so solver, grading and benchmarks all import it without cycles and
without loading numpy (``data/__init__`` loads the loaders only when one is asked for).

An atomic write goes to a fresh temporary file beside the destination (same folder, so the
same file system), is flushed and, by default, fsync'ed, and only then renamed over the
destination with ``os.replace``: a reader sees the old file or the new one, never a torn one,
and a failed or interrupted write removes its temporary and leaves the old file as it was. The
new file gets the permissions a plain ``open()`` would give it (0o666 minus the umask) unless
asked for others; the umask is never changed, not even for a moment, so threads elsewhere in
the process are unaffected.
"""

from __future__ import annotations

import contextlib
import os
import pathlib

__all__ = ["project_root", "atomic_write", "write_atomically"]

# Permissions a new file gets from open() before the umask applies.
DEFAULT_PERMISSIONS = 0o666


def project_root() -> pathlib.Path:
    """The project's root folder: the one holding its packages (layers/, solver/, data/, grading/, ...).

    The same in the source tree, a student release and an unpacked autograder, which all keep
    data/ beside the other packages.

    Returns:
        An absolute pathlib.Path, symlinks resolved.
    """
    return pathlib.Path(__file__).resolve().parent.parent


def _temporary(path: pathlib.Path, permissions):
    """Create a new, empty temporary file beside path; return its descriptor and name.

    O_EXCL makes the name ours alone; the permissions pass through the umask as open()'s do.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            fd = os.open(tmp, flags, DEFAULT_PERMISSIONS if permissions is None else 0o600)
        except FileExistsError:
            continue
        if permissions is not None:
            os.chmod(tmp, permissions)  # exactly these, whatever the umask
        return fd, tmp


@contextlib.contextmanager
def atomic_write(path, mode="wb", *, parents=False, permissions=None, fsync=True):
    """Open a temporary file beside ``path``; on success rename it over ``path``, else delete it.

    Args:
        path: the destination (str or path-like).
        mode: "wb" (bytes) or "w" (text, in the default encoding, as open() would).
        parents: create the destination's missing folders; False refuses a missing folder.
        permissions: the new file's mode bits, e.g. 0o644, regardless of the umask; None gives
            what open() would (0o666 minus the umask).
        fsync: flush the file to the disk before the rename, so that a crash right after
            cannot leave an empty file under the real name; False for scratch files.

    Returns:
        A context manager yielding the open temporary file.

    Raises:
        FileNotFoundError: the destination's folder does not exist (and parents is False).
        ValueError: mode is neither "wb" nor "w".
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}.")
    path = pathlib.Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise FileNotFoundError(f"atomic_write: the folder {path.parent} does not exist (writing {path.name}).")
    fd, tmp = _temporary(path, permissions)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomically(path, data, *, parents=False, permissions=None, fsync=True) -> pathlib.Path:
    """Write bytes or text to ``path`` in one atomic replacement (see atomic_write).

    Args:
        path: the destination (str or path-like).
        data: bytes (or a bytearray or memoryview), written as they are, or str, written in the
            default encoding as open(path, "w") would.
        parents, permissions, fsync: as for atomic_write.

    Returns:
        path, as a pathlib.Path.

    Raises:
        TypeError: data is neither bytes nor str.
        FileNotFoundError: the destination's folder does not exist (and parents is False).
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        mode = "wb"
    elif isinstance(data, str):
        mode = "w"
    else:
        raise TypeError(f"write_atomically: data must be bytes or str, got {type(data).__name__}.")
    path = pathlib.Path(path)
    with atomic_write(path, mode, parents=parents, permissions=permissions, fsync=fsync) as f:
        f.write(data)
    return path
