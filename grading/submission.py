"""Take a student's files out of a submission without trusting it: ``gather(submission, dest, files)``.

The submission is hostile: it may hold links out of the submission, FIFOs that block whoever
opens them, archives that inflate to gigabytes, or names that climb out of the folder. Only
the listed student files are ever read, each is copied as bytes (never decoded or run), and
whatever is refused leaves the unimplemented base version in ``dest`` with a note saying why.

Accepted: a folder or a ``.zip`` file, with the student files in one of three layouts, tried in
this order: (a) the project layout at the top (``layers/affine.py``); (b) the project layout
inside exactly one top-level folder (``myproject/layers/affine.py``, the student zipped their
project folder); (c) flat, by base name at the top (``affine.py``). ``__MACOSX/``, ``._*`` and
``.DS_Store`` entries are ignored.

Refused, one file at a time (a note, the base version is kept):
- a symbolic link, or a file below a folder that is one: links are never followed;
- anything but a regular file (FIFO, device, socket, folder): checked with lstat before
  opening, then opened with O_NOFOLLOW | O_NONBLOCK and checked again with fstat, so a FIFO
  never blocks the grader and a file swapped for a link in between is caught;
- a file over ``max_file_bytes``: at most ``max_file_bytes + 1`` bytes are read or inflated,
  whatever size the zip declares;
- in a zip: a name that is absolute or holds ``..``, a backslash or NUL (never used), a
  symlink member, a name present more than once, a member that cannot be decompressed.
Refused as a whole (SubmissionError): a path that is neither a folder nor a ``.zip``; a corrupt
zip; a zip with more than ``max_members`` members, larger than ``max_total_bytes`` on disk, or
declaring more than ``max_total_bytes`` uncompressed. The zip is never extracted.
"""

from __future__ import annotations

import os
import posixpath
import stat
import zipfile
from dataclasses import dataclass, field

from data.files import write_atomically

MISSING = "not in the submission; the unimplemented version was graded."
_EOCD = b"PK\x05\x06"  # signature of a zip's end-of-central-directory record


class SubmissionError(Exception):
    """The submission as a whole cannot be read (not a folder or .zip, a corrupt zip, over the size caps)."""


@dataclass
class Intake:
    """What gather did: the files it copied and the notes for the student."""

    copied: list[str] = field(default_factory=list)  # relative paths (from student_files) written into dest
    notes: list[str] = field(default_factory=list)  # one line per remark a student should read


def is_zip_submission(path) -> bool:
    """True for an existing file whose name ends in .zip (any case)."""
    return os.path.isfile(path) and os.fspath(path).lower().endswith(".zip")


def _is_junk(name: str) -> bool:
    parts = name.split("/")
    return "__MACOSX" in parts or parts[-1] == ".DS_Store" or parts[-1].startswith("._")


def _kind(mode: int) -> str:
    kinds = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
             stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}
    return kinds.get(stat.S_IFMT(mode), "of unknown type")


class _Folder:
    """A folder submission, looked up one path component at a time without following links."""

    def __init__(self, root: str, max_file_bytes: int):
        self.root, self.max_file_bytes = root, max_file_bytes

    def top_folders(self) -> list[str]:
        with os.scandir(self.root) as entries:
            return sorted(e.name for e in entries if e.is_dir(follow_symlinks=False) and not _is_junk(e.name))

    def present(self, name: str) -> bool:
        return self._walk(name, read=False) != (None, None)

    def fetch(self, name: str):
        return self._walk(name, read=True)

    def _walk(self, name: str, read: bool):
        """(bytes, None) when read, (None, reason) when refused, (None, None) when absent.

        Each folder is opened relative to its parent's descriptor with O_NOFOLLOW, so no
        component can be a link, even one swapped in after it was checked."""
        parts = name.split("/")
        fds = [os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
        try:
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                try:
                    st = os.stat(part, dir_fd=fds[-1], follow_symlinks=False)
                except (FileNotFoundError, NotADirectoryError):
                    return None, None
                if stat.S_ISLNK(st.st_mode):
                    where = "is" if last else f"is below {'/'.join(parts[:i + 1])}, which is"
                    return None, f"{where} a symbolic link (links are not followed)"
                if not last and not stat.S_ISDIR(st.st_mode):
                    return None, None
                if last and not stat.S_ISREG(st.st_mode):
                    return None, f"is {_kind(st.st_mode)}, not a regular file"
                if last and st.st_size > self.max_file_bytes:
                    return None, f"is larger than the {self.max_file_bytes}-byte limit"
                if last and not read:
                    return b"", None
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
                flags |= os.O_NONBLOCK if last else os.O_DIRECTORY
                try:
                    fds.append(os.open(part, flags, dir_fd=fds[-1]))
                except OSError as error:
                    return None, f"could not be opened ({error.strerror})"
            if not stat.S_ISREG(os.fstat(fds[-1]).st_mode):
                return None, "was replaced by something other than a regular file while being opened"
            chunks, size = [], 0
            while size <= self.max_file_bytes:
                chunk = os.read(fds[-1], self.max_file_bytes + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            if size > self.max_file_bytes:
                return None, f"is larger than the {self.max_file_bytes}-byte limit"
            return b"".join(chunks), None
        finally:
            for fd in fds:
                os.close(fd)


def _unsafe(info: zipfile.ZipInfo) -> bool:
    name = info.orig_filename
    return (name.startswith("/") or "\\" in name or "\0" in name or ".." in name.split("/")
            or (len(name) > 1 and name[1] == ":"))


class _Zip:
    """A zip submission: members are looked up by name and inflated one at a time, capped."""

    def __init__(self, path: str, max_file_bytes: int, max_total_bytes: int, max_members: int):
        self.max_file_bytes = max_file_bytes
        size = os.path.getsize(path)
        if size > max_total_bytes:
            raise SubmissionError(f"gather: the zip {path} is {size} bytes, over the {max_total_bytes}-byte limit.")
        with open(path, "rb") as f:  # count the members before zipfile builds an object for each
            f.seek(max(0, size - 22 - 65535))
            tail = f.read()
        at = tail.rfind(_EOCD)
        declared = int.from_bytes(tail[at + 10:at + 12], "little") if at >= 0 else 0
        if declared != 0xFFFF and declared > max_members:  # 0xFFFF: zip64, counted below
            raise SubmissionError(f"gather: the zip {path} has {declared} members; "
                                  f"at most {max_members} are accepted.")
        try:
            self.zip = zipfile.ZipFile(path)
        except Exception as error:  # a hostile archive can break the parser in many ways
            raise SubmissionError(f"gather: {path} is not a readable zip file ({error}).") from None
        infos = self.zip.infolist()
        total = sum(info.file_size for info in infos)
        problem = None
        if len(infos) > max_members:
            problem = f"has {len(infos)} members; at most {max_members} are accepted"
        elif total > max_total_bytes:
            problem = f"declares {total} bytes uncompressed, over the {max_total_bytes}-byte limit"
        if problem:
            self.zip.close()
            raise SubmissionError(f"gather: the zip {path} {problem}.")
        self.unsafe = [info.orig_filename for info in infos if _unsafe(info)]
        self.members: dict[str, list[zipfile.ZipInfo]] = {}
        for info in infos:
            if not _unsafe(info) and not _is_junk(info.filename.rstrip("/")):
                self.members.setdefault(info.filename.rstrip("/"), []).append(info)

    def unsafe_notes(self, wanted) -> list[str]:
        """One note if an unusable member name has the base name of a wanted file."""
        bases = {name.rsplit("/", 1)[-1] for name in wanted}
        matching = [n for n in self.unsafe if n.split("\0")[0].replace("\\", "/").rsplit("/", 1)[-1] in bases]
        return [f"the zip holds member names that are absolute or contain '..', '\\' or NUL "
                f"(e.g. {matching[0]!r}); such names are never used."] if matching else []

    def top_folders(self) -> list[str]:
        return sorted({name.split("/")[0] for name in self.members if "/" in name})

    def present(self, name: str) -> bool:
        return name in self.members

    def fetch(self, name: str):
        infos = self.members.get(name, [])
        if len(infos) != 1:
            return None, (f"appears {len(infos)} times in the zip" if infos else None)
        info = infos[0]
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            return None, "is a symbolic link (links are not followed)"
        if info.is_dir() or stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: no unix mode recorded
            what = _kind(mode) if stat.S_IFMT(mode) else "a folder"
            return None, f"is {what}, not a regular file"
        try:
            with self.zip.open(info) as member:  # inflates no more than it is asked for
                data = member.read(self.max_file_bytes + 1)
        except Exception as error:  # a corrupt member: a bad CRC, a broken stream, a lie about its size
            return None, f"could not be decompressed ({error})"
        if len(data) > self.max_file_bytes:
            return None, f"is larger than the {self.max_file_bytes}-byte limit"
        return data, None


def _choose_layout(source, student_files):
    """Return (name of each student file in the submission, layout notes)."""
    if any(source.present(rel) for rel in student_files):
        return {rel: rel for rel in student_files}, []
    holders = [top for top in source.top_folders()
               if any(source.present(f"{top}/{rel}") for rel in student_files)]
    if len(holders) == 1:
        return ({rel: f"{holders[0]}/{rel}" for rel in student_files},
                [f"the files were taken from the folder {holders[0]}/ of the submission."])
    notes = [f"student files were found in several folders ({', '.join(holders)}); none was used: "
             "submit one project folder."] if holders else []
    flat = {rel: posixpath.basename(rel) for rel in student_files}
    if any(source.present(name) for name in flat.values()):
        notes.append("the files were found side by side at the top of the submission, "
                     "not in their project folders; each was taken by its name.")
        return flat, notes
    return {rel: rel for rel in student_files}, notes


def _check_arguments(submission, dest, student_files, caps) -> None:
    if not os.path.isdir(dest):
        raise ValueError(f"gather: dest must be an existing folder; got {dest!r}.")
    if isinstance(student_files, (str, bytes)):
        raise ValueError("gather: student_files must be a sequence of relative paths; "
                         f"got the string {student_files!r}.")
    for rel in student_files:
        parts = rel.split("/") if isinstance(rel, str) else []
        if not parts or rel.startswith("/") or "\\" in rel or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"gather: each of student_files must be a relative POSIX path like "
                             f"'layers/affine.py'; got {rel!r}.")
    for name, value in caps.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"gather: {name} must be a positive integer; got {value!r}.")
    if not os.path.lexists(submission):
        raise SubmissionError(f"gather: the submission {submission} does not exist.")
    if not os.path.isdir(submission) and not is_zip_submission(submission):
        raise SubmissionError(f"gather: the submission {submission} is neither a folder nor a .zip file.")


def gather(submission, dest, student_files, *, max_file_bytes=2_000_000, max_total_bytes=50_000_000,
           max_members=10_000) -> Intake:
    """Copy each of ``student_files`` found in ``submission`` (folder or .zip) to ``dest/<rel>``.

    See the module docstring for what is accepted and refused. Returns what was copied and the
    notes for the student: layout notes first, then one per student file in the given order."""
    caps = {"max_file_bytes": max_file_bytes, "max_total_bytes": max_total_bytes, "max_members": max_members}
    _check_arguments(submission, dest, student_files, caps)
    submission, dest, student_files = os.fspath(submission), os.fspath(dest), list(student_files)
    if os.path.isdir(submission):
        source = _Folder(submission, max_file_bytes)
    else:
        source = _Zip(submission, max_file_bytes, max_total_bytes, max_members)
    try:
        names, notes = _choose_layout(source, student_files)
        intake = Intake(notes=notes)
        if isinstance(source, _Zip):
            intake.notes += source.unsafe_notes(names.values())
        basenames = [posixpath.basename(rel) for rel in student_files]
        for rel in student_files:
            name = names[rel]
            if name != rel and "/" not in name and basenames.count(name) > 1:
                intake.notes.append(f"{rel}: several student files are named {name}; in a flat "
                                    "submission they cannot be told apart; the unimplemented version was graded.")
                continue
            data, reason = source.fetch(name)
            if data is None:
                refused = f"not taken: {name} {reason}; the unimplemented version was graded."
                intake.notes.append(f"{rel}: {MISSING if reason is None else refused}")
                continue
            # A scratch copy for the worker: mode 0o644 whatever the umask, no fsync.
            write_atomically(os.path.join(dest, *rel.split("/")), data, parents=True, permissions=0o644, fsync=False)
            intake.copied.append(rel)
        return intake
    finally:
        if isinstance(source, _Zip):
            source.zip.close()
